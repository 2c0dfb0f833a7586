// SPDX-License-Identifier: MIT
// Accumulator<T>: every element delivered exactly once (64 threads, thread
// churn, forced migrations, concurrent flushes); the sink never runs twice
// at once for a shard, and a shard's batches arrive in order; the watchdog's
// delay bound, checked on its own accounting (exact under any load), and
// step by step on a manual clock; parking and waking; flush() and the
// destructor deliver everything.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "percore/accumulator.hpp"
#include "stress_scale.hpp"

namespace {

using namespace std::chrono_literals;
using percore::Accumulator;
using percore::AccumulatorOptions;
using percore::BatchInfo;
using percore::FlushReason;

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &set)) cpus.push_back(i);
    return cpus;
}

bool pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

// Waits (polling) for a condition, up to a deadline that only a broken
// implementation reaches.
template <class F>
bool eventually(F&& f, std::chrono::seconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!f()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(100us);
    }
    return true;
}

TEST(Accumulator, RejectsBadOptions) {
    auto sink = [](std::vector<int>&&) {};
    EXPECT_THROW(Accumulator<int>(sink, {.batch_size = 0}), std::invalid_argument);
    EXPECT_THROW(Accumulator<int>(sink, {.max_delay = 0ns}), std::invalid_argument);
    EXPECT_THROW(Accumulator<int>(sink, {.scan_period = -1ns}), std::invalid_argument);
    EXPECT_THROW(Accumulator<int>(sink, {.park_after = 0}), std::invalid_argument);
}

TEST(Accumulator, FullBatchesFlushAndDestructor) {
    std::vector<std::vector<int>> got;
    std::vector<BatchInfo> infos;
    std::mutex mu;
    {
        Accumulator<int> acc(
            [&](std::vector<int>&& b, const BatchInfo& i) {
                std::lock_guard lk(mu);
                got.push_back(std::move(b));
                infos.push_back(i);
            },
            {.batch_size = 8, .max_delay = 1h});  // the watchdog never fires here
        for (int i = 0; i < 20; ++i) acc.add(i);
        {
            std::lock_guard lk(mu);
            // 20 adds from one thread: at least two batches of 8 came out,
            // unless the thread spread its adds over shards (migration,
            // scramble mode, thread slots do not move).
            std::size_t n = 0;
            for (auto& b : got) {
                EXPECT_EQ(b.size(), 8u);
                n += b.size();
            }
            for (auto& i : infos) EXPECT_EQ(i.reason, FlushReason::full);
            EXPECT_LE(n, 16u);
        }
        acc.flush();
        {
            std::lock_guard lk(mu);
            std::size_t n = 0;
            for (auto& b : got) n += b.size();
            EXPECT_EQ(n, 20u);
        }
        acc.add(100);
        acc.add(101);
    }  // the destructor delivers 100 and 101
    std::vector<int> all;
    for (auto& b : got) all.insert(all.end(), b.begin(), b.end());
    std::sort(all.begin(), all.end());
    std::vector<int> want;
    for (int i = 0; i < 20; ++i) want.push_back(i);
    want.push_back(100);
    want.push_back(101);
    EXPECT_EQ(all, want);
    EXPECT_EQ(infos.back().reason, FlushReason::flush);
}

TEST(Accumulator, OneArgumentSinkAndMoveOnlyElements) {
    std::size_t n = 0;
    {
        Accumulator<std::unique_ptr<int>> acc([&](std::vector<std::unique_ptr<int>>&& b) { n += b.size(); },
                                              {.batch_size = 3});
        for (int i = 0; i < 10; ++i) acc.add(std::make_unique<int>(i));
        acc.emplace(new int(7));
    }
    EXPECT_EQ(n, 11u);
}

