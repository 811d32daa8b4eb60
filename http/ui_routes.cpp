#include "http/ui_routes.hpp"

#include "http/embedded.hpp"
#include "http/errors.hpp"

namespace joule::http {
namespace {

// Only same-origin files and API calls; no inline script or style, no plugins, no framing,
// no form posts elsewhere. uPlot draws on canvas and sets styles through the CSSOM, which
// style-src does not restrict.
constexpr const char* content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

response file_response(const embedded_file& f) {
  response r;
  r.content_type = f.content_type;
  r.body.assign(reinterpret_cast<const char*>(f.data), f.size);
  return r;
}

route open_get(const char* pattern, const char* name, route_handler h) {
  route r;
  r.method = "GET";
  r.pattern = pattern;
  r.name = name;
  r.scope = auth::scope::none;
  r.handler = std::move(h);
  return r;
}

// A path parameter names one embedded dashboard file ("openapi.json" is not one of them:
// it has its own route).
const embedded_file* ui_file(const std::string& name) {
  if (name == "openapi.json")
    return nullptr;
  return find_embedded(name);
}

} // namespace

void add_ui_headers(response& r) {
  r.headers.emplace_back("Content-Security-Policy", content_security_policy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // Small files, revalidated on every load so an upgraded server serves its own page.
  r.headers.emplace_back("Cache-Control", "no-cache");
}

void add_ui_routes(route_table& table) {
  // "/ui" also matches "/ui/" (empty segments are dropped); the page links its files by
  // absolute path, so both work without a redirect.
  table.add(open_get("/ui", "ui", [](caf::event_based_actor*, route_request&, reply_fn reply) {
    auto* f = ui_file("index.html");
    if (!f)
      return reply(error_response(404, "not_found", "no such endpoint"));
    auto r = file_response(*f);
    add_ui_headers(r);
    reply(std::move(r));
  }));
  table.add(open_get("/ui/{id}", "ui_asset",
                     [](caf::event_based_actor*, route_request& req, reply_fn reply) {
                       auto* f = ui_file(req.params.id);
                       if (!f)
                         return reply(error_response(404, "not_found", "no such file"));
                       auto r = file_response(*f);
                       add_ui_headers(r);
                       reply(std::move(r));
                     }));
  table.add(open_get("/openapi.json", "openapi",
                     [](caf::event_based_actor*, route_request&, reply_fn reply) {
                       auto* f = find_embedded("openapi.json");
                       if (!f)
                         return reply(error_response(404, "not_found", "no such endpoint"));
                       auto r = file_response(*f);
                       r.headers.emplace_back("X-Content-Type-Options", "nosniff");
                       reply(std::move(r));
                     }));
}

} // namespace joule::http
