// SPDX-License-Identifier: MIT
// The statistics patterns under contention: every exact pattern keeps every
// add (also across concurrent resets), transactional patterns never show a
// half-applied group, and the unsynchronized pattern never over-counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "bench/shared_unsync.hpp"
#include "percore/patterns.hpp"
#include "stress_scale.hpp"

namespace {

struct Flow {
    std::uint64_t pkts, bytes;
};
struct Stats {
    std::uint64_t pkts, bytes;
    std::uint64_t gauge;  // each group adds +5 then -5: 0 in any consistent view
    Flow flows[8];
};

const auto kPkts = percore::field(&Stats::pkts);
const auto kBytes = percore::field(&Stats::bytes);
const auto kGauge = percore::field(&Stats::gauge);
percore::Field<Stats> flow_pkts(std::size_t f) { return percore::field(&Stats::flows, f, &Flow::pkts); }
percore::Field<Stats> flow_bytes(std::size_t f) { return percore::field(&Stats::flows, f, &Flow::bytes); }

// One "packet": the counter group of the DPDK Programmer's Guide "Statistics"
// chapter's benchmark, plus the +5/-5 pair.
template <class P>
void packet(P& p, std::size_t flow, std::uint64_t len) {
    p.update([&](auto& tx) {
        tx.add(kPkts, 1);
        tx.add(kGauge, 5);
        tx.add(kBytes, len);
        tx.add(flow_pkts(flow), 1);
        tx.add(flow_bytes(flow), len);
        tx.add(kGauge, std::int64_t{-5});
    });
}

template <class P>
void settle(P& p) {
    if constexpr (requires { p.flush_all(); }) p.flush_all();
}

template <class P>
struct Patterns : ::testing::Test {};

using Exact = ::testing::Types<percore::SharedAtomic<Stats>, percore::SharedLocked<Stats>,
                               percore::SharedLocked<Stats, percore::TicketLock>, percore::BufferedStats<Stats>,
                               percore::PerCoreStats<Stats>, percore::PerCoreSeqcount<Stats>,
                               percore::PerCoreLocked<Stats>, percore::SnapshotStats<Stats>>;
TYPED_TEST_SUITE(Patterns, Exact);

TEST(StatsLayout, FieldsAreWordIndices) {
    EXPECT_EQ(kPkts.word, 0u);
    EXPECT_EQ(kBytes.word, 1u);
    EXPECT_EQ(flow_pkts(0).word, 3u);
    EXPECT_EQ(flow_bytes(7).word, 18u);
    using A = std::array<std::uint64_t, 4>;
    EXPECT_EQ(percore::field_at<A>(3).word, 3u);
    struct Arr {
        std::uint64_t x;
        std::uint64_t v[3];
    };
    EXPECT_EQ(percore::field(&Arr::v, 2).word, 3u);
    static_assert(!percore::StatsLayout<std::pair<std::uint32_t, std::uint64_t>>);  // padding
}

// Threads on few CPUs with random yields (so updates are preempted and
// migrated mid-group), each owning a flow; totals must be exact.
TYPED_TEST(Patterns, ExactUnderContention) {
    TypeParam p;
    const int threads = 8;
    const std::uint64_t per = scaled(40000);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            std::minstd_rand rng(t + 1);
            for (std::uint64_t i = 0; i < per; ++i) {
                packet(p, static_cast<std::size_t>(t), 64 + i % 1400);
                if (rng() % 256 == 0) std::this_thread::yield();
            }
        });
    for (auto& t : ts) t.join();
    settle(p);
    std::uint64_t bytes_per_thread = 0;
    for (std::uint64_t i = 0; i < per; ++i) bytes_per_thread += 64 + i % 1400;
    const Stats s = p.read();
    EXPECT_EQ(s.pkts, per * threads);
    EXPECT_EQ(s.bytes, bytes_per_thread * threads);
    EXPECT_EQ(s.gauge, 0u);
    for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(s.flows[t].pkts, per);
        EXPECT_EQ(s.flows[t].bytes, bytes_per_thread);
    }
    EXPECT_EQ(p.read(kPkts), per * threads);
}

// Resets race with writers: what the resets cleared plus what is left must
// be everything added, for every counter.
TYPED_TEST(Patterns, ResetLosesNothing) {
    TypeParam p;
    const int threads = 4;
    const std::uint64_t per = scaled(30000);
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < per; ++i) packet(p, static_cast<std::size_t>(t), 100);
            done.fetch_add(1);
        });
    std::uint64_t cleared_pkts = 0, cleared_bytes = 0, cleared_flow0 = 0;
    int resets = 0;
    while (done.load() < threads) {
        const Stats c = p.reset();
        cleared_pkts += c.pkts;
        cleared_bytes += c.bytes;
        cleared_flow0 += c.flows[0].pkts;
        ++resets;
        std::this_thread::yield();
    }
    for (auto& t : ts) t.join();
    settle(p);
    const Stats s = p.read();
    EXPECT_EQ(cleared_pkts + s.pkts, per * threads) << resets << " resets";
    EXPECT_EQ(cleared_bytes + s.bytes, per * threads * 100);
    EXPECT_EQ(cleared_flow0 + s.flows[0].pkts, per);
    const Stats after = p.reset();
    EXPECT_EQ(after.pkts, s.pkts);
    EXPECT_EQ(p.read().pkts, 0u);
}