// The stress: 64 lanes of threads, each lane a sequence of short-lived
// threads (churn) that add, hop between CPUs (forced migrations) and
// sometimes flush. Every element id must come out exactly once; the sink
// flags any overlap of two calls for one shard, and any element of a
// thread that arrives before an earlier element of the same thread in the
// same shard (per-shard order).
TEST(Accumulator, ExactlyOnceUnderChurnAndMigration) {
    const int lanes = 64;
    const int generations = 4;
    const std::uint64_t per = scaled(4000);
    const std::uint64_t total = std::uint64_t{lanes} * generations * per;
    const auto cpus = allowed_cpus();
    ASSERT_FALSE(cpus.empty());

    const std::size_t shards = percore::max_shards();
    std::vector<std::atomic<std::uint8_t>> seen(total);
    std::vector<std::atomic<bool>> inside(shards);
    // last[thread * shards + shard]: the last element index of that thread
    // delivered from that shard (touched only under the shard's delivery
    // turn, which orders its users).
    std::vector<std::int64_t> last(std::size_t{lanes} * generations * shards, -1);
    std::atomic<std::uint64_t> delivered{0}, overlaps{0}, disorder{0}, sink_calls{0};
    std::atomic<int> move_failures{0};

    auto sink = [&](std::vector<std::uint64_t>&& b, const BatchInfo& info) {
        if (inside[info.shard].exchange(true, std::memory_order_acquire)) overlaps.fetch_add(1);
        const std::uint64_t call = sink_calls.fetch_add(1);
        for (std::uint64_t id : b) {
            seen[id].fetch_add(1, std::memory_order_relaxed);
            const std::uint64_t thread = id / per, i = id % per;
            std::int64_t& l = last[thread * shards + info.shard];
            if (static_cast<std::int64_t>(i) <= l) disorder.fetch_add(1);
            l = static_cast<std::int64_t>(i);
        }
        if (call % 16 == 0) std::this_thread::yield();  // widen the window for an overlap
        delivered.fetch_add(b.size(), std::memory_order_relaxed);
        inside[info.shard].store(false, std::memory_order_release);
    };
    {
        Accumulator<std::uint64_t> acc(sink, {.batch_size = 61, .max_delay = 200us, .park_after = 2});
        std::vector<std::thread> lanes_t;
        for (int lane = 0; lane < lanes; ++lane)
            lanes_t.emplace_back([&, lane] {
                for (int g = 0; g < generations; ++g) {
                    std::thread t([&, lane, g] {
                        std::mt19937_64 rng(lane * 131 + g);
                        const std::uint64_t thread = std::uint64_t(lane) * generations + g;
                        for (std::uint64_t i = 0; i < per; ++i) {
                            if (i % 97 == 0 && cpus.size() > 1 && !pin_to(cpus[rng() % cpus.size()]))
                                move_failures.fetch_add(1);
                            acc.add(thread * per + i);
                            if (rng() % 4096 == 0) acc.flush();
                            if (rng() % 1024 == 0) std::this_thread::sleep_for(50us);  // let the watchdog find partials
                        }
                    });
                    t.join();
                }
            });
        for (auto& t : lanes_t) t.join();
        EXPECT_TRUE(eventually([&] { return delivered.load() == total; }))
            << "the watchdog left " << total - delivered.load() << " elements behind";
        acc.flush();  // waits for deliveries in progress, so the statistics are complete
        const auto st = acc.stats();
        EXPECT_EQ(st.elements, total);
        EXPECT_GT(st.batches_full, 0u);
        EXPECT_GT(st.batches_timer + st.batches_flush, 0u);
        EXPECT_EQ(acc.delivery_delay().count(), st.batches_full + st.batches_timer + st.batches_flush);
    }
    EXPECT_EQ(move_failures.load(), 0) << "sched_setaffinity failed";
    EXPECT_EQ(overlaps.load(), 0u) << "the sink ran twice at once for a shard";
    EXPECT_EQ(disorder.load(), 0u) << "a shard's elements arrived out of order";
    EXPECT_EQ(delivered.load(), total);
    std::uint64_t missing = 0, dup = 0;
    for (auto& s : seen) {
        const auto v = s.load();
        missing += v == 0;
        dup += v > 1;
    }
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(dup, 0u);
}

