// SPDX-License-Identifier: MIT
// The dummy "domain logic" percore-bench and percore-demo give each packet,
// calibrated in TSC cycles, and the robust statistics both use to report
// per-packet cycles on a shared machine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/clock.hpp"

namespace percore::tools {

// Keeps a value alive without a store the compiler could drop.
inline void consume(std::uint64_t v) { asm volatile("" : : "r"(v)); }

inline double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
inline double quantile(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

// Mean of the batches that took at most twice the median: keeps periodic
// costs (flushes, which land in every batch or every few), drops batches
// that contain a preemption (milliseconds).
inline double robust_mean(std::vector<std::uint32_t>& v) {
    if (v.empty()) return NAN;
    std::vector<std::uint32_t> s = v;
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
    const double cut = 2.0 * s[s.size() / 2];
    double sum = 0;
    std::size_t n = 0;
    for (std::uint32_t x : v)
        if (x <= cut) sum += x, ++n;
    return sum / static_cast<double>(n);
}

// The domain logic: a dependent multiply-add chain, no memory. noinline so
// every phase runs the very same machine code.
[[gnu::noinline]] inline std::uint64_t domain_logic(std::uint64_t x, std::uint32_t iters) {
    for (std::uint32_t i = 0; i < iters; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        asm volatile("" : "+r"(x));
    }
    return x;
}

// Loop trips of domain_logic that take `cycles` TSC cycles (0 for none).
inline std::uint32_t calibrate(double cycles) {
    if (cycles <= 0) return 0;
    double best = 1e9;
    for (int t = 0; t < 5; ++t) {
        const std::uint64_t c0 = tsc();
        consume(domain_logic(t, 1'000'000));
        best = std::min(best, static_cast<double>(tsc() - c0) / 1e6);
    }
    return static_cast<std::uint32_t>(std::max(1.0, cycles / best));
}


}  // namespace percore::tools
