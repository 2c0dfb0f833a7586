// SPDX-License-Identifier: MIT
// FlowTable, both layouts: lookups against a model, exact totals under
// contention, removal and expiry racing with writers (no count lost), a
// full table, tombstone churn, and the memory bound.
#include <gtest/gtest.h>

#include <cstdio>

#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "percore/flow_table.hpp"
#include "stress_scale.hpp"

namespace {

struct FiveTuple {
    std::uint32_t src = 0, dst = 0;
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t proto = 0;
    friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
};
struct FiveTupleHash {
    std::size_t operator()(const FiveTuple& k) const noexcept {
        return (std::uint64_t{k.src} << 32 | k.dst) ^ (std::uint64_t{k.sport} << 24 | std::uint64_t{k.dport} << 8 | k.proto);
    }
};

template <class Table>
class FlowTableTest : public ::testing::Test {};

using Layouts = ::testing::Types<percore::FlowTable<std::uint64_t, percore::FlowLayout::shared>,
                                 percore::FlowTable<std::uint64_t, percore::FlowLayout::per_shard>>;
TYPED_TEST_SUITE(FlowTableTest, Layouts);

template <class Table>
std::map<std::uint64_t, typename Table::Values> contents(const Table& t) {
    std::map<std::uint64_t, typename Table::Values> m;
    t.for_each([&](const std::uint64_t& k, const typename Table::Values& v) { m[k] = v; });
    return m;
}

template <class Values>
Values plus(Values a, const Values& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
}

TYPED_TEST(FlowTableTest, CreatesOnFirstSightAndFinds) {
    TypeParam t(100);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_FALSE(t.find(7).has_value());
    t.add(7, {1, 100});
    t.add(7, {1, 50});
    t.add(9, {1, 60});
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.find(7), (typename TypeParam::Values{2, 150}));
    EXPECT_EQ(t.find(9), (typename TypeParam::Values{1, 60}));
    EXPECT_EQ(contents(t).size(), 2u);
    EXPECT_EQ(t.totals(), (typename TypeParam::Values{3, 210}));
    EXPECT_TRUE(t.remove(7));
    EXPECT_FALSE(t.remove(7));
    EXPECT_FALSE(t.find(7).has_value());
    EXPECT_EQ(t.retained(), (typename TypeParam::Values{2, 150}));
    EXPECT_EQ(t.totals(), (typename TypeParam::Values{3, 210}));
    // A removed key comes back as a new flow, counting from zero.
    t.add(7, {1, 1});
    EXPECT_EQ(t.find(7), (typename TypeParam::Values{1, 1}));
    EXPECT_EQ(t.totals(), (typename TypeParam::Values{4, 211}));
}

TYPED_TEST(FlowTableTest, ExpiresOnlyFlowsIdleForAWholeInterval) {
    TypeParam t(100);
    t.add(1, {1, 10});
    t.add(2, {1, 20});
    EXPECT_EQ(t.expire_idle(), 0u);  // both were touched in this interval
    t.add(1, {1, 10});
    EXPECT_EQ(t.expire_idle(), 1u);  // 2 was idle for the whole interval
    EXPECT_FALSE(t.find(2).has_value());
    EXPECT_EQ(t.find(1), (typename TypeParam::Values{2, 20}));
    EXPECT_EQ(t.retained(), (typename TypeParam::Values{1, 20}));
    EXPECT_EQ(t.expire_idle(), 1u);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.retained(), (typename TypeParam::Values{3, 40}));
    EXPECT_EQ(t.totals(), (typename TypeParam::Values{3, 40}));
}

TYPED_TEST(FlowTableTest, FullTableCountsIntoOverflow) {
    TypeParam t(8);
    for (std::uint64_t k = 0; k < 10; ++k) t.add(k, {1, k});
    EXPECT_EQ(t.size(), 8u);
    const auto over = t.overflow();
    EXPECT_EQ(over[0], 2u);
    EXPECT_EQ(t.totals(), (typename TypeParam::Values{10, 45}));
    ASSERT_TRUE(t.remove(0));
    t.add(100, {1, 1});
    EXPECT_TRUE(t.find(100).has_value());
    EXPECT_EQ(t.overflow(), over);
}

