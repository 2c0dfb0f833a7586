// SPDX-License-Identifier: MIT
// percore/counter_group.hpp - N related counters, committed a pair at a time.
//
// A packet updates packets and bytes together; a flow updates its own pair.
// CounterGroup<N> keeps the N words adjacent in each row (aligned to the
// next power of two up to 64 bytes, so N <= 8 share one cache line) and
// add() commits them two at a time: with rseq, each pair of adjacent words
// is one restartable sequence (look up the shard, load both words, add in a
// vector register, commit with one 16-byte store); with thread slots, one
// TLS load finds the row and the pair is two plain adds. So an update costs
// one shard lookup per pair of counters (ceil(N/2) lookups), not one per
// counter, and an odd last counter is added alone. Each add is exact; a
// pair lands whole on one row, but the group is not a transaction: a reader
// may see the first pair of a group before the second. For consistent group
// snapshots use the seqcount or snapshot patterns (percore/patterns.hpp).
#pragma once

#include "percore/detail/cxx20.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"

namespace percore {

template <std::size_t N>
class CounterGroup {
    static_assert(N >= 1 && N <= 64, "CounterGroup holds 1..64 counters");

public:
    using Values = std::array<std::uint64_t, N>;

    explicit CounterGroup(Arena& arena = default_arena()) : slots_(arena, N, 0, align_for()) {}
    CounterGroup(const CounterGroup&) = delete;
    CounterGroup& operator=(const CounterGroup&) = delete;

    void add(const Values& v) noexcept { add_each(v, std::make_index_sequence<N / 2>{}); }
    void add(std::size_t i, std::uint64_t n) noexcept { detail::add(slots_.word0(i), slots_.shards(), n); }

    std::uint64_t value(std::size_t i) const noexcept {
        const std::uint64_t b = base_[i].load(std::memory_order_acquire);
        return detail::sum(slots_.word0(i), slots_.shards()) - b;
    }
    Values values() const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) out[i] = value(i);
        return out;
    }
    // Resets each counter (one at a time, each exactly; see Counter::reset).
    Values reset() noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i)
            out[i] = detail::reset_by_offset(slots_.word0(i), slots_.shards(), base_[i]);
        return out;
    }
    std::uint64_t shard_value(std::size_t shard, std::size_t i) const noexcept {
        return detail::row_word(slots_.word0(i), shard).load(std::memory_order_relaxed);
    }
    const Arena& arena() const noexcept { return slots_.arena(); }

private:
    // Pairs of adjacent words commit together (detail::add_pair); an odd
    // last word is added alone.
    template <std::size_t... I>
    void add_each(const Values& v, std::index_sequence<I...>) noexcept {
        (detail::add_pair(slots_.word0(2 * I), slots_.shards(), v[2 * I], v[2 * I + 1]), ...);
        if constexpr (N % 2 == 1) detail::add(slots_.word0(N - 1), slots_.shards(), v[N - 1]);
    }
    static constexpr std::size_t align_for() {
        std::size_t a = 8;
        while (a < N * 8 && a < 64) a *= 2;
        return a;
    }
    detail::Slots slots_;
    std::array<std::atomic<std::uint64_t>, N> base_{};
};

}  // namespace percore
