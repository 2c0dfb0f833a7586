// SPDX-License-Identifier: MIT
// percore-demo: a simulated packet processor whose statistics all go
// through percore, with a live dashboard, exporters to attach to, an
// exactness check, the cost of its statistics measured against the shared
// atomics and locked map people write today, and the shared-versus-per-CPU
// scaling table.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/scaling.hpp"
#include "common/work.hpp"
#include "demo/dashboard.hpp"
#include "demo/stats.hpp"
#include "demo/traffic.hpp"
#include "demo/worker.hpp"
#include "percore/export/prometheus.hpp"
#include "percore/export/statsd.hpp"
#include "percore/export/telemetry.hpp"
#include "percore/shard.hpp"

namespace {

using namespace percore::demo;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }
bool signalled() { return g_signal.load(std::memory_order_relaxed) != 0; }

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
};

struct Options {
    int workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    bool pin = false;
    double duration = 10;
    int interval_ms = 500;
    TrafficConfig traffic;
    double work_cycles = 200;
    std::string stats = "percore";
    std::string flow_layout = "per_shard";
    double rate = 0;
    std::uint64_t timed_every = 32;
    std::uint32_t lookahead = 4;
    int flow_timeout_ms = 1000;
    std::optional<Endpoint> prometheus, statsd;
    bool json = false, compare = true, cost = true, hold = false;
    int cost_ms = 500, cost_reps = 3;
    std::uint64_t compare_ops = 10'000'000;
};

// "70,25,3,2": exactly n non-negative numbers.
template <std::size_t N>
std::string parse_numbers(const std::string& s, std::array<double, N>& out) {
    std::size_t pos = 0;
    for (std::size_t i = 0; i < N; ++i) {
        const std::size_t end = s.find(',', pos);
        if ((end == std::string::npos) != (i + 1 == N)) return "needs exactly " + std::to_string(N) + " comma-separated numbers";
        const std::string item = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        std::size_t used = 0;
        double v = 0;
        try {
            v = std::stod(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (item.empty() || used != item.size() || !(v >= 0) || !std::isfinite(v)) return "'" + item + "' is not a number >= 0";
        out[i] = v;
        pos = end + 1;
    }
    return {};
}

// "[ADDR:]PORT" (need_host: "HOST:PORT"). An IPv6 address goes in brackets.
std::string parse_endpoint(const std::string& s, bool need_host, std::uint16_t min_port, Endpoint& out) {
    const std::size_t colon = s.rfind(':');
    std::string host = colon == std::string::npos ? "" : s.substr(0, colon);
    const std::string port = colon == std::string::npos ? s : s.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (need_host && host.empty()) return "'" + s + "' is not HOST:PORT";
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port) > 65535 || std::stoul(port) < min_port)
        return "'" + port + "' is not a port (" + std::to_string(min_port) + "..65535)";
    if (!host.empty()) {
        unsigned char buf[16];
        const bool literal = inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
        const bool name = host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
                              std::string::npos &&
                          host.front() != '-' && host.front() != '.';
        if (!literal && !(need_host && name) && host != "localhost") return "'" + host + "' is not an address";
    }
    out.host = host.empty() || host == "localhost" ? "127.0.0.1" : host;
    out.port = static_cast<std::uint16_t>(std::stoul(port));
    return {};
}

