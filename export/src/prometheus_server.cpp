// SPDX-License-Identifier: MIT
// PrometheusServer: the exposition (prometheus.cpp) and the live dashboard
// (dashboard.cpp) served over HTTP by the internal HttpServer
// (http_server.cpp), which owns the thread, the connection limit and the
// deadlines.
#include <atomic>
#include <stdexcept>

#include "dashboard.hpp"
#include "http_server.hpp"
#include "percore/export/prometheus.hpp"

namespace percore {

struct PrometheusServer::Impl {
    const Registry& reg;
    // A statistic read by other threads; it orders nothing else, so relaxed.
    std::atomic<std::uint64_t> scrapes{0};
    std::unique_ptr<detail::HttpServer> http;  // last: stopped before the rest goes
    explicit Impl(const Registry& r) : reg(r) {}
};

PrometheusServer::PrometheusServer(const Registry& reg, PrometheusOptions opt) : impl_(std::make_unique<Impl>(reg)) {
    if (!opt.path.starts_with('/'))
        throw std::invalid_argument("percore::PrometheusServer: path \"" + opt.path +
                                    "\" must start with '/' (e.g. \"/metrics\")");
    Impl* im = impl_.get();
    detail::HttpRoutes routes;
    routes.emplace(opt.path, [im](const detail::HttpRequest& req) {
        const ExpositionFormat fmt = negotiate(req.header("Accept"));
        detail::HttpReply reply{200, content_type(fmt), render(im->reg, fmt)};
        im->scrapes.fetch_add(1, std::memory_order_relaxed);
        return reply;
    });
    if (opt.dashboard) {
        // emplace: a metrics path of "/" keeps "/" for the exposition.
        auto page = [](const detail::HttpRequest&) {
            return detail::HttpReply{200, "text/html; charset=utf-8", detail::dashboard_html};
        };
        routes.emplace("/", page);
        routes.emplace("/dashboard", page);
        routes.emplace("/api/metrics", [im](const detail::HttpRequest&) {
            return detail::HttpReply{200, "application/json", detail::dashboard_json(im->reg)};
        });
    }
    im->http = std::make_unique<detail::HttpServer>(
        detail::HttpServerOptions{.host = std::move(opt.host),
                                  .port = opt.port,
                                  .max_connections = opt.max_connections,
                                  .header_timeout = opt.header_timeout,
                                  .idle_timeout = opt.idle_timeout,
                                  .owner = "percore::PrometheusServer"},
        std::move(routes));
}

PrometheusServer::~PrometheusServer() { stop(); }

void PrometheusServer::stop() {
    if (impl_ && impl_->http) impl_->http->stop();
}

std::uint16_t PrometheusServer::port() const noexcept { return impl_->http->port(); }
std::uint64_t PrometheusServer::scrapes() const noexcept { return impl_->scrapes.load(std::memory_order_relaxed); }

}  // namespace percore