// Patterns that promise whole groups: a concurrent reader never sees a
// packet's bytes without its count, nor the +5 without the -5.
template <class P>
void expect_whole_groups() {
    P p;
    const int writers = 3;
    const std::uint64_t per = scaled(60000);
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < writers; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < per; ++i) {
                packet(p, static_cast<std::size_t>(t), 1000);
                if constexpr (requires { p.hint_flush(); }) p.hint_flush();
            }
            done.fetch_add(1);
        });
    std::uint64_t reads = 0, torn = 0;
    while (done.load() < writers || reads < 10) {
        const Stats s = p.read();
        ++reads;
        bool ok = s.bytes == 1000 * s.pkts && s.gauge == 0;
        for (int f = 0; f < writers; ++f) ok = ok && s.flows[f].bytes == 1000 * s.flows[f].pkts;
        torn += !ok;
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(torn, 0u) << "of " << reads << " reads";
}

TEST(Groups, SharedLockedIsTransactional) { expect_whole_groups<percore::SharedLocked<Stats>>(); }
TEST(Groups, TicketLockedIsTransactional) { expect_whole_groups<percore::SharedLocked<Stats, percore::TicketLock>>(); }
TEST(Groups, BufferedIsTransactional) { expect_whole_groups<percore::BufferedStats<Stats>>(); }
TEST(Groups, SeqcountReadersNeverSeeTornGroups) { expect_whole_groups<percore::PerCoreSeqcount<Stats>>(); }
TEST(Groups, PerCoreLockedIsTransactional) { expect_whole_groups<percore::PerCoreLocked<Stats>>(); }
TEST(Groups, SnapshotIsTransactional) { expect_whole_groups<percore::SnapshotStats<Stats>>(); }

// Seqcount readers retry while writers are busy on their rows; the retries
// are reported, per read and in total.
TEST(Seqcount, RetriesAreReported) {
    percore::PerCoreSeqcount<Stats> p;
    std::atomic<bool> stop{false};
    std::thread w([&] {
        while (!stop.load(std::memory_order_relaxed)) packet(p, 0, 1);
    });
    std::uint64_t mine = 0;
    for (int i = 0; i < 2000; ++i) {
        std::uint64_t r = 0;
        const Stats s = p.read(&r);
        EXPECT_EQ(s.bytes, s.pkts);
        mine += r;
    }
    stop.store(true);
    w.join();
    // The total counts at least the retries this thread saw.
    EXPECT_GE(p.retries(), mine);
    std::printf("[          ] seqcount: %llu retries over 2000 reads\n", static_cast<unsigned long long>(mine));
}

// Shared, unsynchronized: never more than was added, and (usually) less.
// Loss is possible, not required: a run with no overlap is legal.
TEST(SharedUnsync, CanLoseButNeverInvents) {
    percore::bench::SharedUnsync<Stats> p;
    const int threads = 4;
    const std::uint64_t per = scaled(200000);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (std::uint64_t i = 0; i < per; ++i) p.add(kPkts, 1);
        });
    for (auto& t : ts) t.join();
    const std::uint64_t got = p.read(kPkts);
    EXPECT_LE(got, per * threads);
    EXPECT_GT(got, 0u);
    std::printf("[          ] shared no-sync lost %.2f%% of %llu adds\n",
                100.0 * static_cast<double>(per * threads - got) / static_cast<double>(per * threads),
                static_cast<unsigned long long>(per * threads));
    p.reset();
    EXPECT_EQ(p.read(kPkts), 0u);
}

TEST(SharedAtomic, ExchangeReadsAndClears) {
    percore::SharedAtomic<Stats> p;
    p.add(kBytes, 40);
    p.add(kBytes, std::int64_t{-15});
    EXPECT_EQ(p.exchange(kBytes), 25u);
    EXPECT_EQ(p.read(kBytes), 0u);
}

TEST(SharedLocked, ReaderLockSeesOneTransactionAndResets) {
    percore::SharedLocked<Stats> p;
    p.update([](auto& tx) {
        tx.add(kPkts, 2);
        tx.add(kBytes, 3000);
    });
    {
        auto r = p.lock_for_read();
        EXPECT_TRUE(p.lock().is_locked());
        EXPECT_EQ(r.value(kPkts), 2u);
        EXPECT_EQ(r.value(kBytes), 3000u);
        EXPECT_EQ(r.reset(kBytes), 3000u);
        EXPECT_EQ(r.values().bytes, 0u);
    }
    EXPECT_FALSE(p.lock().is_locked());
    EXPECT_EQ(p.read().pkts, 2u);
}

TEST(Locks, TryLockAndMutualExclusion) {
    percore::Spinlock s;
    percore::TicketLock t;
    EXPECT_TRUE(s.try_lock());
    EXPECT_FALSE(s.try_lock());
    s.unlock();
    EXPECT_TRUE(t.try_lock());
    EXPECT_FALSE(t.try_lock());
    t.unlock();
    EXPECT_FALSE(t.is_locked());
    // Plain (non-atomic) increments under each lock from many threads.
    std::uint64_t a = 0, b = 0;
    const std::uint64_t per = scaled(50000);
    std::vector<std::thread> ts;
    for (int i = 0; i < 6; ++i)
        ts.emplace_back([&] {
            for (std::uint64_t k = 0; k < per; ++k) {
                {
                    std::lock_guard g(s);
                    ++a;
                }
                std::lock_guard g(t);
                ++b;
            }
        });
    for (auto& th : ts) th.join();
    EXPECT_EQ(a, 6 * per);
    EXPECT_EQ(b, 6 * per);
}

// N anonymous counters: std::array as the layout.
TEST(StatsLayout, ArrayOfCounters) {
    using A = std::array<std::uint64_t, 3>;
    percore::PerCoreSeqcount<A> p;
    p.update([](auto& tx) {
        tx.add(percore::field_at<A>(0), 1);
        tx.add(percore::field_at<A>(2), 7);
    });
    EXPECT_EQ(p.read(), (A{1, 0, 7}));
}

}  // namespace
