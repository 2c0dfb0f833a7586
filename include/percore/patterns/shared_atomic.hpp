// SPDX-License-Identifier: MIT
// percore/patterns/shared_atomic.hpp - SharedAtomic<S>: one shared struct, atomic adds.
//
// Correct and simple: every add is an atomic fetch_add on the shared word,
// a read is an atomic load, read-and-reset is an atomic exchange with 0, so
// no update is ever lost and a reset never swallows one. Memory is one S.
//
// Cost: a lock-prefixed add (~6 cycles here when the line is already in
// this core's cache). When several cores update the same counters the line
// moves between them on every add, and the cost grows with the core count
// (the DPDK Programmer's Guide "Statistics" chapter measured 56 cycles at
// 4 cores, 626 at 20). Good for counters that are rarely updated or updated
// mostly by one core.
//
// Guarantees: each counter is exact; counters are independent, so a reader
// may see a packet's bytes before its packet count (no group consistency),
// and reset() clears counters one at a time.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <concepts>
#include <cstdint>

#include "percore/patterns/stats_layout.hpp"

namespace percore {

template <StatsLayout S>
class SharedAtomic {
public:
    // Relaxed: a counter publishes nothing else, and atomicity of the RMW
    // (not ordering) is what makes the add exact.
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        ref(f.word).fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    // fn(tx) with tx.add(Field, n): each add atomic, the group is not.
    template <class F>
    void update(F&& fn) noexcept {
        Tx tx{*this};
        fn(tx);
    }

    // Relaxed loads: never torn; loads of different counters may be
    // reordered, which only matters for group consistency (not promised).
    std::uint64_t read(Field<S> f) const noexcept { return ref(f.word).load(std::memory_order_relaxed); }
    S read() const noexcept {
        return gather<S>([&](std::size_t i) { return ref(i).load(std::memory_order_relaxed); });
    }

    // Returns the counter's value and sets it to 0 in one atomic step: an
    // add lands either before (returned) or after (kept), never in between.
    std::uint64_t exchange(Field<S> f, std::uint64_t v = 0) noexcept {
        return ref(f.word).exchange(v, std::memory_order_relaxed);
    }
    // Read-and-reset of every counter, each exact, one after another.
    S reset() noexcept {
        return gather<S>([&](std::size_t i) { return ref(i).exchange(0, std::memory_order_relaxed); });
    }

    struct Tx {
        SharedAtomic& s;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept { s.add(f, n); }
    };

private:
    std::atomic_ref<std::uint64_t> ref(std::size_t i) const noexcept {
        return std::atomic_ref<std::uint64_t>(words_[i]);
    }
    alignas(64) mutable Words<S> words_{};
};

}  // namespace percore
