// SPDX-License-Identifier: MIT
// Single-threaded semantics of the counter types and the Arena.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "percore/percore.hpp"

namespace {

percore::Counter g_static_counter;  // default-constructible as a global

TEST(Backend, MatchesEnvironment) {
    const char* want = std::getenv("PERCORE_BACKEND");
    std::string name = percore::backend_name();
    if (want == nullptr || std::string(want) == "auto" || *want == '\0') {
        SUCCEED() << name;
    } else if (std::string(want) == "rseq") {
        EXPECT_TRUE(name == "rseq-mm_cid" || name == "rseq-cpu_id") << name;
    } else {
        EXPECT_EQ(name, want);
    }
    if (const char* m = std::getenv("PERCORE_MAX_SHARDS")) {
        EXPECT_EQ(percore::max_shards(), std::strtoul(m, nullptr, 10));
        EXPECT_EQ(percore::default_arena().shards(), percore::max_shards());
    }
    const char* tun = std::getenv("GLIBC_TUNABLES");
    if (tun != nullptr && std::strstr(tun, "glibc.pthread.rseq=0") != nullptr) {
        EXPECT_EQ(name, "thread");
    }
}

TEST(Shard, IndexIsBelowMax) {
    for (int i = 0; i < 1000; ++i) EXPECT_LT(percore::current_shard().index, percore::max_shards());
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; ++t)
        ts.emplace_back([] {
            for (int i = 0; i < 100; ++i) EXPECT_LT(percore::current_shard().index, percore::max_shards());
        });
    for (auto& t : ts) t.join();
}

TEST(Counter, AddsAndReads) {
    percore::Counter c;
    EXPECT_EQ(c.value(), 0u);
    c.inc();
    c.add(41);
    EXPECT_EQ(c.value(), 42u);
    g_static_counter.add(7);
    EXPECT_EQ(g_static_counter.value(), 7u);
}

TEST(Counter, ResetReturnsClearedValue) {
    percore::Counter c;
    c.add(10);
    EXPECT_EQ(c.reset(), 10u);
    EXPECT_EQ(c.value(), 0u);
    c.add(5);
    EXPECT_EQ(c.value(), 5u);
    EXPECT_EQ(c.reset(), 5u);
    EXPECT_EQ(c.reset(), 0u);
}

TEST(Counter, WrapsModulo64Bits) {
    percore::Counter c;
    c.add(~0ull);
    c.add(2);
    EXPECT_EQ(c.value(), 1u);
}

TEST(Counter, ShardValuesSumToTotal) {
    percore::Counter c;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) c.inc();
        });
    for (auto& t : ts) t.join();
    std::uint64_t s = 0;
    for (std::size_t r = 0; r < c.arena().rows(); ++r) s += c.shard_value(r);
    EXPECT_EQ(s, 4000u);
    EXPECT_EQ(c.value(), 4000u);
}

// Four shards, each counted 100 times by "its CPU":
// each shard holds exactly 100 and the total is 400.
TEST(PerShard, FourShardsTimesHundred) {
    percore::Arena arena(4);
    ASSERT_EQ(arena.shards(), 4u);
    percore::ShardAtomic<std::uint64_t> per_cpu(0, arena);
    percore::Counter c(arena);
    std::vector<std::thread> ts;
    for (std::size_t s = 0; s < 4; ++s)
        ts.emplace_back([&, s] {
            for (int i = 0; i < 100; ++i) {
                per_cpu.at(s).fetch_add(1);
                c.inc();
            }
        });
    for (auto& t : ts) t.join();
    for (std::size_t s = 0; s < 4; ++s) EXPECT_EQ(per_cpu.load(s), 100u) << "shard " << s;
    EXPECT_EQ(per_cpu.sum(), 400u);
    EXPECT_EQ(c.value(), 400u);
    std::uint64_t s = 0;
    for (std::size_t r = 0; r < arena.rows(); ++r) s += c.shard_value(r);
    EXPECT_EQ(s, 400u);
}

// A per-CPU {packets, bytes} group: 40 packets of 1500 bytes = 60000 bytes.
TEST(PerShard, PacketsAndBytes) {
    percore::CounterGroup<2> stats;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 10; ++i) stats.add({1, 1500});
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(stats.value(0), 40u);
    EXPECT_EQ(stats.value(1), 60000u);
    auto cleared = stats.reset();
    EXPECT_EQ(cleared[0], 40u);
    EXPECT_EQ(cleared[1], 60000u);
    EXPECT_EQ(stats.values()[1], 0u);
}

TEST(Gauge, GoesUpAndDown) {
    percore::Gauge g;
    g.add(5);
    g.sub(8);
    EXPECT_EQ(g.value(), -3);
    g.inc();
    g.dec();
    g.dec();
    EXPECT_EQ(g.value(), -4);
    g.set(100);
    EXPECT_EQ(g.value(), 100);
    g.sub(1);
    EXPECT_EQ(g.value(), 99);
}