// Returns 0 to go on, else the exit code (help: 0 printed; error: 2).
int parse(int argc, char** argv, Options& o, bool& go) {
    go = false;
    CLI::App app{"percore-demo: a simulated packet processor counting through percore, with a live dashboard"};
    std::string mix = "70,25,3,2", drops = "0.5,0.1,0.2", prometheus, statsd;
    app.add_option("-w,--workers", o.workers, "worker threads (default: online CPUs)")->check(CLI::Range(1, 4096));
    app.add_flag("--pin", o.pin, "pin worker w to CPU w mod online CPUs");
    app.add_option("-d,--duration", o.duration, "seconds of traffic; 0 runs until Ctrl-C or SIGTERM")
        ->capture_default_str()->check(CLI::Range(0.0, 1e7));
    app.add_option("--interval", o.interval_ms, "dashboard refresh, ms")->capture_default_str()->check(CLI::Range(20, 60000));
    app.add_option("--flows", o.traffic.flows, "flow population")->capture_default_str()->check(CLI::Range(1u, 1'000'000u));
    app.add_option("--zipf", o.traffic.zipf, "Zipf exponent of flow popularity")->capture_default_str()->check(CLI::Range(0.01, 10.0));
    app.add_option("--mix", mix, "protocol weights tcp,udp,icmp,other")->capture_default_str();
    app.add_option("--drops", drops, "percent of packets dropped by ACL, TTL, no route")->capture_default_str();
    app.add_option("--bad-checksum", o.traffic.bad_checksum_pct, "percent of packets failing the checksum")
        ->capture_default_str()->check(CLI::Range(0.0, 100.0));
    app.add_option("--seed", o.traffic.seed, "traffic seed")->capture_default_str();
    app.add_option("--work-cycles", o.work_cycles, "TSC cycles of domain logic per packet")
        ->capture_default_str()->check(CLI::Range(0.0, 1e7));
    app.add_option("--stats", o.stats, "statistics: percore, shared (std::atomic + mutex map) or none")
        ->capture_default_str()->check(CLI::IsMember({"percore", "shared", "none"}));
    app.add_option("--flow-layout", o.flow_layout, "percore FlowTable layout: per_shard or shared")
        ->capture_default_str()->check(CLI::IsMember({"per_shard", "shared"}));
    app.add_option("--rate", o.rate, "pace all workers together to this many packets/s (default: as fast as possible)")
        ->check(CLI::PositiveNumber);
    app.add_option("--time-every", o.timed_every, "time 1 in N packets with the TSC (a power of two)")
        ->capture_default_str()->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20));
    app.add_option("--prefetch", o.lookahead, "prefetch the flow table lines of the packet this far ahead (0: off)")
        ->capture_default_str()->check(CLI::Range(0u, 64u));
    app.add_option("--flow-timeout", o.flow_timeout_ms, "expire flows idle this long, ms")
        ->capture_default_str()->check(CLI::Range(10, 3'600'000));
    app.add_option("--prometheus", prometheus, "serve /metrics at [ADDR:]PORT (ADDR default 127.0.0.1; PORT 0: any)");
    app.add_option("--statsd", statsd, "push to a statsd daemon at HOST:PORT every second");
    app.add_flag("--json", o.json, "print a JSON summary as the last line");
    app.add_flag("!--no-compare", o.compare, "skip the shared-versus-per-CPU scaling table");
    app.add_flag("!--no-cost", o.cost, "skip the statistics-cost table (all modes side by side)");
    app.add_flag("--hold", o.hold, "after the summary, keep the exporters up until Ctrl-C or SIGTERM");
    app.add_option("--cost-ms", o.cost_ms, "length of each statistics-cost phase, ms")->capture_default_str()->check(CLI::Range(50, 60000));
    app.add_option("--cost-reps", o.cost_reps, "phases per mode (median reported)")->capture_default_str()->check(CLI::Range(1, 50));
    app.add_option("--compare-ops", o.compare_ops, "adds per point of the scaling table")
        ->capture_default_str()->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e), 0;  // --help
        std::fprintf(stderr, "percore-demo: %s (see --help)\n", e.what());
        return 2;
    }
    auto fail = [](const std::string& what) {
        std::fprintf(stderr, "percore-demo: %s (see --help)\n", what.c_str());
        return 2;
    };
    if (std::string e = parse_numbers(mix, o.traffic.mix); !e.empty()) return fail("--mix: " + e);
    if (o.traffic.mix[0] + o.traffic.mix[1] + o.traffic.mix[2] + o.traffic.mix[3] <= 0)
        return fail("--mix: the weights must not all be 0");
    if (std::string e = parse_numbers(drops, o.traffic.drop_pct); !e.empty()) return fail("--drops: " + e);
    if (o.traffic.drop_pct[0] + o.traffic.drop_pct[1] + o.traffic.drop_pct[2] + o.traffic.bad_checksum_pct > 100)
        return fail("--drops and --bad-checksum add up to more than 100 percent");
    if ((o.timed_every & (o.timed_every - 1)) != 0) return fail("--time-every: " + std::to_string(o.timed_every) + " is not a power of two");
    if (!prometheus.empty()) {
        Endpoint ep;
        if (std::string e = parse_endpoint(prometheus, false, 0, ep); !e.empty()) return fail("--prometheus: " + e);
        o.prometheus = ep;
    }
    if (!statsd.empty()) {
        Endpoint ep;
        if (std::string e = parse_endpoint(statsd, true, 1, ep); !e.empty()) return fail("--statsd: " + e);
        o.statsd = ep;
    }
    if (o.hold && o.prometheus == std::nullopt && o.statsd == std::nullopt)
        std::fprintf(stderr, "percore-demo: --hold keeps only the telemetry socket up (no --prometheus or --statsd)\n");
    go = true;
    return 0;
}

