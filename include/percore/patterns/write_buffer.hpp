// SPDX-License-Identifier: MIT
// percore/patterns/write_buffer.hpp - WriteBuffer: per-core buffering of adds to
// shared, lock-protected counters.
//
// A write buffer lets many cores update one shared set of counters without
// taking its lock on every update: an add is only recorded (counter
// address + 64-bit operand) in the buffer of the caller's shard, and a flush
// takes the lock once and applies everything recorded. The counters stay in
// one place (memory does not grow with cores), and the lock and counter
// lines move between cores once per flush instead of once per add.
//
// Costs: schedule_add() is one uncontended exchange on the shard buffer's
// own line (to claim it against another thread on the same CPU) plus a
// 16-byte store per add; a transaction of several adds claims once. A flush
// costs one lock acquisition plus one add per buffered entry. Memory per
// shard: capacity x 16 bytes.
//
// Knobs (WriteBufferConfig):
//   capacity        entries per shard buffer, and the largest transaction
//                   that is buffered (bigger ones are applied directly);
//                   a full buffer is flushed (blocking) before it overflows.
//   soft_threshold  at this fill, a schedule also tries a non-blocking flush,
//                   so a busy lock rarely makes the fast path wait.
//   hint_period     hint_flush() flushes on every Nth call (per shard).
//
// Guarantees:
//   - Exact: every scheduled add is applied exactly once, by some flush, or
//     at the latest by flush_all() or the destructor.
//   - Transactions: the adds of one schedule_add(span) are applied under one
//     lock hold, so a reader holding the lock sees all of them or none.
//   - Propagation: an add becomes visible at the next flush of the buffer it
//     went to: bounded by the flush policy (hint period, thresholds), or
//     never if nothing flushes it; flush_all() forces it.
//   - Any thread may schedule, registered or not: buffers belong to shards
//     (percore::Sharded), not threads, and a thread exiting loses nothing.
//   - flush() applies the caller's current shard's buffer. A thread that
//     stays on its CPU (pinned workers; thread slots) finds all of its own
//     pending adds there; one that migrated may have left some in another
//     shard's buffer, which flush_all() (or that shard's next flush) applies.
//
// The lock is any Lockable (Spinlock, TicketLock, std::mutex) that also
// guards the counters for readers; it must outlive the WriteBuffer.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>

#include "percore/sharded.hpp"
#include "percore/spinlock.hpp"

namespace percore {

struct WriteBufferConfig {
    std::uint32_t capacity = 64;
    std::uint32_t soft_threshold = 48;
    std::uint32_t hint_period = 8;
};

// One buffered add: *counter += operand (mod 2^64). A signed operand is
// stored as its two's complement, so adding it subtracts.
struct AddOp {
    std::uint64_t* counter;
    std::uint64_t operand;
};

class WriteBuffer {
public:
    template <class Lock>
    explicit WriteBuffer(Lock& lock, WriteBufferConfig cfg = {})
        : cfg_(check(cfg)),
          lock_(&lock),
          lock_fn_([](void* l) { static_cast<Lock*>(l)->lock(); }),
          try_lock_fn_([](void* l) { return static_cast<Lock*>(l)->try_lock(); }),
          unlock_fn_([](void* l) { static_cast<Lock*>(l)->unlock(); }) {}
    ~WriteBuffer() { flush_all(); }
    WriteBuffer(const WriteBuffer&) = delete;
    WriteBuffer& operator=(const WriteBuffer&) = delete;

    // Schedules *counter += n for a signed or unsigned 64-bit n.
    template <std::integral T>
    void schedule_add(std::uint64_t* counter, T n) {
        const AddOp op{counter, static_cast<std::uint64_t>(n)};
        schedule(&op, 1);
    }
    // Schedules several adds as one transaction.
    void schedule_add(std::span<const AddOp> tx) { schedule(tx.data(), tx.size()); }
    void schedule_add(std::initializer_list<AddOp> tx) { schedule(tx.begin(), tx.size()); }

    // Applies the caller's shard buffer, waiting for the lock if needed.
    void flush() {
        if (Buffer* b = buffers_.get()) {
            claim_wait(*b);
            drain(*b, true);
            release(*b);
        }
    }
    // Applies the caller's shard buffer if the lock is free right now.
    // Returns false (buffer kept) if the lock or the buffer was busy.
    bool try_flush() {
        Buffer* b = buffers_.get();
        if (b == nullptr) return true;
        if (!claim(*b)) return false;
        const bool ok = drain(*b, false);
        release(*b);
        return ok;
    }
    // Call once per batch of work (also for empty batches): every
    // hint_period-th call on a shard flushes that shard's buffer (blocking).
    // Returns true if this call flushed.
    bool hint_flush() {
        Buffer* b = buffers_.get();
        if (b == nullptr || !claim(*b)) return false;  // busy: the other user flushes soon enough
        bool flushed = false;
        if (++b->hints >= cfg_.hint_period) {
            drain(*b, true);
            flushed = true;
        }
        release(*b);
        return flushed;
    }
    // Applies every shard's buffer (control threads, shutdown, a reader that
    // wants no pending adds left behind).
    void flush_all() {
        buffers_.for_each([&](Buffer& b) {
            claim_wait(b);
            drain(b, true);
            release(b);
        });
    }

