// SPDX-License-Identifier: MIT
// A small HTTP/1.1 server for percore's endpoints (internal): GNU
// libmicrohttpd driven by one event-loop thread, a fixed map of paths to
// handlers, and limits that keep a few slow or idle clients from starving
// the others. PrometheusServer serves /metrics with it; other pages can be
// added as more routes of the same server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

struct MHD_Connection;

namespace percore::detail {

struct HttpRequest {
    std::string_view method;  // GET or HEAD (others are answered 405 before any handler runs)
    std::string_view path;    // without the query string
    MHD_Connection* connection;
    // The value of a request header, or empty.
    std::string_view header(const char* name) const noexcept;
};

struct HttpReply {
    unsigned status = 200;
    std::string content_type;
    std::string body;
};

using HttpHandler = std::function<HttpReply(const HttpRequest&)>;
// Exact paths; std::less<> so a lookup needs no std::string.
using HttpRoutes = std::map<std::string, HttpHandler, std::less<>>;

struct HttpServerOptions {
    std::string host;
    std::uint16_t port = 0;
    std::size_t max_connections = 512;
    std::chrono::milliseconds header_timeout{5000};
    std::chrono::milliseconds idle_timeout{10000};
    std::string owner = "percore::HttpServer";  // prefixes error messages
};

class HttpServer {
public:
    // Binds and listens before returning; throws std::runtime_error with
    // the reason (strerror text) when it cannot, std::invalid_argument on
    // bad options. Handlers run on the server thread, one at a time.
    HttpServer(HttpServerOptions opt, HttpRoutes routes);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    std::uint16_t port() const noexcept;
    // Closes every connection and joins the thread; idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace percore::detail