// flush() returns only when every element added before it was called has
// been delivered, even while other threads add and the watchdog runs.
TEST(Accumulator, FlushDeliversEverythingAddedBefore) {
    const int threads = 8;
    const std::uint64_t rounds = scaled(300);
    std::vector<std::atomic<std::uint64_t>> got(threads);
    std::atomic<std::uint64_t> failures{0};
    Accumulator<std::uint32_t> acc(
        [&](std::vector<std::uint32_t>&& b) {
            for (auto v : b) got[v].fetch_add(1, std::memory_order_relaxed);
        },
        {.batch_size = 1000, .max_delay = 50us});
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            std::uint64_t added = 0;
            for (std::uint64_t r = 0; r < rounds; ++r) {
                const std::uint64_t k = 1 + r % 13;
                for (std::uint64_t i = 0; i < k; ++i) acc.add(static_cast<std::uint32_t>(t));
                added += k;
                acc.flush();
                if (got[t].load() != added) failures.fetch_add(1);
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(failures.load(), 0u);
}

std::atomic<std::int64_t> g_fake_now{0};
std::int64_t fake_clock() noexcept { return g_fake_now.load(); }

// The watchdog step by step on a manual clock (no thread): after a pass at
// time t nothing older than max_delay is left, each timer batch's pass was
// planned within max(max_delay, scan_period) of its first element, and
// idle passes park and the next add wakes.
TEST(Accumulator, ManualWatchdogOnAFakeClock) {
    for (const std::int64_t period : {250, 1000, 4000}) {
        const std::int64_t max_delay = 1000;
        g_fake_now = 1'000'000;
        std::map<std::uint64_t, std::int64_t> pending;  // id -> add time
        std::vector<BatchInfo> timer_batches;
        int wakes = 0;
        std::mutex mu;
        Accumulator<std::uint64_t> acc(
            [&](std::vector<std::uint64_t>&& b, const BatchInfo& info) {
                std::lock_guard lk(mu);
                for (auto id : b) EXPECT_EQ(pending.erase(id), 1u);
                if (info.reason == FlushReason::timer) timer_batches.push_back(info);
            },
            {.batch_size = 50,
             .max_delay = std::chrono::nanoseconds(max_delay),
             .scan_period = std::chrono::nanoseconds(period),
             .park_after = 3,
             .watchdog_thread = false,
             .on_wake = [&] { ++wakes; },
             .clock = &fake_clock});
        std::mt19937_64 rng(period);
        std::uint64_t next_id = 0;
        std::int64_t due = acc.scan();
        int parks_seen = 0;
        for (int step = 0; step < 20000; ++step) {
            // Time moves by 0..300 ns; sometimes a long idle gap.
            g_fake_now += (rng() % 64 == 0) ? 20 * max_delay : static_cast<std::int64_t>(rng() % 300);
            const std::int64_t now = g_fake_now.load();
            // Busy and idle stretches of 200 steps (idle ones park it).
            if ((step / 200) % 2 == 0 && rng() % 3 == 0) {
                const int k = 1 + static_cast<int>(rng() % 4);
                for (int i = 0; i < k; ++i) {
                    {
                        std::lock_guard lk(mu);
                        pending[next_id] = now;
                    }
                    const int before = wakes;
                    acc.add(next_id++);
                    if (wakes != before) due = now;  // woken: scan now
                }
            }
            // Scan when asked, and sometimes early (a caller may).
            if (now >= due || rng() % 50 == 0) {
                due = acc.scan();
                if (due == Accumulator<std::uint64_t>::kParked) ++parks_seen;
                std::lock_guard lk(mu);
                for (auto& [id, t] : pending)
                    ASSERT_LT(now - t, max_delay) << "element " << id << " left behind by the pass at " << now;
            }
        }
        for (const auto& b : timer_batches) {
            EXPECT_LE(b.age_ns - b.late_ns, std::max(max_delay, period));
            EXPECT_GE(b.age_ns, max_delay);
        }
        const auto st = acc.stats();
        EXPECT_GT(timer_batches.size(), 10u);
        EXPECT_GT(parks_seen, 0);
        EXPECT_EQ(st.parks, static_cast<std::uint64_t>(parks_seen));
        EXPECT_EQ(st.wakes, static_cast<std::uint64_t>(wakes));
        EXPECT_GT(st.useless_scans, 0u);
    }
}

// With the thread, on the real clock, on a loaded machine: two busy
// threads per CPU compete with the watchdog. The bound is checked on the
// watchdog's own accounting (age_ns - late_ns: when it planned the pass,
// relative to the batch's first add), which scheduling delays cannot move;
// only "everything arrives in the end" uses wall-clock time, with a
// deadline a working watchdog never gets near.
TEST(Accumulator, DelayBoundUnderLoad) {
    const std::int64_t max_delay = 2'000'000, period = 500'000;  // 2 ms, 0.5 ms
    std::atomic<std::uint64_t> delivered{0}, timer_batches{0}, violations{0};
    std::atomic<std::int64_t> worst{0}, worst_late{0};
    Accumulator<int> acc(
        [&](std::vector<int>&& b, const BatchInfo& info) {
            if (info.reason == FlushReason::timer) {
                timer_batches.fetch_add(1);
                const std::int64_t planned_age = info.age_ns - info.late_ns;
                if (planned_age > std::max(max_delay, period)) violations.fetch_add(1);
                std::int64_t w = worst.load();
                while (planned_age > w && !worst.compare_exchange_weak(w, planned_age)) {
                }
                std::int64_t l = worst_late.load();
                while (info.late_ns > l && !worst_late.compare_exchange_weak(l, info.late_ns)) {
                }
            }
            delivered.fetch_add(b.size());
        },
        {.batch_size = 256,
         .max_delay = std::chrono::nanoseconds(max_delay),
         .scan_period = std::chrono::nanoseconds(period),
         .park_after = 3});
    std::atomic<bool> stop{false};
    std::vector<std::thread> load;
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < 2 * hw; ++i)
        load.emplace_back([&] {
            volatile std::uint64_t x = 0;
            while (!stop.load(std::memory_order_relaxed)) x = x + 1;
        });
    const int adders = 4;
    const std::uint64_t per = scaled(3000);
    std::vector<std::thread> ts;
    for (int t = 0; t < adders; ++t)
        ts.emplace_back([&, t] {
            std::mt19937 rng(t);
            for (std::uint64_t i = 0; i < per; ++i) {
                acc.add(t);
                // Bursts and pauses: partial buffers for the timer, idle
                // stretches for parking.
                if (rng() % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 8000));
            }
        });
    for (auto& t : ts) t.join();
    const std::uint64_t total = adders * per;
    EXPECT_TRUE(eventually([&] { return delivered.load() == total; })) << delivered.load() << " of " << total;
    // Idle now: it parks; one more add wakes it, still under load.
    EXPECT_TRUE(eventually([&] { return acc.stats().parks > 0; }));
    EXPECT_TRUE(eventually([&] { return acc.watchdog_parked(); }));
    acc.add(-1);
    EXPECT_TRUE(eventually([&] { return delivered.load() == total + 1; }));
    stop = true;
    for (auto& t : load) t.join();
    acc.flush();
    EXPECT_GT(timer_batches.load(), 0u);
    EXPECT_EQ(violations.load(), 0u) << "worst planned age " << worst.load() << " ns";
    const auto st = acc.stats();
    EXPECT_GT(st.parks, 0u);
    EXPECT_GT(st.wakes, 0u);
    std::printf(
        "[ info ] timer batches %llu, worst planned age %.3f ms (bound %.3f), worst lateness %.3f ms, "
        "scans %llu (useless %llu), parks %llu, wakes %llu\n",
        (unsigned long long)timer_batches.load(), worst.load() / 1e6, std::max(max_delay, period) / 1e6,
        worst_late.load() / 1e6, (unsigned long long)st.scans, (unsigned long long)st.useless_scans,
        (unsigned long long)st.parks, (unsigned long long)st.wakes);
}

