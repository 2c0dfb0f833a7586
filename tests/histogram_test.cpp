// SPDX-License-Identifier: MIT
// Histogram: bucket layout, percentiles against exact sorted data, merge,
// interval deltas, exporter views, clamping of bad inputs, and exact counts
// under contention (many more threads than cores).
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "percore/histogram.hpp"
#include "stress_scale.hpp"

namespace {

using percore::Histogram;
using percore::HistogramLayout;
using percore::HistogramSnapshot;

TEST(HistogramLayout, BucketsTileTheRangeWithinPrecision) {
    for (unsigned digits = 1; digits <= 4; ++digits) {
        for (std::uint64_t highest : {std::uint64_t{1}, std::uint64_t{1000}, HistogramLayout::kOneHourNs,
                                      std::numeric_limits<std::uint64_t>::max()}) {
            HistogramLayout l(digits, highest);
            const double tol = std::pow(10.0, -static_cast<double>(digits));
            EXPECT_LE(l.relative_error(), tol);
            EXPECT_EQ(l.lower(0), 0u);
            EXPECT_LT(l.index(highest), l.buckets());
            for (std::size_t i = 0; i + 1 < l.buckets(); ++i) {
                ASSERT_EQ(l.upper(i) + 1, l.lower(i + 1)) << "digits " << digits << " bucket " << i;
                const std::uint64_t width = l.upper(i) - l.lower(i) + 1;
                ASSERT_TRUE(width == 1 || static_cast<double>(width - 1) <= tol * static_cast<double>(l.lower(i)));
            }
            std::mt19937_64 rng(digits);
            for (int k = 0; k < 20000; ++k) {
                const std::uint64_t v = (rng() >> (rng() % 64)) % (highest == ~0ull ? highest : highest + 1);
                const std::size_t i = l.index(v);
                ASSERT_LE(l.lower(i), v);
                ASSERT_GE(l.upper(i), v);
            }
        }
    }
}

TEST(HistogramLayout, RejectsBadConfiguration) {
    EXPECT_THROW(HistogramLayout(0), std::invalid_argument);
    EXPECT_THROW(HistogramLayout(5), std::invalid_argument);
    EXPECT_THROW(HistogramLayout(2, 0), std::invalid_argument);
}

// Heavy-tailed latencies: mostly microseconds, some milliseconds, a few
// seconds, like an RPC service.
std::vector<std::uint64_t> latencies(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> body(std::log(40'000.0), 0.6);
    std::lognormal_distribution<double> tail(std::log(5'000'000.0), 1.5);
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) x = static_cast<std::uint64_t>(rng() % 100 < 97 ? body(rng) : tail(rng));
    return v;
}

void expect_percentiles_within_precision(const std::vector<std::uint64_t>& data, const HistogramSnapshot& s) {
    std::vector<std::uint64_t> sorted = data;
    std::sort(sorted.begin(), sorted.end());
    const double err = std::pow(10.0, -static_cast<double>(s.layout().digits()));
    for (double q : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
        const auto rank = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(sorted.size()))));
        const std::uint64_t exact = sorted[rank - 1];
        const std::uint64_t got = s.percentile(q);
        EXPECT_GE(got, exact) << "q=" << q;
        EXPECT_LE(static_cast<double>(got - exact), err * static_cast<double>(exact)) << "q=" << q;
    }
    EXPECT_EQ(s.percentile(0), sorted.front());
    EXPECT_EQ(s.percentile(100), sorted.back());
}

TEST(Histogram, PercentilesMatchSortedDataWithinPrecision) {
    const auto data = latencies(scaled(200000), 7);
    for (unsigned digits = 1; digits <= 3; ++digits) {
        percore::Arena arena;
        Histogram h(digits, HistogramLayout::kOneHourNs, arena);
        std::uint64_t sum = 0;
        for (std::uint64_t v : data) {
            h.record(v);
            sum += v;
        }
        const auto s = h.snapshot();
        EXPECT_EQ(s.count(), data.size());
        EXPECT_EQ(s.sum(), sum);
        EXPECT_EQ(s.min(), *std::min_element(data.begin(), data.end()));
        EXPECT_EQ(s.max(), *std::max_element(data.begin(), data.end()));
        EXPECT_DOUBLE_EQ(s.mean(), static_cast<double>(sum) / static_cast<double>(data.size()));
        EXPECT_EQ(s.out_of_range(), 0u);
        expect_percentiles_within_precision(data, s);
    }
}

