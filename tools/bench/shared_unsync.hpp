// SPDX-License-Identifier: MIT
// bench/shared_unsync.hpp - SharedUnsync<S>: one shared struct, no
// synchronization. BROKEN BY DESIGN; kept to measure what it loses.
//
// Every thread adds to the same words with a load, an add and a store. Two
// cores doing that to one word at once both load the old value, and one add
// is lost; under load it loses a large share of updates (the DPDK
// Programmer's Guide "Statistics" chapter reports ~18% at 4 cores; percore-bench ep measures it here). It is also slow: the
// lines bounce between cores as with SharedAtomic, minus the lock prefix.
//
// Each load and store is a relaxed atomic, so values never tear and the
// program has no undefined behaviour: the loss comes from the unprotected
// read-modify-write, not from a data race. Do not use it for anything that
// needs correct numbers; use SharedAtomic, a per-core pattern, or a lock.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>

#include "percore/patterns/stats_layout.hpp"

namespace percore::bench {

template <StatsLayout S>
class SharedUnsync {
public:
    // May lose the add when another thread updates the same word meanwhile.
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        std::atomic_ref<std::uint64_t> w(words_[f.word]);
        // Relaxed load + relaxed store: the same two instructions as a plain
        // `+=` (no lock prefix), but defined behaviour; nothing is ordered.
        w.store(w.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    // fn(tx) with tx.add(Field, n): just a sequence of adds, no transaction.
    template <class F>
    void update(F&& fn) noexcept {
        Tx tx{*this};
        fn(tx);
    }

    std::uint64_t read(Field<S> f) const noexcept {
        return std::atomic_ref<std::uint64_t>(words_[f.word]).load(std::memory_order_relaxed);
    }
    S read() const noexcept {
        return gather<S>([&](std::size_t i) { return read(Field<S>{static_cast<std::uint32_t>(i)}); });
    }
    // Returns the values and stores zeros; an add between the two is lost
    // (or survives the reset), like every other update of this pattern.
    S reset() noexcept {
        return gather<S>([&](std::size_t i) {
            std::atomic_ref<std::uint64_t> r(words_[i]);
            const std::uint64_t v = r.load(std::memory_order_relaxed);
            r.store(0, std::memory_order_relaxed);
            return v;
        });
    }

    struct Tx {
        SharedUnsync& s;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept { s.add(f, n); }
    };

private:
    alignas(64) mutable Words<S> words_{};
};

}  // namespace percore::bench
