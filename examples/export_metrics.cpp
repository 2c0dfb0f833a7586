// SPDX-License-Identifier: MIT
// A process exposing its metrics three ways at once: Prometheus scraping on
// 127.0.0.1 (any free port here), statsd pushes every second, and the
// telemetry socket that percore-top and dpdk-telemetry.py read.
//
// Its test checks what a scraper would see: the request count, and that a
// request timed with ScopedTimer (nanoseconds) is exported in seconds.
#include <percore/histogram.hpp>
#include <percore/export/prometheus.hpp>
#include <percore/export/registry.hpp>
#include <percore/export/statsd.hpp>
#include <percore/export/telemetry.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

namespace {

// The value of the first sample line starting with `prefix`, or -1.
double sample(const std::string& text, const std::string& prefix) {
    const auto at = text.find("\n" + prefix);
    return at == std::string::npos ? -1 : std::strtod(text.c_str() + at + 1 + prefix.size(), nullptr);
}

}  // namespace

int main() {
    percore::Registry reg;
    auto requests = reg.counter("http_requests_total", "Requests served.", {{"method", "get"}});
    auto inflight = reg.gauge("http_requests_in_flight", "Requests being served.");
    // A name ending in _seconds: records nanoseconds (what ScopedTimer gives), exports seconds.
    auto latency = reg.histogram("http_request_duration_seconds", "Time to serve a request.");

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
                requests->inc();
                inflight->dec();
            }
        });
    for (auto& t : workers) t.join();
    {
        percore::ScopedTimer t(*latency);  // one slow request: about 5 ms
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    const std::string text = percore::render(reg, percore::ExpositionFormat::text);
    std::printf("serving http://127.0.0.1:%u/metrics and %s\n%s", prom.port(), sock.c_str(), text.c_str());
    const double sum = sample(text, "http_request_duration_seconds_sum ");
    // A sleep lasts at least as long as asked; the upper bound only catches
    // a unit error (nanoseconds would read 5000000), never a slow machine.
    const bool seconds = sum >= 0.004 && sum < 0.5 && sample(text, "http_request_duration_seconds_count ") == 1;
    if (!seconds) std::fprintf(stderr, "http_request_duration_seconds_sum is %g, expected about 0.005\n", sum);
    return seconds && text.find("http_requests_total{method=\"get\"} 40000") != std::string::npos ? 0 : 1;
}
