# Run at every build (cmake -P): writes OUT with the version and the git revision of SRC, and
# touches it only when they changed, so a new commit recompiles one file, not the tree.
#   cmake -DSRC=<source dir> -DOUT=<header> -DVERSION=<x.y.z> -P BuildInfo.cmake
set(revision unknown)
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} rev-parse --short=12 HEAD
    OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND rev MATCHES "^[0-9a-f]+$")
    set(revision ${rev})
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} diff --quiet HEAD --
      RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      string(APPEND revision "-dirty")
    endif()
  endif()
endif()
set(text "#pragma once\n#define JOULE_VERSION \"${VERSION}\"\n#define JOULE_REVISION \"${revision}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