struct Machine {
    double tsc_ghz = 0;
    std::uint32_t work_iters = 0;
};

LoopConfig loop_config(const Options& o, const Machine& m, double rate) {
    LoopConfig c;
    c.work_iters = m.work_iters;
    c.sample_mask = o.timed_every - 1;
    c.lookahead = o.lookahead;
    c.ns_per_tsc = 1 / m.tsc_ghz;
    c.packets_per_tsc = rate > 0 ? rate / o.workers / (m.tsc_ghz * 1e9) : 0;
    return c;
}

// Every figure the statistics hold against what the workers counted
// themselves. Empty when all agree.
std::vector<std::string> check_exact(const View& v, const Tally& t, bool flows_and_latency) {
    std::vector<std::string> bad;
    auto expect = [&](const std::string& what, std::uint64_t got, std::uint64_t want) {
        if (got != want)
            bad.push_back(what + ": statistics say " + std::to_string(got) + ", the workers generated " + std::to_string(want));
    };
    std::uint64_t sum = 0;
    for (std::size_t p = 0; p < kProtos; ++p) {
        expect(std::string(kProtoNames[p]) + " packets", v.packets[p], t.proto_packets[p]);
        expect(std::string(kProtoNames[p]) + " bytes", v.bytes[p], t.proto_bytes[p]);
        sum += v.packets[p];
    }
    expect("packets over all protocols", sum, t.packets);
    for (std::size_t d = 0; d < kDropReasons; ++d)
        expect(std::string("drops ") + kDropNames[d], v.drops[d], t.fates[drop_acl + d]);
    expect("errors bad_checksum", v.bad_checksum, t.fates[bad_checksum]);
    if (flows_and_latency) {
        expect("per-flow packets (live + expired flows)", v.flow_totals[0], t.packets);
        expect("per-flow bytes (live + expired flows)", v.flow_totals[1], t.bytes);
        expect("timed packets in the latency histogram", v.latency.count, t.timed);
    }
    return bad;
}

struct PhaseResult {
    Tally tally;
    double seconds = 0;
    double cycles_per_packet = 0;  // median over workers
    std::vector<std::string> mismatches;
};

// Runs the workers on `stats` until stop is set; returns when they are joined.
template <class S>
PhaseResult run_workers(S& stats, std::vector<Trace>& traces, const LoopConfig& c, bool pin, std::atomic<bool>& stop,
                        std::vector<Progress>& progress, const std::function<void()>& control) {
    const int n = static_cast<int>(traces.size());
    std::vector<WorkerResult> res(static_cast<std::size_t>(n));
    std::vector<std::thread> ts;
    for (int w = 0; w < n; ++w)
        ts.emplace_back([&, w] {
            if (pin) percore::tools::pin_to(w % percore::tools::online_cpus());
            const auto i = static_cast<std::size_t>(w);
            res[i] = run_worker(stats, traces[i], c, stop, progress[i]);
        });
    control();
    stop.store(true, std::memory_order_relaxed);
    for (auto& t : ts) t.join();
    PhaseResult r;
    std::vector<double> cyc;
    for (const WorkerResult& x : res) {
        r.tally += x.tally;
        r.seconds = std::max(r.seconds, x.seconds);
        cyc.push_back(x.cycles_per_packet);
    }
    r.cycles_per_packet = percore::tools::median(cyc);
    return r;
}