// Random adds, removals and expiries against a std::map model; many
// removals leave tombstones that later inserts must reuse or clear.
TYPED_TEST(FlowTableTest, ChurnMatchesModel) {
    using V = typename TypeParam::Values;
    TypeParam t(512);
    std::map<std::uint64_t, V> model;
    V gone{};
    std::mt19937_64 rng(42);
    const std::uint64_t steps = scaled(200000);
    for (std::uint64_t s = 0; s < steps; ++s) {
        const std::uint64_t k = rng() % 700;
        const unsigned op = rng() % 10;
        if (op < 7) {
            if (model.size() < 512 || model.count(k)) {
                t.add(k, {1, k});
                model[k] = plus(model[k], V{1, k});
            }
        } else if (op < 9) {
            const bool had = model.count(k) != 0;
            ASSERT_EQ(t.remove(k), had);
            if (had) {
                gone = plus(gone, model[k]);
                model.erase(k);
            }
        } else if (s % 97 == 0) {
            // Mirror expire_idle's rule: flows not added to since the last call.
            t.expire_idle();
            std::map<std::uint64_t, V> alive;
            for (const auto& [key, v] : contents(t)) alive[key] = v;
            for (auto it = model.begin(); it != model.end();) {
                if (!alive.count(it->first)) {
                    gone = plus(gone, it->second);
                    it = model.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }
    EXPECT_EQ(contents(t), model);
    EXPECT_EQ(t.size(), model.size());
    EXPECT_EQ(t.retained(), gone);
    V all = gone;
    for (const auto& [k, v] : model) all = plus(all, v);
    EXPECT_EQ(t.totals(), all);
}

// 32 threads on 2 cores hammer 4096 flows; per-flow and total counts are
// exact.
TYPED_TEST(FlowTableTest, ExactTotalsUnderContention) {
    using V = typename TypeParam::Values;
    const int threads = 32;
    const std::uint64_t per = scaled(300000);
    TypeParam t(4096);
    std::vector<std::vector<std::uint64_t>> packets(threads, std::vector<std::uint64_t>(4096));
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (int th = 0; th < threads; ++th)
        ts.emplace_back([&, th] {
            std::mt19937_64 rng(th);
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::uint64_t i = 0; i < per; ++i) {
                // Half the threads stick to their own flows (affinity), half
                // spread over all of them.
                const std::uint64_t k = th % 2 ? rng() % 4096 : (rng() % 128) * 32 + th;
                t.add(k, {1, k + 1});
                ++packets[th][k];
                if (i % 2048 == 0) std::this_thread::yield();
            }
        });
    go.store(true, std::memory_order_release);
    for (auto& x : ts) x.join();
    V want{};
    std::map<std::uint64_t, V> per_flow;
    for (int th = 0; th < threads; ++th)
        for (std::uint64_t k = 0; k < 4096; ++k)
            if (packets[th][k]) {
                per_flow[k] = plus(per_flow[k], V{packets[th][k], packets[th][k] * (k + 1)});
                want = plus(want, V{packets[th][k], packets[th][k] * (k + 1)});
            }
    EXPECT_EQ(t.totals(), want);
    EXPECT_EQ(contents(t), per_flow);
}

// Writers add to 3x more keys than fit while an expirer and a remover run
// flat out: flows come and go under the writers' feet, slots are reused,
// the table overflows. Nothing may be lost: totals() equals what the
// writers added, and once quiet, retained + live + overflow == totals.
TYPED_TEST(FlowTableTest, RemovalAndExpiryRacingWritersLoseNothing) {
    using V = typename TypeParam::Values;
    const int writers = 24;
    const std::uint64_t per = scaled(400000);
    TypeParam t(2048);
    std::atomic<bool> go{false}, stop{false};
    std::atomic<std::uint64_t> pk{0}, by{0};
    std::atomic<std::uint64_t> expired{0};
    std::thread expirer([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            expired.fetch_add(t.expire_idle(), std::memory_order_relaxed);
            std::this_thread::yield();
        }
    });
    std::thread remover([&] {
        std::mt19937_64 rng(99);
        while (!stop.load(std::memory_order_relaxed)) {
            t.remove(rng() % 6000);
            if (rng() % 64 == 0) (void)t.totals();  // readers race too
        }
    });
    std::vector<std::thread> ts;
    for (int th = 0; th < writers; ++th)
        ts.emplace_back([&, th] {
            std::mt19937_64 rng(th + 1000);
            std::uint64_t p = 0, b = 0;
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::uint64_t i = 0; i < per; ++i) {
                // Bursty keys: a burst on one key, then a jump, so flows go
                // idle and expire while others are hot.
                const std::uint64_t k = (i / 64 * 7919 + static_cast<std::uint64_t>(th) * 131 + rng() % 4) % 6000;
                const std::uint64_t len = 64 + rng() % 1400;
                t.add(k, {1, len});
                ++p;
                b += len;
            }
            pk.fetch_add(p);
            by.fetch_add(b);
        });
    go.store(true, std::memory_order_release);
    for (auto& x : ts) x.join();
    stop.store(true);
    expirer.join();
    remover.join();

    const V want{pk.load(), by.load()};
    EXPECT_EQ(t.totals(), want);
    t.expire_idle();  // folds adds that raced with removals
    V sum = plus(t.retained(), t.overflow());
    for (const auto& [k, v] : contents(t)) sum = plus(sum, v);
    EXPECT_EQ(sum, want);
    EXPECT_EQ(t.totals(), want);
    // How many flows expired while writers ran depends on scheduling (on a
    // loaded 2-CPU machine, possibly none); the drain below expires all.
    std::printf("%llu flows expired while writers ran\n", static_cast<unsigned long long>(expired.load()));
    // Drain: everything ends up retained (plus overflow).
    while (t.size() != 0) t.expire_idle();
    EXPECT_EQ(plus(t.retained(), t.overflow()), want);
}

