// SPDX-License-Identifier: MIT
// WriteBuffer: flush, try_flush, hint_flush and threshold semantics on one
// thread (pinned, so its shard stays put; skipped in scramble mode, where
// the shard changes on every call by design), then exactness and
// transactions under contention from many threads, including threads that
// exit with adds still buffered.
#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "percore/shard.hpp"
#include "percore/spinlock.hpp"
#include "percore/patterns/write_buffer.hpp"
#include "stress_scale.hpp"

namespace {

// Keeps the calling thread on its current CPU for the test's duration.
struct Pin {
    cpu_set_t old;
    Pin() {
        sched_getaffinity(0, sizeof(old), &old);
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        sched_setaffinity(0, sizeof(one), &one);
    }
    ~Pin() { sched_setaffinity(0, sizeof(old), &old); }
};

std::uint64_t load(const std::uint64_t& w) {
    return std::atomic_ref<const std::uint64_t>(w).load(std::memory_order_relaxed);
}

#define SKIP_IF_SCRAMBLED() \
    if (percore::scramble()) GTEST_SKIP() << "shard changes on every call in scramble mode"

TEST(WriteBuffer, FlushAppliesWhatWasScheduled) {
    SKIP_IF_SCRAMBLED();
    Pin pin;
    percore::Spinlock lock;
    alignas(64) std::uint64_t a = 0, b = 0;
    percore::WriteBuffer wb(lock, {.capacity = 16, .soft_threshold = 16, .hint_period = 100});
    wb.schedule_add(&a, 5);
    wb.schedule_add(&b, std::int64_t{-2});
    wb.schedule_add(&b, 7u);
    EXPECT_EQ(load(a), 0u);  // buffered, not applied
    EXPECT_EQ(wb.pending(), 3u);
    wb.flush();
    EXPECT_EQ(wb.pending(), 0u);
    EXPECT_EQ(load(a), 5u);
    EXPECT_EQ(load(b), 5u);  // signed operand subtracts
    EXPECT_EQ(wb.flushes(), 1u);
}

TEST(WriteBuffer, TryFlushDoesNotWaitForTheLock) {
    SKIP_IF_SCRAMBLED();
    Pin pin;
    percore::Spinlock lock;
    alignas(64) std::uint64_t a = 0;
    percore::WriteBuffer wb(lock, {.capacity = 16, .soft_threshold = 16, .hint_period = 100});
    wb.schedule_add(&a, 1);
    lock.lock();  // a reader holds the statistics lock
    EXPECT_FALSE(wb.try_flush());
    EXPECT_EQ(wb.pending(), 1u);
    EXPECT_EQ(wb.busy_tries(), 1u);
    lock.unlock();
    EXPECT_TRUE(wb.try_flush());
    EXPECT_EQ(load(a), 1u);
    EXPECT_TRUE(wb.try_flush());  // nothing pending: trivially done
}

TEST(WriteBuffer, HintFlushFlushesEveryNthCall) {
    SKIP_IF_SCRAMBLED();
    Pin pin;
    percore::Spinlock lock;
    alignas(64) std::uint64_t a = 0;
    percore::WriteBuffer wb(lock, {.capacity = 64, .soft_threshold = 64, .hint_period = 4});
    for (int round = 1; round <= 3; ++round) {
        for (int call = 1; call <= 4; ++call) {
            wb.schedule_add(&a, 1);
            const bool flushed = wb.hint_flush();
            EXPECT_EQ(flushed, call == 4) << "round " << round << " call " << call;
            EXPECT_EQ(load(a), static_cast<std::uint64_t>(call == 4 ? 4 * round : 4 * (round - 1)));
        }
    }
    // A flush in between restarts the count.
    wb.hint_flush();
    wb.hint_flush();
    wb.schedule_add(&a, 1);
    wb.flush();
    EXPECT_FALSE(wb.hint_flush());
    EXPECT_FALSE(wb.hint_flush());
    EXPECT_FALSE(wb.hint_flush());
}

TEST(WriteBuffer, SoftThresholdTriesCapacityForces) {
    SKIP_IF_SCRAMBLED();
    Pin pin;
    percore::Spinlock lock;
    alignas(64) std::uint64_t a = 0;
    percore::WriteBuffer wb(lock, {.capacity = 8, .soft_threshold = 4, .hint_period = 100});
    for (int i = 0; i < 3; ++i) wb.schedule_add(&a, 1);
    EXPECT_EQ(load(a), 0u);
    wb.schedule_add(&a, 1);  // reaches the soft threshold, lock free: flushed
    EXPECT_EQ(load(a), 4u);
    EXPECT_EQ(wb.pending(), 0u);
    lock.lock();
    for (int i = 0; i < 8; ++i) wb.schedule_add(&a, 1);  // soft attempts fail, buffer fills
    EXPECT_EQ(wb.pending(), 8u);
    EXPECT_GE(wb.busy_tries(), 5u);
    lock.unlock();
    wb.schedule_add(&a, 1);  // would overflow: flushes the 8 first (blocking)
    EXPECT_EQ(load(a), 12u);
    EXPECT_EQ(wb.pending(), 1u);
}

TEST(WriteBuffer, OversizedTransactionIsAppliedDirectly) {
    percore::Spinlock lock;
    alignas(64) std::uint64_t w[6] = {};
    percore::WriteBuffer wb(lock, {.capacity = 4, .soft_threshold = 4, .hint_period = 100});
    std::vector<percore::AddOp> tx;
    for (auto& x : w) tx.push_back({&x, 3});
    wb.schedule_add(tx);
    for (auto& x : w) EXPECT_EQ(load(x), 3u);
}

TEST(WriteBuffer, DestructorAppliesEverything) {
    percore::Spinlock lock;
    alignas(64) std::uint64_t a = 0;
    {
        percore::WriteBuffer wb(lock, {.capacity = 64, .soft_threshold = 64, .hint_period = 100});
        std::thread([&] { wb.schedule_add(&a, 9); }).join();  // that thread is gone
        wb.schedule_add(&a, 1);
    }
    EXPECT_EQ(load(a), 10u);
}

// Many threads, short-lived ones too, schedule transactions {pkts +1,
// bytes +1000, gauge +5, gauge -5}. A reader holding the lock must always
// see bytes == 1000 * pkts and gauge == 0; the totals must be exact.
TEST(WriteBuffer, TransactionsAreAtomicAndExact) {
    percore::Spinlock lock;
    struct alignas(64) Target {
        std::uint64_t pkts = 0, bytes = 0, gauge = 0;
    } t;
    percore::WriteBuffer wb(lock, {.capacity = 32, .soft_threshold = 24, .hint_period = 3});
    const std::uint64_t per = scaled(30000);
    const int steady = 4, waves = static_cast<int>(scaled(20)), per_wave = 4;
    const std::uint64_t wave_adds = 500;
    auto tx = [&] {
        wb.schedule_add({{&t.pkts, 1}, {&t.bytes, 1000}, {&t.gauge, 5}, {&t.gauge, static_cast<std::uint64_t>(-5)}});
    };
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < steady; ++i)
        ts.emplace_back([&] {
            for (std::uint64_t k = 0; k < per; ++k) {
                tx();
                if (k % 7 == 0) wb.hint_flush();
                if (k % 101 == 0) wb.try_flush();
            }
            done.fetch_add(1);
        });
    ts.emplace_back([&] {
        for (int w = 0; w < waves; ++w) {
            std::vector<std::thread> wave;
            for (int i = 0; i < per_wave; ++i)
                wave.emplace_back([&] {
                    for (std::uint64_t k = 0; k < wave_adds; ++k) tx();
                });
            for (auto& x : wave) x.join();
        }
        done.fetch_add(1);
    });
    std::uint64_t reads = 0, torn = 0, last = 0, backwards = 0;
    while (done.load() < steady + 1) {
        std::lock_guard g(lock);
        const std::uint64_t p = load(t.pkts), b = load(t.bytes), gg = load(t.gauge);
        torn += b != 1000 * p || gg != 0;
        backwards += p < last;
        last = p;
        ++reads;
    }
    for (auto& x : ts) x.join();
    wb.flush_all();
    const std::uint64_t n = per * steady + static_cast<std::uint64_t>(waves) * per_wave * wave_adds;
    EXPECT_EQ(torn, 0u) << "of " << reads << " locked reads";
    EXPECT_EQ(backwards, 0u);
    EXPECT_EQ(load(t.pkts), n);
    EXPECT_EQ(load(t.bytes), 1000 * n);
    EXPECT_EQ(load(t.gauge), 0u);
    EXPECT_EQ(wb.pending_all(), 0u);
}

TEST(WriteBuffer, RejectsZeroCapacity) {
    percore::Spinlock lock;
    EXPECT_THROW(percore::WriteBuffer(lock, {.capacity = 0}), std::invalid_argument);
}

}  // namespace