TEST(Histogram, SmallValuesAreExact) {
    Histogram h(2);
    for (std::uint64_t v = 0; v < 256; ++v) h.record(v);
    const auto s = h.snapshot();
    // Below 2^(p+1) = 256 every value has its own bucket.
    for (double q : {10.0, 50.0, 90.0})
        EXPECT_EQ(s.percentile(q), static_cast<std::uint64_t>(std::ceil(q / 100.0 * 256)) - 1);
    std::uint64_t buckets = 0;
    s.for_each_bucket([&](const percore::HistogramBucket& b) {
        EXPECT_EQ(b.lower, b.upper);
        EXPECT_EQ(b.count, 1u);
        ++buckets;
    });
    EXPECT_EQ(buckets, 256u);
}

TEST(Histogram, EmptySnapshot) {
    Histogram h;
    const auto s = h.snapshot();
    EXPECT_EQ(s.count(), 0u);
    EXPECT_EQ(s.min(), 0u);
    EXPECT_EQ(s.max(), 0u);
    EXPECT_EQ(s.mean(), 0.0);
    EXPECT_EQ(s.percentile(50), 0u);
    EXPECT_TRUE(s.cumulative().empty());
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
    const auto a = latencies(scaled(50000), 1), b = latencies(scaled(70000), 2);
    Histogram ha, hb, all;
    for (auto v : a) ha.record(v), all.record(v);
    for (auto v : b) hb.record(v + 1000), all.record(v + 1000);
    auto merged = ha.snapshot();
    merged.merge(hb.snapshot());
    const auto want = all.snapshot();
    EXPECT_EQ(merged.count(), want.count());
    EXPECT_EQ(merged.sum(), want.sum());
    EXPECT_EQ(merged.min(), want.min());
    EXPECT_EQ(merged.max(), want.max());
    std::vector<percore::HistogramBucket> x, y;
    merged.for_each_bucket([&](const auto& bk) { x.push_back(bk); });
    want.for_each_bucket([&](const auto& bk) { y.push_back(bk); });
    ASSERT_EQ(x.size(), y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(x[i].lower, y[i].lower);
        EXPECT_EQ(x[i].count, y[i].count);
    }
    for (double q : {50.0, 90.0, 99.0, 99.9}) EXPECT_EQ(merged.percentile(q), want.percentile(q));
    // Merging into an empty snapshot takes the other's extremes.
    HistogramSnapshot empty;
    empty.merge(want);
    EXPECT_EQ(empty.min(), want.min());
    EXPECT_EQ(empty.max(), want.max());
    // Different layouts do not merge.
    Histogram other(3);
    EXPECT_THROW(merged.merge(other.snapshot()), std::invalid_argument);
}

TEST(Histogram, OutOfRangeIsClampedAndCounted) {
    Histogram h(2, 1'000'000);
    h.record(std::numeric_limits<std::uint64_t>::max());
    h.record(1'000'001);
    h.record(1'000'000);  // the highest value itself is in range
    h.record(std::chrono::nanoseconds(-5));
    h.record(std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::min()));
    h.record(500);
    const auto s = h.snapshot();
    EXPECT_EQ(s.count(), 6u);
    EXPECT_EQ(s.out_of_range(), 4u);
    EXPECT_EQ(s.above_range(), 2u);
    EXPECT_EQ(s.max(), 1'000'000u);
    EXPECT_EQ(s.min(), 0u);
    EXPECT_EQ(s.sum(), 3'000'000u + 500);
    EXPECT_EQ(s.percentile(100), 1'000'000u);
    // Exporters see clamped values only in +Inf: the finite buckets hold
    // the in-range four.
    const auto cum = s.cumulative();
    ASSERT_FALSE(cum.empty());
    EXPECT_EQ(cum.back().count, 4u);
    const std::uint64_t bounds[] = {100, 1000, 2'000'000};
    const auto fixed = s.cumulative(bounds);
    EXPECT_EQ(fixed[0].count, 2u);  // the two negatives, recorded as 0
    EXPECT_EQ(fixed[1].count, 3u);
    EXPECT_EQ(fixed[2].count, 4u);
}

TEST(Histogram, CumulativeAtBucketEdgesIsExact) {
    const auto data = latencies(scaled(30000), 3);
    Histogram h;
    for (auto v : data) h.record(v);
    const auto s = h.snapshot();
    std::vector<std::uint64_t> edges;
    for (std::uint64_t x : {1000u, 10000u, 50000u, 1000000u, 100000000u}) edges.push_back(s.layout().upper(s.layout().index(x)));
    const auto got = s.cumulative(edges);
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const auto want = std::count_if(data.begin(), data.end(), [&](std::uint64_t v) { return v <= edges[i]; });
        EXPECT_EQ(got[i].count, static_cast<std::uint64_t>(want)) << edges[i];
    }
    // The per-bucket view ends at the total.
    EXPECT_EQ(s.cumulative().back().count, s.count());
}

