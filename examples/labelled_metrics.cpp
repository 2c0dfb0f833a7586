// SPDX-License-Identifier: MIT
// Labelled families: one metric name, one series per set of label values,
// with registry-wide constant labels and a cap on the number of series. The
// README's "Labelled families" block is condensed from this file.
#include <percore/histogram.hpp>
#include <percore/export/prometheus.hpp>
#include <percore/export/registry.hpp>

#include <cstdio>
#include <string>

int main() {
    // Every series of every exporter gets instance_role="edge".
    percore::Registry reg(percore::RegistryOptions{.const_labels = {{"instance_role", "edge"}}});
    auto requests = reg.counter_family("http_requests_total", "Requests served.", {"method", "code"});
    auto latency = reg.histogram_family("http_request_duration_seconds", "Time to serve a request.", {"method"});

    // Look a series up once and keep the handle: updates are then one per-CPU add.
    auto get_ok = requests.with({"GET", "200"});
    auto get_latency = latency.with({"GET"});
    for (int i = 0; i < 1000; ++i) {
        percore::ScopedTimer t(*get_latency);  // nanoseconds in, seconds out
        get_ok->inc();
    }
    // Values known only per request: with() finds an existing series under
    // the registry's shared lock, and creates a new one only once.
    for (const char* code : {"200", "404", "200"}) requests.with({"POST", code})->inc();

    // A label fed from outside (URL paths) is capped: past the limit with()
    // throws, and percore_series_refused_total counts the refusals.
    auto paths = reg.counter_family("http_path_requests_total", "Requests by path.", {"path"}, {.max_series = 2});
    int refused = 0;
    for (const char* path : {"/", "/login", "/x?session=42"}) {
        try {
            paths.with({path})->inc();
        } catch (const percore::MetricError& e) {
            std::printf("refused: %s\n", e.what());
            ++refused;
        }
    }

    const std::string text = percore::render(reg);
    std::printf("%s", text.c_str());
    bool ok = refused == 1;
    for (const char* line : {
             "http_requests_total{instance_role=\"edge\",method=\"POST\",code=\"200\"} 2\n",
             "http_request_duration_seconds_count{instance_role=\"edge\",method=\"GET\"} 1000\n",
             "percore_series_refused_total{instance_role=\"edge\",family=\"http_path_requests_total\"} 1\n",
         })
        ok = ok && text.find(line) != std::string::npos;
    return ok ? 0 : 1;
}
