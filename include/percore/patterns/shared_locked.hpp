// SPDX-License-Identifier: MIT
// percore/patterns/shared_locked.hpp - SharedLocked<S, Lock>: one shared struct
// behind one lock.
//
// Writers and readers take the same lock (Spinlock by default, TicketLock
// for fairness, std::mutex if you must), so any group of updates is one
// transaction: a reader never sees a packet's bytes without its count, and
// reset() clears everything at one instant. Memory is one S plus the lock.
//
// Cost: every update takes and releases the lock, so the lock's line and
// the counters' lines move between cores on every update; the cost rises
// steeply with the core count (the DPDK Programmer's Guide
// "Statistics" chapter measured 436 cycles at 4 cores, 8236 at 20).
// Readers are not preemption-safe: a reader (or writer) preempted while
// holding the lock stalls every writer until it runs again.
//
// Reading many counters: lock_for_read() returns a guard that holds the lock
// while you read as many fields as you like, paying for one lock only.
//
//   percore::SharedLocked<EpStats> st;
//   st.update([&](auto& tx) { tx.add(pkts, 1); tx.add(bytes, len); });
//   { auto r = st.lock_for_read(); use(r.value(pkts), r.value(bytes)); }
#pragma once

#include "percore/detail/cxx20.hpp"

#include <concepts>
#include <cstdint>
#include <mutex>

#include "percore/spinlock.hpp"
#include "percore/patterns/stats_layout.hpp"

namespace percore {

template <StatsLayout S, class Lock = Spinlock>
class SharedLocked {
public:
    // One transaction of one add.
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        std::lock_guard lk(lock_);
        words_[f.word] += static_cast<std::uint64_t>(n);
    }
    // fn(tx) with tx.add(Field, n), all under one lock hold: readers see all
    // of the adds or none. Keep fn short; it runs with the lock held.
    template <class F>
    void update(F&& fn) {
        std::lock_guard lk(lock_);
        Tx tx{words_};
        fn(tx);
    }

    std::uint64_t read(Field<S> f) const {
        std::lock_guard lk(lock_);
        return words_[f.word];
    }
    // A consistent copy: every transaction is in it entirely or not at all.
    S read() const {
        std::lock_guard lk(lock_);
        return from_words<S>(words_);
    }
    // Copies and zeroes every counter in one transaction.
    S reset() {
        std::lock_guard lk(lock_);
        const Words<S> old = words_;
        words_.fill(0);
        return from_words<S>(old);
    }

    // Holds the lock for as many reads (and resets) as the caller wants.
    // Writers wait while it lives: keep it short and do not block in it.
    class ReadGuard {
    public:
        explicit ReadGuard(SharedLocked& s) : s_(s), lk_(s.lock_) {}
        std::uint64_t value(Field<S> f) const noexcept { return s_.words_[f.word]; }
        S values() const noexcept { return from_words<S>(s_.words_); }
        // Returns the counter's value and zeroes it, in this transaction.
        std::uint64_t reset(Field<S> f) noexcept {
            const std::uint64_t v = s_.words_[f.word];
            s_.words_[f.word] = 0;
            return v;
        }

    private:
        SharedLocked& s_;
        std::lock_guard<Lock> lk_;
    };
    ReadGuard lock_for_read() { return ReadGuard(*this); }

    struct Tx {
        Words<S>& w;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept { w[f.word] += static_cast<std::uint64_t>(n); }
    };

    // The lock itself, for callers that combine several structs in one
    // transaction. Every access to the counters goes through it.
    Lock& lock() noexcept { return lock_; }
    // The word behind a field, for code that holds lock() (a WriteBuffer
    // applying buffered adds, buffered_stats.hpp).
    std::uint64_t* word(Field<S> f) noexcept { return &words_[f.word]; }

private:
    // The lock shares a line with the first counters: an update touches
    // both, so co-locating them saves one line transfer.
    alignas(64) mutable Lock lock_;
    Words<S> words_{};
};

}  // namespace percore
