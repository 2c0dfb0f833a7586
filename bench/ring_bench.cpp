// SPDX-License-Identifier: MIT
// ShardedRing against the queues a user would otherwise pick for many
// producers and one consumer, all measured in one run:
//   std::mutex + std::deque (bounded),
//   tbb::concurrent_bounded_queue (libtbb-dev),
//   DPDK rte_ring, multi-producer / single-consumer, in our own memory,
//     without the EAL (libdpdk-dev),
//   Concurrency Kit ck_ring, multi-producer / single-consumer (libck-dev),
//   percore::ShardedRing, rseq (the default) and thread slots.
// Peers whose package is missing are left out at configure time.
//
// Two measures, each at 1, 2, 4 and 8 producers, items/s aggregate.
// Producers are pinned round robin to the CPUs, as a data-plane program
// pins its workers (more producers than CPUs share them).
//   BM_Push/<queue>/producers:N   the producer side. Each round every
//       producer pushes kRound items into queues large enough to take them
//       all; a round's time runs from the first producer's first push to
//       the last producer's last (waking threads is not timed); the
//       consumer drains between rounds from the last CPU, off the clock. This is what
//       sharding changes: whether producers share a cache line. A round
//       is cut off after kRoundBudgetNs and what got in counts (counter
//       cut_rounds): a queue whose producers wait for one another can
//       stall for a whole time slice when one of them is preempted (more
//       producers than CPUs), and a shared line that moves slowly between
//       cores makes a round take that long anyway. items_per_second is
//       all rounds together; the counter median_round_rate is the median
//       round's rate, which a round stretched by the host does not move.
//   BM_Pipeline/<queue>/producers:N   end to end. Producers push for
//       kPipelineMs while one consumer thread drains concurrently; a
//       producer that finds its queue full yields and tries again. Items
//       consumed per second. The consumer is pinned to the last CPU: on a
//       2-CPU machine one producer and the consumer have a CPU each, and
//       from two producers on the consumer shares its CPU with a producer.
// Every item pushed is checked to come out exactly once (count and sum);
// a mismatch fails the run.
#include <benchmark/benchmark.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend_switch.hpp"
#include "core_to_core.hpp"
#include "percore/shard.hpp"
#include "percore/sharded_ring.hpp"

#ifdef PERCORE_BENCH_TBB
#include <tbb/concurrent_queue.h>
#endif
#ifdef PERCORE_BENCH_DPDK
#include <rte_config.h>
#include <rte_ring.h>
#endif
#ifdef PERCORE_BENCH_CK
#include "ck_peers.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kRound = 1 << 16;            // items per producer per round (BM_Push)
constexpr std::int64_t kRoundBudgetNs = 20'000'000;  // BM_Push: a round is cut off after this
constexpr std::size_t kPipeCapacity = 1 << 16;       // BM_Pipeline: total slots, split over ShardedRing's shards
constexpr int kPipelineMs = 100;

// The CPUs the process may use, as it started (threads inherit the
// affinity of their creator, which may be pinned by then).
const cpu_set_t g_allowed = [] {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (sched_getaffinity(0, sizeof s, &s) != 0) CPU_SET(0, &s);
    return s;
}();

// Producer t runs on the t-th allowed CPU (round robin), as a data-plane
// program pins its workers; more producers than CPUs share.
void pin_to(unsigned t) {
    const int n = CPU_COUNT(&g_allowed);
    if (n <= 0) return;
    int want = static_cast<int>(t % static_cast<unsigned>(n));
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &g_allowed) || want-- != 0) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        sched_setaffinity(0, sizeof one, &one);
        return;
    }
}

// The consumer runs on the last CPU: with one producer the two have a CPU
// each; with more, the consumer shares the last CPU with a producer.
void pin_to_last() { pin_to(static_cast<unsigned>(CPU_COUNT(&g_allowed) - 1)); }

// ---- the queues, behind one interface ------------------------------------
// push: producer side, false if full. drain(fn): consumer side, all it can
// take now, returns the count.

struct MutexDeque {
    static constexpr const char* name = "mutex+deque";
    explicit MutexDeque(std::size_t cap) : cap_(cap) {}
    bool push(std::uint64_t v) {
        std::lock_guard g(mu_);
        if (q_.size() >= cap_) return false;
        q_.push_back(v);
        return true;
    }
    template <class F>
    std::size_t drain(F&& fn) {
        // Swap the whole deque out under the lock, consume outside it: the
        // fastest way to drain a locked queue.
        std::deque<std::uint64_t> out;
        {
            std::lock_guard g(mu_);
            out.swap(q_);
        }
        for (std::uint64_t v : out) fn(v);
        return out.size();
    }
    std::size_t cap_;
    std::mutex mu_;
    std::deque<std::uint64_t> q_;
};

