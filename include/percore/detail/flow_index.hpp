// SPDX-License-Identifier: MIT
// percore/detail/flow_index.hpp - FlowTable's key -> slot index (internal).
//
// Open addressing with linear probing over a power-of-two array of 8-byte
// entries, at least twice as many as slots (load <= 1/2). An entry is 0
// (empty), 1 (tombstone) or (tag << 32) | (slot + 2), the tag being the high
// half of the key's hash: a probe compares tags inside the entry and reads a
// slot's record (its key) only on a tag match, so a foreign key costs a load
// from the entry's line, not a miss on its record. At load 1/2 linear probing
// expects ~1.5 entries per hit and ~2.5 per miss (mostly one cache line of
// entries), plus one record line for the hit.
//
// Lookups take no lock and run concurrently with insertion and erasure,
// which the owner serializes with its mutex. The index never rehashes: it is
// sized once and an entry never moves, so a reader cannot miss a present
// key. Erasure leaves a tombstone (a live key's probe may pass through the
// entry); if the next entry is empty, the tombstone and any run of
// tombstones before it become empty again. Insertion takes the first
// tombstone or empty entry of the probe sequence. Tombstones inside a
// cluster stay until an insertion reuses them, so steady churn near capacity
// accumulates them and lengthens misses (lookups of new keys): a full table
// of 1M slots went from ~2.3 to ~95 entries per miss after 8 turnovers.
//
// Each slot has a record: the key's words, the storage policy's per-flow
// part (Payload, next to the key so that an add touches one line), a
// "touched" flag for expiry and a "live" flag. Slot `capacity()` is one
// extra record that is never indexed (FlowTable's overflow flow). Free slots
// are handed out oldest-first from a ring. Memory is reserved up front and
// costs pages only as flows arrive: 16 B of entries per slot (8 B x 2, more
// up to the next power of two), sizeof(Record) per slot, 4 B of free ring.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace percore::detail {

// Zero-filled anonymous memory: pages cost nothing until touched.
class Mapping {
public:
    explicit Mapping(std::size_t bytes) : bytes_(bytes) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        p_ = p;
    }
    ~Mapping() { munmap(p_, bytes_); }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    template <class T>
    T* as() const noexcept { return static_cast<T*>(p_); }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    void* p_;
    std::size_t bytes_;
};

// A 64-bit finalizer (MurmurHash3's): std::hash of an integer is the
// identity, and the index needs the low bits and the tag (high bits) both
// well mixed.
inline std::uint64_t mix64(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

inline std::uint64_t relaxed_load(const std::uint64_t& w) noexcept {
    return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(w)).load(std::memory_order_relaxed);
}

template <class Key, class Hash, class KeyEqual, class Payload>
class FlowIndex {
public:
    static constexpr std::uint32_t npos = 0xffffffffu;

    // Room for `slots` keys (1 .. 2^31; the caller checks), plus the
    // unindexed record `slots`.
    explicit FlowIndex(std::size_t slots)
        : mask_(std::bit_ceil(std::max<std::size_t>(16, 2 * slots)) - 1),
          cap_(slots),
          entries_((mask_ + 1) * 8),
          records_((cap_ + 1) * sizeof(Record)),
          free_(cap_) {
        for (std::size_t i = 0; i < cap_; ++i) free_[i] = static_cast<std::uint32_t>(i);
        free_count_ = cap_;
    }
    FlowIndex(const FlowIndex&) = delete;
    FlowIndex& operator=(const FlowIndex&) = delete;

    static std::uint64_t hash(const Key& key) noexcept { return mix64(Hash{}(key)); }

    // The key's slot, or npos. Lock-free; acquire pairs with insert()'s
    // release store of the entry, so the record's key is visible before its
    // slot is.
    std::uint32_t find(const Key& key, std::uint64_t h) const noexcept {
        const std::uint64_t tag = h >> 32;
        std::size_t i = h & mask_;
        for (std::size_t n = 0; n <= mask_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t e = entry(i).load(std::memory_order_acquire);
            if (e == kEmpty) return npos;
            if (e == kTomb || (e >> 32) != tag) continue;
            const auto id = static_cast<std::uint32_t>(e) - 2;
            if (KeyEqual{}(key_of(id), key)) return id;
        }
        return npos;
    }

    // For prefetching: loads the key's home entry (bringing its line in) and,
    // if its tag matches, prefetches that slot's record and returns the slot
    // (npos otherwise). A guess, not a lookup: the key is not compared, and
    // a wrong guess costs one wasted prefetch.
    std::uint32_t prefetch(std::uint64_t h) const noexcept {
        const std::uint64_t e = entry(h & mask_).load(std::memory_order_relaxed);
        if (e == kEmpty || e == kTomb || (e >> 32) != (h >> 32)) return npos;
        const auto id = static_cast<std::uint32_t>(e) - 2;
        __builtin_prefetch(&rec(id), 1, 3);
        return id;
    }

    // Under the owner's mutex: takes the oldest free slot (npos when all are
    // taken) for a key about to be inserted. Raises used() first, so that a
    // reader who can see the new flow's adds scans far enough.
    std::uint32_t acquire() noexcept {
        if (free_count_ == 0) return npos;
        const std::uint32_t id = free_[free_head_];
        free_head_ = (free_head_ + 1) % cap_;
        --free_count_;
        if (id >= high_water_.load(std::memory_order_relaxed)) high_water_.store(id + 1, std::memory_order_relaxed);
        return id;
    }

