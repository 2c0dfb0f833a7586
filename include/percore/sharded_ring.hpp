// SPDX-License-Identifier: MIT
// percore/sharded_ring.hpp - ShardedRing<T>: per-CPU bounded rings drained
// by one consumer.
//
// For many producers and one consumer that does not need a global order:
// trace and log records, completions, packets handed to a writer thread,
// frees returned to an owner. Each shard (CPU, or thread slot) has its own
// bounded ring, so producers on different CPUs never write the same cache
// line; one consumer thread drains them all with drain(fn) or try_pop().
//
// Cost: with rseq (x86-64) a push is one restartable sequence of about 16
// instructions on the CPU's own ring: no lock, no atomic read-modify-write,
// and threads sharing a CPU never wait for each other (a preempted push is
// restarted by the kernel, not waited for). With thread slots it is a plain
// single-producer push into the thread's own ring. Threads without a shard
// of their own (rseq not registered, more threads than slots, a CPU index
// beyond `shards`) push into one extra shard under a spinlock. Memory:
// (shards + 1) x capacity x slot bytes, reserved up front and resident only
// where pushed, plus 256 bytes of indices per shard.
//
// Guarantees:
//   - every item try_push accepted is delivered exactly once; a push refused
//     because its shard's ring is full returns false and counts one drop on
//     that shard (drops(), drops(shard)): nothing is lost silently;
//   - FIFO within a shard; no order between shards, hence none between two
//     producers, nor for one producer that migrates (its items may go to two
//     shards and come out in either order);
//   - a full shard refuses pushes even when other shards have room:
//     capacity is per shard, so size it for a burst of one CPU;
//   - push is safe from any thread; with rseq also from a signal handler (the
//     interrupted push is aborted and restarted), as long as `shards` covers
//     every CPU (the overflow shard takes a lock). Thread slots: not from a
//     signal handler;
//   - one consumer: drain() and try_pop() must not run concurrently with each
//     other (one thread, or serialize them yourself).
//
// T: trivially copyable and at most 16 bytes, stored in 8-byte slots (T of
// 8 bytes or less) or 16-byte slots. The push sequence commits with one
// instruction, so the item must be written by a fixed, short run of stores;
// for larger records push a pointer or an index into storage of your own.
//
// Memory ordering (see arch/rseq_x86_64.hpp for the sequence): the producer
// stores the item, then publishes it by advancing `head` (the commit; a
// release store in the portable paths). The consumer loads `head` with
// acquire, reads the items below it, then stores `tail` with release; a
// producer loads `tail` with acquire before it reuses a slot. So an item is
// read only after it was fully written, and a slot is overwritten only
// after the consumer has read it.
//
//   percore::ShardedRing<Event*> ring(4096);   // 4096 slots per shard
//   if (!ring.try_push(ev)) ...                 // full: dropped and counted
//   ring.drain([](Event* e) { write(e); });     // consumer thread
#pragma once

#include "percore/detail/cxx20.hpp"

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "percore/arch/rseq.hpp"
#include "percore/detail/backoff.hpp"
#include "percore/detail/identity.hpp"

namespace percore {

template <class T>
class ShardedRing {
    static_assert(std::is_trivially_copyable_v<T>, "ShardedRing<T>: T must be trivially copyable");
    static_assert(sizeof(T) <= 16,
                  "ShardedRing<T>: T must be at most 16 bytes; push a pointer or an index to larger records");

public:
    // At most 2^30 slots per shard.
    static constexpr std::size_t kMaxCapacity = std::size_t{1} << 30;

    // capacity_per_shard is rounded up to a power of two, at least 8.
    // shards == 0: percore::max_shards(). CPUs (or thread slots) with an
    // index >= shards push into the overflow shard, under its lock.
    explicit ShardedRing(std::size_t capacity_per_shard, std::size_t shards = 0) {
        if (capacity_per_shard == 0 || capacity_per_shard > kMaxCapacity)
            throw std::invalid_argument("percore::ShardedRing: capacity must be in 1..2^30");
        if (shards > detail::kMaxShards) throw std::invalid_argument("percore::ShardedRing: more than 65536 shards");
        // Identity first: try_push reads it without asking.
        const std::uint32_t bound = detail::identity().max_shards;
        n_ = static_cast<std::uint32_t>(shards == 0 ? bound : shards);
        cap_ = std::bit_ceil(capacity_per_shard < 8 ? std::size_t{8} : capacity_per_shard);
        const std::size_t page = 4096;
        hdr_bytes_ = ((n_ + 1) * sizeof(arch::RingShard) + page - 1) / page * page;
        map_bytes_ = hdr_bytes_ + (n_ + 1) * cap_ * kSlot;
        void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        hdr_ = static_cast<arch::RingShard*>(p);
        auto* slots = reinterpret_cast<std::byte*>(p) + hdr_bytes_;
        for (std::uint32_t i = 0; i <= n_; ++i) {
            arch::RingShard* s = new (&hdr_[i]) arch::RingShard{};
            s->slots = reinterpret_cast<std::uint64_t*>(slots + std::size_t{i} * cap_ * kSlot);
            s->mask = cap_ - 1;
        }
    }
    ~ShardedRing() { munmap(hdr_, map_bytes_); }
    ShardedRing(const ShardedRing&) = delete;
    ShardedRing& operator=(const ShardedRing&) = delete;