#ifdef PERCORE_BENCH_TBB
struct TbbBounded {
    static constexpr const char* name = "tbb::concurrent_bounded_queue";
    explicit TbbBounded(std::size_t cap) { q_.set_capacity(static_cast<std::ptrdiff_t>(cap)); }
    bool push(std::uint64_t v) { return q_.try_push(v); }
    template <class F>
    std::size_t drain(F&& fn) {
        std::size_t n = 0;
        std::uint64_t v;
        while (q_.try_pop(v)) {
            fn(v);
            ++n;
        }
        return n;
    }
    tbb::concurrent_bounded_queue<std::uint64_t> q_;
};
#endif

#ifdef PERCORE_BENCH_DPDK
// rte_ring_init on memory of our own: no EAL, no hugepages, no memzone.
// Classic multi-producer mode (a producer that reserved slots waits for
// the producers before it to publish theirs), and, as a second row, the
// "relaxed tail sync" mode DPDK offers for overcommitted CPUs.
template <bool Rts>
struct RteRing {
    static constexpr const char* name = Rts ? "DPDK rte_ring (MP RTS/SC)" : "DPDK rte_ring (MP/SC)";
    explicit RteRing(std::size_t cap) {
        const ssize_t bytes = rte_ring_get_memsize(static_cast<unsigned>(cap));
        mem_ = std::aligned_alloc(RTE_CACHE_LINE_SIZE, (static_cast<std::size_t>(bytes) + 127) / 128 * 128);
        r_ = static_cast<rte_ring*>(mem_);
        const unsigned flags = RING_F_SC_DEQ | (Rts ? RING_F_MP_RTS_ENQ : 0);
        if (rte_ring_init(r_, "bench", static_cast<unsigned>(cap), flags) != 0) std::abort();
    }
    ~RteRing() { std::free(mem_); }
    bool push(std::uint64_t v) {
        if constexpr (Rts)
            return rte_ring_enqueue(r_, reinterpret_cast<void*>(v)) == 0;  // dispatches on the ring's mode
        else return rte_ring_mp_enqueue(r_, reinterpret_cast<void*>(v)) == 0;
    }
    template <class F>
    std::size_t drain(F&& fn) {
        void* objs[256];
        std::size_t n = 0;
        for (;;) {
            const unsigned k = rte_ring_sc_dequeue_burst(r_, objs, 256, nullptr);
            for (unsigned i = 0; i < k; ++i) fn(reinterpret_cast<std::uint64_t>(objs[i]));
            n += k;
            if (k < 256) return n;
        }
    }
    void* mem_;
    rte_ring* r_;
};
#endif

#ifdef PERCORE_BENCH_CK
struct CkRing {
    static constexpr const char* name = "ck_ring (MP/SC)";
    explicit CkRing(std::size_t cap) : r_(pc_ck_ring_new(static_cast<unsigned>(cap))) {}
    ~CkRing() { pc_ck_ring_free(r_); }
    bool push(std::uint64_t v) { return pc_ck_ring_push(r_, v); }
    template <class F>
    std::size_t drain(F&& fn) {
        std::size_t n = 0;
        std::uint64_t v;
        while (pc_ck_ring_pop(r_, &v)) {
            fn(v);
            ++n;
        }
        return n;
    }
    pc_ck_ring* r_;
};
#endif

using percore_bench::use_backend;

// The MP/SC queues get `cap` slots; ShardedRing gets `cap` split over the
// CPUs (rseq: together its shards hold `cap`), and the thread-slot shards
// (16, one per producer thread) the same per-CPU size each.
template <bool Rseq>
struct Sharded {
    static constexpr bool kRseq = Rseq;
    static constexpr const char* name = Rseq ? "percore::ShardedRing (rseq)" : "percore::ShardedRing (thread slots)";
    static std::size_t shards() { return Rseq ? percore::max_shards() : 16; }
    static std::size_t per_shard(std::size_t cap) {
        const std::size_t c = cap / percore::max_shards();
        return c < 1024 ? 1024 : c;
    }
    explicit Sharded(std::size_t cap) : r_(per_shard(cap), shards()) {}
    bool push(std::uint64_t v) { return r_.try_push(v); }
    template <class F>
    std::size_t drain(F&& fn) {
        return r_.drain(fn);
    }
    percore::ShardedRing<std::uint64_t> r_;
};

// Start/stop for producer threads that live across the rounds of one run:
// they sleep between rounds (futex), and each notes when it started and
// finished pushing, so a round's time is [first start, last end] and not
// the latency of waking threads up.
struct Gate {
    std::atomic<std::uint64_t> round{0};
    std::atomic<unsigned> done{0};
    std::atomic<bool> quit{false};
    std::atomic<std::int64_t> first_start{0}, last_end{0};
    static std::int64_t now() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    }
    void started(std::int64_t t) {
        std::int64_t v = first_start.load();
        while (t < v && !first_start.compare_exchange_weak(v, t)) {
        }
    }
    void ended(std::int64_t t) {
        std::int64_t v = last_end.load();
        while (t > v && !last_end.compare_exchange_weak(v, t)) {
        }
    }
};