    // Under the owner's mutex: publishes `key` (hash h, known absent) at
    // slot `id` from acquire(), marked touched.
    void insert(std::uint32_t id, const Key& key, std::uint64_t h) noexcept {
        Record& r = rec(id);
        // Key words are atomics because a lock-free reader may compare a key
        // while this rewrites it for a reused slot: the reader sees some mix
        // of words and simply fails (or, harmlessly, passes) the compare.
        std::uint64_t w[kKeyWords] = {};
        std::memcpy(w, static_cast<const void*>(&key), sizeof(Key));
        for (std::size_t i = 0; i < kKeyWords; ++i)
            std::atomic_ref<std::uint64_t>(r.key[i]).store(w[i], std::memory_order_relaxed);
        std::atomic_ref<std::uint8_t>(r.touched).store(1, std::memory_order_relaxed);
        r.live = 1;
        // Only the mutex holder inserts, so the first reusable entry stays so.
        std::size_t i = h & mask_;
        for (;; i = (i + 1) & mask_) {
            const std::uint64_t e = entry(i).load(std::memory_order_relaxed);
            if (e == kEmpty || e == kTomb) break;
        }
        entry(i).store(((h >> 32) << 32) | (std::uint64_t{id} + 2), std::memory_order_release);
        size_.fetch_add(1, std::memory_order_relaxed);
    }

    // Under the owner's mutex: takes slot `id` (hash h) out of the index and
    // puts it at the back of the free ring.
    void erase(std::uint32_t id, std::uint64_t h) noexcept {
        const std::uint64_t want = ((h >> 32) << 32) | (std::uint64_t{id} + 2);
        std::size_t i = h & mask_;
        while (entry(i).load(std::memory_order_relaxed) != want) i = (i + 1) & mask_;
        entry(i).store(kTomb, std::memory_order_relaxed);
        // A tombstone followed by an empty entry ends every probe sequence
        // through it, so it can become empty itself (and so on backwards).
        // Safe with lock-free readers: no present key lies beyond an empty
        // entry in its sequence, so no live key's sequence passes here.
        if (entry((i + 1) & mask_).load(std::memory_order_relaxed) == kEmpty)
            while (entry(i).load(std::memory_order_relaxed) == kTomb) {
                entry(i).store(kEmpty, std::memory_order_relaxed);
                i = (i - 1) & mask_;
            }
        rec(id).live = 0;
        free_[(free_head_ + free_count_) % cap_] = id;
        ++free_count_;
        size_.fetch_sub(1, std::memory_order_relaxed);
    }

    // Marks the slot as updated. Read-mostly: written once per expiry
    // interval, so the line stays shared between the cores that use it.
    void touch(std::uint32_t id) noexcept {
        std::atomic_ref<std::uint8_t> t(rec(id).touched);
        if (t.load(std::memory_order_relaxed) == 0) [[unlikely]]
            t.store(1, std::memory_order_relaxed);
    }
    // Clears the mark; returns whether it was set.
    bool clear_touched(std::uint32_t id) noexcept {
        std::atomic_ref<std::uint8_t> t(rec(id).touched);
        if (t.load(std::memory_order_relaxed) == 0) return false;
        t.store(0, std::memory_order_relaxed);
        return true;
    }

    // Under the owner's mutex: whether slot `id` holds an indexed key.
    bool live(std::uint32_t id) const noexcept { return rec(id).live != 0; }
    Key key(std::uint32_t id) const noexcept { return key_of(id); }
    Payload& payload(std::uint32_t id) const noexcept { return rec(id).payload; }

    // Slots below used() have held a key at some point; it only grows.
    std::uint32_t used() const noexcept { return high_water_.load(std::memory_order_relaxed); }
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
    std::size_t capacity() const noexcept { return cap_; }
    std::size_t memory_bytes() const noexcept {
        return entries_.bytes() + records_.bytes() + free_.capacity() * sizeof(std::uint32_t);
    }

private:
    static constexpr std::size_t kKeyWords = (sizeof(Key) + 7) / 8;
    static constexpr std::uint64_t kEmpty = 0, kTomb = 1;

    struct Record {
        std::uint64_t key[kKeyWords];
        [[no_unique_address]] Payload payload;
        std::uint8_t touched;  // set by touch(), cleared by clear_touched()
        std::uint8_t live;     // indexed (written under the owner's mutex)
    };

    Record& rec(std::uint32_t id) const noexcept { return records_.as<Record>()[id]; }
    std::atomic_ref<std::uint64_t> entry(std::size_t i) const noexcept {
        return std::atomic_ref<std::uint64_t>(entries_.as<std::uint64_t>()[i]);
    }
    Key key_of(std::uint32_t id) const noexcept {
        std::uint64_t w[kKeyWords];
        for (std::size_t i = 0; i < kKeyWords; ++i) w[i] = relaxed_load(rec(id).key[i]);
        Key k;
        std::memcpy(static_cast<void*>(&k), w, sizeof(Key));
        return k;
    }

    // Read by every lookup, written only by the constructor.
    const std::size_t mask_;  // entries - 1
    const std::size_t cap_;
    Mapping entries_;
    Mapping records_;

    // Written on every insertion and erasure: on a line of their own, away
    // from the fields above that every lookup reads. Under the owner's mutex
    // (size_ and high_water_ are also read without it).
    alignas(64) std::vector<std::uint32_t> free_;  // ring of free slots, oldest first
    std::size_t free_head_ = 0, free_count_ = 0;
    std::atomic<std::uint32_t> high_water_{0};
    std::atomic<std::size_t> size_{0};
};

}  // namespace percore::detail
