// SPDX-License-Identifier: MIT
// LeastLoaded against the obvious alternative, one shared atomic in-flight
// count per connection (each on its own cache line), in one run:
//   SharedAtomic          scan every count, fetch_add the least (ties from
//                         a per-thread rotating start, as LeastLoaded does)
//   SharedAtomic2         the same with power-of-two choices
//   LeastLoaded           percore::LeastLoaded, local view, full scan
//   LeastLoaded2          local view, power-of-two choices
//   LeastLoadedGlobal     global view (sums every shard's row), full scan
// Each thread keeps a window of 4 requests in flight: an iteration acquires
// one and releases the oldest. items_per_second is acquire+release pairs
// per second, all threads together. The pools have 8 connections (full
// scans) or 64 (two choices).
//
// Spread: every request is counted per connection (per thread, summed after
// the run); max_min is the busiest connection's count over the idlest's,
// cv the coefficient of variation of the counts (0 is perfectly even).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "percore/least_loaded.hpp"

namespace {

constexpr std::size_t kWindow = 4;
constexpr int kMaxThreads = 64;
constexpr std::size_t kMaxConns = 64;

// Per-thread request counts per connection, read by thread 0 after the run
// (the benchmark's end barrier orders them).
struct alignas(64) Counts {
    std::array<std::uint64_t, kMaxConns> n{};
};
Counts g_counts[kMaxThreads];

void report_spread(benchmark::State& state, std::size_t conns) {
    std::vector<double> per(conns, 0.0);
    for (int t = 0; t < state.threads(); ++t)
        for (std::size_t c = 0; c < conns; ++c) per[c] += static_cast<double>(g_counts[t].n[c]);
    double sum = 0, mx = 0, mn = 1e300;
    for (double v : per) {
        sum += v;
        mx = std::max(mx, v);
        mn = std::min(mn, v);
    }
    const double mean = sum / static_cast<double>(conns);
    double var = 0;
    for (double v : per) var += (v - mean) * (v - mean);
    var /= static_cast<double>(conns);
    state.counters["max_min"] = mn > 0 ? mx / mn : INFINITY;
    state.counters["cv"] = mean > 0 ? std::sqrt(var) / mean : 0;
}

// One shared atomic per connection.
struct alignas(64) SharedCell {
    std::atomic<std::int64_t> v{0};
};

struct SharedPool {
    explicit SharedPool(std::size_t n, std::size_t k) : n(n), choices(k), cells(new SharedCell[n]) {}
    struct Guard {
        SharedCell* c = nullptr;
        std::size_t i = 0;
        void release() {
            if (c) c->v.fetch_sub(1, std::memory_order_relaxed);
            c = nullptr;
        }
        std::size_t index() const { return i; }
    };
    Guard acquire() {
        std::size_t best;
        if (choices >= n) {
            std::size_t i = percore::detail::ll_rotation() % n;
            best = i;
            std::int64_t least = cells[i].v.load(std::memory_order_relaxed);
            for (std::size_t k = 1; k < n; ++k) {
                if (++i == n) i = 0;
                const std::int64_t v = cells[i].v.load(std::memory_order_relaxed);
                if (v < least) {
                    least = v;
                    best = i;
                }
            }
        } else {
            const std::uint64_t r = percore::detail::ll_random();
            const std::size_t a = percore::detail::ll_below(r, n), b = percore::detail::ll_below(r >> 32, n);
            best = cells[b].v.load(std::memory_order_relaxed) < cells[a].v.load(std::memory_order_relaxed) ? b : a;
        }
        cells[best].v.fetch_add(1, std::memory_order_relaxed);
        return Guard{&cells[best], best};
    }
    std::size_t n, choices;
    std::unique_ptr<SharedCell[]> cells;
};

template <class Pool, class G>
void run(benchmark::State& state, Pool& pool, std::size_t conns) {
    Counts& mine = g_counts[state.thread_index()];
    mine.n.fill(0);
    std::array<G, kWindow> window{};
    std::size_t slot = 0;
    for (auto _ : state) {
        window[slot].release();
        window[slot] = pool.acquire();
        mine.n[window[slot].index()]++;
        if (++slot == kWindow) slot = 0;
    }
    for (auto& g : window) g.release();
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) report_spread(state, conns);
}

template <std::size_t Conns, std::size_t Choices>
void BM_SharedAtomic(benchmark::State& state) {
    static SharedPool pool(Conns, Choices);
    run<SharedPool, SharedPool::Guard>(state, pool, Conns);
}

template <std::size_t Conns, std::size_t Choices, percore::LoadView View>
void BM_LeastLoaded(benchmark::State& state) {
    using Pool = percore::LeastLoaded<int>;
    static Pool pool(Conns, [](std::size_t i) { return static_cast<int>(i); }, {.choices = Choices, .view = View});
    run<Pool, Pool::Guard>(state, pool, Conns);
}

#define LL_BENCH(...) BENCHMARK(__VA_ARGS__)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime()

using percore::LoadView;
LL_BENCH(BM_SharedAtomic<8, 8>)->Name("SharedAtomic/conns:8");
LL_BENCH(BM_LeastLoaded<8, 8, LoadView::local>)->Name("LeastLoaded/conns:8");
LL_BENCH(BM_LeastLoaded<8, 8, LoadView::global>)->Name("LeastLoadedGlobal/conns:8");
LL_BENCH(BM_SharedAtomic<64, 2>)->Name("SharedAtomic2/conns:64");
LL_BENCH(BM_LeastLoaded<64, 2, LoadView::local>)->Name("LeastLoaded2/conns:64");
LL_BENCH(BM_LeastLoaded<64, 2, LoadView::global>)->Name("LeastLoadedGlobal2/conns:64");

}  // namespace

BENCHMARK_MAIN();
