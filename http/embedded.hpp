#pragma once
// Files compiled into the binary at build time (cmake/embed_files.cmake): the dashboard under
// http/ui/, uPlot from the npm registry (installed into the build folder, never committed) and
// the OpenAPI document http/openapi.json. The server needs no files next to it.

#include <cstddef>
#include <string_view>

namespace joule::http {

struct embedded_file {
  const char* name;          // served name, e.g. "app.js"
  const char* content_type;  // from the extension
  const unsigned char* data;
  std::size_t size;

  std::string_view text() const { return {reinterpret_cast<const char*>(data), size}; }
};

extern const embedded_file embedded_files[];
extern const std::size_t embedded_file_count;

/// The embedded file called `name`, or null.
inline const embedded_file* find_embedded(std::string_view name) {
  for (std::size_t i = 0; i < embedded_file_count; ++i)
    if (name == embedded_files[i].name)
      return &embedded_files[i];
  return nullptr;
}

} // namespace joule::http