    // Entries waiting in the caller's shard buffer, and in all of them (a
    // racy count: other threads keep scheduling).
    std::size_t pending() const noexcept {
        const Buffer* b = buffers_.get();
        return b ? b->size.load(std::memory_order_relaxed) : 0;
    }
    std::size_t pending_all() const noexcept {
        std::size_t n = 0;
        buffers_.for_each([&](const Buffer& b) { n += b.size.load(std::memory_order_relaxed); });
        return n;
    }
    // Flushes that applied something; try_flush/soft-threshold attempts
    // that found the lock busy.
    std::uint64_t flushes() const noexcept { return flushes_.load(std::memory_order_relaxed); }
    std::uint64_t busy_tries() const noexcept { return busy_tries_.load(std::memory_order_relaxed); }
    const WriteBufferConfig& config() const noexcept { return cfg_; }

private:
    struct Buffer {
        explicit Buffer(std::uint32_t cap) : ops(new AddOp[cap]) {}
        std::atomic<bool> busy{false};
        // Written only by the claimer; atomic so pending() may peek.
        std::atomic<std::uint32_t> size{0};
        std::uint32_t hints = 0;
        std::unique_ptr<AddOp[]> ops;
    };

    static WriteBufferConfig check(WriteBufferConfig c) {
        if (c.capacity == 0 || c.hint_period == 0)
            throw std::invalid_argument("percore::WriteBuffer: capacity and hint_period must be >= 1");
        if (c.soft_threshold == 0 || c.soft_threshold > c.capacity) c.soft_threshold = c.capacity;
        return c;
    }

    // A shard's buffer is used by one thread at a time. Acquire on the
    // claim pairs with the release in release(): the previous user's
    // entries and size are visible to the next one.
    static bool claim(Buffer& b) noexcept { return !b.busy.exchange(true, std::memory_order_acquire); }
    static void claim_wait(Buffer& b) noexcept {
        detail::Backoff bo;
        while (!claim(b)) bo.pause();
    }
    static void release(Buffer& b) noexcept { b.busy.store(false, std::memory_order_release); }

    // Applies the claimed buffer under the lock. The lock's acquire/release
    // order these stores with every reader that takes the same lock; the
    // relaxed atomic stores also keep a lockless reader free of data races.
    bool drain(Buffer& b, bool blocking) {
        const std::uint32_t n = b.size.load(std::memory_order_relaxed);
        if (n == 0) return true;
        if (blocking) {
            lock_fn_(lock_);
        } else if (!try_lock_fn_(lock_)) {
            busy_tries_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        apply(b.ops.get(), n);
        unlock_fn_(lock_);
        b.size.store(0, std::memory_order_relaxed);
        b.hints = 0;
        flushes_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    static void apply(const AddOp* ops, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            std::atomic_ref<std::uint64_t> w(*ops[i].counter);
            w.store(w.load(std::memory_order_relaxed) + ops[i].operand, std::memory_order_relaxed);
        }
    }

    void schedule(const AddOp* ops, std::size_t n) {
        if (n == 0) return;
        Buffer& b = buffers_.get_or_create([&](ShardInfo) { return Buffer(cfg_.capacity); });
        // Too big to buffer, or another thread is inside this shard's buffer
        // (it was preempted mid-schedule on this CPU): apply directly, as one
        // transaction, rather than wait for it.
        if (n > cfg_.capacity || !claim(b)) {
            lock_fn_(lock_);
            apply(ops, n);
            unlock_fn_(lock_);
            return;
        }
        std::uint32_t size = b.size.load(std::memory_order_relaxed);
        if (size + n > cfg_.capacity) {
            drain(b, true);
            size = 0;
        }
        for (std::size_t i = 0; i < n; ++i) b.ops[size + i] = ops[i];
        size += static_cast<std::uint32_t>(n);
        b.size.store(size, std::memory_order_relaxed);
        // Soft threshold: flush if nobody holds the lock; a full buffer is
        // flushed (blocking) by the next schedule that would overflow it.
        if (size >= cfg_.soft_threshold) drain(b, false);
        release(b);
    }

    WriteBufferConfig cfg_;
    void* lock_;
    void (*lock_fn_)(void*);
    bool (*try_lock_fn_)(void*);
    void (*unlock_fn_)(void*);
    Sharded<Buffer> buffers_;
    std::atomic<std::uint64_t> flushes_{0};
    std::atomic<std::uint64_t> busy_tries_{0};
};

}  // namespace percore
