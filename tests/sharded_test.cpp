// SPDX-License-Identifier: MIT
// Sharded<T>: the semantics of the Go percpu.Sharded proposal
// (golang.org/issue/18802) (get_or_create, get, for_each, for_each_locked,
// set_max_shards, serialized creation, each index created at most once).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "percore/sharded.hpp"
#include "stress_scale.hpp"

namespace {

struct Cell {
    explicit Cell(std::size_t i) : index(i) {}
    Cell(const Cell&) = delete;  // no copy or move needed: creation is elided
    std::size_t index;
    std::atomic<std::uint64_t> n{0};
};

TEST(Sharded, GetIsNullUntilCreated) {
    percore::Sharded<Cell> s;
    EXPECT_EQ(s.get(), nullptr);
    Cell& c = s.get_or_create([](percore::ShardInfo i) { return Cell(i.index); });
    EXPECT_LT(c.index, s.max_shards());
    int visited = 0;
    s.for_each([&](Cell&) { ++visited; });
    EXPECT_EQ(visited, 1);
}

TEST(Sharded, ElementsHaveTheirOwnCacheLines) {
    percore::Sharded<Cell> s;
    Cell& c = s.get_or_create([](percore::ShardInfo i) { return Cell(i.index); });
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&c) % 64, 0u);
}

TEST(Sharded, SetMaxShards) {
    percore::Sharded<Cell> s;
    EXPECT_THROW(s.set_max_shards(0), std::invalid_argument);
    s.set_max_shards(1);
    EXPECT_EQ(s.max_shards(), 1u);
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 100; ++i)
                s.get_or_create([](percore::ShardInfo info) { return Cell(info.index); }).n.fetch_add(1);
        });
    for (auto& t : ts) t.join();
    int visited = 0;
    std::uint64_t total = 0;
    s.for_each([&](Cell& c) {
        ++visited;
        EXPECT_EQ(c.index, 0u);
        total += c.n.load();
    });
    EXPECT_EQ(visited, 1);
    EXPECT_EQ(total, 800u);
    s.set_max_shards(1u << 30);
    EXPECT_EQ(s.max_shards(), percore::max_shards());
}

// Many threads race to create: each index created once, creations never
// overlap, and every increment lands in some element.
TEST(Sharded, ConcurrentGetOrCreate) {
    for (int round = 0; round < static_cast<int>(scaled(20)); ++round) {
        percore::Sharded<Cell> s;
        std::atomic<int> in_create{0};
        std::atomic<int> overlaps{0};
        std::mutex mu;
        std::multiset<std::size_t> created;
        const int threads = 32;
        const std::uint64_t per = 2000;
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&] {
                for (std::uint64_t i = 0; i < per; ++i) {
                    Cell& c = s.get_or_create([&](percore::ShardInfo info) {
                        if (in_create.fetch_add(1) != 0) overlaps.fetch_add(1);
                        {
                            std::lock_guard lk(mu);
                            created.insert(info.index);
                        }
                        std::this_thread::yield();
                        in_create.fetch_sub(1);
                        return Cell(info.index);
                    });
                    c.n.fetch_add(1, std::memory_order_relaxed);
                }
            });
        for (auto& t : ts) t.join();
        EXPECT_EQ(overlaps.load(), 0);
        for (std::size_t idx : created) EXPECT_EQ(created.count(idx), 1u) << idx;
        std::uint64_t total = 0;
        std::size_t n = 0;
        s.for_each_locked([&](Cell& c) {
            total += c.n.load();
            ++n;
        });
        EXPECT_EQ(total, threads * per);
        EXPECT_EQ(n, created.size());
    }
}

// for_each_locked excludes creation: while it runs, no new element appears.
TEST(Sharded, ForEachLockedBlocksCreation) {
    percore::set_scramble(true);  // spread indices so creators hit new shards
    percore::Sharded<Cell> s;
    s.get_or_create([](percore::ShardInfo i) { return Cell(i.index); });
    std::atomic<bool> inside{false}, created_during{false};
    std::atomic<int> creations{0};
    std::thread locked([&] {
        s.for_each_locked([&](Cell&) {
            inside = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            inside = false;
        });
    });
    while (!inside) std::this_thread::yield();
    std::vector<std::thread> creators;
    for (int t = 0; t < 8; ++t)
        creators.emplace_back([&] {
            for (int i = 0; i < 50; ++i)
                s.get_or_create([&](percore::ShardInfo info) {
                    if (inside) created_during = true;
                    creations.fetch_add(1);
                    return Cell(info.index);
                });
        });
    for (auto& t : creators) t.join();
    locked.join();
    const char* env = std::getenv("PERCORE_SCRAMBLE");
    percore::set_scramble(env != nullptr && *env != '0');
    EXPECT_FALSE(created_during.load());
    if (percore::max_shards() > 1) {
        EXPECT_GT(creations.load(), 0);
    }
}

// for_each is a lock-free snapshot that may run while elements are created.
TEST(Sharded, ForEachDuringCreation) {
    percore::Sharded<Cell> s;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop) {
            std::uint64_t sum = 0;
            s.for_each([&](Cell& c) { sum += c.n.load(std::memory_order_relaxed); });
            (void)sum;
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                s.get_or_create([](percore::ShardInfo info) { return Cell(info.index); }).n.fetch_add(1);
        });
    for (auto& t : ts) t.join();
    stop = true;
    reader.join();
    std::uint64_t total = 0;
    s.for_each_shard([&](percore::ShardInfo info, Cell& c) {
        EXPECT_EQ(info.index, c.index);
        total += c.n.load();
    });
    EXPECT_EQ(total, 16000u);
}

}  // namespace
