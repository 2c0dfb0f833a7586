// SPDX-License-Identifier: MIT
// percore/detail/update.hpp - the update and read paths shared by every
// per-shard type (internal).
//
// A per-shard value is addressed by `word0`, its word in row 0; its word in
// row r is word0 + r * kRowWords. Handles keep word0 and the Arena's shard
// count inline so that an update touches the handle, the Identity line and
// the row, nothing else.
//
// Writers never lock and never use a lock prefix on the common path:
//   rseq:    a restartable sequence adds to the current CPU's row; the kernel
//            restarts it if the thread is preempted, migrated or signalled
//            before the single-instruction commit (arch/rseq_*.hpp).
//   thread:  the calling thread owns its row, so a relaxed load and a relaxed
//            store suffice (single writer; readers only load).
//   else:    (no row of its own: too many threads, rseq not registered on
//            this thread) the shared row (row `shards`), atomic fetch_add.
//
// Memory ordering: every access to a row word is a relaxed atomic access (or
// an aligned 8-byte asm add, single-copy atomic on x86-64). Readers never see
// a torn value, and per-location coherence makes a reader's successive loads
// of one word non-decreasing for monotonic counters. Counters publish no
// other data, so the rows need no acquire/release; the only ordered variable
// is a counter's reset offset (reset_by_offset).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "percore/arena.hpp"
#include "percore/detail/identity.hpp"

