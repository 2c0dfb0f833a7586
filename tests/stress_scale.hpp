// SPDX-License-Identifier: MIT
// Iteration counts for stress tests: PERCORE_STRESS_SCALE (default 1)
// shrinks them under sanitizers, whose instrumentation is 5-20x slower.
#pragma once
#include <cstdint>
#include <cstdlib>

inline std::uint64_t scaled(std::uint64_t n) {
    const char* s = std::getenv("PERCORE_STRESS_SCALE");
    double f = s ? std::atof(s) : 1.0;
    if (f <= 0) f = 1.0;
    auto v = static_cast<std::uint64_t>(static_cast<double>(n) * f);
    return v == 0 ? 1 : v;
}
