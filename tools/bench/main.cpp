// SPDX-License-Identifier: MIT
// percore-bench: what each way of counting costs on this machine.
//
//   percore-bench ep        the DPDK "Statistics" chapter's benchmark: every
//                           statistics pattern at 1..N workers, cycles per
//                           counter update against
//                           a run without statistics, lost updates, reader
//                           snapshot cost, propagation delay; the published
//                           figures printed beside ours; TBB peers.
//   percore-bench scaling   shared atomic versus percore::Counter, ops/s and
//                           scaling factor at 1, 2, 4, 8 threads, exact totals.
//   percore-bench ace       the adaptive tuner against every fixed write
//                           buffer setting on bursty multi-flow traffic:
//                           throughput over time, the arm chosen, convergence.
// Each prints tables, writes CSV and draws an SVG chart.
#include <CLI/CLI.hpp>

#include <filesystem>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "common/clock.hpp"
#include "bench/ace.hpp"
#include "bench/ep.hpp"
#include "bench/svg.hpp"
#include "common/scaling.hpp"
#include "percore/shard.hpp"

namespace {

using namespace percore::bench;

// The published table of the "Statistics" chapter of the DPDK Programmer's
// Guide (Mattias Roennblom, Ericsson, 2022, CC-BY-4.0), "Performance
// Comparison": core cycles per counter update at 4 and 20 Cascade Lake Xeon workers
// (2.3 GHz, turbo off) and 4 Raspberry Pi 4 (A72) workers.
struct Published {
    const char* pattern;
    double xeon4, xeon20, a72_4;
};
const Published kPublished[] = {
    {"shared no-sync", 27, 273, 26},  {"shared atomic", 56, 626, 85},    {"shared spinlock", 436, 8236, 36},
    {"shared buffered", 18, 18, 24},  {"per-core", 5, 4, 4},              {"per-core spinlock", 7, 7, 4},
    {"per-core seqcount", 4, 4, 8},
};
const Published* published(const std::string& p) {
    for (const auto& x : kPublished)
        if (p == x.pattern) return &x;
    return nullptr;
}

std::string fmt(double v, const char* f = "%.2f") {
    if (!std::isfinite(v)) return "-";
    char b[32];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// Where a result file goes: under the output directory (created on first
// use) unless the name is absolute; "" means no file.
std::string out_dir = "percore-bench-results";
std::string out_path(const std::string& name) {
    if (name.empty() || name.front() == '/') return name;
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
        std::fprintf(stderr, "percore-bench: cannot create %s: %s\n", out_dir.c_str(), ec.message().c_str());
        return "";
    }
    return (std::filesystem::path(out_dir) / name).string();
}

int run_ep_cmd(EpConfig c, bool oversubscribe, const std::string& csv_name, const std::string& svg_name) {
    if (c.wb.soft_threshold > c.wb.capacity) {
        std::fprintf(stderr, "percore-bench: --wb-soft (%u) must not exceed --wb-capacity (%u)\n", c.wb.soft_threshold,
                     c.wb.capacity);
        return 2;
    }
    const std::string csv = out_path(csv_name), svg = out_path(svg_name);
    const int cpus = online_cpus();
    if (c.workers.empty())
        for (int w = 1; w <= cpus; ++w) c.workers.push_back(w);
    if (oversubscribe) c.workers.push_back(2 * cpus);
    const double ghz = tsc_ghz();
    const double ratio = core_per_tsc();
    const std::uint32_t iters = calibrate(c.work_cycles);
    std::printf("percore-bench ep: %d CPUs online, shard backend %s, %zu shards\n", cpus, percore::backend_name(),
                percore::max_shards());
    std::printf("cycles are TSC cycles: TSC %.3f GHz; core clock estimated %.2f GHz (%.2f core cycles per TSC cycle)\n",
                ghz, ghz * ratio, ratio);
    std::printf("per packet: %.0f TSC cycles of domain logic (%u multiply-adds), 2 global + 2 flow counters, %zu flows,\n"
                "flow-to-core affinity, 1 packet in %llu to another worker's flow; %llu packets/worker/phase,\n"
                "%d repetitions (with/without statistics alternated), medians; write buffer capacity %u, soft %u,\n"
                "hint_flush every %d packets x period %u\n\n",
                c.work_cycles, iters, kFlows, static_cast<unsigned long long>(c.migrate_every),
                static_cast<unsigned long long>(c.packets), c.reps, c.wb.capacity, c.wb.soft_threshold, c.batch,
                c.wb.hint_period);

    const auto rows = run_ep(c, iters, ghz);

    std::printf("\nOverhead per counter update (TSC cycles; median of %d, [min .. max]); reader figures from a\n"
                "concurrent reader thread (snapshot = all 2050 counters; delay = add until a reader sees it)\n\n",
                c.reps);
    std::printf("%-18s %3s %8s %18s %9s %8s %6s %11s %10s %10s %8s\n", "pattern", "W", "cyc/upd", "spread", "cyc/pkt",
                "lost %", "exact", "snap cyc", "delay ns", "p90 ns", "retries");
    std::printf("%s\n", std::string(120, '-').c_str());
    std::vector<const EpRow*> noisy;
    for (const auto& r : rows) {
        // Within noise: a negative median, or a spread that crosses zero.
        const bool noise = r.overhead < 0 || (r.overhead_min < 0 && r.overhead_max > 0);
        if (noise) noisy.push_back(&r);
        std::printf("%-18s %3d %8s %18s %9s %8s %6s %11s %10s %10s %8s\n", r.pattern.c_str(), r.workers,
                    (fmt(r.overhead) + (noise ? "~" : "")).c_str(), ("[" + fmt(r.overhead_min) + " .. " + fmt(r.overhead_max) + "]").c_str(),
                    fmt(r.cycles_per_packet, "%.0f").c_str(), fmt(r.lost_pct).c_str(), r.exact ? "yes" : "NO",
                    fmt(r.snapshot_cycles, "%.0f").c_str(), fmt(r.delay_ns, "%.0f").c_str(),
                    fmt(r.delay_p90_ns, "%.0f").c_str(), fmt(r.retries_per_read).c_str());
    }

    std::printf("\ncolumns: W workers; cyc/upd the median extra TSC cycles per counter update over the same loop\n"
                "without statistics, spread its [min .. max] over the repetitions; cyc/pkt TSC cycles per packet\n"
                "with statistics; lost %% updates lost (only the unsynchronized pattern may lose); exact whether\n"
                "totals equal what was added; snap cyc one reader snapshot of all counters; delay ns / p90 ns from\n"
                "an add until a reader sees it (median, 90th percentile); retries per seqcount read.\n");
    for (const EpRow* r : noisy)
        std::printf("~ within noise: %s at %d worker%s: median %s, spread [%s .. %s]%s; below what this run can\n"
                    "  resolve: rerun with more -n/-r or on an idle machine before reading anything into it\n",
                    r->pattern.c_str(), r->workers, r->workers == 1 ? "" : "s", fmt(r->overhead).c_str(),
                    fmt(r->overhead_min).c_str(), fmt(r->overhead_max).c_str(),
                    r->overhead < 0 ? " (negative)" : " (crosses zero)");

    // Published beside ours.
    std::vector<int> ws;
    std::vector<std::string> pats;
    std::map<std::pair<std::string, int>, double> ours;
    for (const auto& r : rows) {
        if (std::find(ws.begin(), ws.end(), r.workers) == ws.end()) ws.push_back(r.workers);
        if (std::find(pats.begin(), pats.end(), r.pattern) == pats.end()) pats.push_back(r.pattern);
        ours[{r.pattern, r.workers}] = r.overhead;
    }
    std::printf("\nBeside the DPDK Programmer's Guide \"Statistics\" table (published: core cycles; ours: TSC cycles, x%.2f for core cycles)\n\n", ratio);
    std::printf("%-18s %9s %9s %9s |", "pattern", "Xeon 4W", "Xeon 20W", "A72 4W");
    for (int w : ws) std::printf(" %8s", ("ours " + std::to_string(w) + "W").c_str());
    std::printf("\n%s\n", std::string(50 + 9 * ws.size(), '-').c_str());
    for (const auto& p : pats) {
        const Published* pub = published(p);
        std::printf("%-18s %9s %9s %9s |", p.c_str(), pub ? fmt(pub->xeon4, "%.0f").c_str() : "-",
                    pub ? fmt(pub->xeon20, "%.0f").c_str() : "-", pub ? fmt(pub->a72_4, "%.0f").c_str() : "-");
        for (int w : ws) {
            auto it = ours.find({p, w});
            std::printf(" %8s", it == ours.end() ? "-" : fmt(it->second).c_str());
        }
        std::printf("\n");
    }

    bool ok = true;
    for (const auto& r : rows) ok = ok && (r.exact || r.pattern == "shared no-sync");
    if (!csv.empty()) {
        FILE* f = std::fopen(csv.c_str(), "w");
        if (!f) {
            std::fprintf(stderr, "percore-bench: cannot write %s\n", csv.c_str());
            return 2;
        }
        std::fprintf(f,
                     "pattern,workers,pinned,overhead_cycles,overhead_min,overhead_max,cycles_per_packet,"
                     "baseline_cycles_per_packet,lost_pct,exact,snapshot_cycles,delay_ns,delay_p90_ns,retries_per_read,"
                     "tsc_ghz,core_ghz_est\n");
        for (const auto& r : rows)
            std::fprintf(f, "%s,%d,%d,%.3f,%.3f,%.3f,%.1f,%.1f,%s,%d,%s,%s,%s,%s,%.3f,%.3f\n", r.pattern.c_str(), r.workers,
                         r.pinned, r.overhead, r.overhead_min, r.overhead_max, r.cycles_per_packet, r.baseline_per_packet,
                         std::isfinite(r.lost_pct) ? fmt(r.lost_pct, "%.3f").c_str() : "", r.exact,
                         std::isfinite(r.snapshot_cycles) ? fmt(r.snapshot_cycles, "%.0f").c_str() : "",
                         std::isfinite(r.delay_ns) ? fmt(r.delay_ns, "%.0f").c_str() : "",
                         std::isfinite(r.delay_p90_ns) ? fmt(r.delay_p90_ns, "%.0f").c_str() : "",
                         std::isfinite(r.retries_per_read) ? fmt(r.retries_per_read, "%.3f").c_str() : "", ghz,
                         ghz * ratio);
        std::fclose(f);
        std::printf("\nwrote %s\n", csv.c_str());
    }
    if (!svg.empty()) {
        std::vector<Series> series;
        for (int w : ws) {
            Series s{std::to_string(w) + " worker" + (w == 1 ? "" : "s"), {}};
            for (const auto& p : pats) {
                auto it = ours.find({p, w});
                s.values.push_back(it == ours.end() ? NAN : it->second);
            }
            series.push_back(s);
        }
        if (write_bars(svg, "Overhead per counter update, EP benchmark (TSC cycles, log scale)", "TSC cycles per update",
                       pats, series))
            std::printf("wrote %s\n", svg.c_str());
    }
    if (!ok) std::fprintf(stderr, "percore-bench: a pattern that must be exact lost or invented updates\n");
    return ok ? 0 : 1;
}

int run_scaling_cmd(const std::vector<int>& threads, std::uint64_t ops, int reps, const std::string& csv_name,
                    const std::string& svg_name, bool quiet) {
    const std::string csv = out_path(csv_name), svg = out_path(svg_name);
    std::printf("percore-bench scaling: %u CPUs online, shard backend %s; %llu adds per run, median of %d\n\n",
                std::thread::hardware_concurrency(), percore::backend_name(), static_cast<unsigned long long>(ops), reps);
    const auto rows = percore::tools::compare_scaling(threads, ops, reps, !quiet);
    const bool exact = percore::tools::print_scaling_table(rows);
    if (!csv.empty()) {
        FILE* f = std::fopen(csv.c_str(), "w");
        if (!f) {
            std::fprintf(stderr, "percore-bench: cannot write %s\n", csv.c_str());
            return 2;
        }
        std::fprintf(f, "implementation,threads,ops_per_sec,scaling,spread,expected,counted\n");
        for (const auto& r : rows)
            std::fprintf(f, "%s,%d,%.0f,%.4f,%.4f,%llu,%llu\n", r.impl.c_str(), r.threads, r.ops_per_sec, r.scaling, r.spread,
                         static_cast<unsigned long long>(r.expected), static_cast<unsigned long long>(r.counted));
        std::fclose(f);
        std::printf("\nwrote %s\n", csv.c_str());
    }
    if (!svg.empty()) {
        std::vector<double> xs;
        std::vector<Series> series;
        for (const auto& r : rows) {
            auto it = std::find_if(series.begin(), series.end(), [&](const Series& s) { return s.name == r.impl; });
            if (it == series.end()) {
                series.push_back({r.impl, {}});
                it = series.end() - 1;
            }
            it->values.push_back(r.ops_per_sec / 1e6);
            if (std::find(xs.begin(), xs.end(), double(r.threads)) == xs.end()) xs.push_back(r.threads);
        }
        if (write_lines(svg, "One counter, every thread adding: shared atomic vs per-CPU", "threads", "million adds/s",
                        xs, series))
            std::printf("wrote %s\n", svg.c_str());
    }
    if (!exact) std::fprintf(stderr, "percore-bench: a total did not match what was added\n");
    return exact ? 0 : 1;
}

int run_ace_cmd(const AceConfig& c, const std::string& csv_name, const std::string& svg_name) {
    const std::string csv = out_path(csv_name), svg = out_path(svg_name);
    std::printf("percore-bench ace: %d workers, %.0f cycles of work per packet, %d flows, bursts of %d, hint_flush every %d "
                "packets; shard backend %s\n",
                c.workers, c.work_cycles, c.flows, c.burst, c.batch, percore::backend_name());
    std::printf("each fixed arm: %.1f s after 0.5 s settling, swept before and after ACE; ACE %.0f s, judged from %.0f s\n\n",
                c.phase_s, c.ace_s, c.after_s);
    const AceResult r = run_ace(c);
    double best = 0;
    std::size_t bi = 0;
    std::printf("write buffer (capacity/soft/hint)   sweep 1    sweep 2       mean  x bad default\n");
    std::printf("%-33s %9.3f %10s %10.3f %8.2f   (bad default, first phase; mean of all its phases: %.3f)\n",
                wb_text(c.bad).c_str(), r.bad_pps / 1e6, "-", r.bad_pps / 1e6, r.bad_pps / r.bad_ref_pps,
                r.bad_ref_pps / 1e6);
    for (std::size_t i = 0; i < c.arms.size(); ++i) {
        const double m = (r.sweep1[i] + r.sweep2[i]) / 2;
        if (m > best) best = m, bi = i;
        std::printf("%-33s %9.3f %10.3f %10.3f %8.2f\n", wb_text(c.arms[i]).c_str(), r.sweep1[i] / 1e6, r.sweep2[i] / 1e6,
                    m / 1e6, m / r.bad_ref_pps);
    }
    std::printf("(Mpkt/s, all workers)\n\nACE timeline (1 s means; arm in effect at each second's end):\n");
    for (std::size_t i = 9; i < r.ace.size(); i += 10) {
        double s = 0;
        for (std::size_t k = i - 9; k <= i; ++k) s += r.ace[k].pps;
        std::printf("  %5.1f s  %8.3f Mpkt/s  %s\n", r.ace[i].t, s / 10 / 1e6, wb_text(r.ace[i].cfg).c_str());
    }
    std::printf("\nbandit (arm: pulls, mean reward = Mpkt/s x (1 - penalties); lock waits dominate the small buffers):\n");
    for (const auto& g : r.groups)
        for (std::size_t i = 0; i < g.arms.size(); ++i)
            std::printf("  %-16s %4llu  %8.3f%s\n",
                        (std::to_string(g.arms[i][0]) + "/" + std::to_string(g.arms[i][1]) + "/" + std::to_string(g.arms[i][2]))
                            .c_str(),
                        static_cast<unsigned long long>(g.pulls[i]), g.mean_reward[i] / 1e6,
                        i == g.best ? "  <- best" : "");
    const double vs_best = r.ace_after_pps / best, vs_bad = r.ace_after_pps / r.bad_ref_pps;
    std::printf("\nbest fixed arm: %s, %.3f Mpkt/s\n", wb_text(c.arms[bi]).c_str(), best / 1e6);
    std::printf("ACE from %.0f s on: %.3f Mpkt/s = %.3f x the best fixed arm (target >= 0.95: %s), %.2f x the bad default "
                "(mean of its phases; target >= 1.5: %s)\n",
                c.after_s, r.ace_after_pps / 1e6, vs_best, vs_best >= 0.95 ? "met" : "MISSED", vs_bad,
                vs_bad >= 1.5 ? "met" : "MISSED");
    if (std::isfinite(r.converged_s))
        std::printf("converged at %.1f s: every 5 s window from there is within 5%% of the best fixed arm (target <= 20 s: "
                    "%s)\n",
                    r.converged_s, r.converged_s <= c.after_s ? "met" : "MISSED");
    else
        std::printf("did not converge: some 5 s window up to the end is more than 5%% below the best fixed arm\n");
    std::printf("instrumentation (WriteBuffer::instrument, on while a Tuner watches), medians of 5 alternations:\n"
                "  best arm:    on %.3f, off %.3f Mpkt/s (on/off %.3f)\n"
                "  bad default: on %.3f, off %.3f Mpkt/s (on/off %.3f)\n",
                r.instrumented_pps / 1e6, r.plain_pps / 1e6, r.instrumented_pps / r.plain_pps,
                r.bad_instrumented_pps / 1e6, r.bad_plain_pps / 1e6, r.bad_instrumented_pps / r.bad_plain_pps);
    std::printf("exact: %s\n", r.exact ? "yes" : "NO");
    if (!csv.empty()) {
        if (FILE* f = std::fopen(csv.c_str(), "w")) {
            std::fprintf(f, "t_s,pps,capacity,soft_threshold,hint_period\n");
            for (const auto& s : r.ace)
                std::fprintf(f, "%.2f,%.0f,%u,%u,%u\n", s.t, s.pps, s.cfg.capacity, s.cfg.soft_threshold, s.cfg.hint_period);
            std::fclose(f);
            std::printf("wrote %s\n", csv.c_str());
        }
    }
    if (!svg.empty() && r.ace.size() >= 10) {
        std::vector<double> xs;
        Series ace{"ACE (1 s means)", {}}, bst{"best fixed " + wb_text(c.arms[bi]), {}}, bad{"bad default " + wb_text(c.bad), {}};
        for (std::size_t i = 9; i < r.ace.size(); i += 10) {
            double s = 0;
            for (std::size_t k = i - 9; k <= i; ++k) s += r.ace[k].pps;
            xs.push_back(std::round(r.ace[i].t));
            ace.values.push_back(s / 10 / 1e6);
            bst.values.push_back(best / 1e6);
            bad.values.push_back(r.bad_ref_pps / 1e6);
        }
        if (write_lines(svg, "Write buffer tuned by ACE vs fixed settings", "seconds since ACE started", "Mpkt/s", xs,
                        {ace, bst, bad}))
            std::printf("wrote %s\n", svg.c_str());
    }
    if (!r.exact) std::fprintf(stderr, "percore-bench: a total did not match what was added\n");
    return r.exact ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"percore-bench: the cost of each way of counting, on this machine"};
    app.require_subcommand(1);