// Switches to the queue's shard backend, if it has one; false (the row
// skipped) where the process has no rseq.
template <class Q>
bool on_backend(benchmark::State& state) {
    if constexpr (requires { Q::kRseq; }) {
        if (!use_backend(Q::kRseq)) {
            state.SkipWithError("backend not available");
            return false;
        }
    }
    return true;
}

template <class Q>
void BM_Push(benchmark::State& state) {
    const unsigned producers = static_cast<unsigned>(state.range(0));
    if (!on_backend<Q>(state)) return;
    // A round must fit: producers x kRound items, in the queue, and in
    // every shard of a ShardedRing (all producers may sit on one CPU); x2
    // because rte_ring and ck_ring hold one less than their size. No more,
    // so that the rounds cycle through memory already faulted in.
    std::size_t cap = 2 * std::bit_ceil(std::size_t{producers} * kRound);
    if constexpr (requires { Q::kRseq; }) cap *= percore::max_shards();
    auto q = std::make_unique<Q>(cap);
    // The consumer drains between rounds from the last CPU, as in
    // BM_Pipeline, so the lines a producer overwrites were last read there
    // for every queue and producer count. (Unpinned, it drained wherever the
    // scheduler put it, and a lone producer on the same CPU found its lines
    // in its own cache: a 2x difference from run to run.)
    pin_to_last();
    Gate g;
    std::atomic<std::uint64_t> pushed_sum{0}, refused{0}, pushed{0};
    alignas(64) std::atomic<bool> expired{false};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < producers; ++t)
        ts.emplace_back([&, t] {
            pin_to(t);
            std::uint64_t seen = 0, sum = 0, bad = 0;
            for (;;) {
                // Spin (yielding) between rounds rather than sleep: a vCPU
                // that went idle takes tens of microseconds to wake up,
                // which would stretch a round by more than its work.
                while (g.round.load(std::memory_order_acquire) == seen && !g.quit.load(std::memory_order_relaxed))
                    std::this_thread::yield();
                if (g.quit.load()) break;
                seen = g.round.load(std::memory_order_acquire);
                const std::uint64_t base = (std::uint64_t{t} << 48) | (seen << 24);
                g.started(Gate::now());
                std::uint64_t i = 0;
                for (; i < kRound; ++i) {
                    // A queue whose producers wait for each other can stall
                    // for a whole time slice when one of them is preempted:
                    // the main thread ends such a round at its deadline and
                    // what got in is counted. (One load of a line nobody
                    // writes during the round: the same small cost for
                    // every queue.)
                    if (expired.load(std::memory_order_relaxed)) [[unlikely]]
                        break;
                    const std::uint64_t v = base + i;
                    if (q->push(v)) sum += v;
                    else ++bad;
                }
                g.ended(Gate::now());
                pushed.fetch_add(i);
                g.done.fetch_add(1, std::memory_order_acq_rel);
            }
            pushed_sum.fetch_add(sum);
            refused.fetch_add(bad);
        });
    std::uint64_t got_sum = 0, got = 0, round = 0, timed = 0, cut = 0;
    auto run_round = [&] {
        g.done.store(0);
        g.first_start.store(INT64_MAX);
        g.last_end.store(INT64_MIN);
        const std::uint64_t before = pushed.load();
        expired.store(false);
        const std::int64_t deadline = Gate::now() + kRoundBudgetNs;
        g.round.store(++round, std::memory_order_release);
        // Sleep until the producers are done, looking at the clock every
        // 500 us (off the clock: the round's time is the producers' own).
        while (g.done.load(std::memory_order_acquire) < producers) {
            std::this_thread::sleep_for(std::chrono::microseconds(500));
            if (Gate::now() > deadline) expired.store(true);
        }
        got += q->drain([&](std::uint64_t v) { got_sum += v; });
        const std::uint64_t n = pushed.load() - before;
        cut += n < std::uint64_t{producers} * kRound;
        return std::pair(static_cast<double>(g.last_end.load() - g.first_start.load()) * 1e-9, n);
    };
    // Off the clock: fault in and cycle the queue's memory. A queue holds
    // two rounds; a thread-slot shard takes one producer's items, so it
    // cycles in 2 x producers rounds.
    for (unsigned i = 0; i < 2 * producers + 4; ++i) run_round();
    std::vector<double> round_rates;
    for (auto _ : state) {
        const auto [secs, n] = run_round();
        state.SetIterationTime(secs);
        timed += n;
        round_rates.push_back(secs > 0 ? static_cast<double>(n) / secs : 0);
    }
    g.quit.store(true);
    for (auto& t : ts) t.join();
    got += q->drain([&](std::uint64_t v) { got_sum += v; });
    sched_setaffinity(0, sizeof g_allowed, &g_allowed);
    if (refused.load() != 0 || got != pushed.load() || got_sum != pushed_sum.load())
        state.SkipWithError("items lost, duplicated or refused");
    state.SetItemsProcessed(static_cast<std::int64_t>(timed));
    state.counters["cut_rounds"] = static_cast<double>(cut);
    // items_per_second is all rounds together, so one round stretched by the
    // host (a vCPU descheduled for a while) weighs on it; the median round
    // is what the queue does when both producers run.
    std::sort(round_rates.begin(), round_rates.end());
    state.counters["median_round_rate"] = round_rates.empty() ? 0 : round_rates[round_rates.size() / 2];
    state.SetLabel(Q::name);
}

