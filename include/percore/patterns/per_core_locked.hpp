// SPDX-License-Identifier: MIT
// percore/patterns/per_core_locked.hpp - PerCoreLocked<S>: per-core stats structs,
// each behind its own spinlock.
//
// Each shard row holds a lock word and a copy of S. A writer locks a row,
// adds, unlocks; a reader locks each row in turn to copy it, and reset()
// zeroes each row under its lock. Writers never queue behind a reader or
// another writer: if their row is locked they take the next free row (any
// row is correct, readers add them all up) and spin only if every row is
// locked. The lock word is a counter whose odd values mean "held", so the
// writer path is the same claim as PerCoreSeqcount's; what differs is the
// reader, which locks instead of retrying: it never starves and never
// repeats a copy, and reset can write to the rows.
//
// Cost: per group update, one uncontended lock cmpxchg on the core's own
// line plus a store to unlock, shared by the adds of the group. Readers hold
// one row at a time, for one copy of S. Memory: 8 + sizeof(S) per shard.
//
// Guarantees: exact; group updates are atomic for readers (a row's copy
// holds whole groups); reset() is exact and per-row transactional: every
// group update is either in the cleared values or left for later. Like
// PerCoreSeqcount, the total is not one instant across rows.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <concepts>
#include <cstdint>
#include <utility>

#include "percore/arena.hpp"
#include "percore/detail/rows.hpp"
#include "percore/patterns/stats_layout.hpp"

namespace percore {

template <StatsLayout S>
class PerCoreLocked {
    static constexpr std::size_t W = kWords<S>;

public:
    explicit PerCoreLocked(Arena& arena = default_arena()) : slots_(arena, 1 + W, 0, 64) {}

    // fn(tx) with tx.add(Field, n): one group update under one row lock.
    template <class F>
    void update(F&& fn) noexcept(noexcept(fn(std::declval<Tx&>()))) {
        // acquire: the previous holder's adds (and a reset's zeroes) happen
        // before ours.
        const detail::Claim c = detail::claim_row(lock0(), rows(), std::memory_order_acquire);
        Tx tx{slots_.word0(1), c.row};
        fn(tx);
        // release: the next holder (writer, reader or reset) sees our adds.
        detail::row_word(lock0(), c.row).store(c.seq + 1, std::memory_order_release);
    }
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        update([&](Tx& tx) { tx.add(f, n); });
    }

    S read() const {
        Words<S> sum{};
        visit(0, W, [&](std::size_t i, std::atomic_ref<std::uint64_t> w) { sum[i] += w.load(std::memory_order_relaxed); });
        return from_words<S>(sum);
    }
    // One counter, locking each row only for its one word.
    std::uint64_t read(Field<S> f) const {
        std::uint64_t sum = 0;
        visit(f.word, 1, [&](std::size_t, std::atomic_ref<std::uint64_t> w) { sum += w.load(std::memory_order_relaxed); });
        return sum;
    }
    S reset() {
        Words<S> sum{};
        visit(0, W, [&](std::size_t i, std::atomic_ref<std::uint64_t> w) {
            sum[i] += w.load(std::memory_order_relaxed);
            w.store(0, std::memory_order_relaxed);
        });
        return from_words<S>(sum);
    }

    struct Tx {
        std::uint64_t* data0;
        std::size_t row;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept {
            detail::record_add(data0, row, f.word, static_cast<std::uint64_t>(n));
        }
    };

private:
    std::uint64_t* lock0() const noexcept { return slots_.word0(0); }
    std::size_t rows() const noexcept { return std::size_t{slots_.shards()} + 1; }

    // Locks each row in turn and calls fn(i, word) for its words first..first+count.
    template <class Fn>
    void visit(std::size_t first, std::size_t count, Fn&& fn) const {
        for (std::size_t r = 0; r < rows(); ++r) {
            auto lk = detail::row_word(lock0(), r);
            detail::Backoff backoff;
            std::uint64_t s = lk.load(std::memory_order_relaxed);
            // acquire/release as in update().
            while ((s & 1) || !lk.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
                backoff.pause();
                s = lk.load(std::memory_order_relaxed);
            }
            for (std::size_t i = first; i < first + count; ++i) fn(i, detail::row_word(slots_.word0(1 + i), r));
            lk.store(s + 2, std::memory_order_release);
        }
    }

    detail::Slots slots_;
};

}  // namespace percore
