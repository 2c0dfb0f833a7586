// SPDX-License-Identifier: MIT
// Exactness under contention: many more threads than cores, preemption and
// migration mid-update, thread churn, resets and readers racing writers.
// Run under every backend (see tests/CMakeLists.txt) and under TSan/ASan.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <sched.h>
#include <unistd.h>
#include <thread>
#include <vector>

#include "percore/detail/thread_slot.hpp"
#include "percore/percore.hpp"
#include "stress_scale.hpp"

namespace {

// 64 threads on this machine's 2 CPUs, each adding with random yields so
// the scheduler preempts and migrates them everywhere, including inside
// restartable sequences.
TEST(Stress, SixtyFourThreadsExactTotals) {
    const int threads = 64;
    const std::uint64_t per = scaled(60000);
    percore::Counter c;
    percore::Gauge g;
    percore::CounterGroup<3> grp;
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            std::minstd_rand rng(t);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::uint64_t i = 0; i < per; ++i) {
                c.inc();
                g.add((i & 1) ? 3 : -2);
                grp.add({1, i & 0xff, 2});
                if (rng() % 512 == 0) std::this_thread::yield();
            }
        });
    go.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    const std::uint64_t n = per * threads;
    EXPECT_EQ(c.value(), n);
    std::int64_t per_g = static_cast<std::int64_t>(per / 2) * 3 - static_cast<std::int64_t>(per - per / 2) * 2;
    EXPECT_EQ(g.value(), per_g * threads);
    std::uint64_t bytes = 0;
    for (std::uint64_t i = 0; i < per; ++i) bytes += i & 0xff;
    EXPECT_EQ(grp.value(0), n);
    EXPECT_EQ(grp.value(1), bytes * threads);
    EXPECT_EQ(grp.value(2), 2 * n);
}

// Threads are created and exit continuously while others count; whatever
// an exiting thread added must stay in the total.
TEST(Stress, ThreadChurnKeepsEveryAdd) {
    percore::Counter c;
    const int waves = static_cast<int>(scaled(200));
    const int per_wave = 8;
    const std::uint64_t adds = 2000;
    std::atomic<bool> stop{false};
    std::uint64_t background = 0;
    std::thread steady([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            c.inc();
            ++background;
        }
    });
    for (int w = 0; w < waves; ++w) {
        std::vector<std::thread> ts;
        for (int t = 0; t < per_wave; ++t)
            ts.emplace_back([&] {
                for (std::uint64_t i = 0; i < adds; ++i) c.inc();
            });
        for (auto& t : ts) t.join();
    }
    stop.store(true);
    steady.join();
    EXPECT_EQ(c.value(), background + static_cast<std::uint64_t>(waves) * per_wave * adds);
}

// Thread churn in batches: 10,000 short-lived threads, 16 alive at a time,
// each adding to a counter in its own Arena. Every add stays in the total;
// in thread mode every exiting thread hands its slot back (the live count
// returns to its baseline) and new threads reuse them, so the rows touched
// stay bounded by the threads alive at once, not by the threads ever made.
TEST(Stress, SlotsAreReusedAfterExit) {
    percore::Arena arena;
    percore::Counter c(arena);
    const std::size_t baseline = percore::detail::thread_slots().live();
    const int total = static_cast<int>(scaled(10000)), batch = 16;
    std::atomic<std::size_t> peak_live{0};
    for (int done = 0; done < total; done += batch) {
        std::vector<std::thread> ts;
        for (int t = 0; t < batch; ++t)
            ts.emplace_back([&] {
                c.add(3);
                const std::size_t live = percore::detail::thread_slots().live();
                std::size_t p = peak_live.load();
                while (live > p && !peak_live.compare_exchange_weak(p, live)) {
                }
            });
        for (auto& t : ts) t.join();
    }
    const auto n = static_cast<std::uint64_t>((total + batch - 1) / batch * batch);
    EXPECT_EQ(c.value(), 3 * n);
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    if (percore::backend() == percore::Backend::thread) {
        // Slots are released at thread exit, before join() returns.
        EXPECT_EQ(percore::detail::thread_slots().live(), baseline);
        EXPECT_GT(peak_live.load(), baseline);  // the threads did take slots
        EXPECT_LE(peak_live.load(), baseline + batch);
        // One page per row ever touched: the batch's rows and the shared row.
        EXPECT_LE(arena.resident_bytes(), (baseline + batch + 1) * page);
    } else {
        EXPECT_LE(arena.resident_bytes(), arena.rows() * page);
    }
}

// Resets race with writers: the sum of everything the resets returned plus
// what is left must equal everything added.
TEST(Stress, ResetRacingWritersLosesNothing) {
    percore::Counter c;
    percore::CounterGroup<2> grp;
    const int writers = 16;
    const std::uint64_t per = scaled(100000);
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < writers; ++t)
        ts.emplace_back([&] {
            for (std::uint64_t i = 0; i < per; ++i) {
                c.inc();
                grp.add({1, 10});
                if ((i & 1023) == 0) std::this_thread::yield();
            }
            done.fetch_add(1);
        });
    std::uint64_t cleared = 0, cleared_g0 = 0, cleared_g1 = 0;
    std::vector<std::thread> resetters;
    std::atomic<std::uint64_t> cleared2{0};
    // Two resetters at once: resets also race each other.
    resetters.emplace_back([&] {
        while (done.load() < writers) {
            cleared += c.reset();
            auto g = grp.reset();
            cleared_g0 += g[0];
            cleared_g1 += g[1];
        }
    });
    resetters.emplace_back([&] {
        while (done.load() < writers) cleared2.fetch_add(c.reset());
    });
    for (auto& t : ts) t.join();
    for (auto& t : resetters) t.join();
    const std::uint64_t n = per * writers;
    EXPECT_EQ(cleared + cleared2.load() + c.value(), n);
    EXPECT_EQ(cleared_g0 + grp.value(0), n);
    EXPECT_EQ(cleared_g1 + grp.value(1), 10 * n);
}

