# The Debian package: `cmake --build build --target joule_packaged && cd build && cpack -G DEB`
# (tests/ops/package_test.sh does this and installs it). Contents: /usr/bin/joule (reading
# /etc/joule/joule.conf by default), /etc/joule/joule.conf (a conffile), the systemd unit, the
# docs; postinst creates the `joule` system user. Dependencies come from dpkg-shlibdeps.
include(GNUInstallDirs)

# The same main.cpp as build/actors/joule, with the packaged config path as its default. Not
# part of `all`: only packaging builds it.
add_executable(joule_packaged EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/actors/main.cpp)
target_link_libraries(joule_packaged PRIVATE joule::app)
target_compile_definitions(joule_packaged PRIVATE JOULE_DEFAULT_CONFIG="/etc/joule/joule.conf")
# Not OUTPUT_NAME joule: Ninja would then map the target name `joule` to this binary.
set_target_properties(joule_packaged PROPERTIES
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/package-bin)

install(PROGRAMS ${CMAKE_BINARY_DIR}/package-bin/joule_packaged DESTINATION bin RENAME joule
        COMPONENT joule)
install(FILES ${PROJECT_SOURCE_DIR}/config/joule.conf DESTINATION /etc/joule COMPONENT joule)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/joule.service DESTINATION /lib/systemd/system
        COMPONENT joule)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/deploy/prometheus-rules.yml
              ${PROJECT_SOURCE_DIR}/deploy/grafana-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/joule COMPONENT joule)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME joule)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Joule")
set(CPACK_PACKAGE_CONTACT "Joule maintainers <joule@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Real-time energy analytics and alerts server (rollups on PostgreSQL, Redis cache)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql (>= 15), redis-server, prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
