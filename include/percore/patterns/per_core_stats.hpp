// SPDX-License-Identifier: MIT
// percore/patterns/per_core_stats.hpp - PerCoreStats<S>: a user's stats struct as
// per-core counters with relaxed updates.
//
// The per-core pattern of the DPDK "Statistics" chapter for a whole struct: every counter of S is
// a word in each Arena row, updated exactly like percore::Counter (same
// code: detail::add, a restartable sequence with rseq or a load and a store
// on the thread's own row). For a handful of counters use Counter or
// CounterGroup<N> directly; PerCoreStats is the same thing addressed by the
// fields of S (say, two globals and a thousand flows).
//
// Cost: an add is a Counter add (no lock prefix, no shared line). read() is
// O(rows x fields): for control threads. Memory: sizeof(S) per shard row.
//
// Guarantees: each counter exact, reads never torn, reset() never loses a
// concurrent add (offset-based, detail::reset_by_offset). No group
// consistency: a reader may see a packet's bytes before its count (use
// PerCoreSeqcount or SnapshotStats for that).
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <concepts>
#include <cstdint>
#include <memory>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"
#include "percore/patterns/stats_layout.hpp"

namespace percore {

template <StatsLayout S>
class PerCoreStats {
public:
    explicit PerCoreStats(Arena& arena = default_arena())
        : slots_(arena, kWords<S>, 0, 64), base_(new std::atomic<std::uint64_t>[kWords<S>]) {
        for (std::size_t i = 0; i < kWords<S>; ++i) base_[i].store(0, std::memory_order_relaxed);
    }

    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        detail::add(slots_.word0(f.word), slots_.shards(), static_cast<std::uint64_t>(n));
    }
    // fn(tx) with tx.add(Field, n): independent adds, not a transaction.
    template <class F>
    void update(F&& fn) noexcept {
        Tx tx{*this};
        fn(tx);
    }

    std::uint64_t read(Field<S> f) const noexcept {
        // acquire on the offset: see detail::reset_by_offset.
        const std::uint64_t b = base_[f.word].load(std::memory_order_acquire);
        return detail::sum(slots_.word0(f.word), slots_.shards()) - b;
    }
    S read() const noexcept {
        return gather<S>([&](std::size_t i) { return read(Field<S>{static_cast<std::uint32_t>(i)}); });
    }
    // Clears each counter by moving its offset; returns what was cleared.
    S reset() noexcept {
        return gather<S>([&](std::size_t i) { return detail::reset_by_offset(slots_.word0(i), slots_.shards(), base_[i]); });
    }

    struct Tx {
        PerCoreStats& s;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept { s.add(f, n); }
    };

    const Arena& arena() const noexcept { return slots_.arena(); }

private:
    detail::Slots slots_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> base_;
};

}  // namespace percore