    EpConfig ep;
    bool oversubscribe = false, no_pin = false, quiet = false;
    std::string ep_csv = "ep.csv", ep_svg = "ep-overhead.svg";
    auto* e = app.add_subcommand("ep", "the DPDK Statistics chapter's benchmark: every statistics pattern, cycles per counter update");
    e->add_option("-w,--workers", ep.workers, "worker counts (default 1..online CPUs)")->check(CLI::Range(1, 4096));
    e->add_flag("--oversubscribe", oversubscribe, "also run 2 x CPUs workers (unpinned)");
    e->add_flag("--no-pin", no_pin, "do not pin workers to CPUs");
    e->add_option("-n,--packets", ep.packets, "packets per worker per phase")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    e->add_option("-r,--reps", ep.reps, "repetitions (median reported)")->capture_default_str()->check(CLI::Range(1, 1000));
    e->add_option("--work-cycles", ep.work_cycles, "TSC cycles of domain logic per packet")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 1e7));
    e->add_option("--migrate-every", ep.migrate_every, "one packet in N (power of two) goes to another worker's flow")
        ->capture_default_str();
    e->add_option("--batch", ep.batch, "packets per batch (hint_flush cadence)")->capture_default_str()->check(CLI::Range(1, 1 << 20));
    e->add_option("--read-ms", ep.read_ms, "length of the concurrent-reader phase per point (0: skip)")->capture_default_str();
    e->add_option("--wb-capacity", ep.wb.capacity, "write buffer entries per shard")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1u << 20));
    e->add_option("--wb-soft", ep.wb.soft_threshold, "write buffer soft flush threshold")->capture_default_str();
    e->add_option("--wb-hint", ep.wb.hint_period, "hint_flush period (in batches)")->capture_default_str();
    e->add_option("--only", ep.only, "run only these patterns (names as printed)");
    e->add_option("--csv", ep_csv, "CSV file in the output directory ('' for none)")->capture_default_str();
    e->add_option("--svg", ep_svg, "SVG chart in the output directory ('' for none)")->capture_default_str();
    e->add_option("-o,--out-dir", out_dir, "directory for the CSV and SVG files (created)")->capture_default_str();
    e->add_flag("-q,--quiet", quiet, "no progress lines");

    std::vector<int> threads{1, 2, 4, 8};
    std::uint64_t ops = 40'000'000;
    int reps = 5;
    std::string sc_csv = "scaling.csv", sc_svg = "scaling.svg";
    auto* s = app.add_subcommand("scaling", "shared atomic vs percore::Counter: ops/s and scaling factor");
    s->add_option("-t,--threads", threads, "thread counts")->capture_default_str()->check(CLI::Range(1, 4096));
    s->add_option("-n,--ops", ops, "total adds per run, split across threads")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
    s->add_option("-r,--reps", reps, "repetitions (median reported)")->capture_default_str()->check(CLI::Range(1, 100));
    s->add_option("--csv", sc_csv, "CSV file in the output directory ('' for none)")->capture_default_str();
    s->add_option("--svg", sc_svg, "SVG chart in the output directory ('' for none)")->capture_default_str();
    s->add_option("-o,--out-dir", out_dir, "directory for the CSV and SVG files (created)")->capture_default_str();
    s->add_flag("-q,--quiet", quiet, "no progress lines");

    AceConfig ace;
    std::string ace_csv = "ace.csv", ace_svg = "ace.svg";
    auto* a = app.add_subcommand("ace", "the adaptive tuner against every fixed write buffer setting, side by side");
    a->add_option("-w,--workers", ace.workers, "worker threads")->capture_default_str()->check(CLI::Range(1, 4096));
    a->add_option("--work-cycles", ace.work_cycles, "TSC cycles of domain logic per packet")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1e7));
    a->add_option("--flows", ace.flows, "flows")->capture_default_str()->check(CLI::Range(1, 1 << 24));
    a->add_option("--burst", ace.burst, "packets per flow burst")->capture_default_str()->check(CLI::Range(1, 1 << 20));
    a->add_option("--batch", ace.batch, "packets per hint_flush")->capture_default_str()->check(CLI::Range(1, 1 << 20));
    a->add_option("--phase", ace.phase_s, "seconds measured per fixed arm")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
    a->add_option("--duration", ace.ace_s, "seconds of ACE")->capture_default_str()->check(CLI::Range(0.5, 36000.0));
    a->add_option("--judge-after", ace.after_s, "ACE is judged from this many seconds on")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 36000.0));
    a->add_option("--csv", ace_csv, "CSV file of the ACE timeline ('' for none)")->capture_default_str();
    a->add_option("--svg", ace_svg, "SVG chart ('' for none)")->capture_default_str();
    a->add_option("-o,--out-dir", out_dir, "directory for the CSV and SVG files (created)")->capture_default_str();
    a->add_flag("-q,--quiet", quiet, "no progress lines");

    CLI11_PARSE(app, argc, argv);
    if (*a) {
        if (ace.after_s >= ace.ace_s) {
            std::fprintf(stderr, "percore-bench: --judge-after (%g) must be less than --duration (%g)\n", ace.after_s, ace.ace_s);
            return 2;
        }
        ace.progress = !quiet;
        return run_ace_cmd(ace, ace_csv, ace_svg);
    }
    if (*e) {
        ep.pin = !no_pin;
        ep.progress = !quiet;
        return run_ep_cmd(ep, oversubscribe, ep_csv, ep_svg);
    }
    return run_scaling_cmd(threads, ops, reps, sc_csv, sc_svg, quiet);
}