TEST(Histogram, SinceGivesTheInterval) {
    Histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v * 1000);
    const auto first = h.snapshot();
    for (std::uint64_t v = 1; v <= 500; ++v) h.record(v * 10);
    const auto d = h.snapshot().since(first);
    EXPECT_EQ(d.count(), 500u);
    EXPECT_EQ(d.sum(), 10u * 500 * 501 / 2);
    EXPECT_EQ(d.min(), 10u);
    EXPECT_GE(d.max(), 5000u);
    EXPECT_LE(static_cast<double>(d.max() - 5000), 5000 * d.layout().relative_error());
    EXPECT_THROW(first.since(h.snapshot()), std::invalid_argument);
}

// 24 threads on 2 cores, preempted mid-record: every bucket count, the sum
// and the extremes come out exact, and a concurrent reader never sees the
// count go backwards.
TEST(Histogram, ExactUnderContention) {
    const int threads = 24;
    const std::uint64_t per = scaled(200000);
    Histogram h;
    std::atomic<bool> go{false}, done{false};
    std::atomic<std::uint64_t> reader_errors{0};
    std::thread reader([&] {
        std::uint64_t last = 0;
        while (!done.load(std::memory_order_acquire)) {
            const auto c = h.snapshot().count();
            if (c < last) reader_errors.fetch_add(1);
            last = c;
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::uint64_t i = 0; i < per; ++i) {
                h.record(100 + (i % 1000) * 997 + static_cast<std::uint64_t>(t));
                if (i % 4096 == 0) std::this_thread::yield();
            }
        });
    go.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    done.store(true, std::memory_order_release);
    reader.join();

    Histogram want;  // the same values recorded by one thread
    std::uint64_t sum = 0;
    for (int t = 0; t < threads; ++t)
        for (std::uint64_t i = 0; i < per; ++i) {
            const std::uint64_t v = 100 + (i % 1000) * 997 + static_cast<std::uint64_t>(t);
            want.record(v);
            sum += v;
        }
    const auto s = h.snapshot(), w = want.snapshot();
    EXPECT_EQ(reader_errors.load(), 0u);
    EXPECT_EQ(s.count(), per * threads);
    EXPECT_EQ(s.sum(), sum);
    EXPECT_EQ(s.min(), 100u);
    EXPECT_EQ(s.max(), w.max());
    std::vector<std::uint64_t> a, b;
    s.for_each_bucket([&](const auto& bk) { a.push_back(bk.count); });
    w.for_each_bucket([&](const auto& bk) { b.push_back(bk.count); });
    EXPECT_EQ(a, b);
}

TEST(ScopedTimer, RecordsElapsedNanosecondsOnce) {
    Histogram h;
    {
        percore::ScopedTimer t(h);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::chrono::nanoseconds stopped{};
    {
        percore::ScopedTimer t(h);
        stopped = t.stop();
        t.stop();  // a second stop records nothing
    }
    {
        percore::ScopedTimer t(h);
        t.cancel();
    }
    const auto s = h.snapshot();
    EXPECT_EQ(s.count(), 2u);
    EXPECT_GE(s.max(), 2'000'000u);
    EXPECT_EQ(s.min(), static_cast<std::uint64_t>(stopped.count()));
}

// shard_counts() is the per-CPU breakdown exporters show: each row's share,
// summing to count(). 64 threads on few CPUs, migrating between them every
// few records, with a reader taking breakdowns throughout: the sum a reader
// sees never goes down, and at the end equals the count, record for record.
TEST(Histogram, ShardCountsSumToCountUnderMigration) {
    const int threads = 64;
    const std::uint64_t per = scaled(20000);
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    Histogram h;
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> reader_errors{0};
    std::thread reader([&] {
        std::uint64_t last = 0;
        while (!done.load(std::memory_order_acquire)) {
            const auto rows = h.shard_counts();
            const std::uint64_t total = std::accumulate(rows.begin(), rows.end(), std::uint64_t{0});
            if (total < last) reader_errors.fetch_add(1, std::memory_order_relaxed);
            last = total;
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < per; ++i) {
                if (i % 512 == 0) {  // move to another CPU mid-run
                    cpu_set_t set;
                    CPU_ZERO(&set);
                    CPU_SET((static_cast<unsigned>(t) + i / 512) % cpus, &set);
                    sched_setaffinity(0, sizeof set, &set);  // may fail in a restricted cpuset: then no move
                }
                h.record(i * 31 + static_cast<std::uint64_t>(t));
            }
        });
    for (auto& t : ts) t.join();
    done.store(true, std::memory_order_release);
    reader.join();
    const auto rows = h.shard_counts();
    EXPECT_EQ(rows.size(), h.arena().rows());
    EXPECT_EQ(std::accumulate(rows.begin(), rows.end(), std::uint64_t{0}), per * threads);
    EXPECT_EQ(h.snapshot().count(), per * threads);
    EXPECT_EQ(reader_errors.load(), 0u);
}

}  // namespace
