// The OpenAPI document served at /openapi.json (http/openapi.json, embedded at build time)
// describes exactly the server's route table: a route without documentation, or documentation
// of a route that does not exist, fails here. Response bodies are checked against it over real
// HTTP by tests/web/validate-responses.mjs.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include <rapidjson/document.h>

#include "http/admin_routes.hpp"
#include "http/analytics_routes.hpp"
#include "http/embedded.hpp"
#include "http/ingest_routes.hpp"
#include "http/system_routes.hpp"
#include "http/ui_routes.hpp"
#include "rules/alert_routes.hpp"

using namespace joule;

namespace {

// Every route the server registers, as actors/app.cpp wires them.
std::vector<http::route> server_routes() {
  auto env = std::make_shared<const http::route_env>();
  http::route_table table;
  http::add_system_routes(table, env);
  http::add_analytics_routes(table, env);
  http::add_ingest_routes(table, env);
  http::add_admin_routes(table, env);
  rules::add_alert_routes(table, env);
  http::add_ui_routes(table);
  return table.routes();
}

// "/analytics/households/{household_id}/energy" -> "/analytics/households/{id}/energy": the
// document names its parameters, the route table calls each one {id}.
std::string route_pattern(std::string path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '{') {
      out += "{id}";
      i = path.find('}', i);
    } else {
      out += path[i];
    }
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

class OpenApi : public ::testing::Test {
protected:
  void SetUp() override {
    auto* f = http::find_embedded("openapi.json");
    ASSERT_NE(f, nullptr) << "http/openapi.json is not embedded";
    auto text = f->text();
    doc_.Parse(text.data(), text.size());
    ASSERT_FALSE(doc_.HasParseError()) << "http/openapi.json is not valid JSON";
    ASSERT_TRUE(doc_.IsObject() && doc_.HasMember("paths") && doc_["paths"].IsObject());
  }

  // (METHOD, route pattern) -> the operation object.
  std::map<std::pair<std::string, std::string>, const rapidjson::Value*> operations() const {
    std::map<std::pair<std::string, std::string>, const rapidjson::Value*> out;
    static const std::set<std::string> methods = {"get", "put", "post", "delete", "patch",
                                                  "head", "options"};
    for (auto& p : doc_["paths"].GetObject())
      for (auto& m : p.value.GetObject())
        if (methods.count(m.name.GetString()))
          out[{upper(m.name.GetString()), route_pattern(p.name.GetString())}] = &m.value;
    return out;
  }

  rapidjson::Document doc_;
};

TEST_F(OpenApi, IsVersion31WithBearerScheme) {
  ASSERT_TRUE(doc_.HasMember("openapi") && doc_["openapi"].IsString());
  EXPECT_EQ(std::string(doc_["openapi"].GetString()).rfind("3.1.", 0), 0u);
  auto& schemes = doc_["components"]["securitySchemes"];
  ASSERT_TRUE(schemes.IsObject() && schemes.HasMember("bearer"));
  EXPECT_STREQ(schemes["bearer"]["type"].GetString(), "http");
  EXPECT_STREQ(schemes["bearer"]["scheme"].GetString(), "bearer");
}

TEST_F(OpenApi, EveryRouteIsDocumentedAndNothingElse) {
  auto ops = operations();
  auto routes = server_routes();
  ASSERT_GE(routes.size(), 20u);
  std::set<std::pair<std::string, std::string>> served;
  for (auto& r : routes) {
    served.emplace(r.method, r.pattern);
    EXPECT_TRUE(ops.count({r.method, r.pattern}))
        << r.method << " " << r.pattern << " is not in http/openapi.json";
  }
  for (auto& [key, op] : ops)
    EXPECT_TRUE(served.count(key)) << key.first << " " << key.second
                                   << " is documented but not a server route";
}

// The document states each operation's scope (x-required-scope) and security; both must be
// what the route table enforces, and every operation documents its errors.
TEST_F(OpenApi, ScopesSecurityAndErrorsMatchTheRouteTable) {
  auto ops = operations();
  for (auto& r : server_routes()) {
    auto it = ops.find({r.method, r.pattern});
    if (it == ops.end())
      continue;  // reported above
    auto& op = *it->second;
    auto what = r.method + " " + r.pattern;
    ASSERT_TRUE(op.HasMember("x-required-scope")) << what;
    EXPECT_STREQ(op["x-required-scope"].GetString(), auth::to_string(r.scope)) << what;
    ASSERT_TRUE(op.HasMember("responses")) << what;
    auto& responses = op["responses"];
    const bool open = r.scope == auth::scope::none;
    if (open) {
      ASSERT_TRUE(op.HasMember("security")) << what << ": open routes say `security: []`";
      EXPECT_TRUE(op["security"].IsArray() && op["security"].Empty()) << what;
    } else {
      EXPECT_FALSE(op.HasMember("security")) << what << ": uses the document's bearer default";
      for (auto* code : {"401", "403", "429"}) {
        EXPECT_TRUE(responses.HasMember(code)) << what << " does not document " << code;
      }
    }
    if (r.pattern.find("{id}") != std::string::npos) {
      EXPECT_TRUE(responses.HasMember("404")) << what << ": an unknown id is 404";
    }
  }
  ASSERT_TRUE(doc_.HasMember("security")) << "the document's default security is bearer";
}

} // namespace
