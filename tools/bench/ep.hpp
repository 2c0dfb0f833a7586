// SPDX-License-Identifier: MIT
// percore-bench ep: the benchmark of the "Statistics" chapter of the DPDK
// Programmer's Guide (Mattias Roennblom, Ericsson, 2022). Workers process packets: ~N
// cycles of dummy domain logic (registers only), then the four counter
// updates of the EP model (ep_model.hpp). Each pattern is measured against
// the same loop without statistics, in the same process and worker threads,
// alternating the two phases, so machine drift hits both alike.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "bench/ep_model.hpp"
#include "common/clock.hpp"
#include "common/work.hpp"

namespace percore::bench {

struct EpConfig {
    std::vector<int> workers;
    bool pin = true;
    std::uint64_t packets = 100'000;  // per worker per phase
    int reps = 7;
    double work_cycles = 1000;  // TSC cycles of domain logic per packet
    std::uint64_t migrate_every = 65536;  // one packet in N goes to another worker's flow
    int batch = 32;                       // packets per batch (hint_flush cadence)
    int read_ms = 300;                    // reader phase length
    WriteBufferConfig wb{};  // the library's default (docs/tuning.md)
    std::vector<std::string> only;
    bool progress = true;
};

struct EpRow {
    std::string pattern;
    int workers = 0;
    bool pinned = false;
    double overhead = 0, overhead_min = 0, overhead_max = 0;  // TSC cycles per counter update
    double cycles_per_packet = 0, baseline_per_packet = 0;
    double lost_pct = NAN;  // shared no-sync only
    bool exact = true;
    double snapshot_cycles = NAN;
    double delay_ns = NAN, delay_p90_ns = NAN;
    double retries_per_read = NAN;
};


// Propagation probes: the reader asks, worker 0 adds to the probe counter at
// its next packet and notes the TSC; the reader polls until it sees it.
struct Probe {
    std::atomic<std::uint64_t> req{0};
    std::atomic<std::uint64_t> answered{0};
    std::atomic<std::uint64_t> t0{0};
};

template <class A>
double packet_loop(A& a, int w, int nworkers, const EpConfig& c, std::uint32_t iters, std::uint64_t seed, Probe* probe) {
    std::uint64_t r = seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(w) * 0xbf58476d1ce4e5b9ull + 1;
    const std::uint64_t own = kFlows / static_cast<std::uint64_t>(std::min<int>(nworkers, kFlows));
    const std::uint64_t migrate_mask = c.migrate_every ? std::bit_ceil(c.migrate_every) - 1 : ~0ull;
    std::uint64_t sink = r, done = 0;
    int in_batch = 0;
    // Per-batch TSC deltas: a batch during which the worker was preempted
    // (other processes on the machine) is an outlier that robust_mean drops,
    // instead of blurring the whole phase.
    std::vector<std::uint32_t> batches;
    batches.reserve(c.packets / static_cast<std::uint64_t>(c.batch) + 1);
    std::uint64_t tb = tsc();
    for (std::uint64_t i = 0; i < c.packets; ++i) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        std::size_t flow;
        if ((r & migrate_mask) == 0) {
            flow = (r >> 22) % kFlows;  // a flow of another worker: a rare migration
        } else {
            // Flow-to-core affinity: worker w owns flows w, w + W, w + 2W, ...
            flow = static_cast<std::size_t>(w % kFlows) +
                   static_cast<std::size_t>(nworkers) * static_cast<std::size_t>(((r >> 32) * own) >> 32);
        }
        const std::uint64_t len = 64 + ((r >> 20) & 1023);
        sink = domain_logic(sink ^ r, iters);
        asm volatile("" : : "r"(flow), "r"(len));  // the baseline computes them too
        a.packet(flow, len);
        if (++in_batch == c.batch) {
            in_batch = 0;
            a.batch_end();
            const std::uint64_t t = tsc();
            batches.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(t - tb, 0xffffffffu)));
            tb = t;
        }
        if (probe != nullptr && w == 0) {
            const std::uint64_t k = probe->req.load(std::memory_order_relaxed);
            if (k != done) {
                const std::uint64_t t = tsc();
                a.probe_add();
                probe->t0.store(t, std::memory_order_relaxed);
                probe->answered.store(k, std::memory_order_release);
                done = k;
            }
        }
    }
    consume(sink);
    return robust_mean(batches) / c.batch;
}

