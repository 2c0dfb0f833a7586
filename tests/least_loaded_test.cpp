// SPDX-License-Identifier: MIT
// LeastLoaded<Conn>: picks the least-loaded connection of the figures it
// reads (local row, global sums, k sampled choices), guards release exactly
// what they took (64 threads, forced migrations, guards released on other
// threads), and the counts are exact at every quiescent point.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "percore/least_loaded.hpp"
#include "stress_scale.hpp"

namespace {

using percore::LeastLoaded;
using percore::LeastLoadedOptions;
using percore::LoadView;

struct Conn {
    explicit Conn(std::size_t i) : id(i) {}
    Conn(const Conn&) = delete;  // made in place
    std::size_t id;
    std::atomic<std::uint64_t> used{0};
};

TEST(LeastLoaded, RejectsEmptyPool) {
    EXPECT_THROW(LeastLoaded<Conn>(0, [](std::size_t i) { return Conn(i); }), std::invalid_argument);
}

// One row (max_shards = 1): local and global views see the same figures,
// whatever shard the caller lands on, so choices are deterministic.
TEST(LeastLoaded, FillsEvenlyAndPicksTheLeast) {
    for (LoadView view : {LoadView::local, LoadView::global}) {
        LeastLoaded<Conn> pool(4, [](std::size_t i) { return Conn(i); }, {.view = view, .max_shards = 1});
        EXPECT_EQ(pool.choices(), 4u);
        std::vector<LeastLoaded<Conn>::Guard> held;
        for (int round = 1; round <= 3; ++round) {
            for (int k = 0; k < 4; ++k) held.push_back(pool.acquire());
            for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(pool.in_flight(i), round) << "connection " << i;
        }
        // Free two requests of connection 2: it is now the least loaded.
        int freed = 0;
        for (auto& g : held)
            if (g && g.index() == 2 && freed < 2) {
                g.release();
                ++freed;
            }
        EXPECT_EQ(pool.in_flight(2), 1);
        auto a = pool.acquire();
        EXPECT_EQ(a.index(), 2u);
        EXPECT_EQ(a->id, 2u);
        auto b = pool.acquire();
        EXPECT_EQ(b.index(), 2u);
        auto c = pool.acquire();  // all at 3: any
        EXPECT_LT(c.index(), 4u);
        held.clear();
        a.release();
        b.release();
        c.release();
        for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(pool.in_flight(i), 0);
    }
}

TEST(LeastLoaded, IdlePoolIsUsedRoundRobin) {
    LeastLoaded<Conn> pool(5, [](std::size_t i) { return Conn(i); }, {.max_shards = 1});
    std::vector<int> hits(5);
    for (int k = 0; k < 500; ++k) hits[pool.acquire().index()]++;  // released at once
    for (int h : hits) EXPECT_EQ(h, 100);
}

TEST(LeastLoaded, GuardMovesAndReleasesOnce) {
    LeastLoaded<Conn> pool(2, [](std::size_t i) { return Conn(i); }, {.max_shards = 1});
    LeastLoaded<Conn>::Guard g = pool.acquire();
    const std::size_t i = g.index();
    LeastLoaded<Conn>::Guard h = std::move(g);
    EXPECT_FALSE(g);
    EXPECT_TRUE(h);
    EXPECT_EQ(pool.in_flight(i), 1);
    g.release();  // moved-from: nothing
    EXPECT_EQ(pool.in_flight(i), 1);
    h = pool.acquire();  // releases the old one
    EXPECT_EQ(pool.in_flight(0) + pool.in_flight(1), 1);
    h.release();
    h.release();
    EXPECT_EQ(pool.in_flight(0) + pool.in_flight(1), 0);
}

TEST(LeastLoaded, FromAVectorOfMovableConnections) {
    LeastLoaded<std::string> pool(std::vector<std::string>{"a:1", "b:2", "c:3"});
    EXPECT_EQ(pool.size(), 3u);
    EXPECT_EQ(pool[1], "b:2");
    auto g = pool.acquire();
    EXPECT_EQ(*g, pool[g.index()]);
}

// Power of two choices over 64 connections: 256 held requests stay close to
// the mean of 4 (the gap grows like log log n; 10 is far out).
TEST(LeastLoaded, TwoChoicesKeepsLargePoolsBalanced) {
    for (LoadView view : {LoadView::local, LoadView::global}) {
        LeastLoaded<Conn> pool(64, [](std::size_t i) { return Conn(i); }, {.view = view, .max_shards = 1});
        EXPECT_EQ(pool.choices(), 2u);
        std::vector<LeastLoaded<Conn>::Guard> held;
        for (int k = 0; k < 256; ++k) held.push_back(pool.acquire());
        std::int64_t mx = 0, sum = 0;
        for (std::size_t i = 0; i < 64; ++i) {
            mx = std::max(mx, pool.in_flight(i));
            sum += pool.in_flight(i);
        }
        EXPECT_EQ(sum, 256);
        EXPECT_LE(mx, 10);
    }
    LeastLoaded<Conn> three(64, [](std::size_t i) { return Conn(i); }, {.choices = 3});
    EXPECT_EQ(three.choices(), 3u);
    LeastLoaded<Conn> all(64, [](std::size_t i) { return Conn(i); }, {.choices = 100});
    EXPECT_EQ(all.choices(), 64u);
}

// Each shard balances its own row: with rows per shard, the global spread
// is bounded by the number of rows in use, not by the number of requests.
TEST(LeastLoaded, LocalViewBoundsSpreadByShards) {
    const std::size_t n = 8;
    LeastLoaded<Conn> pool(n, [](std::size_t i) { return Conn(i); });
    std::vector<LeastLoaded<Conn>::Guard> held;
    for (int k = 0; k < 800; ++k) held.push_back(pool.acquire());
    std::int64_t mx = 0, mn = 1 << 30;
    for (std::size_t i = 0; i < n; ++i) {
        mx = std::max(mx, pool.in_flight(i));
        mn = std::min(mn, pool.in_flight(i));
    }
    EXPECT_LE(static_cast<std::size_t>(mx - mn), percore::max_shards());
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &set)) cpus.push_back(i);
    return cpus;
}