    // Producer side, any thread. False if the caller's shard is full (one
    // drop counted on it).
    bool try_push(const T& v) noexcept {
        detail::Identity& id = detail::g_identity;
        const detail::Mode m = id.mode.load(std::memory_order_relaxed);
        if (m == detail::Mode::thread) {
            // tl_slot is slot + 1 (0: none yet, kRetired: exiting), so one
            // unsigned compare finds a thread that owns shard tl_slot - 1.
            const std::uint32_t s = detail::tl_slot - 1;
            if (s < n_) [[likely]]
                return push_owned(hdr_[s], v);
        } else if constexpr (arch::kHasRseqCommit) {
            const std::uint64_t r =
                m == detail::Mode::rseq_mm_cid
                    ? arch::rseq_ring_push<arch::RseqField::mm_cid>(id.rseq_offset, hdr_, n_, word(v))
                    : arch::rseq_ring_push<arch::RseqField::cpu_id>(id.rseq_offset, hdr_, n_, word(v));
            if (r < arch::kRingFull) [[likely]]
                return true;
            if (r != arch::kRingNoRseq) return drop(hdr_[r & 0xffffffffu]);
        }
        return push_slow(v);
    }

    // Consumer side (one consumer). Calls fn(T) for up to max_items items,
    // shard by shard, each shard in FIFO order; returns how many. Items
    // pushed while it runs may or may not be included. If fn throws, the
    // items before the throwing one are consumed and the one it threw on
    // counts as delivered.
    template <class F>
    std::size_t drain(F&& fn, std::size_t max_items = std::numeric_limits<std::size_t>::max()) {
        std::size_t done = 0;
        for (std::uint32_t i = 0; i <= n_ && done < max_items; ++i) done += drain_one(hdr_[i], fn, max_items - done);
        return done;
    }

    // Calls fn(T) for the items of one shard (0..shards(), the last being
    // the overflow shard).
    template <class F>
    std::size_t drain_shard(std::size_t shard, F&& fn,
                            std::size_t max_items = std::numeric_limits<std::size_t>::max()) {
        return shard <= n_ ? drain_one(hdr_[shard], fn, max_items) : 0;
    }

    // One item, or nothing if every shard looked empty. Visits the shards
    // round robin, one item per visit, so a busy shard cannot starve the
    // others.
    std::optional<T> try_pop() noexcept {
        for (std::uint32_t k = 0; k <= n_; ++k) {
            arch::RingShard& s = hdr_[cursor_];
            cursor_ = cursor_ == n_ ? 0 : cursor_ + 1;
            const std::uint64_t tail = s.tail;
            if (tail == s.cached_head) {
                s.cached_head = ref(s.head).load(std::memory_order_acquire);
                if (tail == s.cached_head) continue;
            }
            const T v = load(s, tail);
            ref(s.tail).store(tail + 1, std::memory_order_release);
            return v;
        }
        return std::nullopt;
    }

    // Slots per shard.
    std::size_t capacity() const noexcept { return cap_; }
    // Shards with an owner (CPU or thread slot); the overflow shard is
    // number shards().
    std::size_t shards() const noexcept { return n_; }
    // Pushes refused because the ring was full, in all shards / in one.
    std::uint64_t drops() const noexcept {
        std::uint64_t d = 0;
        for (std::uint32_t i = 0; i <= n_; ++i) d += drops(i);
        return d;
    }
    std::uint64_t drops(std::size_t shard) const noexcept {
        return shard <= n_ ? ref(hdr_[shard].drops).load(std::memory_order_relaxed) : 0;
    }
    // Items pushed and not yet consumed (a racy sum, exact when quiet).
    std::size_t size_approx() const noexcept {
        std::size_t n = 0;
        for (std::uint32_t i = 0; i <= n_; ++i)
            n += static_cast<std::size_t>(ref(hdr_[i].head).load(std::memory_order_acquire) -
                                          ref(hdr_[i].tail).load(std::memory_order_relaxed));
        return n;
    }

private:
    static constexpr std::size_t kSlot = sizeof(T) <= 8 ? 8 : 16;
    using Word = std::conditional_t<kSlot == 8, std::uint64_t, arch::V2u64>;

