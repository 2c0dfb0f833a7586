// SPDX-License-Identifier: MIT
// PERCORE_MAX_SHARDS at and beyond the documented range (1..65536): the
// process never dies. Run by ctest with 65536, 1048576 (clamped, with one
// line on stderr) and a malformed value (ignored, with one line).
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "percore/histogram.hpp"
#include "percore/percore.hpp"

namespace {

TEST(MaxShards, WithinTheDocumentedRange) {
    const char* env = std::getenv("PERCORE_MAX_SHARDS");
    ASSERT_NE(env, nullptr);
    char* end = nullptr;
    const unsigned long long want = std::strtoull(env, &end, 10);
    EXPECT_GE(percore::max_shards(), 1u);
    EXPECT_LE(percore::max_shards(), 65536u);
    if (*end == '\0' && want >= 1) {
        EXPECT_EQ(percore::max_shards(), want > 65536 ? 65536u : want);
    }
    EXPECT_THROW(percore::Arena(65537), std::invalid_argument);
}

// Several Arenas of max_shards() rows each, counters, groups and a
// histogram, updated from more threads than CPUs: exact. (Memory is rows x
// counters x 8 bytes, so with 65536 rows a reader that sums a counter maps
// a page in each row: keep counters few.)
TEST(MaxShards, CountersWorkAtTheBound) {
    std::vector<std::unique_ptr<percore::Arena>> arenas;
    std::vector<std::unique_ptr<percore::Counter>> counters;
    for (int a = 0; a < 4; ++a) {
        arenas.push_back(std::make_unique<percore::Arena>());
        for (int c = 0; c < 16; ++c) counters.push_back(std::make_unique<percore::Counter>(*arenas.back()));
    }
    percore::CounterGroup<3> group;
    percore::Histogram latency;
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 10000; ++i) {
                counters[static_cast<std::size_t>((t * 31 + i) % 64)]->inc();
                group.add({1, 2, 3});
                latency.record(static_cast<std::uint64_t>(i));
            }
        });
    for (auto& t : ts) t.join();
    std::uint64_t total = 0;
    for (auto& c : counters) total += c->value();
    EXPECT_EQ(total, 80000u);
    EXPECT_EQ(group.value(2), 240000u);
    EXPECT_EQ(latency.snapshot().count(), 80000u);
}

}  // namespace
