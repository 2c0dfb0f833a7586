// SPDX-License-Identifier: MIT
// percore/export/prometheus.hpp - Prometheus exposition of a Registry over HTTP.
//
// render() writes a Registry snapshot in the Prometheus text format 0.0.4 or
// in OpenMetrics 1.0; PrometheusServer serves it at /metrics from its own
// thread (GNU libmicrohttpd, event-driven), choosing the format from the
// scraper's Accept header (Prometheus asks for OpenMetrics first), and a
// live dashboard of the same Registry at / (PrometheusOptions::dashboard). The
// server binds 127.0.0.1 unless told otherwise. Idle and slow clients cost
// it a descriptor each, not a thread: a scrape is answered while hundreds
// of them are connected, and the limits below bound how long they stay.
//
// Cost: a scrape takes the Registry's shared lock while it reads every
// series across shards (no effect on counter updates), then formats without
// any lock. Measured with bench/export_bench.cpp (10,000 counters with two
// labels, 2-vCPU VM, Release): about 0.1 us per series, 0.07 of it reading
// (docs/export.md, "Scrape cost", has the command). Memory is the snapshot
// plus the reply being built; the reply was 67 bytes per series there.
// An open dashboard page adds one /api/metrics reply a second, about eight
// times the CPU of a text scrape (docs/export.md, "Live dashboard").
//
//   percore::PrometheusServer prom(reg);            // 127.0.0.1:9464
//   percore::PrometheusServer any(reg, {.host = "0.0.0.0", .port = 0});
//   std::printf("scrape me at :%u\n", any.port());
#pragma once

#include "percore/detail/cxx20.hpp"

#include <chrono>
#include <cstddef>
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
    // Where the exposition is served; must start with '/'.
    std::string path = "/metrics";
    // Also serve the live dashboard: the page at / and /dashboard (one
    // self-contained HTML file, no external resources) and the JSON it polls
    // once a second at /api/metrics (every series as the telemetry socket's
    // /percore/get reports it, with per-shard rows). Other paths get 404.
    bool dashboard = true;
    // Open connections at most; one more is accepted and closed at once (the
    // client reads end-of-stream), never left waiting. Keep it below the
    // process's descriptor limit (ulimit -n).
    std::size_t max_connections = 512;
    // A new connection's request must be complete (headers, and a body if
    // any) within this long, however steadily its bytes trickle in; else it
    // is closed.
    std::chrono::milliseconds header_timeout{5000};
    // A kept-alive connection's next request must arrive within this long of
    // the previous reply; a connection with no traffic at all for this long
    // (rounded up to whole seconds) is closed too, e.g. one not reading.
    std::chrono::milliseconds idle_timeout{10000};
};

class PrometheusServer {
public:
    // Binds and starts serving. Throws std::invalid_argument for a path
    // without a leading '/' or a zero limit or timeout, and std::system_error
    // (a std::runtime_error) saying why when it cannot bind, e.g.
    // "percore::PrometheusServer: cannot bind 127.0.0.1:9464: Address already in use".
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
