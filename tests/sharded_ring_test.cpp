// SPDX-License-Identifier: MIT
// ShardedRing: FIFO per shard, counted drops, one consumer, and the stress
// test: 64 producers on this machine's CPUs, moved between CPUs on purpose
// and interrupted by signals, while the consumer drains; every accepted item
// comes out exactly once (per-item bitmaps, counts, checksums), every
// refused one is a counted drop. Runs on every backend (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "percore/shard.hpp"
#include "percore/sharded_ring.hpp"
#include "affinity.hpp"
#include "stress_scale.hpp"

namespace {

using Ring = percore::ShardedRing<std::uint64_t>;

using percore::test::pin_to;
using percore::test::unpin;

TEST(ShardedRing, CapacityIsPerShardAndRounded) {
    Ring r(100);
    EXPECT_EQ(r.capacity(), 128u);
    EXPECT_EQ(Ring(1).capacity(), 8u);
    EXPECT_EQ(r.shards(), percore::max_shards());
    EXPECT_EQ(Ring(64, 3).shards(), 3u);
    EXPECT_THROW(Ring(0), std::invalid_argument);
    EXPECT_THROW(Ring(Ring::kMaxCapacity + 1), std::invalid_argument);
    EXPECT_EQ(r.size_approx(), 0u);
    EXPECT_EQ(r.drops(), 0u);
}

// One producer: whatever shards its items land in, each shard gives them
// back in push order, and all of them come back.
TEST(ShardedRing, FifoWithinEachShard) {
    Ring r(1 << 16);
    const std::uint64_t n = 50000;
    for (std::uint64_t i = 1; i <= n; ++i) ASSERT_TRUE(r.try_push(i));
    EXPECT_EQ(r.size_approx(), n);
    std::vector<std::uint64_t> seen;
    for (std::size_t s = 0; s <= r.shards(); ++s) {
        std::uint64_t last = 0;
        r.drain_shard(s, [&](std::uint64_t v) {
            EXPECT_GT(v, last) << "shard " << s;
            last = v;
            seen.push_back(v);
        });
    }
    std::sort(seen.begin(), seen.end());
    ASSERT_EQ(seen.size(), n);
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], i + 1);
    EXPECT_EQ(r.size_approx(), 0u);
}

// A full shard refuses, counts the drop on itself, and takes items again
// once the consumer made room.
TEST(ShardedRing, FullShardDropsAndCounts) {
    pin_to(0);
    Ring r(8);
    std::uint64_t ok = 0, refused = 0;
    for (std::uint64_t i = 0; i < 100; ++i) (r.try_push(i) ? ok : refused)++;
    unpin();
    EXPECT_GE(ok, 8u);
    EXPECT_EQ(ok + refused, 100u);
    EXPECT_EQ(r.drops(), refused);
    std::uint64_t per_shard = 0;
    for (std::size_t s = 0; s <= r.shards(); ++s) per_shard += r.drops(s);
    EXPECT_EQ(per_shard, refused);
    EXPECT_EQ(r.drain([](std::uint64_t) {}), ok);
    EXPECT_TRUE(r.try_push(7));
    EXPECT_EQ(r.try_pop(), std::optional<std::uint64_t>(7));
    EXPECT_EQ(r.try_pop(), std::nullopt);
}

TEST(ShardedRing, DrainStopsAtMaxAndTryPopEmpties) {
    Ring r(1024);
    for (std::uint64_t i = 0; i < 300; ++i) ASSERT_TRUE(r.try_push(i));
    std::uint64_t got = 0;
    EXPECT_EQ(r.drain([&](std::uint64_t) { ++got; }, 100), 100u);
    EXPECT_EQ(got, 100u);
    std::uint64_t popped = 0;
    while (r.try_pop()) ++popped;
    EXPECT_EQ(popped, 200u);
    EXPECT_EQ(r.size_approx(), 0u);
}

// An exception from fn consumes the items before it and the one it threw on.
TEST(ShardedRing, DrainThatThrowsKeepsItsPlace) {
    Ring r(64, 1);
    pin_to(0);
    for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(r.try_push(i));
    unpin();
    std::vector<std::uint64_t> got;
    EXPECT_THROW(r.drain([&](std::uint64_t v) {
        got.push_back(v);
        if (got.size() == 4) throw std::runtime_error("stop");
    }),
                 std::runtime_error);
    r.drain([&](std::uint64_t v) { got.push_back(v); });
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got.size(), 10u);
    for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(got[i], i);
}

struct Pair {
    std::uint64_t a, b;
};
struct Small {
    std::uint16_t x;
    std::uint8_t y;
};

TEST(ShardedRing, SixteenAndThreeByteItems) {
    percore::ShardedRing<Pair> r(64);
    for (std::uint64_t i = 0; i < 40; ++i) ASSERT_TRUE(r.try_push(Pair{i, ~i}));
    std::uint64_t n = 0;
    r.drain([&](Pair p) {
        EXPECT_EQ(p.b, ~p.a);
        ++n;
    });
    EXPECT_EQ(n, 40u);
    percore::ShardedRing<Small> s(64);
    ASSERT_TRUE(s.try_push(Small{513, 7}));
    auto v = s.try_pop();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->x, 513);
    EXPECT_EQ(v->y, 7);
}

