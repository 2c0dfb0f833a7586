// SPDX-License-Identifier: MIT
// The shared-versus-per-CPU comparison: N threads each add 1 to one counter
// as fast as they can, for a fixed number of total adds; ops/s, scaling
// against one thread, and the final total checked against what was added.
// Used by percore-demo (until the packet simulator lands) and the benchmark.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "percore/counter.hpp"

namespace percore::tools {

struct ScalingRow {
    std::string impl;
    int threads = 0;
    double ops_per_sec = 0;  // median of the repetitions
    double spread = 0;       // (max - min) / median of ops/s
    double scaling = 0;      // ops/s over the same implementation at 1 thread
    std::uint64_t expected = 0;
    std::uint64_t counted = 0;  // must equal expected
};

// Runs `threads` threads that together call add() exactly `total` times
// (the first total % threads threads do one more), after a common start
// signal; returns ops/s (wall clock from start to last join).
template <class Add>
double run_adds(int threads, std::uint64_t total, Add add) {
    const std::uint64_t per = total / static_cast<std::uint64_t>(threads);
    const std::uint64_t extra = total % static_cast<std::uint64_t>(threads);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        // `add` by value: each thread's copy can live in registers, as a
        // real worker's handle to its counter would.
        ts.emplace_back([&ready, &go, n = per + (static_cast<std::uint64_t>(t) < extra ? 1 : 0), add] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::uint64_t i = 0; i < n; ++i) add();
        });
    while (ready.load() < threads) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(total) / s;
}

// Shared std::atomic fetch_add versus percore::Counter, interleaved per
// repetition so both see the same machine state.
inline std::vector<ScalingRow> compare_scaling(const std::vector<int>& thread_counts, std::uint64_t total_ops,
                                               int reps, bool progress) {
    std::vector<ScalingRow> rows;
    double base_shared = 0, base_percpu = 0;
    for (int n : thread_counts) {
        std::vector<double> shared_r, percpu_r;
        ScalingRow shared{"shared std::atomic", n}, percpu{"percore::Counter", n};
        for (int r = 0; r < reps; ++r) {
            alignas(64) std::atomic<std::uint64_t> a{0};
            shared_r.push_back(run_adds(n, total_ops, [&] { a.fetch_add(1, std::memory_order_relaxed); }));
            shared.counted = a.load();
            Counter c;
            percpu_r.push_back(run_adds(n, total_ops, [&] { c.inc(); }));
            percpu.counted = c.value();
            shared.expected = percpu.expected = total_ops;
            if (shared.counted != shared.expected || percpu.counted != percpu.expected) break;
        }
        auto summarize = [](ScalingRow& row, std::vector<double> v) {
            std::sort(v.begin(), v.end());
            row.ops_per_sec = v[v.size() / 2];
            row.spread = (v.back() - v.front()) / row.ops_per_sec;
        };
        summarize(shared, shared_r);
        summarize(percpu, percpu_r);
        if (base_shared == 0) base_shared = shared.ops_per_sec, base_percpu = percpu.ops_per_sec;
        shared.scaling = shared.ops_per_sec / base_shared;
        percpu.scaling = percpu.ops_per_sec / base_percpu;
        if (progress)
            std::fprintf(stderr, "  %d thread%s: shared %.0f ops/s, per-CPU %.0f ops/s\n", n, n == 1 ? "" : "s",
                         shared.ops_per_sec, percpu.ops_per_sec);
        rows.push_back(shared);
        rows.push_back(percpu);
    }
    return rows;
}

// Prints the comparison as a table; returns whether every total was exact.
inline bool print_scaling_table(const std::vector<ScalingRow>& rows) {
    std::printf("\n%-20s %8s %15s %9s %8s  %s\n", "implementation", "threads", "ops/s", "scaling", "spread", "total");
    std::printf("%s\n", std::string(78, '-').c_str());
    bool exact = true;
    for (const auto& r : rows) {
        const bool ok = r.counted == r.expected;
        exact = exact && ok;
        std::printf("%-20s %8d %15.0f %8.2fx %7.0f%%  %llu %s\n", r.impl.c_str(), r.threads, r.ops_per_sec, r.scaling,
                    r.spread * 100, static_cast<unsigned long long>(r.counted), ok ? "(exact)" : "(WRONG)");
    }
    return exact;
}

}  // namespace percore::tools
