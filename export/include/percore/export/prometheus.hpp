// percore/export/prometheus.hpp - Prometheus exposition of a Registry over HTTP.
//
// render() writes a Registry snapshot in the Prometheus text format 0.0.4 or
// in OpenMetrics 1.0; PrometheusServer serves it at /metrics from its own
// thread (cpp-httplib), choosing the format from the scraper's Accept header
// (Prometheus asks for OpenMetrics first). The server binds 127.0.0.1 unless
// told otherwise.
//
// Cost: a scrape takes the Registry's shared lock while it reads every
// series across shards (no effect on counter updates), then formats without
// any lock; about 0.3 us per series (see bench/export_bench.cpp). Memory is
// the reply being built, roughly 60 bytes per series.
//
//   percore::PrometheusServer prom(reg);            // 127.0.0.1:9464
//   percore::PrometheusServer any(reg, {.host = "0.0.0.0", .port = 0});
//   std::printf("scrape me at :%u\n", any.port());
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "percore/export/registry.hpp"

namespace percore {

enum class ExpositionFormat { text, openmetrics };

// Appends the snapshot to `out`. Counters must be registered with their
// `_total` suffix; OpenMetrics names the family without it.
void render(const Snapshot& snap, ExpositionFormat fmt, std::string& out);
std::string render(const Registry& reg, ExpositionFormat fmt = ExpositionFormat::text);

// The Content-Type header value for each format.
const char* content_type(ExpositionFormat fmt) noexcept;

// OpenMetrics when the Accept header lists application/openmetrics-text
// with a non-zero q, text otherwise.
ExpositionFormat negotiate(std::string_view accept_header) noexcept;

struct PrometheusOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9464;  // 0: any free port, see PrometheusServer::port()
    std::string path = "/metrics";
};

class PrometheusServer {
public:
    // Binds and starts serving; throws std::runtime_error when it cannot bind.
    explicit PrometheusServer(const Registry& reg, PrometheusOptions opt = {});
    ~PrometheusServer();  // stops and joins the server thread
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    std::uint16_t port() const noexcept;
    std::uint64_t scrapes() const noexcept;
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace percore
