// SPDX-License-Identifier: MIT
// A process exposing its metrics three ways at once: Prometheus scraping on
// 127.0.0.1 (any free port here), statsd pushes every second, and the
// telemetry socket that percore-top and dpdk-telemetry.py read.
#include <percore/histogram.hpp>
#include <percore/export/prometheus.hpp>
#include <percore/export/registry.hpp>
#include <percore/export/statsd.hpp>
#include <percore/export/telemetry.hpp>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

int main() {
    percore::Registry reg;
    auto requests = reg.counter("http_requests_total", "Requests served.", {{"method", "get"}});
    auto inflight = reg.gauge("http_requests_in_flight", "Requests being served.");
    percore::HistogramExport in_seconds;
    in_seconds.scale = 1e-9;  // records ns, exports seconds
    auto latency = reg.histogram("http_request_duration_seconds", "Time to serve a request.", {},
                                 percore::HistogramLayout(), in_seconds);

    percore::PrometheusServer prom(reg, {.port = 0});
    percore::StatsdReporter statsd(reg, {.port = 8125, .prefix = "example", .on_error = [](std::string_view) {}});
    const std::string sock = "/tmp/percore-example-" + std::to_string(::getpid()) + ".sock";
    percore::TelemetryOptions topt;
    topt.path = sock;
    percore::TelemetryServer telemetry(reg, topt);

    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w)
        workers.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                inflight->inc();
                percore::ScopedTimer t(*latency);
                requests->inc();
                inflight->dec();
            }
        });
    for (auto& t : workers) t.join();

    const std::string text = percore::render(reg, percore::ExpositionFormat::text);
    std::printf("serving http://127.0.0.1:%u/metrics and %s\n%s", prom.port(), sock.c_str(), text.c_str());
    return text.find("http_requests_total{method=\"get\"} 40000") != std::string::npos ? 0 : 1;
}
