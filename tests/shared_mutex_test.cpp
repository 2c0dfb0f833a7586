// SPDX-License-Identifier: MIT
// SharedMutex: the API, unlock after a migration and from another thread,
// writer preference, sleeping on both sides, and the mutual-exclusion stress
// test: 64 threads moved between CPUs on purpose, readers and writers
// checking the invariant and plain (non-atomic) data that ThreadSanitizer
// watches. Every test runs with membarrier (where the kernel has it) and
// with the fence fallback; the whole binary runs on every backend and once
// more with PERCORE_MEMBARRIER=0 (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "percore/shard.hpp"
#include "percore/shared_mutex.hpp"
#include "affinity.hpp"
#include "stress_scale.hpp"

namespace {

using percore::SharedMutex;
using Clock = std::chrono::steady_clock;

using percore::test::pin_to;
using percore::test::unpin;

bool membarrier_forced_off() {
    const char* e = std::getenv("PERCORE_MEMBARRIER");
    return e != nullptr && std::strcmp(e, "0") == 0;
}

class SharedMutexTest : public ::testing::TestWithParam<SharedMutex::Ordering> {};

std::string ordering_name(const ::testing::TestParamInfo<SharedMutex::Ordering>& i) {
    return i.param == SharedMutex::Ordering::fences ? "Fences" : "Automatic";
}

TEST_P(SharedMutexTest, OrderingAsAsked) {
    SharedMutex mu(GetParam());
    if (GetParam() == SharedMutex::Ordering::fences || membarrier_forced_off()) EXPECT_FALSE(mu.uses_membarrier());
    else EXPECT_TRUE(mu.uses_membarrier()) << "this kernel has membarrier (Linux >= 4.14)";
    std::printf("[          ] %s, %s\n", percore::backend_name(), mu.uses_membarrier() ? "membarrier" : "fences");
}

TEST_P(SharedMutexTest, ReadersShareWritersExclude) {
    SharedMutex mu(GetParam());
    auto a = mu.lock_shared();
    SharedMutex::ReadHandle b;
    EXPECT_TRUE(mu.try_lock_shared(b));
    EXPECT_EQ(mu.readers_approx(), 2);
    EXPECT_FALSE(mu.try_lock());
    EXPECT_FALSE(mu.writer_pending()) << "a failed try_lock leaves nothing behind";
    mu.unlock_shared(a);
    EXPECT_FALSE(mu.try_lock());
    mu.unlock_shared(b);
    EXPECT_EQ(mu.readers_approx(), 0);
    ASSERT_TRUE(mu.try_lock());
    SharedMutex::ReadHandle c;
    EXPECT_FALSE(mu.try_lock_shared(c));
    EXPECT_EQ(mu.readers_approx(), 0) << "a failed try_lock_shared backs out";
    mu.unlock();
    {
        std::lock_guard w(mu);
        EXPECT_TRUE(mu.writer_pending());
    }
    {
        SharedMutex::ReadLock r(mu);
        EXPECT_EQ(mu.readers_approx(), 1);
    }
    EXPECT_EQ(mu.readers_approx(), 0);
}

// A writer switches readers to the fenced path, and it stays so while
// writers keep coming; a thread that then read-locks 1024 times in a row
// with no writer about switches the lock back (membarrier only; with fences
// the fenced path is the only one).
TEST_P(SharedMutexTest, FencedPathAfterWritersFastAgainWhenQuiet) {
    SharedMutex mu(GetParam());
    const bool mb = mu.uses_membarrier();
    EXPECT_EQ(mu.readers_fenced(), !mb);
    for (int i = 0; i < 3; ++i) {
        mu.lock();
        mu.unlock();
        EXPECT_TRUE(mu.readers_fenced());
        for (int r = 0; r < 100; ++r) mu.unlock_shared(mu.lock_shared());
        EXPECT_TRUE(mu.readers_fenced()) << "100 quiet reads must not be enough";
    }
    for (std::uint32_t r = 0; r < percore::detail::kSharedMutexQuietReads + 10; ++r) mu.unlock_shared(mu.lock_shared());
    EXPECT_EQ(mu.readers_fenced(), !mb);
    std::thread([&] { std::lock_guard w(mu); }).join();
    EXPECT_TRUE(mu.readers_fenced());
    EXPECT_EQ(mu.readers_approx(), 0);
}

// The handle names the shard the lock counted on; unlocking after a move to
// another CPU uncounts that shard (through its atomic word).
TEST_P(SharedMutexTest, UnlockAfterMigration) {
    SharedMutex mu(GetParam());
    for (unsigned k = 0; k < 50; ++k) {
        pin_to(k);
        auto h = mu.lock_shared();
        pin_to(k + 1);
        EXPECT_EQ(mu.readers_approx(), 1);
        mu.unlock_shared(h);
        EXPECT_EQ(mu.readers_approx(), 0);
    }
    unpin();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
}

TEST_P(SharedMutexTest, UnlockFromAnotherThread) {
    SharedMutex mu(GetParam());
    std::vector<SharedMutex::ReadHandle> hs(8);
    std::thread([&] {
        for (auto& h : hs) h = mu.lock_shared();
    }).join();
    EXPECT_EQ(mu.readers_approx(), 8);
    std::thread([&] {
        for (auto& h : hs) mu.unlock_shared(h);
    }).join();
    EXPECT_EQ(mu.readers_approx(), 0);
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
}

// Once a writer waits, new readers wait too; the writer gets in as soon as
// the readers that were inside leave.
TEST_P(SharedMutexTest, WaitingWriterStopsNewReaders) {
    SharedMutex mu(GetParam());
    auto inside = mu.lock_shared();
    std::atomic<bool> wrote{false};
    std::thread writer([&] {
        mu.lock();
        wrote = true;
        mu.unlock();
    });
    while (!mu.writer_pending()) std::this_thread::yield();
    SharedMutex::ReadHandle h;
    EXPECT_FALSE(mu.try_lock_shared(h)) << "a reader got past a waiting writer";
    std::atomic<bool> late_reader_in{false};
    std::thread late([&] {
        auto r = mu.lock_shared();
        EXPECT_TRUE(wrote.load()) << "the late reader went before the waiting writer";
        late_reader_in = true;
        mu.unlock_shared(r);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(wrote.load());
    EXPECT_FALSE(late_reader_in.load());
    mu.unlock_shared(inside);
    writer.join();
    late.join();
    EXPECT_TRUE(wrote.load());
    EXPECT_TRUE(late_reader_in.load());
}

// Readers overlap so that the reader count never drops to zero; a
// reader-preferring lock would starve the writer forever. Each write must
// get in promptly.
TEST_P(SharedMutexTest, ReadersNeverStarveAWriter) {
    SharedMutex mu(GetParam());
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t)
        readers.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                SharedMutex::ReadLock r(mu);
                const auto until = Clock::now() + std::chrono::microseconds(50);
                while (Clock::now() < until) {
                }
            }
        });
    double worst_ms = 0;
    for (int i = 0; i < 20; ++i) {
        const auto t0 = Clock::now();
        mu.lock();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        worst_ms = std::max(worst_ms, ms);
        mu.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    stop = true;
    for (auto& t : readers) t.join();
    std::printf("[          ] worst writer wait behind 4 overlapping readers: %.2f ms\n", worst_ms);
    EXPECT_LT(worst_ms, 2000.0);
}

