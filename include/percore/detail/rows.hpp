// SPDX-License-Identifier: MIT
// percore/detail/rows.hpp - per-shard records with a claim word (internal).
//
// The seqcount, per-core-lock and cross-shard snapshot patterns keep one
// record per Arena row: word 0 is a sequence/lock word, the rest are the
// record's counters. A group update needs the record to itself, but a shard
// is a CPU (rseq) or a thread slot that another thread may share (folded
// slots, scramble mode, a thread preempted inside its group update), so a
// writer claims the record by moving the word from even to odd with one
// compare-and-swap, and releases it by storing the next even value.
//
// A writer never waits for another writer or a reader: if its own row is
// claimed, it moves on to the next row. Any row is correct, because readers
// add all rows up; the cost is a cache miss on a line that another core
// uses. Only if every row is claimed does it back off and retry.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "percore/detail/identity.hpp"
#include "percore/detail/update.hpp"
#include "percore/detail/backoff.hpp"

namespace percore::detail {

struct Claim {
    std::size_t row;
    std::uint64_t seq;  // the odd value we stored
};

// `order` is the ordering of the successful CAS: acquire for a lock or a
// seqcount (see the callers), seq_cst where the claim must be totally
// ordered with a reader's store to another variable (snapshot.hpp).
inline Claim claim_row(std::uint64_t* seq0, std::size_t rows, std::memory_order order) noexcept {
    std::size_t r = current_index() % rows;
    Backoff backoff;
    for (std::size_t tries = 1;; ++tries) {
        auto w = row_word(seq0, r);
        // Test builds: points 1 and 2 of the seqcount writer (arch/rseq_inject.hpp).
        PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 1);
        // Load first: a failing CAS would take the line exclusive for nothing.
        std::uint64_t s = w.load(std::memory_order_relaxed);
        PERCORE_INJECT_POINT(arch::InjectSite::seqcount, 2);
        if ((s & 1) == 0 && w.compare_exchange_strong(s, s + 1, order, std::memory_order_relaxed))
            return Claim{r, s + 1};
        r = r + 1 == rows ? 0 : r + 1;
        if (tries % rows == 0) backoff.pause();
    }
}

// Adds n to word i of a claimed record. Single writer (the claim), so a
// relaxed load and store suffice; they are atomic only so that concurrent
// readers (who retry or wait) are not data races.
inline void record_add(std::uint64_t* word0, std::size_t row, std::size_t i, std::uint64_t n) noexcept {
    auto w = row_word(word0 + i, row);
    w.store(w.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace percore::detail