// Idle: the watchdog parks; the next add wakes it and the element still
// comes out on the timer.
TEST(Accumulator, ParksWhenIdleAndWakesOnAdd) {
    std::atomic<int> got{0};
    Accumulator<int> acc([&](std::vector<int>&& b) { got += static_cast<int>(b.size()); },
                         {.max_delay = 1ms, .park_after = 2});
    ASSERT_TRUE(eventually([&] { return acc.watchdog_parked(); }));
    const auto parks = acc.stats().parks;
    EXPECT_GE(parks, 1u);
    acc.add(1);
    ASSERT_TRUE(eventually([&] { return got.load() == 1; }));
    acc.flush();  // the delivery's bookkeeping is done
    EXPECT_GE(acc.stats().wakes, 1u);
    EXPECT_EQ(acc.stats().batches_timer, 1u);
    ASSERT_TRUE(eventually([&] { return acc.stats().parks > parks; }));  // parks again
}

// The delivery delay histogram and the BatchInfo ages agree.
TEST(Accumulator, DelayInstrumentation) {
    std::vector<std::int64_t> ages;
    std::mutex mu;
    {
        Accumulator<int> acc(
            [&](std::vector<int>&&, const BatchInfo& i) {
                std::lock_guard lk(mu);
                ages.push_back(i.age_ns);
            },
            {.batch_size = 4, .max_delay = 1ms});
        for (int i = 0; i < 4 * 25; ++i) acc.add(i);
        acc.add(1);
        ASSERT_TRUE(eventually([&] { return acc.stats().elements == 101; }));  // the last one by the timer
        acc.flush();
        const auto h = acc.delivery_delay();
        const auto st = acc.stats();
        std::lock_guard lk(mu);
        EXPECT_EQ(h.count(), ages.size());
        EXPECT_EQ(st.batches_full + st.batches_timer + st.batches_flush, ages.size());
        EXPECT_GE(st.batches_timer, 1u);
        EXPECT_EQ(static_cast<std::int64_t>(h.max()), *std::max_element(ages.begin(), ages.end()));
    }
}

}  // namespace
