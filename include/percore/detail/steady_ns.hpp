// SPDX-License-Identifier: MIT
// percore/detail/steady_ns.hpp - steady_clock as int64 ns, the clock of the
// structures' delays (Accumulator, WriteBuffer ages, Tuner).
#pragma once

#include <chrono>
#include <cstdint>

namespace percore::detail {

inline std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace percore::detail