// prefetch() is a hint: for keys present, absent, colliding or removed, it
// creates nothing and changes no count, while adds race with it.
TYPED_TEST(FlowTableTest, PrefetchChangesNothing) {
    TypeParam t(64);
    for (std::uint64_t k = 0; k < 32; ++k) t.add(k, {1, k});
    t.remove(5);
    const auto before = contents(t);
    const auto totals = t.totals();
    for (std::uint64_t k = 0; k < 10'000; ++k) t.prefetch(k);
    EXPECT_EQ(contents(t), before);
    EXPECT_EQ(t.totals(), totals);
    EXPECT_EQ(t.size(), 31u);

    std::atomic<bool> done{false};
    std::thread hinter([&] {
        std::uint64_t k = 0;
        while (!done.load(std::memory_order_relaxed)) t.prefetch(k++ % 64);
    });
    const std::uint64_t n = scaled(100'000);
    for (std::uint64_t i = 0; i < n; ++i) t.add(i % 48, {1, 2});
    done.store(true);
    hinter.join();
    EXPECT_EQ(t.totals(), plus(totals, typename TypeParam::Values{n, 2 * n}));
}

TEST(FlowTable, FiveTupleKeys) {
    percore::FlowTable<FiveTuple, percore::FlowLayout::shared, 2, FiveTupleHash> t(1000);
    for (std::uint32_t i = 0; i < 500; ++i) {
        FiveTuple k{0x0a000001, 0x0a000002 + i, static_cast<std::uint16_t>(40000 + i), 443, 6};
        t.add(k, {1, 1500});
        t.add(k, {1, 40});
    }
    EXPECT_EQ(t.size(), 500u);
    FiveTuple k{0x0a000001, 0x0a000002 + 7, 40007, 443, 6};
    EXPECT_EQ(t.find(k), (std::array<std::uint64_t, 2>{2, 1540}));
    k.proto = 17;
    EXPECT_FALSE(t.find(k).has_value());
}

// N = 1 and N = 3 take the unpaired add path of per_shard storage (pairs
// of words commit together only when N is even) and odd-sized records in
// the shared layout.
template <percore::FlowLayout L, std::size_t N>
void CountsNCounters() {
    percore::FlowTable<std::uint64_t, L, N> t(64);
    std::array<std::uint64_t, N> v{}, twice{}, thrice{};
    for (std::size_t i = 0; i < N; ++i) v[i] = i + 1, twice[i] = 2 * (i + 1), thrice[i] = 3 * (i + 1);
    t.add(5, v);
    t.add(5, v);
    t.add(6, v);
    EXPECT_EQ(t.find(5), twice);
    EXPECT_EQ(t.find(6), v);
    EXPECT_TRUE(t.remove(5));
    EXPECT_EQ(t.retained(), twice);
    EXPECT_EQ(t.totals(), thrice);
    t.expire_idle();
    EXPECT_EQ(t.expire_idle(), 1u);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.retained(), thrice);
    EXPECT_EQ(t.totals(), thrice);
}

TEST(FlowTable, OddCounterCounts) {
    CountsNCounters<percore::FlowLayout::shared, 1>();
    CountsNCounters<percore::FlowLayout::shared, 3>();
    CountsNCounters<percore::FlowLayout::per_shard, 1>();
    CountsNCounters<percore::FlowLayout::per_shard, 3>();
}

TEST(FlowTable, RejectsBadSizes) {
    using Shared = percore::FlowTable<std::uint64_t>;
    using PerShard = percore::FlowTable<std::uint64_t, percore::FlowLayout::per_shard>;
    EXPECT_THROW(Shared(0), std::invalid_argument);
    EXPECT_THROW(PerShard(8u << 20), std::invalid_argument);  // 8M x 16 B > one Arena row
}

// The budget: a million two-counter flows in the shared layout fit
// in 64 MB (everything reserved, as if every page were touched).
TEST(FlowTable, MillionSharedFlowsFitIn64MB) {
    percore::FlowTable<std::uint64_t, percore::FlowLayout::shared, 2> u64(1'000'000);
    EXPECT_LE(u64.memory_bytes(), 64'000'000u);
    percore::FlowTable<FiveTuple, percore::FlowLayout::shared, 2, FiveTupleHash> tuple(1'000'000);
    EXPECT_LE(tuple.memory_bytes(), 64'000'000u);
}

}  // namespace
