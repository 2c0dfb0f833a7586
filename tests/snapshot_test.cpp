// SPDX-License-Identifier: MIT
// SnapshotStats: snapshots are cuts across shards. Each writer thread
// alternates two single-counter group updates, x then y, so in program
// order x is always ahead of y by 0 or 1. The updates land on whatever
// shard the thread is on (scramble mode spreads them everywhere), so a
// reader that adds rows up at different moments could see y ahead of x; a
// snapshot must never.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "percore/patterns/snapshot_stats.hpp"
#include "stress_scale.hpp"

namespace {

constexpr int kWriters = 4;
using Pairs = std::array<std::uint64_t, 2 * kWriters>;

TEST(Snapshot, CutsRespectProgramOrder) {
    percore::SnapshotStats<Pairs> s;
    const std::uint64_t per = scaled(40000);
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kWriters; ++t)
        ts.emplace_back([&, t] {
            std::minstd_rand rng(t + 7);
            const auto x = percore::field_at<Pairs>(2 * t), y = percore::field_at<Pairs>(2 * t + 1);
            for (std::uint64_t i = 0; i < per; ++i) {
                s.add(x, 1);
                if (rng() % 64 == 0) std::this_thread::yield();  // migrate between x and y
                s.add(y, 1);
            }
            done.fetch_add(1);
        });
    std::uint64_t snaps = 0, bad = 0;
    while (done.load() < kWriters || snaps < 10) {
        const Pairs p = s.read();
        ++snaps;
        for (int t = 0; t < kWriters; ++t) {
            const std::uint64_t x = p[2 * t], y = p[2 * t + 1];
            bad += !(y <= x && x <= y + 1);
        }
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(bad, 0u) << "of " << snaps << " snapshots";
    const Pairs end = s.read();
    for (int t = 0; t < kWriters; ++t) {
        EXPECT_EQ(end[2 * t], per);
        EXPECT_EQ(end[2 * t + 1], per);
    }
    EXPECT_GE(s.generation(), snaps);
}

// Causality through another thread: A adds, then hands a token to B, which
// adds to its own counter. Any snapshot with B's add has A's.
TEST(Snapshot, CutsRespectHandOffs) {
    using Two = std::array<std::uint64_t, 2>;
    percore::SnapshotStats<Two> s;
    const std::uint64_t rounds = scaled(5000);
    std::atomic<std::uint64_t> token{0};
    std::atomic<bool> done{false};
    std::thread a([&] {
        for (std::uint64_t i = 1; i <= rounds; ++i) {
            s.add(percore::field_at<Two>(0), 1);
            token.store(i, std::memory_order_release);
            while (token.load(std::memory_order_acquire) != 0 && !done.load()) std::this_thread::yield();
        }
    });
    std::thread b([&] {
        for (std::uint64_t i = 1; i <= rounds; ++i) {
            while (token.load(std::memory_order_acquire) != i) std::this_thread::yield();
            s.add(percore::field_at<Two>(1), 1);
            token.store(0, std::memory_order_release);
        }
        done.store(true);
    });
    std::uint64_t bad = 0, snaps = 0;
    while (!done.load()) {
        const Two v = s.read();
        bad += v[1] > v[0];
        ++snaps;
    }
    a.join();
    b.join();
    EXPECT_EQ(bad, 0u) << "of " << snaps << " snapshots";
    EXPECT_EQ(s.read(), (Two{rounds, rounds}));
}

// Reset clears a snapshot: cleared + remaining == added, pairwise consistent.
TEST(Snapshot, ResetClearsACut) {
    percore::SnapshotStats<Pairs> s;
    const std::uint64_t per = scaled(50000);
    std::atomic<int> done{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; ++t)
        ts.emplace_back([&, t] {
            for (std::uint64_t i = 0; i < per; ++i)
                s.update([&](auto& tx) {
                    tx.add(percore::field_at<Pairs>(2 * t), 1);
                    tx.add(percore::field_at<Pairs>(2 * t + 1), 3);
                });
            done.fetch_add(1);
        });
    Pairs cleared{};
    std::uint64_t bad = 0;
    while (done.load() < 2) {
        const Pairs c = s.reset();
        for (std::size_t i = 0; i < c.size(); ++i) cleared[i] += c[i];
        bad += c[1] != 3 * c[0] || c[3] != 3 * c[2];
    }
    for (auto& t : ts) t.join();
    const Pairs rest = s.read();
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(cleared[0] + rest[0], per);
    EXPECT_EQ(cleared[3] + rest[3], 3 * per);
}

}  // namespace