template <class Q>
void BM_Pipeline(benchmark::State& state) {
    const unsigned producers = static_cast<unsigned>(state.range(0));
    if (!on_backend<Q>(state)) return;
    std::uint64_t consumed_total = 0;
    double seconds = 0;
    bool ok = true;
    for (auto _ : state) {
        auto q = std::make_unique<Q>(kPipeCapacity);
        std::atomic<bool> stop{false}, producers_done{false};
        std::atomic<unsigned> ready{0};
        std::atomic<std::uint64_t> pushed{0}, pushed_sum{0};
        std::uint64_t got = 0, got_sum = 0;
        std::thread consumer([&] {
            pin_to_last();
            ready.fetch_add(1);
            for (;;) {
                const bool last = producers_done.load(std::memory_order_acquire);
                const std::size_t n = q->drain([&](std::uint64_t v) { got_sum += v; });
                got += n;
                if (n == 0) {
                    if (last) return;
                    std::this_thread::yield();
                }
            }
        });
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < producers; ++t)
            ts.emplace_back([&, t] {
                pin_to(t);
                ready.fetch_add(1);
                while (ready.load() < producers + 1) std::this_thread::yield();
                std::uint64_t n = 0, sum = 0;
                const std::uint64_t base = std::uint64_t{t} << 48;
                while (!stop.load(std::memory_order_relaxed)) {
                    for (int k = 0; k < 64; ++k) {
                        const std::uint64_t v = base + n;
                        while (!q->push(v)) std::this_thread::yield();
                        ++n;
                        sum += v;
                    }
                }
                pushed.fetch_add(n);
                pushed_sum.fetch_add(sum);
            });
        while (ready.load() < producers + 1) std::this_thread::yield();
        const auto t0 = Clock::now();
        std::this_thread::sleep_for(std::chrono::milliseconds(kPipelineMs));
        stop.store(true);
        for (auto& t : ts) t.join();
        const auto t1 = Clock::now();
        producers_done.store(true, std::memory_order_release);
        consumer.join();
        const double s = std::chrono::duration<double>(t1 - t0).count();
        state.SetIterationTime(s);
        seconds += s;
        // Throughput counts what was pushed in the window (every item was
        // consumed: checked below); the consumer's tail after the window is
        // a few ring-fulls at most.
        consumed_total += pushed.load();
        if (got != pushed.load() || got_sum != pushed_sum.load()) ok = false;
    }
    if (!ok) state.SkipWithError("items lost or duplicated");
    state.SetItemsProcessed(static_cast<std::int64_t>(consumed_total));
    state.SetLabel(Q::name);
}

using ShardedRseq = Sharded<true>;
using ShardedThread = Sharded<false>;

// Every queue but ShardedRing (thread slots) runs on the rseq backend (which
// only percore uses).
template <class Q>
void register_queue(const std::string& short_name) {
    benchmark::RegisterBenchmark(("BM_Push/" + short_name).c_str(), BM_Push<Q>)
        ->ArgName("producers")
        ->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond)
        ->Iterations(30);
    benchmark::RegisterBenchmark(("BM_Pipeline/" + short_name).c_str(), BM_Pipeline<Q>)
        ->ArgName("producers")
        ->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
}

}  // namespace

int main(int argc, char** argv) {
    percore_bench::register_probes();
    register_queue<ShardedRseq>("sharded_ring_rseq");
    register_queue<ShardedThread>("sharded_ring_thread");
#ifdef PERCORE_BENCH_DPDK
    register_queue<RteRing<false>>("rte_ring");
    register_queue<RteRing<true>>("rte_ring_rts");
#endif
#ifdef PERCORE_BENCH_CK
    register_queue<CkRing>("ck_ring");
#endif
#ifdef PERCORE_BENCH_TBB
    register_queue<TbbBounded>("tbb_bounded_queue");
#endif
    register_queue<MutexDeque>("mutex_deque");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    std::printf("backend at start: %s\n", percore::backend_name());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