    static std::atomic_ref<std::uint64_t> ref(std::uint64_t& w) noexcept { return std::atomic_ref<std::uint64_t>(w); }
    static std::atomic_ref<std::uint64_t> ref(const std::uint64_t& w) noexcept {
        return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(w));
    }

    static Word word(const T& v) noexcept {
        Word w{};
        std::memcpy(&w, &v, sizeof(T));
        return w;
    }
    static T load(const arch::RingShard& s, std::uint64_t i) noexcept {
        std::array<std::byte, sizeof(T)> b;
        std::memcpy(b.data(), reinterpret_cast<const std::byte*>(s.slots) + (i & s.mask) * kSlot, sizeof(T));
        return std::bit_cast<T>(b);
    }

    // The portable push, for the one producer of a shard at a time (its
    // owner thread, or whoever holds the shard's lock): the sequence of the
    // rseq push in C++, with an acquire load of tail and a release store of
    // head.
    static bool push_owned(arch::RingShard& s, const T& v) noexcept {
        const std::uint64_t head = ref(s.head).load(std::memory_order_relaxed);
        if (head - ref(s.cached_tail).load(std::memory_order_relaxed) > s.mask) [[unlikely]] {
            const std::uint64_t tail = ref(s.tail).load(std::memory_order_acquire);
            ref(s.cached_tail).store(tail, std::memory_order_relaxed);
            if (head - tail > s.mask) return drop(s);
        }
        std::memcpy(reinterpret_cast<std::byte*>(s.slots) + (head & s.mask) * kSlot, &v, sizeof(T));
        ref(s.head).store(head + 1, std::memory_order_release);
        return true;
    }

    static bool drop(arch::RingShard& s) noexcept {
        ref(s.drops).fetch_add(1, std::memory_order_relaxed);
        return false;
    }

    static bool push_locked(arch::RingShard& s, const T& v) noexcept {
        std::atomic_ref<std::uint32_t> lk(s.lock);
        while (lk.exchange(1, std::memory_order_acquire) != 0) {
            detail::Backoff b;
            while (lk.load(std::memory_order_relaxed) != 0) b.pause();
        }
        const bool ok = push_owned(s, v);
        lk.store(0, std::memory_order_release);
        return ok;
    }

    [[gnu::noinline]] bool push_slow(const T& v) noexcept {
        detail::Identity& id = detail::g_identity;
        if (id.mode.load(std::memory_order_relaxed) == detail::Mode::thread) {
            std::uint32_t slot = detail::tl_slot;
            if (slot == 0) slot = detail::claim_thread_slot();  // first use
            if (slot != detail::kRetired && slot - 1 < n_) return push_owned(hdr_[slot - 1], v);
        } else if constexpr (!arch::kHasRseqCommit) {
            // No restartable push on this architecture: the CPU's own shard,
            // under its lock (contended only by threads sharing the CPU).
            const int i = detail::rseq_index(id);
            if (i >= 0 && static_cast<std::uint32_t>(i) < n_) return push_locked(hdr_[i], v);
        }
        return push_locked(hdr_[n_], v);
    }

    template <class F>
    std::size_t drain_one(arch::RingShard& s, F& fn, std::size_t max_items) {
        std::uint64_t tail = s.tail;
        const std::uint64_t head = ref(s.head).load(std::memory_order_acquire);
        s.cached_head = head;
        const std::uint64_t end = head - tail > max_items ? tail + max_items : head;
        // Publishes the new tail on the way out, also when fn throws.
        struct Publish {
            arch::RingShard& s;
            std::uint64_t& tail;
            ~Publish() { ref(s.tail).store(tail, std::memory_order_release); }
        } publish{s, tail};
        const std::uint64_t start = tail;
        while (tail != end) {
            const T v = load(s, tail);
            ++tail;
            fn(v);
        }
        return static_cast<std::size_t>(tail - start);
    }

    arch::RingShard* hdr_ = nullptr;
    std::uint32_t n_ = 1;
    std::uint32_t cursor_ = 0;  // try_pop's next shard (consumer only)
    std::size_t cap_ = 8;
    std::size_t hdr_bytes_ = 0;
    std::size_t map_bytes_ = 0;
};

}  // namespace percore
