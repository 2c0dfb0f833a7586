// SPDX-License-Identifier: MIT
// percore/patterns/per_core_seqcount.hpp - PerCoreSeqcount<S>: per-core stats structs whose
// group updates readers see whole.
//
// Each shard row holds a sequence word and a copy of S. A writer brackets a
// group of adds: it claims a row by turning the sequence odd (one CAS on a
// line its core already owns), adds with plain loads and stores, and makes
// the sequence even again. A reader copies a row between two loads of the
// sequence and retries if it changed or was odd, so it never sees half of a
// group update; the total over rows is then a set of complete group updates.
// Retries are counted (retries(), read(&n)); a reader that keeps losing the
// race (8 retries on one row) claims that row like a writer for the length
// of one copy: writers of that row move to the next row meanwhile, so
// readers cannot starve and writers never wait for them.
//
// Cost: per group update, one uncontended lock cmpxchg, a release store and
// the adds (loads and stores on the core's own line); per counter that is
// the Counter cost plus the claim shared over the group. On x86-64 the
// release stores and acquire loads below are plain moves. Reads: O(rows x fields), with retries
// while writers are active. Memory: 8 + sizeof(S) bytes per shard.
//
// Guarantees: exact (the claim makes each row single-writer; a claimed row
// sends writers to another row, never loses them); group updates are
// atomic for readers; reset() is offset-based and consistent (it clears a
// consistent snapshot, never a concurrent add). The total is not one
// instant across shards: a later group on one row can be in it while an
// earlier one on another is not. For that, see SnapshotStats.
//
//   percore::PerCoreSeqcount<EpStats> st;
//   st.update([&](auto& tx) { tx.add(pkts, 1); tx.add(bytes, len); });
//   EpStats now = st.read();   // now.bytes and now.pkts agree
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <utility>

#include "percore/arena.hpp"
#include "percore/detail/rows.hpp"
#include "percore/patterns/stats_layout.hpp"

namespace percore {

template <StatsLayout S>
class PerCoreSeqcount {
    static constexpr std::size_t W = kWords<S>;

public:
    explicit PerCoreSeqcount(Arena& arena = default_arena()) : slots_(arena, 1 + W, 0, 64) {}

    // fn(tx) with tx.add(Field, n): one group update, atomic for readers.
    template <class F>
    void update(F&& fn) noexcept(noexcept(fn(std::declval<Tx&>()))) {
        // acquire: the claim reads-from the previous writer's release below,
        // so its adds happen-before ours (our loads see them).
        const detail::Claim c = detail::claim_row(seq0(), rows(), std::memory_order_acquire);
        // The adds store with release (Tx::add): a reader whose acquire load
        // reads one of them also sees the odd sequence stored before it, so
        // its closing sequence load differs and it retries. (Boehm, "Can
        // seqlocks get along with programming language memory models?",
        // 2012.) Release stores and acquire loads are plain moves on x86-64;
        // unlike fences they are also understood by ThreadSanitizer.
        Tx tx{slots_.word0(1), c.row};
        // Test builds: points 3..6 of the writer, 1 and 2 are in claim_row
        // (arch/rseq_inject.hpp).
        PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 3);
        fn(tx);
        PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 6);
        // release: a reader that reads this even value sees all our adds.
        detail::row_word(seq0(), c.row).store(c.seq + 1, std::memory_order_release);
    }
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        update([&](Tx& tx) { tx.add(f, n); });
    }

    // A consistent snapshot minus the last reset; adds the retries it took
    // to *retries if given.
    S read(std::uint64_t* retries = nullptr) const {
        std::lock_guard lk(mu_);
        return from_words<S>(minus<S>(raw(retries), base_));
    }
    // One counter: no group to keep whole, so no retries (relaxed loads of
    // single words never tear).
    std::uint64_t read(Field<S> f) const {
        std::lock_guard lk(mu_);
        std::uint64_t sum = 0;
        for (std::size_t r = 0; r < rows(); ++r)
            sum += detail::row_word(slots_.word0(1 + f.word), r).load(std::memory_order_relaxed);
        return sum - base_[f.word];
    }
    // Clears a consistent snapshot and returns it.
    S reset() {
        std::lock_guard lk(mu_);
        const Words<S> now = raw(nullptr);
        const Words<S> cleared = minus<S>(now, base_);
        base_ = now;
        return from_words<S>(cleared);
    }
    // Read retries since construction, over all readers.
    std::uint64_t retries() const noexcept { return retries_.load(std::memory_order_relaxed); }

    struct Tx {
        std::uint64_t* data0;  // word 0 of S in row 0
        std::size_t row;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept {
            // Single writer (the claim): load relaxed; store release, see update().
            auto w = detail::row_word(data0 + f.word, row);
            const std::uint64_t old = w.load(std::memory_order_relaxed);
            PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 4);
            w.store(old + static_cast<std::uint64_t>(n), std::memory_order_release);
            PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 5);
        }
    };

private:
    static constexpr std::uint32_t kRetriesBeforeClaim = 8;

    std::uint64_t* seq0() const noexcept { return slots_.word0(0); }
    std::size_t rows() const noexcept { return std::size_t{slots_.shards()} + 1; }

    Words<S> raw(std::uint64_t* retries_out) const {
        Words<S> sum{};
        Words<S> row{};
        std::uint64_t retries = 0;
        for (std::size_t r = 0; r < rows(); ++r) {
            retries += read_row(r, row);
            for (std::size_t i = 0; i < W; ++i) sum[i] += row[i];
        }
        retries_.fetch_add(retries, std::memory_order_relaxed);
        if (retries_out) *retries_out += retries;
        return sum;
    }

    // Copies row r consistently; returns the retries it took.
    std::uint64_t read_row(std::size_t r, Words<S>& out) const {
        auto seq = detail::row_word(seq0(), r);
        detail::Backoff backoff;
        for (std::uint32_t tries = 0;; ++tries) {
            if (tries >= kRetriesBeforeClaim) {
                read_row_claimed(r, out);
                return tries;
            }
            // acquire: pairs with the writer's release of this value, so
            // the copy sees at least everything up to it.
            const std::uint64_t s1 = seq.load(std::memory_order_acquire);
            if (s1 & 1) {
                backoff.pause();
                continue;
            }
            // Acquire loads: if the copy read any add of a later writer, that
            // writer's odd sequence is visible to the load below (and the
            // load cannot move above the copy), so it differs from s1.
            copy_row(r, out, std::memory_order_acquire);
            if (seq.load(std::memory_order_relaxed) == s1) return tries;
        }
    }
    // Takes the row like a writer (CAS even -> odd), so the copy cannot race.
    void read_row_claimed(std::size_t r, Words<S>& out) const {
        auto seq = detail::row_word(seq0(), r);
        detail::Backoff backoff;
        std::uint64_t s = seq.load(std::memory_order_relaxed);
        // acquire: see update().
        while ((s & 1) || !seq.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
            backoff.pause();
            s = seq.load(std::memory_order_relaxed);
        }
        copy_row(r, out, std::memory_order_relaxed);
        // release: the next writer's claim orders after our reads.
        seq.store(s + 2, std::memory_order_release);
    }
    void copy_row(std::size_t r, Words<S>& out, std::memory_order order) const noexcept {
        for (std::size_t i = 0; i < W; ++i) out[i] = detail::row_word(slots_.word0(1 + i), r).load(order);
    }

    detail::Slots slots_;
    mutable std::mutex mu_;  // readers and resets: base_ is a consistent snapshot
    Words<S> base_{};
    mutable std::atomic<std::uint64_t> retries_{0};
};

}  // namespace percore