// 64 threads keep a window of requests in flight, hop between CPUs, and
// hand some guards to a neighbour thread to release (a request completed
// elsewhere). At each barrier every thread holds exactly its window: the
// global figures must sum to that exactly; at the end, to zero.
TEST(LeastLoaded, ExactCountsUnderMigrationAndHandOff) {
    for (LoadView view : {LoadView::local, LoadView::global}) {
        const int threads = 64;
        const std::size_t window = 6, n = 12;
        const int phases = 3;
        const std::uint64_t per_phase = scaled(3000);
        const auto cpus = allowed_cpus();
        ASSERT_FALSE(cpus.empty());
        LeastLoaded<Conn> pool(n, [](std::size_t i) { return Conn(i); }, {.view = view});
        std::atomic<int> bad_index{0}, wrong_sum{0}, move_failures{0};
        // Hand-off slots: thread t leaves a guard for thread t+1.
        std::vector<std::mutex> box_mu(threads);
        std::vector<std::deque<LeastLoaded<Conn>::Guard>> box(threads);
        int completions = 0;
        std::barrier sync(threads, [&]() noexcept {
            // Every third barrier of a phase, everyone holds exactly
            // `window` and the boxes are empty: check the sum.
            if (++completions % 3 != 0) return;
            std::int64_t sum = 0;
            for (std::size_t i = 0; i < n; ++i) sum += pool.in_flight(i);
            if (sum != std::int64_t{threads} * static_cast<std::int64_t>(window)) wrong_sum.fetch_add(1);
        });
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                std::mt19937 rng(t);
                std::vector<LeastLoaded<Conn>::Guard> mine;
                for (int phase = 0; phase < phases; ++phase) {
                    for (std::uint64_t i = 0; i < per_phase; ++i) {
                        if (i % 101 == 0 && cpus.size() > 1) {
                            cpu_set_t set;
                            CPU_ZERO(&set);
                            CPU_SET(cpus[rng() % cpus.size()], &set);
                            if (sched_setaffinity(0, sizeof set, &set) != 0) move_failures.fetch_add(1);
                        }
                        auto g = pool.acquire();
                        if (g.index() >= n || g->id != g.index()) bad_index.fetch_add(1);
                        g->used.fetch_add(1, std::memory_order_relaxed);
                        if (rng() % 8 == 0) {
                            std::lock_guard lk(box_mu[(t + 1) % threads]);
                            box[(t + 1) % threads].push_back(std::move(g));
                        } else {
                            mine.push_back(std::move(g));
                        }
                        {
                            std::lock_guard lk(box_mu[t]);
                            while (!box[t].empty()) {
                                box[t].front().release();  // completes a neighbour's request
                                box[t].pop_front();
                            }
                        }
                        while (mine.size() > window) mine.erase(mine.begin() + static_cast<long>(rng() % mine.size()));
                    }
                    // Quiesce: drop hand-offs, hold exactly `window`.
                    sync.arrive_and_wait();
                    {
                        std::lock_guard lk(box_mu[t]);
                        box[t].clear();
                    }
                    sync.arrive_and_wait();
                    while (mine.size() < window) mine.push_back(pool.acquire());
                    sync.arrive_and_wait();  // completion step checks the sum
                }
                mine.clear();
            });
        for (auto& t : ts) t.join();
        EXPECT_EQ(bad_index.load(), 0);
        EXPECT_EQ(move_failures.load(), 0);
        EXPECT_EQ(completions, 3 * phases);
        EXPECT_EQ(wrong_sum.load(), 0);
        for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(pool.in_flight(i), 0) << "connection " << i;
        std::uint64_t used = 0;
        for (std::size_t i = 0; i < n; ++i) used += pool[i].used.load();
        EXPECT_EQ(used, threads * phases * per_phase);
    }
}

}  // namespace
