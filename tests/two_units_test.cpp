// SPDX-License-Identifier: MIT
// Two translation units that both update counters, built without
// optimization (as a debug build is): every inline update function, and the
// restartable sequences inside it, is emitted in both units and the linker
// keeps one copy. The program must link, and the sequences it kept must
// count exactly from many threads on both units' paths.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "percore/percore.hpp"

percore::Counter& shared_counter();
void add_from_other_unit(percore::CounterGroup<3>& g, std::uint64_t n);

TEST(TwoUnits, LinkAndCountExactly) {
    percore::CounterGroup<3> g;
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                if (t % 2) {
                    add_from_other_unit(g, 1);
                } else {
                    shared_counter().inc();
                    g.add({1, 2, 3});
                }
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(shared_counter().value(), 32000u);
    EXPECT_EQ(g.value(0), 32000u);
    EXPECT_EQ(g.value(2), 96000u);
}