const char* mode_title(const std::string& stats, const std::string& layout) {
    if (stats == "none") return "none";
    if (stats == "shared") return "shared (atomics, mutex map)";
    return layout == "shared" ? "percore, flows shared" : "percore, flows per_shard";
}

struct CostRow {
    std::string mode;
    std::vector<double> pps, cycles;
    bool exact = true;
};

// One phase of `cost_ms` in mode S, on fresh statistics, after a warm-up
// of the same length that creates the flows (a table's first sight of a
// flow is a one-time cost, not the per-packet one measured here; the live
// run shows creation under churn).
template <class S>
void cost_phase(const Options& o, const Machine& m, std::vector<Trace>& traces, std::size_t max_flows, CostRow& row) {
    S stats(max_flows);
    Tally all;
    PhaseResult r;
    for (int round = 0; round < 2 && !signalled(); ++round) {
        std::atomic<bool> stop{false};
        std::vector<Progress> progress(traces.size());
        r = run_workers(stats, traces, loop_config(o, m, 0), o.pin, stop, progress, [&] {
            const auto end = Clock::now() + std::chrono::milliseconds(o.cost_ms);
            while (Clock::now() < end && !signalled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        });
        all += r.tally;
    }
    if constexpr (!std::is_same_v<S, NoStats>) row.exact = row.exact && check_exact(stats.read(false), all, true).empty();
    row.pps.push_back(static_cast<double>(r.tally.packets) / r.seconds);
    row.cycles.push_back(r.cycles_per_packet);
}

json cost_table(const Options& o, const Machine& m, std::vector<Trace>& traces, std::size_t max_flows) {
    using percore::FlowLayout;
    std::vector<CostRow> rows{{"none", {}, {}, true},
                              {mode_title("shared", ""), {}, {}, true},
                              {mode_title("percore", "shared"), {}, {}, true},
                              {mode_title("percore", "per_shard"), {}, {}, true}};
    std::fprintf(stderr, "percore-demo: statistics cost, %d x %d phases of 2 x %d ms", o.cost_reps, 4, o.cost_ms);
    // Interleaved, so drift on a shared machine hits every mode alike.
    for (int rep = 0; rep < o.cost_reps && !signalled(); ++rep) {
        cost_phase<NoStats>(o, m, traces, max_flows, rows[0]);
        cost_phase<SharedStats>(o, m, traces, max_flows, rows[1]);
        cost_phase<PercoreStats<FlowLayout::shared>>(o, m, traces, max_flows, rows[2]);
        cost_phase<PercoreStats<FlowLayout::per_shard>>(o, m, traces, max_flows, rows[3]);
        std::fputc('.', stderr);
    }
    std::fputc('\n', stderr);
    json out = json::array();
    if (signalled() || rows[0].cycles.empty()) return out;
    const double base = percore::tools::median(rows[0].cycles);
    std::printf("\nstatistics cost: %d workers, %.0f-cycle work, medians of %d interleaved phases of %d ms after as long a warm-up\n", o.workers,
                o.work_cycles, static_cast<int>(rows[0].cycles.size()), o.cost_ms);
    std::printf("(cycles are TSC cycles per packet per worker; cost = cycles over the none mode; share = cost / cycles)\n");
    std::printf("%-30s %10s %11s %10s %8s %6s\n", "statistics", "Mpkt/s", "cycles/pkt", "cost/pkt", "share", "exact");
    for (const CostRow& r : rows) {
        const double c = percore::tools::median(r.cycles), pps = percore::tools::median(r.pps);
        const bool none = &r == &rows[0];
        json j = {{"mode", r.mode}, {"packets_per_s", pps}, {"cycles_per_packet", c}};
        if (none) {
            std::printf("%-30s %10.2f %11.1f %10s %8s %6s\n", r.mode.c_str(), pps / 1e6, c, "-", "-", "-");
        } else {
            std::printf("%-30s %10.2f %11.1f %10.1f %7.1f%% %6s\n", r.mode.c_str(), pps / 1e6, c, c - base,
                        100 * (c - base) / c, r.exact ? "yes" : "NO");
            j["cost_cycles"] = c - base;
            j["cost_share"] = (c - base) / c;
            j["exact"] = r.exact;
        }
        out.push_back(j);
    }
    const double shared = percore::tools::median(rows[1].cycles) - base;
    for (std::size_t i = 2; i < 4; ++i) {
        const double c = percore::tools::median(rows[i].cycles), cost = c - base;
        std::printf("%s: %.1f%% of a packet (target <= 10%%: %s), %.3f of the shared statistics' cost (target <= 0.2: %s)\n",
                    rows[i].mode.c_str(), 100 * cost / c, cost / c <= 0.10 ? "met" : "missed", cost / shared,
                    cost / shared <= 0.2 ? "met" : "missed");
    }
    return out;
}

json scaling_table(const Options& o) {
    std::printf("\nshared std::atomic versus percore::Counter, %llu adds per point, median of 3 runs:\n",
                static_cast<unsigned long long>(o.compare_ops));
    std::fflush(stdout);
    auto rows = percore::tools::compare_scaling({1, 2, 4, 8}, o.compare_ops, 3, true);
    const bool exact = percore::tools::print_scaling_table(rows);
    std::printf("per-CPU over shared at each thread count:");
    for (std::size_t i = 0; i + 1 < rows.size(); i += 2)
        std::printf("  %dT %.1fx", rows[i].threads, rows[i + 1].ops_per_sec / rows[i].ops_per_sec);
    std::printf("\n");
    json out = json::array();
    for (const auto& r : rows)
        out.push_back({{"impl", r.impl}, {"threads", r.threads}, {"ops_per_s", r.ops_per_sec}, {"exact", r.counted == r.expected}});
    if (!exact) std::fprintf(stderr, "percore-demo: a scaling-table total did not match what was added\n");
    return out;
}

json latency_json(const LatencyFigures& l) {
    return {{"count", l.count}, {"p50", l.p50}, {"p99", l.p99}, {"p999", l.p999}, {"max", l.max}};
}

template <class S>
int live(const Options& o, const Machine& m, std::vector<Trace>& traces, std::size_t max_flows, json& summary) {
    S stats(max_flows);
    constexpr bool kStats = !std::is_same_v<S, NoStats>;
    constexpr bool kPercore = !std::is_same_v<S, NoStats> && !std::is_same_v<S, SharedStats>;

    percore::Registry reg;
    if constexpr (kPercore) stats.register_metrics(reg);
    std::unique_ptr<percore::TelemetryServer> telemetry;
    std::unique_ptr<percore::PrometheusServer> prom;
    std::unique_ptr<percore::StatsdReporter> statsd;
    try {
        telemetry = std::make_unique<percore::TelemetryServer>(reg);
        std::fprintf(stderr, "percore-demo: telemetry socket %s (attach: percore-top --pid %d)\n",
                     telemetry->path().c_str(), static_cast<int>(getpid()));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "percore-demo: no telemetry socket: %s\n", e.what());
    }
    try {
        if (o.prometheus) {
            prom = std::make_unique<percore::PrometheusServer>(
                reg, percore::PrometheusOptions{.host = o.prometheus->host, .port = o.prometheus->port});
            std::fprintf(stderr, "percore-demo: Prometheus metrics at http://%s:%u/metrics (live dashboard: http://%s:%u/)\n",
                         o.prometheus->host.c_str(), prom->port(), o.prometheus->host.c_str(), prom->port());
        }
        if (o.statsd) {
            percore::StatsdOptions so;
            so.host = o.statsd->host;
            so.port = o.statsd->port;
            // Not printed over the dashboard: stats() counts the errors and
            // keeps the last one, reported after the run.
            so.on_error = [](std::string_view) {};
            statsd = std::make_unique<percore::StatsdReporter>(reg, so);
            std::fprintf(stderr, "percore-demo: pushing to statsd at %s:%u every second\n", o.statsd->host.c_str(),
                         o.statsd->port);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "percore-demo: %s\n", e.what());
        return 1;
    }
    if (!kPercore && (o.prometheus || o.statsd))
        std::fprintf(stderr, "percore-demo: the exporters carry the demo's metrics only with --stats percore\n");

    std::atomic<bool> stop{false};
    std::vector<Progress> progress(traces.size());
    Dashboard dash(isatty(STDOUT_FILENO) == 1);
    Frame f;
    f.title = percore::demo::printf_string("percore-demo  %d workers  %s (%zu shards)  %.0f cycles of work per packet",
                                           o.workers, percore::backend_name(), percore::max_shards(), o.work_cycles);
    f.subtitle = std::string("statistics: ") + mode_title(o.stats, o.flow_layout);
    if (o.rate > 0) f.subtitle += "  paced to " + si(o.rate, "pkt/s");
    f.duration = o.duration;
    f.timed_every = o.timed_every;
    f.stats = kStats;
    f.worker_packets.assign(traces.size(), 0);
    const auto t0 = Clock::now();
    auto last = t0, last_expire = t0;
    auto read_workers = [&] {
        std::vector<std::uint64_t> v;
        for (const Progress& p : progress) v.push_back(p.packets.load(std::memory_order_relaxed));
        return v;
    };
    PhaseResult r = run_workers(stats, traces, loop_config(o, m, o.rate), o.pin, stop, progress, [&] {
        const auto step = std::chrono::milliseconds(o.interval_ms);
        const auto end_at = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
        auto next = o.duration > 0 ? std::min(t0 + step, end_at) : t0 + step;
        for (;;) {
            while (Clock::now() < next && !signalled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
            const auto now = Clock::now();
            const double el = std::chrono::duration<double>(now - t0).count();
            const bool end = signalled() || (o.duration > 0 && el >= o.duration);
            if (end) return;
            if (now - last_expire >= std::chrono::milliseconds(o.flow_timeout_ms)) {
                stats.expire();
                last_expire = now;
            }
            f.before = std::move(f.now);
            f.now = stats.read(dash.tty());
            f.worker_packets_before = std::move(f.worker_packets);
            f.worker_packets = read_workers();
            f.elapsed = el;
            f.interval = std::chrono::duration<double>(now - last).count();
            last = now;
            dash.show(f);
            next += step;
            if (o.duration > 0) next = std::min(next, end_at);
        }
    });
    // Final frame, with everything the workers did.
    const auto now = Clock::now();
    f.before = std::move(f.now);
    f.now = stats.read(true);
    f.worker_packets_before = std::move(f.worker_packets);
    f.worker_packets = read_workers();
    f.elapsed = std::chrono::duration<double>(now - t0).count();
    f.interval = std::chrono::duration<double>(now - last).count();
    dash.show(f);  // the last frame, or the last compact line
    dash.finish();

    const View& v = f.now;
    const double pps = static_cast<double>(r.tally.packets) / r.seconds;
    std::vector<std::string> bad;
    if constexpr (kStats) bad = check_exact(v, r.tally, true);
    std::printf("\nsummary: %s packets, %s in %.2f s by %d workers: %s (%s)\n", grouped(r.tally.packets).c_str(),
                bytes_text(r.tally.bytes).c_str(), r.seconds, o.workers, si(pps, "pkt/s").c_str(),
                si(static_cast<double>(r.tally.bytes) * 8 / r.seconds, "bit/s").c_str());
    if (o.rate > 0)
        std::printf("pace: target %s, achieved %s (%.1f%%)\n", si(o.rate, "pkt/s").c_str(), si(pps, "pkt/s").c_str(),
                    100 * pps / o.rate);
    std::printf("cycles per packet (TSC, per worker, median of workers): %.1f, of which %.0f domain logic\n",
                r.cycles_per_packet, o.work_cycles);
    if constexpr (kStats) {
        std::printf("statistics updates: %s/s (protocol pair, flow pair, size max; timing 1 in %llu)\n",
                    si(pps * 5, "").c_str(), static_cast<unsigned long long>(o.timed_every));
        if (bad.empty())
            std::printf("exact: every protocol, drop and error count, the per-flow totals (%s live flows + %s expired) "
                        "and the %s timed packets match what the workers generated\n",
                        grouped(v.active_flows).c_str(), grouped(v.expired).c_str(), grouped(r.tally.timed).c_str());
        for (const std::string& b : bad) std::fprintf(stderr, "percore-demo: NOT EXACT: %s\n", b.c_str());
    }
    if (statsd) {
        statsd->stop();
        const auto st = statsd->stats();
        std::printf("statsd: %llu pushes, %llu datagrams, %llu send errors%s%s\n",
                    static_cast<unsigned long long>(statsd->pushes()), static_cast<unsigned long long>(st.datagrams),
                    static_cast<unsigned long long>(st.send_errors + st.resolve_errors),
                    st.last_error.empty() ? "" : ", last: ", st.last_error.c_str());
    }
    std::fflush(stdout);

    summary["workers"] = o.workers;
    summary["backend"] = percore::backend_name();
    summary["stats"] = o.stats;
    summary["flow_layout"] = o.flow_layout;
    summary["work_cycles"] = o.work_cycles;
    summary["duration_s"] = r.seconds;
    summary["packets"] = r.tally.packets;
    summary["bytes"] = r.tally.bytes;
    summary["rate"] = pps;
    if (o.rate > 0) summary["target_rate"] = o.rate;
    summary["cycles_per_packet"] = r.cycles_per_packet;
    summary["exact"] = bad.empty();
    if constexpr (kStats) {
        json protos = json::object(), drops = json::object();
        for (std::size_t p = 0; p < kProtos; ++p) protos[kProtoNames[p]] = {{"packets", v.packets[p]}, {"bytes", v.bytes[p]}};
        for (std::size_t d = 0; d < kDropReasons; ++d) drops[kDropNames[d]] = v.drops[d];
        summary["protocols"] = protos;
        summary["drops"] = drops;
        summary["errors"] = {{"bad_checksum", v.bad_checksum}};
        summary["latency_ns"] = latency_json(v.latency);
        summary["flows"] = {{"active", v.active_flows}, {"expired", v.expired},
                            {"totals", {{"packets", v.flow_totals[0]}, {"bytes", v.flow_totals[1]}}}};
        json top = json::array();
        for (const TopFlow& t : v.top) top.push_back({{"flow", format_key(t.key)}, {"packets", t.packets}, {"bytes", t.bytes}});
        summary["top_flows"] = top;
        summary["max_packet_bytes"] = v.max_size;
    }
    if constexpr (kPercore) {
        json buckets = json::array();
        stats.latency_snapshot().for_each_bucket(
            [&](const percore::HistogramBucket& b) { buckets.push_back({b.lower, b.upper, b.count}); });
        summary["latency_ns"]["buckets"] = buckets;
    }
    if (!bad.empty()) return 1;

    if (o.cost && !signalled()) summary["cost"] = cost_table(o, m, traces, max_flows);
    if (o.compare && !signalled()) summary["scaling"] = scaling_table(o);
    if (o.json) std::printf("%s\n", summary.dump().c_str());
    std::fflush(stdout);
    if (o.hold) {
        std::fprintf(stderr, "percore-demo: holding; the exporters stay up until Ctrl-C or SIGTERM\n");
        while (!signalled()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool go = false;
    if (const int rc = parse(argc, argv, o, go); !go) return rc;

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Machine m;
    m.tsc_ghz = percore::tools::tsc_ghz(100);
    m.work_iters = percore::tools::calibrate(o.work_cycles);
    std::vector<Trace> traces;
    for (int w = 0; w < o.workers; ++w) traces.emplace_back(o.traffic, w, o.workers);
    const std::size_t max_flows = traces[0].max_id();

    json summary;
    using percore::FlowLayout;
    if (o.stats == "none") return live<NoStats>(o, m, traces, max_flows, summary);
    if (o.stats == "shared") return live<SharedStats>(o, m, traces, max_flows, summary);
    if (o.flow_layout == "shared") return live<PercoreStats<FlowLayout::shared>>(o, m, traces, max_flows, summary);
    return live<PercoreStats<FlowLayout::per_shard>>(o, m, traces, max_flows, summary);
}
