// SPDX-License-Identifier: MIT
// A process with known metric values for the integration tests: serves
// Prometheus and the telemetry socket, pushes to statsd at shutdown, and
// runs until its standard input closes (or --seconds pass).
#include <CLI/CLI.hpp>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <limits>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "percore/export/prometheus.hpp"
#include "percore/export/statsd.hpp"
#include "percore/export/telemetry.hpp"
#include "percore/export/tuner.hpp"

int main(int argc, char** argv) {
    CLI::App app{"export_fixture: known metrics for the exporter integration tests"};
    int prom_port = -1, statsd_port = -1, burst = 0, seconds = 120;
    std::string prefix, statsd_prefix = "fixture";
    bool tags = false;
    std::size_t pace = percore::StatsdOptions{}.burst;
    long pause_us = percore::StatsdOptions{}.burst_pause.count();
    app.add_option("--prom-port", prom_port, "serve Prometheus on 127.0.0.1:PORT (0: any)");
    app.add_option("--telemetry-prefix", prefix, "serve the telemetry socket under this prefix");
    app.add_option("--statsd-port", statsd_port, "push to statsd on 127.0.0.1:PORT at exit");
    app.add_option("--statsd-prefix", statsd_prefix);
    app.add_flag("--tags", tags, "DogStatsD tags instead of name segments");
    app.add_option("--burst", burst, "extra counters fixture_burst_total{id=i} = i + 1");
    app.add_option("--pace", pace, "statsd: datagrams per burst");
    app.add_option("--pause-us", pause_us, "statsd: pause between bursts");
    app.add_option("--seconds", seconds, "exit after this long at most");
    bool big = false;
    app.add_flag("--big", big, "add a counter near 2^64 and one with a very long label set (percore-top checks)");
    int live = 0;
    app.add_option("--live", live, "also count ~N events/s into fixture_live_* metrics from a thread (dashboard checks)");
    bool ace = false;
    app.add_flag("--ace", ace, "run a write-buffer workload tuned by the process-wide tuner (PERCORE_ACE_ENABLED=1)");
    CLI11_PARSE(app, argc, argv);

    percore::Registry reg;
    reg.counter("fixture_requests_total", "Requests by method.", {{"method", "get"}})->add(1234);
    reg.counter("fixture_requests_total", "Requests by method.", {{"method", "post"}})->add(56);
    reg.gauge("fixture_queue_depth", "Items waiting.")->set(-17);
    reg.add_gauge("fixture_temperature_celsius", "A callback gauge.", {}, [] { return 21.5; });
    auto h = reg.histogram("fixture_request_duration_seconds", "Request time.", {}, percore::HistogramLayout(),
                           {.records = percore::Unit::nanoseconds, .exports = percore::Unit::seconds});
    for (int i = 0; i < 90; ++i) h->record(std::uint64_t{2000});
    for (int i = 0; i < 10; ++i) h->record(std::uint64_t{300000});
    if (big) {
        reg.counter("fixture_big_total", "Near 2^64: exact only if never a double.")->add(18446744073709551611ull);
        reg.counter("fixture_long_total", "A long label set.",
                    {{"path", "/api/v1/tenants/acme-corporation/projects/observability/dashboards/latency"},
                     {"code", "200"}})
            ->add(7);
    }
    for (int i = 0; i < burst; ++i)
        reg.counter("fixture_burst_total", "Burst.", {{"id", std::to_string(i)}})->add(static_cast<std::uint64_t>(i + 1));

    std::jthread live_thread;
    if (live > 0) {
        auto ev = reg.counter_family("fixture_live_events_total", "Events by kind.", {"kind"});
        auto a = ev.with({"a"}), b = ev.with({"b"});
        auto lat = reg.histogram("fixture_live_duration_seconds", "Event time.");
        auto depth = reg.gauge("fixture_live_depth", "A gauge that moves.");
        // Not a number every other second: the page must draw around it.
        reg.add_gauge("fixture_live_ratio", "Sometimes NaN.", {}, [] {
            return std::time(nullptr) % 2 ? std::numeric_limits<double>::quiet_NaN() : 0.5;
        });
        live_thread = std::jthread([=](std::stop_token st) {
            const auto start = std::chrono::steady_clock::now();
            std::uint64_t done = 0;
            for (std::uint64_t tick = 1; !st.stop_requested(); ++tick) {
                // Paced against the clock so the rate stays N/s on a loaded machine.
                const std::uint64_t due = static_cast<std::uint64_t>(live) * tick / 100;
                for (; done < due; ++done) {
                    (done % 4 ? a : b)->inc();
                    lat->record(std::uint64_t{1000 + (done * 7919) % 50000});
                }
                depth->set(static_cast<std::int64_t>(tick % 200));
                std::this_thread::sleep_until(start + std::chrono::milliseconds(10 * tick));
            }
        });
    }
    // --ace: two threads add through a write buffer; percore::ace(), the
    // process-wide tuner, tunes it and is published to both exporters.
    percore::Spinlock wb_lock;
    std::uint64_t wb_total = 0;
    percore::WriteBuffer wb(wb_lock, {16, 12, 1});
    auto ops = reg.counter("fixture_ace_ops_total", "Adds scheduled into the tuned write buffer.");
    std::vector<std::jthread> ace_threads;
    percore::Tuner::Handle ace_handle;
    if (ace) {
        percore::Tuner* t = percore::ace();
        if (t == nullptr) {
            std::fprintf(stderr, "export_fixture: --ace needs PERCORE_ACE_ENABLED=1\n");
            return 2;
        }
        t->set_operations([ops] { return ops->value(); });
        ace_handle = t->tune(wb);
        publish(*t, reg);
        for (int w = 0; w < 2; ++w)
            ace_threads.emplace_back([&wb, &wb_total, ops](std::stop_token st) {
                while (!st.stop_requested()) {
                    for (int i = 0; i < 32; ++i) wb.schedule_add(&wb_total, 1);
                    wb.hint_flush();
                    ops->add(32);
                }
            });
    }
    std::unique_ptr<percore::PrometheusServer> prom;
    std::unique_ptr<percore::TelemetryServer> tel;
    std::unique_ptr<percore::StatsdReporter> statsd;
    if (prom_port >= 0) prom = std::make_unique<percore::PrometheusServer>(reg, percore::PrometheusOptions{
                                   .port = static_cast<std::uint16_t>(prom_port)});
    if (!prefix.empty()) {
        percore::TelemetryOptions o;
        o.prefix = prefix;
        tel = std::make_unique<percore::TelemetryServer>(reg, o);
        if (ace) publish(*percore::ace(), *tel);
        tel->add_command("/fixture/echo", "Returns its parameter as a string.", [](std::string_view p) {
            std::string out = "\"";
            for (char c : p) {
                if (c == '"' || c == '\\') out += '\\';
                if (static_cast<unsigned char>(c) >= 0x20) out += c;
            }
            return std::optional<std::string>(out + "\"");
        });
    }
    if (statsd_port >= 0) {
        percore::StatsdOptions o;
        o.port = static_cast<std::uint16_t>(statsd_port);
        o.prefix = statsd_prefix;
        o.tags = tags;
        o.burst = pace;
        o.burst_pause = std::chrono::microseconds(pause_us);
        o.interval = std::chrono::hours(1);  // the test relies on the shutdown push
        statsd = std::make_unique<percore::StatsdReporter>(reg, o);
    }
    std::printf("ready pid=%d prom_port=%d socket=%s\n", getpid(), prom ? prom->port() : -1,
                tel ? tel->path().c_str() : "-");
    std::fflush(stdout);

    pollfd p{0, POLLIN, 0};
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (poll(&p, 1, 200) > 0) {
            char b[256];
            if (read(0, b, sizeof b) <= 0) break;  // stdin closed: time to go
        }
    }
    if (ace) {
        ace_threads.clear();  // joins
        ace_handle.reset();   // no more knob changes
        wb.flush_all();
        std::lock_guard g(wb_lock);
        std::printf("ace exact=%s total=%llu ops=%llu\n", wb_total == ops->value() ? "yes" : "no",
                    static_cast<unsigned long long>(wb_total), static_cast<unsigned long long>(ops->value()));
    }
    if (statsd) {
        statsd->stop();
        const auto st = statsd->stats();
        std::printf("statsd lines=%llu datagrams=%llu errors=%llu oversize=%llu\n",
                    static_cast<unsigned long long>(st.lines), static_cast<unsigned long long>(st.datagrams),
                    static_cast<unsigned long long>(st.send_errors + st.resolve_errors),
                    static_cast<unsigned long long>(st.oversize_lines));
    }
    return 0;
}
