// SPDX-License-Identifier: MIT
// percore/minmax.hpp - MaxGauge and MinGauge: extremes seen since reset.
//
// One int64 per shard (a ShardAtomic). update() costs a load when v is not a
// new extreme for the shard, and a compare-and-swap on the local line when
// it is, so steady-state updates stay read-only. value() scans every shard.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include "percore/shard_atomic.hpp"

namespace percore {

// Largest value seen since creation or reset(); value() is empty before the
// first update. (INT64_MIN itself is indistinguishable from "no update".)
class MaxGauge {
public:
    explicit MaxGauge(Arena& arena = default_arena()) : cells_(kNone, arena) {}
    void update(std::int64_t v) noexcept { cells_.fetch_max(v); }
    std::optional<std::int64_t> value() const noexcept { return seen(cells_.max()); }
    // Returns the maximum it cleared; updates racing with it are kept either
    // in that result or in the tracker afterwards.
    std::optional<std::int64_t> reset() noexcept {
        std::int64_t m = kNone;
        cells_.exchange_all(kNone, [&](std::int64_t old) { m = std::max(m, old); });
        return seen(m);
    }

private:
    static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min();
    static std::optional<std::int64_t> seen(std::int64_t v) {
        return v == kNone ? std::nullopt : std::optional<std::int64_t>(v);
    }
    ShardAtomic<std::int64_t> cells_;
};

// Smallest value seen since creation or reset(); the mirror of MaxGauge.
class MinGauge {
public:
    explicit MinGauge(Arena& arena = default_arena()) : cells_(kNone, arena) {}
    void update(std::int64_t v) noexcept { cells_.fetch_min(v); }
    std::optional<std::int64_t> value() const noexcept { return seen(cells_.min()); }
    std::optional<std::int64_t> reset() noexcept {
        std::int64_t m = kNone;
        cells_.exchange_all(kNone, [&](std::int64_t old) { m = std::min(m, old); });
        return seen(m);
    }

private:
    static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();
    static std::optional<std::int64_t> seen(std::int64_t v) {
        return v == kNone ? std::nullopt : std::optional<std::int64_t>(v);
    }
    ShardAtomic<std::int64_t> cells_;
};

}  // namespace percore
