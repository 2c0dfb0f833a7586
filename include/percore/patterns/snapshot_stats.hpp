// SPDX-License-Identifier: MIT
// percore/patterns/snapshot_stats.hpp - SnapshotStats<S>: per-core stats with consistent
// snapshots across all shards, taken without stopping writers.
//
// PerCoreSeqcount makes each group update whole for readers, but its total
// mixes rows read at different moments. SnapshotStats gives a cut: every
// snapshot holds exactly the group updates of generations <= some N. If a
// group update A happened before B (same thread, or published through any
// synchronization) and B is in a snapshot, A is in it too, whichever shards
// they landed on.
//
// Design (after the per-shard sequence + generation ring of a language
// runtime's heap statistics). Each row holds a sequence word and two copies
// of S, one per generation parity. A process-wide generation number g says
// which copy writers add to.
//   writer: claim the row (CAS sequence even -> odd), load g, add to copy
//           g % 2, store the sequence even again.
//   reader: (one at a time) g := N + 1, then, for each row whose sequence is
//           odd, wait until it changes. Now no writer adds to copy N % 2 and
//           none will until g reaches N + 2 (the next snapshot, after this one
//           ends): sum copy N % 2 over rows and remember it. The snapshot is
//           that plus the remembered sum of the other copy, quiesced by the
//           previous snapshot: every update of generation <= N, nothing later.
// Why the wait is enough: the claim CAS, the writer's load of g, the
// reader's store of g and its loads of the sequences are all seq_cst. A
// writer whose claim comes after the reader's sequence load in that single
// total order also loads g after the reader's store, so it writes copy
// (N + 1) % 2; a writer whose claim comes before it is seen odd (waited
// for) or already finished (its release store was read, so its adds are
// visible). Copies hold cumulative sums and are never cleared, so no update
// can be lost between generations. Two copies suffice because snapshots are
// serialized and each one quiesces its copy before returning.
//
// Cost: writer, per group update: one uncontended lock cmpxchg, one load of
// the generation (a line that changes once per snapshot), the adds, a
// release store; on x86-64 the seq_cst load and the release store are plain
// instructions. Reader: one store, a pass over the sequence words (waiting
// only for group updates in flight, which are a few instructions long
// unless a writer is preempted inside one) and O(rows x fields) loads.
// Writers never wait for readers. Memory: 8 + 2 x sizeof(S) per shard.
//
// Guarantees: exact; snapshots are cuts as above; reset() is offset-based
// on a snapshot, so it clears a consistent state and never loses an add.
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
class SnapshotStats {
    static constexpr std::size_t W = kWords<S>;

public:
    explicit SnapshotStats(Arena& arena = default_arena()) : slots_(arena, 1 + 2 * W, 0, 64) {}

    // fn(tx) with tx.add(Field, n): one group update; every snapshot has all
    // of it or none of it.
    template <class F>
    void update(F&& fn) noexcept(noexcept(fn(std::declval<Tx&>()))) {
        // seq_cst claim and generation load: the writer's half of the total
        // order argument above. The claim is also an acquire, so the adds of
        // the row's previous writer happen-before ours.
        const detail::Claim c = detail::claim_row(seq0(), rows(), std::memory_order_seq_cst);
        const std::uint64_t g = gen_.load(std::memory_order_seq_cst) & 1;
        Tx tx{slots_.word0(1 + g * W), c.row};
        fn(tx);
        // release: a reader that reads this value sees the adds.
        detail::row_word(seq0(), c.row).store(c.seq + 1, std::memory_order_release);
    }
    template <std::integral T>
    void add(Field<S> f, T n) noexcept {
        update([&](Tx& tx) { tx.add(f, n); });
    }

    // A snapshot (a cut, see above) minus the last reset.
    S read() const {
        std::lock_guard lk(mu_);
        return from_words<S>(minus<S>(take(), base_));
    }
    std::uint64_t read(Field<S> f) const { return to_words<S>(read())[f.word]; }
    // Clears a snapshot and returns it.
    S reset() {
        std::lock_guard lk(mu_);
        const Words<S> now = take();
        const Words<S> cleared = minus<S>(now, base_);
        base_ = now;
        return from_words<S>(cleared);
    }
    // Snapshots taken so far (the current generation).
    std::uint64_t generation() const noexcept { return gen_.load(std::memory_order_relaxed); }

    struct Tx {
        std::uint64_t* data0;  // word 0 of this generation's copy, row 0
        std::size_t row;
        template <std::integral T>
        void add(Field<S> f, T n) noexcept {
            detail::record_add(data0, row, f.word, static_cast<std::uint64_t>(n));
        }
    };

private:
    std::uint64_t* seq0() const noexcept { return slots_.word0(0); }
    std::size_t rows() const noexcept { return std::size_t{slots_.shards()} + 1; }

    // Under mu_. Advances the generation, waits out the old one, folds it.
    Words<S> take() const {
        const std::uint64_t n = gen_.load(std::memory_order_relaxed);  // only readers store, under mu_
        gen_.store(n + 1, std::memory_order_seq_cst);
        for (std::size_t r = 0; r < rows(); ++r) {
            auto seq = detail::row_word(seq0(), r);
            const std::uint64_t s = seq.load(std::memory_order_seq_cst);
            if ((s & 1) == 0) continue;
            // A group update is in flight; it may be of generation n. Wait
            // for that one to end (acquire: then its adds are visible); a
            // later claim of the row is of generation n + 1.
            detail::Backoff backoff;
            while (seq.load(std::memory_order_acquire) == s) backoff.pause();
        }
        const std::size_t copy = n & 1;
        Words<S> sum{};
        for (std::size_t r = 0; r < rows(); ++r)
            for (std::size_t i = 0; i < W; ++i)
                sum[i] += detail::row_word(slots_.word0(1 + copy * W + i), r).load(std::memory_order_relaxed);
        folded_[copy] = sum;
        Words<S> out;
        for (std::size_t i = 0; i < W; ++i) out[i] = folded_[0][i] + folded_[1][i];
        return out;
    }

    detail::Slots slots_;
    // Read by every writer, written once per snapshot: its own line.
    alignas(64) mutable std::atomic<std::uint64_t> gen_{0};
    alignas(64) mutable std::mutex mu_;
    mutable Words<S> folded_[2]{};  // quiesced sums of each copy (under mu_)
    Words<S> base_{};
};

}  // namespace percore