// A reader never sees a counter go backwards while nobody resets it.
TEST(Stress, ReaderNeverSeesDecrease) {
    percore::Counter c;
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                c.inc();
                std::thread::id id = std::this_thread::get_id();
                if (std::hash<std::thread::id>{}(id) % 7 == 0) std::this_thread::yield();
            }
        });
    // Churning threads too: their rows are handed over, not cleared.
    std::thread churn([&] {
        while (!stop.load(std::memory_order_relaxed)) std::thread([&] { c.add(2); }).join();
    });
    // Read until the writers have added `target` (bounded by a deadline so
    // a broken build fails instead of hanging).
    std::uint64_t last = 0, decreases = 0, reads = 0;
    const std::uint64_t target = scaled(2'000'000);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (last < target && std::chrono::steady_clock::now() < deadline) {
        std::uint64_t v = c.value();
        decreases += v < last;
        last = std::max(last, v);
        ++reads;
    }
    stop.store(true);
    for (auto& t : ts) t.join();
    churn.join();
    EXPECT_EQ(decreases, 0u) << "in " << reads << " reads";
    EXPECT_GE(last, target);
}

// Max/min trackers and ShardAtomic under contention.
TEST(Stress, ExtremesAndAtomicsUnderContention) {
    percore::MaxGauge mx;
    percore::MinGauge mn;
    percore::ShardAtomic<std::uint64_t> sa;
    const int threads = 32;
    const std::int64_t per = static_cast<std::int64_t>(scaled(20000));
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (std::int64_t i = 0; i < per; ++i) {
                mx.update(t * per + i);
                mn.update(-(t * per + i));
                sa.fetch_add(1);
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(mx.value(), threads * per - 1);
    EXPECT_EQ(mn.value(), -(threads * per - 1));
    EXPECT_EQ(sa.sum(), static_cast<std::uint64_t>(threads * per));
}

// Threads pinned to each allowed CPU in turn with sched_setaffinity while
// counting: forced migrations in the middle of update loops.
TEST(Stress, ForcedMigration) {
    cpu_set_t allowed;
    ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    std::vector<int> cpus;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &allowed)) cpus.push_back(i);
    if (cpus.size() < 2) GTEST_SKIP() << "needs two allowed CPUs";
    percore::Counter c;
    const std::uint64_t per = scaled(200000);
    std::atomic<int> failures{0}, moves{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < per; ++i) {
                if (i % 5000 == 0) {
                    cpu_set_t set;
                    CPU_ZERO(&set);
                    CPU_SET(cpus[(i / 5000 + t) % cpus.size()], &set);
                    if (sched_setaffinity(0, sizeof set, &set) == 0)
                        moves.fetch_add(1);
                    else
                        failures.fetch_add(1);
                }
                c.inc();
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(failures.load(), 0) << "sched_setaffinity failed";
    EXPECT_EQ(moves.load(), static_cast<int>(4 * ((per + 4999) / 5000)));
    EXPECT_EQ(c.value(), 4 * per);
}

// Memory is bounded by shards, not threads: 1000 threads (100 at a time)
// counting in fresh counters touch no more pages than 10 threads did.
TEST(Memory, BoundedByShardsNotThreads) {
    percore::Arena arena;
    std::vector<std::unique_ptr<percore::Counter>> cs;
    for (int i = 0; i < 4096; ++i) cs.push_back(std::make_unique<percore::Counter>(arena));  // 32 KiB per row
    auto run = [&](int total, int batch) {
        for (int done = 0; done < total; done += batch) {
            std::vector<std::thread> ts;
            for (int t = 0; t < batch; ++t)
                ts.emplace_back([&] {
                    for (auto& c : cs) c->inc();
                });
            for (auto& t : ts) t.join();
        }
    };
    run(10, 10);
    const std::size_t after10 = arena.resident_bytes();
    run(1000, 100);
    const std::size_t after1000 = arena.resident_bytes();
    const std::size_t per_row = 4096 * 8;
    // Never more than every row fully touched...
    EXPECT_LE(after1000, arena.rows() * ((per_row + 4095) / 4096 * 4096));
    if (percore::backend() != percore::Backend::thread) {
        // ...and with rseq, 100x the threads adds no rows: only CPUs write.
        EXPECT_LE(after1000, after10 + (per_row + 4095) / 4096 * 4096) << "10 threads: " << after10;
    }
    std::uint64_t total = 0;
    for (auto& c : cs) total += c->value();
    EXPECT_EQ(total, 1010u * 4096);
}

}  // namespace