namespace percore::detail {

inline constexpr std::size_t kRowWords = Arena::kRowBytes / 8;

inline std::atomic_ref<std::uint64_t> row_word(std::uint64_t* word0, std::size_t row) noexcept {
    return std::atomic_ref<std::uint64_t>(word0[row * kRowWords]);
}

// Thread mode: the row this thread owns among `shards`, or -1.
inline long owned_row(std::uint32_t shards) noexcept {
    std::uint32_t s = tl_slot;
    if (s == 0) s = claim_thread_slot();
    return (s != kRetired && s - 1 < shards) ? static_cast<long>(s - 1) : -1;
}

// The row where the calling thread should apply an atomic read-modify-write.
// Any row is correct for a word that only ever sees atomic RMWs
// (ShardAtomic); this one keeps the line local. A counter word also takes
// plain rseq adds on CPU rows, so for it (`plain_writers`) an atomic must go
// to the shared row, or it could race with them.
inline std::size_t atomic_row(std::uint32_t shards, bool plain_writers) noexcept {
    Identity& id = g_identity;
    const Mode m = id.mode.load(std::memory_order_relaxed);
    if (m == Mode::thread) {
        const long r = owned_row(shards);
        if (r >= 0) return static_cast<std::size_t>(r);
        if (plain_writers) return shards;
    } else if (plain_writers && arch::kHasRseqCommit) {
        return shards;
    }
    if (id.scramble.load(std::memory_order_relaxed)) [[unlikely]] {
        const std::uint64_t r = scramble_random();
        return (r & 1) ? 0 : (r >> 1) % (shards + 1);
    }
    if (m == Mode::thread) return shards;
    const int i = m == Mode::rseq_mm_cid ? arch::rseq_index<arch::RseqField::mm_cid>(id.rseq_offset)
                                         : arch::rseq_index<arch::RseqField::cpu_id>(id.rseq_offset);
    return static_cast<std::uint32_t>(i) < shards ? static_cast<std::size_t>(i) : shards;  // -1 wraps
}

// The row the caller's next add will most likely land in, for prefetching:
// a hint only (the thread may migrate before the add; a shared-row writer
// gets the shared row).
inline std::size_t local_row(std::uint32_t shards) noexcept {
    const std::uint64_t rb = tl_row_bytes;
    if (rb < (std::uint64_t{shards} << arch::kRowShift)) return static_cast<std::size_t>(rb >> arch::kRowShift);
    const Mode m = g_identity.mode.load(std::memory_order_relaxed);
    const int i = m == Mode::rseq_mm_cid   ? arch::rseq_index<arch::RseqField::mm_cid>(g_identity.rseq_offset)
                  : m == Mode::rseq_cpu_id ? arch::rseq_index<arch::RseqField::cpu_id>(g_identity.rseq_offset)
                                           : -1;
    return static_cast<std::uint32_t>(i) < shards ? static_cast<std::size_t>(i) : shards;  // -1 wraps
}

[[gnu::noinline]] inline void add_slow(std::uint64_t* word0, std::uint32_t shards, std::uint64_t n) noexcept {
    if (g_identity.mode.load(std::memory_order_relaxed) == Mode::thread) {
        const long r = owned_row(shards);
        if (r >= 0) {
            auto w = row_word(word0, static_cast<std::size_t>(r));
            w.store(w.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
            return;
        }
    }
    row_word(word0, atomic_row(shards, true)).fetch_add(n, std::memory_order_relaxed);
}

// Adds n (mod 2^64) to the caller's shard of the value at word0.
inline void add(std::uint64_t* word0, std::uint32_t shards, std::uint64_t n) noexcept {
    // A thread that owns a slot (thread backend) is recognised from its TLS
    // alone; with rseq no thread ever claims one, so tl_row_bytes stays ~0
    // and the test falls through to the restartable sequence.
    const std::uint64_t rb = tl_row_bytes;
    if (rb < (std::uint64_t{shards} << arch::kRowShift)) [[likely]] {
        std::atomic_ref<std::uint64_t> w(*reinterpret_cast<std::uint64_t*>(reinterpret_cast<char*>(word0) + rb));
        w.store(w.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        return;
    }
    const Mode m = g_identity.mode.load(std::memory_order_relaxed);
    if (m == Mode::rseq_mm_cid) {
        if (arch::rseq_add<arch::RseqField::mm_cid>(g_identity.rseq_offset, word0, shards, n)) [[likely]]
            return;
    } else if (m == Mode::rseq_cpu_id) {
        if (arch::rseq_add<arch::RseqField::cpu_id>(g_identity.rseq_offset, word0, shards, n)) [[likely]]
            return;
    }
    add_slow(word0, shards, n);
}

// Adds v0 and v1 to the adjacent values at word0 and word0 + 1 (16-byte
// aligned) with one shard lookup: thread slots need one TLS load anyway; with
// rseq both adds commit together in one restartable sequence.
// Thread slots: the caller owns row bytes `rb`, so plain (relaxed) stores.
inline void add_pair_owned(std::uint64_t* word0, std::uint64_t rb, std::uint64_t v0, std::uint64_t v1) noexcept {
    auto* p = reinterpret_cast<std::uint64_t*>(reinterpret_cast<char*>(word0) + rb);
    std::atomic_ref<std::uint64_t> w0(p[0]), w1(p[1]);
    w0.store(w0.load(std::memory_order_relaxed) + v0, std::memory_order_relaxed);
    w1.store(w1.load(std::memory_order_relaxed) + v1, std::memory_order_relaxed);
}

inline void add_pair(std::uint64_t* word0, std::uint32_t shards, std::uint64_t v0, std::uint64_t v1) noexcept {
    const std::uint64_t rb = tl_row_bytes;
    if (rb < (std::uint64_t{shards} << arch::kRowShift)) [[likely]] {
        add_pair_owned(word0, rb, v0, v1);
        return;
    }
    const Mode m = g_identity.mode.load(std::memory_order_relaxed);
    const arch::V2u64 v = {v0, v1};
    if (m == Mode::rseq_mm_cid) {
        if (arch::rseq_add2<arch::RseqField::mm_cid>(g_identity.rseq_offset, word0, shards, v)) [[likely]]
            return;
    } else if (m == Mode::rseq_cpu_id) {
        if (arch::rseq_add2<arch::RseqField::cpu_id>(g_identity.rseq_offset, word0, shards, v)) [[likely]]
            return;
    }
    add_slow(word0, shards, v0);
    add_slow(word0 + 1, shards, v1);
}

// add_pair, then returns a row (0 .. shards) for the caller's atomic
// read-modify-writes on words that take nothing else (a histogram's
// extremes): the row the pair went to, so the line is already local. With
// rseq it is the index read just after the commit; if the thread migrated in
// between it is another CPU's row, which is still correct for such words
// (see atomic_row) and merely remote. Saves the mode and scramble reads of a
// separate atomic_row() call on the fast path.
inline std::size_t add_pair_row(std::uint64_t* word0, std::uint32_t shards, std::uint64_t v0,
                                std::uint64_t v1) noexcept {
    const std::uint64_t rb = tl_row_bytes;
    if (rb < (std::uint64_t{shards} << arch::kRowShift)) [[likely]] {
        add_pair_owned(word0, rb, v0, v1);
        return static_cast<std::size_t>(rb >> arch::kRowShift);
    }
    const Mode m = g_identity.mode.load(std::memory_order_relaxed);
    const arch::V2u64 v = {v0, v1};
    const long off = g_identity.rseq_offset;
    int i = 0;
    bool done = false;
    if (m == Mode::rseq_mm_cid) {
        done = arch::rseq_add2<arch::RseqField::mm_cid>(off, word0, shards, v);
        if (done) [[likely]]
            i = arch::rseq_index<arch::RseqField::mm_cid>(off);
    } else if (m == Mode::rseq_cpu_id) {
        done = arch::rseq_add2<arch::RseqField::cpu_id>(off, word0, shards, v);
        if (done) [[likely]]
            i = arch::rseq_index<arch::RseqField::cpu_id>(off);
    }
    if (!done) [[unlikely]] {
        add_slow(word0, shards, v0);
        add_slow(word0 + 1, shards, v1);
        return atomic_row(shards, false);
    }
    // Scramble mode (tests) spreads atomics over every row, as atomic_row does.
    if (g_identity.scramble.load(std::memory_order_relaxed)) [[unlikely]]
        return atomic_row(shards, false);
    // i is -1 only if rseq was unregistered since the commit; -1 wraps to
    // the shared row.
    return static_cast<std::uint32_t>(i) < shards ? static_cast<std::size_t>(i) : shards;
}

// Sum over all rows (shards + the shared row), mod 2^64.
inline std::uint64_t sum(std::uint64_t* word0, std::uint32_t shards) noexcept {
    std::uint64_t s = 0;
    for (std::size_t r = 0; r <= shards; ++r) s += row_word(word0, r).load(std::memory_order_relaxed);
    return s;
}

// Owns `words` consecutive words of an Arena for the lifetime of a handle.
class Slots {
public:
    Slots(Arena& a, std::size_t words, std::uint64_t init, std::size_t align = 8)
        : off_(a.allocate(words, init, align)),
          word0_(a.word(0, off_)),
          shards_(static_cast<std::uint32_t>(a.shards())),
          arena_(&a),
          words_(words) {}
    ~Slots() { arena_->deallocate(off_, words_); }
    Slots(const Slots&) = delete;
    Slots& operator=(const Slots&) = delete;

    // Word i of this handle, row 0.
    std::uint64_t* word0(std::size_t i = 0) const noexcept { return word0_ + i; }
    std::uint32_t shards() const noexcept { return shards_; }
    const Arena& arena() const noexcept { return *arena_; }

private:
    std::size_t off_;
    std::uint64_t* word0_;
    std::uint32_t shards_;
    Arena* arena_;
    std::size_t words_;
};

// Read-and-clear by offset: `base` holds the sum at the last reset. The
// rows are never written by a reset, so a concurrent add is never lost: it
// lands in a row and shows up either in the value this reset returns or in
// a later read. Concurrent resets serialize on the CAS, and each returns the
// part of the total that it cleared, so (sum of all resets + value()) equals
// everything ever added.
//
// Ordering: the CAS releases and value() acquires `base`. A reader that sees
// base = S therefore also sees every row at least as new as the resetter saw
// when it computed S (read-read coherence through happens-before), so its
// own sum is >= S and value() never wraps below zero.
inline std::uint64_t reset_by_offset(std::uint64_t* word0, std::uint32_t shards,
                                     std::atomic<std::uint64_t>& base) noexcept {
    std::uint64_t old = base.load(std::memory_order_acquire);
    for (;;) {
        const std::uint64_t now = sum(word0, shards);
        if (base.compare_exchange_weak(old, now, std::memory_order_acq_rel, std::memory_order_acquire))
            return now - old;
    }
}

}  // namespace percore::detail