struct ReadResult {
    std::vector<double> snapshot_cycles, delay_cycles;
    double retries_per_read = NAN;
};

// One pattern, type-erased for the run loop.
struct Runner {
    virtual ~Runner() = default;
    virtual double phase(Pool& pool, const EpConfig& c, std::uint32_t iters, std::uint64_t seed) = 0;
    virtual std::uint64_t pkts() = 0;
    virtual void settle() = 0;
    virtual ReadResult read_phase(Pool& pool, const EpConfig& c, std::uint32_t iters) = 0;
};

template <class A>
struct RunnerOf : Runner {
    A a;
    template <class... Args>
    explicit RunnerOf(Args&&... args) : a(std::forward<Args>(args)...) {}

    double phase(Pool& pool, const EpConfig& c, std::uint32_t iters, std::uint64_t seed) override {
        const auto per = pool.run([&](int w) { return packet_loop(a, w, pool.size(), c, iters, seed, nullptr); });
        double s = 0;
        for (double x : per) s += x;
        return s / static_cast<double>(per.size());
    }
    std::uint64_t pkts() override { return a.pkts(); }
    void settle() override { a.settle(); }

    ReadResult read_phase(Pool& pool, const EpConfig& c, std::uint32_t iters) override {
        ReadResult out;
        Probe probe;
        std::atomic<bool> stop{false};
        std::uint64_t retries0 = 0, reads = 0;
        if constexpr (requires { a.p.retries(); }) retries0 = a.p.retries();
        std::thread reader([&] {
            const std::uint64_t base = a.probe();
            std::uint64_t k = 0;
            timespec gap{0, 50'000};
            while (!stop.load(std::memory_order_relaxed)) {
                probe.req.store(++k, std::memory_order_relaxed);
                while (a.probe() < base + k && !stop.load(std::memory_order_relaxed)) {
                }
                const std::uint64_t t1 = tsc();
                if (stop.load(std::memory_order_relaxed)) break;
                while (probe.answered.load(std::memory_order_acquire) != k) {
                }
                const std::uint64_t t0 = probe.t0.load(std::memory_order_relaxed);
                out.delay_cycles.push_back(t1 > t0 ? static_cast<double>(t1 - t0) : 0.0);
                const std::uint64_t c0 = tsc();
                a.snapshot();
                out.snapshot_cycles.push_back(static_cast<double>(tsc() - c0));
                ++reads;
                nanosleep(&gap, nullptr);
            }
        });
        // Enough packets to last about read_ms.
        EpConfig rc = c;
        rc.packets = std::max<std::uint64_t>(1000, static_cast<std::uint64_t>(c.read_ms * 1e-3 * tsc_rate() / c.work_cycles));
        pool.run([&](int w) { return packet_loop(a, w, pool.size(), rc, iters, 99, &probe); });
        stop.store(true);
        reader.join();
        if constexpr (requires { a.p.retries(); })
            out.retries_per_read = reads ? static_cast<double>(a.p.retries() - retries0) / static_cast<double>(reads) : NAN;
        return out;
    }
    static double tsc_rate() {
        static const double r = tsc_ghz(50) * 1e9;
        return r;
    }
};

struct PatternCase {
    std::string name;
    std::function<std::unique_ptr<Runner>(const EpConfig&)> make;
};

inline std::vector<PatternCase> ep_patterns() {
    using P = EpStats;
    return {
        {"shared no-sync", [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<SharedUnsync<P>>>>(); }},
        {"shared atomic", [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<SharedAtomic<P>>>>(); }},
        {"shared spinlock", [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<SharedLocked<P>>>>(); }},
        {"shared ticketlock",
         [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<SharedLocked<P, TicketLock>>>>(); }},
        {"shared buffered",
         [](const EpConfig& c) { return std::make_unique<RunnerOf<StructPattern<BufferedStats<P>>>>(c.wb); }},
        {"per-core", [](const EpConfig&) { return std::make_unique<RunnerOf<PerCoreCounters>>(); }},
        {"per-core spinlock", [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<PerCoreLocked<P>>>>(); }},
        {"per-core seqcount",
         [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<PerCoreSeqcount<P>>>>(); }},
        {"per-core snapshot", [](const EpConfig&) { return std::make_unique<RunnerOf<StructPattern<SnapshotStats<P>>>>(); }},
#if PERCORE_BENCH_TBB
        {"tbb::combinable", [](const EpConfig&) { return std::make_unique<RunnerOf<TbbCombinable>>(); }},
        {"tbb::ets", [](const EpConfig&) { return std::make_unique<RunnerOf<TbbEts>>(); }},
#endif
    };
}

// Runs every pattern at every worker count.
inline std::vector<EpRow> run_ep(const EpConfig& c, std::uint32_t iters, double tsc_per_ns) {
    std::vector<EpRow> rows;
    auto cases = ep_patterns();
    for (int nw : c.workers) {
        const bool pin = c.pin && nw <= online_cpus();
        Pool pool(nw, pin);
        RunnerOf<NoStats> none;
        // Warm-up: caches, page faults, frequency.
        none.phase(pool, c, iters, 0);
        for (auto& pc : cases) {
            if (!c.only.empty() && std::find(c.only.begin(), c.only.end(), pc.name) == c.only.end()) continue;
            auto r = pc.make(c);
            EpRow row;
            row.pattern = pc.name;
            row.workers = nw;
            row.pinned = pin;
            r->phase(pool, c, iters, 1);  // warm-up: thread-local state, rows, buffers
            r->settle();
            std::vector<double> diffs, with, without;
            std::uint64_t lost = 0, expected = 0;
            for (int rep = 0; rep < c.reps; ++rep) {
                const std::uint64_t seed = 10 + static_cast<std::uint64_t>(rep);
                double base, stats;
                const std::uint64_t before = r->pkts();
                // Alternate the order so drift within a pair cancels out.
                if (rep % 2 == 0) {
                    base = none.phase(pool, c, iters, seed);
                    stats = r->phase(pool, c, iters, seed);
                } else {
                    stats = r->phase(pool, c, iters, seed);
                    base = none.phase(pool, c, iters, seed);
                }
                r->settle();
                const std::uint64_t got = r->pkts() - before, want = c.packets * static_cast<std::uint64_t>(nw);
                expected += want;
                lost += want > got ? want - got : 0;
                if (got != want) row.exact = false;
                with.push_back(stats);
                without.push_back(base);
                diffs.push_back((stats - base) / 4.0);
            }
            row.overhead = median(diffs);
            row.overhead_min = *std::min_element(diffs.begin(), diffs.end());
            row.overhead_max = *std::max_element(diffs.begin(), diffs.end());
            row.cycles_per_packet = median(with);
            row.baseline_per_packet = median(without);
            if (pc.name == "shared no-sync") row.lost_pct = 100.0 * static_cast<double>(lost) / static_cast<double>(expected);
            if (c.read_ms > 0) {
                const ReadResult rr = r->read_phase(pool, c, iters);
                row.snapshot_cycles = median(rr.snapshot_cycles);
                row.delay_ns = median(rr.delay_cycles) / tsc_per_ns;
                row.delay_p90_ns = quantile(rr.delay_cycles, 0.9) / tsc_per_ns;
                row.retries_per_read = rr.retries_per_read;
            }
            if (c.progress)
                std::fprintf(stderr, "  %d worker%s  %-18s %7.2f cycles/update  [%.2f .. %.2f]%s\n", nw, nw == 1 ? " " : "s",
                             pc.name.c_str(), row.overhead, row.overhead_min, row.overhead_max,
                             row.exact ? "" : (pc.name == "shared no-sync" ? "  (lost updates)" : "  (NOT EXACT)"));
            rows.push_back(row);
        }
    }
    return rows;
}

}  // namespace percore::bench