// Long holds on both sides: the waiting side sleeps and is woken.
TEST_P(SharedMutexTest, SleepersAreWoken) {
    SharedMutex mu(GetParam());
    for (int round = 0; round < 5; ++round) {
        auto r = mu.lock_shared();
        std::thread writer([&] { std::lock_guard w(mu); });
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the writer goes to sleep
        mu.unlock_shared(r);
        writer.join();

        mu.lock();
        std::vector<std::thread> readers;
        std::atomic<int> in{0};
        for (int t = 0; t < 3; ++t)
            readers.emplace_back([&] {
                SharedMutex::ReadLock g(mu);
                in.fetch_add(1);
            });
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the readers go to sleep
        EXPECT_EQ(in.load(), 0);
        mu.unlock();
        for (auto& t : readers) t.join();
        EXPECT_EQ(in.load(), 3);
    }
    EXPECT_EQ(mu.readers_approx(), 0);
}

// The stress test. Writers set every word of `data` to a new value; readers
// check that all words agree (no torn write visible) and that no writer is
// inside; writers check that nobody else is. The data is plain memory, so
// under ThreadSanitizer any access not ordered by the lock is a reported
// race. Threads move between CPUs every few operations.
TEST_P(SharedMutexTest, MutualExclusionUnderMigration) {
    SharedMutex mu(GetParam());
    constexpr unsigned kThreads = 64;
    const std::uint64_t ops = scaled(20000);
    std::uint64_t data[8] = {};
    std::atomic<int> readers_in{0}, writers_in{0};
    std::atomic<std::uint64_t> violations{0}, torn{0}, reads{0}, writes{0};
    std::atomic<unsigned> ready{0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < kThreads; ++t)
        ts.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < kThreads) std::this_thread::yield();
            std::uint64_t x = 0x9e3779b97f4a7c15ull * (t + 1);
            std::uint64_t r = 0, w = 0;
            for (std::uint64_t i = 0; i < ops; ++i) {
                if ((i & 31) == 0) pin_to(t + static_cast<unsigned>(i >> 5));
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (x % 50 == 0) {  // 2% writes
                    std::lock_guard g(mu);
                    if (writers_in.fetch_add(1) != 0 || readers_in.load() != 0) violations.fetch_add(1);
                    const std::uint64_t v = data[0] + 1;
                    for (auto& d : data) d = v;
                    writers_in.fetch_sub(1);
                    ++w;
                } else {
                    const auto h = mu.lock_shared();
                    readers_in.fetch_add(1);
                    if (writers_in.load() != 0) violations.fetch_add(1);
                    const std::uint64_t v = data[0];
                    for (auto& d : data)
                        if (d != v) torn.fetch_add(1);
                    // A migration inside the critical section, now and then:
                    // the unlock then goes to the old shard's atomic word.
                    if ((i & 255) == 7) pin_to(t + 1 + static_cast<unsigned>(i >> 5));
                    readers_in.fetch_sub(1);
                    mu.unlock_shared(h);
                    ++r;
                }
            }
            reads.fetch_add(r);
            writes.fetch_add(w);
        });
    for (auto& t : ts) t.join();
    std::printf("[          ] %s, %s: %llu reads, %llu writes by %u threads\n", percore::backend_name(),
                mu.uses_membarrier() ? "membarrier" : "fences", static_cast<unsigned long long>(reads.load()),
                static_cast<unsigned long long>(writes.load()), kThreads);
    EXPECT_EQ(violations.load(), 0u);
    EXPECT_EQ(torn.load(), 0u);
    EXPECT_EQ(data[0], writes.load());
    EXPECT_EQ(mu.readers_approx(), 0);
    EXPECT_FALSE(mu.writer_pending());
}

INSTANTIATE_TEST_SUITE_P(Orderings, SharedMutexTest,
                         ::testing::Values(SharedMutex::Ordering::automatic, SharedMutex::Ordering::fences),
                         ordering_name);

}  // namespace