// Threads that exit hand their slot (thread backend) to the next thread,
// which continues the same ring; nothing is lost across the hand-over.
TEST(ShardedRing, ThreadsComeAndGo) {
    Ring r(1 << 12);
    std::atomic<std::uint64_t> ok{0};
    for (int round = 0; round < 20; ++round) {
        std::vector<std::thread> ts;
        for (int t = 0; t < 6; ++t)
            ts.emplace_back([&] {
                for (int i = 0; i < 100; ++i) ok.fetch_add(r.try_push(1));
            });
        for (auto& t : ts) t.join();
    }
    std::uint64_t sum = 0;
    r.drain([&](std::uint64_t v) { sum += v; });
    EXPECT_EQ(sum, ok.load());
    EXPECT_EQ(ok.load() + r.drops(), 20u * 6 * 100);
}

// ---- the stress test ------------------------------------------------------

constexpr unsigned kProducers = 64;
constexpr std::uint64_t kIdShift = 40;  // item = id << 40 | sequence number
Ring* g_ring = nullptr;
bool g_handler_pushes = false;
std::atomic<std::uint64_t> g_handler_ok{0}, g_handler_sum{0}, g_handler_refused{0}, g_signals{0};
thread_local unsigned t_id = 0;
thread_local std::uint64_t t_handler_seq = 0;
thread_local volatile sig_atomic_t t_handled = 0;

// With rseq the handler pushes too, into whatever shard it runs on: its
// items (id kProducers + producer) interleave with the interrupted push.
void on_signal(int) {
    t_handled = t_handled + 1;
    g_signals.fetch_add(1, std::memory_order_relaxed);
    if (!g_handler_pushes) return;
    const std::uint64_t v = std::uint64_t{kProducers + t_id} << kIdShift | t_handler_seq;
    if (g_ring->try_push(v)) {
        ++t_handler_seq;
        g_handler_ok.fetch_add(1, std::memory_order_relaxed);
        g_handler_sum.fetch_add(v, std::memory_order_relaxed);
    } else {
        g_handler_refused.fetch_add(1, std::memory_order_relaxed);
    }
}

struct Producer {
    std::vector<std::uint8_t> accepted;  // by sequence number
    std::uint64_t ok = 0, refused = 0, sum = 0;
};

// Signals each producer must have handled before it stops.
constexpr sig_atomic_t kSignalsEach = 10;

// The consumer's record: seen[id][seq] counts deliveries; last[shard][id]
// is the last sequence number of id in that shard (FIFO check).
struct Consumer {
    std::vector<std::vector<std::uint8_t>> seen;
    std::vector<std::vector<std::int64_t>> last;
    std::uint64_t n = 0, sum = 0, dup = 0, out_of_order = 0;
    Consumer(std::size_t shards)
        : seen(2 * kProducers), last(shards + 1, std::vector<std::int64_t>(2 * kProducers, -1)) {}
    void take(std::size_t shard, std::uint64_t v) {
        const std::size_t id = v >> kIdShift;
        const std::uint64_t seq = v & ((std::uint64_t{1} << kIdShift) - 1);
        if (id >= seen.size()) {
            ++dup;  // garbage: count it as a failure
            return;
        }
        auto& s = seen[id];
        if (s.size() <= seq) s.resize(seq + 1 + seq / 2, 0);
        if (s[seq]++ != 0) ++dup;
        if (static_cast<std::int64_t>(seq) <= last[shard][id]) ++out_of_order;
        last[shard][id] = static_cast<std::int64_t>(seq);
        ++n;
        sum += v;
    }
};

