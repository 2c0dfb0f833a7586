// SPDX-License-Identifier: MIT
// The second translation unit of two_units_test (see two_units_test.cpp).
#include "percore/percore.hpp"

percore::Counter& shared_counter() {
    static percore::Counter c;
    return c;
}

void add_from_other_unit(percore::CounterGroup<3>& g, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        shared_counter().inc();
        g.add({1, 2, 3});
    }
}