TEST(MinMax, TracksExtremes) {
    percore::MaxGauge mx;
    percore::MinGauge mn;
    EXPECT_FALSE(mx.value().has_value());
    EXPECT_FALSE(mn.value().has_value());
    for (int v : {5, -3, 17, 2}) {
        mx.update(v);
        mn.update(v);
    }
    EXPECT_EQ(mx.value(), 17);
    EXPECT_EQ(mn.value(), -3);
    EXPECT_EQ(mx.reset(), 17);
    EXPECT_FALSE(mx.value().has_value());
    mx.update(-10);
    EXPECT_EQ(mx.value(), -10);
}

TEST(ShardAtomic, Operations) {
    percore::ShardAtomic<std::uint64_t> a;
    EXPECT_EQ(a.fetch_add(3), 0u);
    EXPECT_EQ(a.sum(), 3u);
    std::uint64_t prev = a.exchange(10);
    EXPECT_LE(prev, 3u);  // may have landed on another shard (scramble mode)
    std::uint64_t total = a.sum();
    EXPECT_GE(total, 10u);
    a.fetch_max(1000);
    EXPECT_EQ(a.max(), 1000u);
    // compare_exchange on the local shard: retry until it succeeds once.
    for (;;) {
        std::uint64_t cur = a.local().load();
        if (a.compare_exchange(cur, cur + 1)) break;
    }
    percore::ShardAtomic<std::int64_t> m(100);
    m.fetch_min(-5);
    EXPECT_EQ(m.min(), -5);
    EXPECT_EQ(m.initial(), 100);
}

TEST(Arena, PacksCountersEightBytesApart) {
    percore::Arena arena;
    percore::Counter a(arena), b(arena), c(arena);
    const auto* pa = arena.word(0, 0);
    (void)pa;
    a.inc();
    b.add(2);
    c.add(3);
    // Three counters, three consecutive words of each row.
    EXPECT_EQ(arena.live_words(), 3u);
    std::uint64_t row_sum[3] = {0, 0, 0};
    for (std::size_t r = 0; r < arena.rows(); ++r)
        for (int i = 0; i < 3; ++i) row_sum[i] += *arena.word(r, 8 * i);
    EXPECT_EQ(row_sum[0], 1u);
    EXPECT_EQ(row_sum[1], 2u);
    EXPECT_EQ(row_sum[2], 3u);
    // Rows are far apart: no two shards share a cache line.
    EXPECT_GE(reinterpret_cast<std::uintptr_t>(arena.word(1, 0)) - reinterpret_cast<std::uintptr_t>(arena.word(0, 0)),
              percore::Arena::kRowBytes);
}

TEST(Arena, GrowingNeverMovesCounters) {
    percore::Arena arena;
    percore::Counter first(arena);
    first.add(123);
    const auto* where = arena.word(0, 0);
    std::vector<std::unique_ptr<percore::Counter>> more;
    for (int i = 0; i < 300000; ++i) more.push_back(std::make_unique<percore::Counter>(arena));  // 2.4 MB per row
    EXPECT_EQ(arena.word(0, 0), where);
    EXPECT_EQ(first.value(), 123u);
    more.back()->add(9);
    EXPECT_EQ(more.back()->value(), 9u);
    EXPECT_GE(arena.committed_bytes(), 300001u * 8 * arena.rows());
}

TEST(Arena, FreedSlotsAreReusedZeroed) {
    percore::Arena arena;
    std::size_t words;
    {
        percore::Counter c(arena);
        c.add(55);
        words = arena.live_words();
    }
    percore::Counter d(arena);
    EXPECT_EQ(arena.live_words(), words);
    EXPECT_EQ(d.value(), 0u);
}

TEST(Arena, AlignedBlocksAreReused) {
    percore::Arena arena;
    std::size_t committed = 0;
    for (int round = 0; round < 10000; ++round) {  // 320 KB if blocks leaked
        percore::CounterGroup<4> g(arena);  // 32-byte aligned block
        g.add({1, 2, 3, 4});
        EXPECT_EQ(g.values()[3], 4u);
        if (round == 0) committed = arena.committed_bytes();
    }
    EXPECT_EQ(arena.committed_bytes(), committed);
    EXPECT_EQ(arena.live_words(), 0u);
}

TEST(Scramble, SpreadsIndicesAndKeepsTotals) {
    percore::set_scramble(true);
    std::vector<int> seen(percore::max_shards(), 0);
    for (int i = 0; i < 2000; ++i) seen[percore::current_shard().index]++;
    int distinct = 0;
    for (int v : seen) distinct += v > 0;
    if (percore::max_shards() > 1) {
        EXPECT_GT(distinct, 1);
    }
    percore::Counter c;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) c.inc();
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(c.value(), 40000u);
    const char* env = std::getenv("PERCORE_SCRAMBLE");
    percore::set_scramble(env != nullptr && *env != '0');
}

}  // namespace
