#pragma once
// The product surface served from the binary: the dashboard (/ui, /ui/, /ui/{asset}) and the
// OpenAPI document (/openapi.json). Both are open (scope none): the page asks for a token
// itself and sends it only to the API, as `Authorization: Bearer`.

#include "http/routes.hpp"

namespace joule::http {

/// The headers every dashboard answer carries: a Content-Security-Policy without inline
/// scripts or styles (the page and uPlot are same-origin files), nosniff, no framing, no
/// referrer.
void add_ui_headers(response& r);

/// GET /ui (also /ui/), GET /ui/{asset}, GET /openapi.json.
void add_ui_routes(route_table& table);

} // namespace joule::http