void stress(std::size_t capacity, std::uint64_t per_producer) {
    Ring ring(capacity);
    g_ring = &ring;
    // A handler may push only where a push never takes a lock: restartable
    // sequences, with a shard for every CPU.
    g_handler_pushes = percore::backend() != percore::Backend::thread && percore::arch::kHasRseqCommit &&
                       ring.shards() >= static_cast<std::size_t>(get_nprocs_conf());
    g_handler_ok = g_handler_sum = g_handler_refused = g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);

    std::vector<Producer> prod(kProducers);
    std::atomic<unsigned> started{0}, finished{0};
    std::vector<std::atomic<bool>> done(kProducers);
    std::vector<std::thread> ts;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
    for (unsigned t = 0; t < kProducers; ++t)
        ts.emplace_back([&, t] {
            t_id = t;
            Producer& p = prod[t];
            started.fetch_add(1);
            while (started.load() < kProducers) std::this_thread::yield();
            // At least per_producer pushes, and on until this thread has
            // handled kSignalsEach signals (so signals land mid-push).
            for (std::uint64_t i = 0; i < per_producer || t_handled < kSignalsEach; ++i) {
                // Move to another CPU every 64 pushes: the next push runs on
                // a different shard while the old one may be mid-drain.
                if ((i & 63) == 0) {
                    pin_to(t + static_cast<unsigned>(i >> 6));
                    if (std::chrono::steady_clock::now() > deadline) break;
                }
                const std::uint64_t v = std::uint64_t{t} << kIdShift | i;
                if (ring.try_push(v)) {
                    p.accepted.push_back(1);
                    ++p.ok;
                    p.sum += v;
                } else {
                    p.accepted.push_back(0);
                    ++p.refused;
                    std::this_thread::yield();  // let the consumer catch up
                }
            }
            sigset_t block;
            sigemptyset(&block);
            sigaddset(&block, SIGUSR1);
            pthread_sigmask(SIG_BLOCK, &block, nullptr);
            done[t].store(true);
            finished.fetch_add(1);
        });
    while (started.load() < kProducers) std::this_thread::yield();
    std::vector<pthread_t> handles;
    for (auto& t : ts) handles.push_back(t.native_handle());
    std::atomic<bool> stop{false};
    std::thread signaller([&] {
        unsigned k = 0;
        while (!stop.load()) {
            const unsigned t = k++ % kProducers;
            if (!done[t].load()) pthread_kill(handles[t], SIGUSR1);
            if (k % kProducers == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });

    // The consumer: drain() and try_pop() in turn, so both paths run
    // against live producers.
    Consumer c(ring.shards());
    auto drain_all = [&] {
        std::size_t got = 0;
        for (std::size_t s = 0; s <= ring.shards(); ++s)
            got += ring.drain_shard(s, [&](std::uint64_t v) { c.take(s, v); });
        return got;
    };
    bool late = false;
    std::uint64_t pops = 0;
    while (finished.load() < kProducers) {
        if (drain_all() == 0) std::this_thread::yield();
        // try_pop does not say which shard an item came from: use it only
        // for the bookkeeping that does not need one (FIFO is checked by
        // drain_shard).
        for (int i = 0; i < 16; ++i) {
            auto v = ring.try_pop();
            if (!v) break;
            ++pops;
            const std::size_t id = *v >> kIdShift;
            const std::uint64_t seq = *v & ((std::uint64_t{1} << kIdShift) - 1);
            if (id >= c.seen.size()) {
                ++c.dup;
                continue;
            }
            auto& s = c.seen[id];
            if (s.size() <= seq) s.resize(seq + 1 + seq / 2, 0);
            if (s[seq]++ != 0) ++c.dup;
            ++c.n;
            c.sum += *v;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            late = true;
            break;
        }
    }
    stop.store(true);
    signaller.join();
    for (auto& t : ts) t.join();
    drain_all();
    ASSERT_FALSE(late) << "producers did not finish";
    for (unsigned t = 0; t < kProducers; ++t) EXPECT_GE(prod[t].accepted.size(), per_producer);

    std::uint64_t ok = 0, refused = 0, sum = 0, missing = 0, ghost = 0;
    for (unsigned t = 0; t < kProducers; ++t) {
        const Producer& p = prod[t];
        ok += p.ok;
        refused += p.refused;
        sum += p.sum;
        for (std::uint64_t i = 0; i < p.accepted.size(); ++i) {
            const std::uint8_t got = i < c.seen[t].size() ? c.seen[t][i] : 0;
            if (p.accepted[i] && got == 0) ++missing;
            if (!p.accepted[i] && got != 0) ++ghost;
        }
    }
    ok += g_handler_ok.load();
    refused += g_handler_refused.load();
    sum += g_handler_sum.load();
    std::printf(
        "[          ] %s, capacity %zu: %llu pushed, %llu refused, %llu signals (%llu handler pushes), "
        "%llu try_pops\n",
        percore::backend_name(), ring.capacity(), static_cast<unsigned long long>(ok),
        static_cast<unsigned long long>(refused), static_cast<unsigned long long>(g_signals.load()),
        static_cast<unsigned long long>(g_handler_ok.load()), static_cast<unsigned long long>(pops));
    EXPECT_EQ(c.dup, 0u) << "items delivered twice (or garbage)";
    EXPECT_EQ(missing, 0u) << "accepted items never delivered";
    EXPECT_EQ(ghost, 0u) << "refused items delivered";
    EXPECT_EQ(c.out_of_order, 0u) << "FIFO broken within a shard";
    EXPECT_EQ(c.n, ok);
    EXPECT_EQ(c.sum, sum);
    EXPECT_EQ(ring.drops(), refused);
    EXPECT_EQ(ring.size_approx(), 0u);
    EXPECT_GE(g_signals.load(), std::uint64_t{kProducers} * kSignalsEach);
    unpin();
}

// Small rings: most pushes meet a full ring at some point, every wrap and
// cached-tail refresh path runs.
TEST(ShardedRingStress, SixtyFourProducersSmallRings) { stress(64, scaled(20000)); }

// Rings that rarely fill: the common path, many items.
TEST(ShardedRingStress, SixtyFourProducersLargeRings) { stress(1 << 14, scaled(40000)); }

}  // namespace
