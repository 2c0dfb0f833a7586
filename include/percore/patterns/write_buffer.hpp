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
// Instrumentation, for percore::Tuner and for you: flushes(), busy_tries()
// and applied() (entries applied) always; after instrument(true) also
// lock_wait_ns() (time spent waiting for the lock where a try_lock failed)
// and oldest_pending_ns() (the age of the oldest buffered add, stamped once
// per buffer fill). Off, the instrumentation costs a load of a read-mostly
// flag per fill and per flush: no clock read, and the lock is taken the
// way it was (a try_lock first would cost a second coherence transaction
// on a lock line that moves between cores).
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
// set_config() changes them while writers run (percore::Tuner does): each
// shard buffer takes the new values at its next claim, flushing or
// reallocating itself first if its capacity changes, so no add is lost or
// applied twice.
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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>

#include "percore/detail/steady_ns.hpp"
#include "percore/sharded.hpp"
#include "percore/spinlock.hpp"

namespace percore {

// The defaults are the setting the adaptive tuner (percore/tuner.hpp) chose
// on bursty multi-flow traffic with hint_flush() every 32 packets of four
// adds, and the one that put `percore-bench ep` under 10 TSC cycles per
// update at 2 workers (docs/tuning.md). They trade memory (64 KiB per shard
// buffer) and propagation (an add waits up to 16 hint_flush() calls) for
// fewer lock handoffs; a program that needs adds visible sooner lowers
// hint_period, or flushes.
struct WriteBufferConfig {
    std::uint32_t capacity = 4096;
    std::uint32_t soft_threshold = 3072;
    std::uint32_t hint_period = 16;
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
        : lock_(&lock),
          lock_fn_([](void* l) { static_cast<Lock*>(l)->lock(); }),
          try_lock_fn_([](void* l) { return static_cast<Lock*>(l)->try_lock(); }),
          unlock_fn_([](void* l) { static_cast<Lock*>(l)->unlock(); }) {
        set_config(cfg);
    }
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
        if (++b->hints >= hint_period_.load(std::memory_order_relaxed)) {
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
    std::uint64_t flushes() const noexcept { return stats_.flushes.load(std::memory_order_relaxed); }
    std::uint64_t busy_tries() const noexcept { return stats_.busy_tries.load(std::memory_order_relaxed); }
    // Entries applied by flushes and direct applies (racy like
    // pending_all()); ns spent waiting for the lock while instrumented.
    std::uint64_t applied() const noexcept {
        std::uint64_t n = stats_.direct_applied.load(std::memory_order_relaxed);
        buffers_.for_each([&](const Buffer& b) { n += b.applied.load(std::memory_order_relaxed); });
        return n;
    }
    std::uint64_t lock_wait_ns() const noexcept { return stats_.lock_wait.load(std::memory_order_relaxed); }

    // The knobs in effect (each field read on its own: a set_config() in
    // progress may show a mix of old and new).
    WriteBufferConfig config() const noexcept {
        return {capacity_.load(std::memory_order_relaxed), soft_.load(std::memory_order_relaxed),
                hint_period_.load(std::memory_order_relaxed)};
    }
    // Changes the knobs while writers run; each shard buffer applies them at
    // its next claim. Throws std::invalid_argument like the constructor.
    void set_config(WriteBufferConfig cfg) {
        cfg = check(cfg);
        // Relaxed: a writer that reads an old value for a while is as
        // correct as one that ran before the call; the values are only
        // sizes, and a buffer's storage is resized under its claim.
        capacity_.store(cfg.capacity, std::memory_order_relaxed);
        soft_.store(cfg.soft_threshold, std::memory_order_relaxed);
        hint_period_.store(cfg.hint_period, std::memory_order_relaxed);
    }

    // Times lock waits and stamps each buffer's first pending add, for
    // lock_wait_ns() and oldest_pending_ns().
    void instrument(bool on) noexcept { instrumented_.store(on, std::memory_order_relaxed); }
    bool instrumented() const noexcept { return instrumented_.load(std::memory_order_relaxed); }
    // The age, in steady_clock ns, of the oldest add still buffered (0 if
    // none, or if not instrumented). Racy like pending_all().
    std::int64_t oldest_pending_ns() const noexcept {
        if (!instrumented()) return 0;
        const std::int64_t now = detail::steady_ns();
        std::int64_t oldest = 0;
        buffers_.for_each([&](const Buffer& b) {
            const std::int64_t since = b.since.load(std::memory_order_relaxed);
            if (since != 0 && b.size.load(std::memory_order_relaxed) != 0) oldest = std::max(oldest, now - since);
        });
        return oldest;
    }

private:
    struct Buffer {
        explicit Buffer(std::uint32_t c) : cap(c), ops(new AddOp[c]) {}
        std::atomic<bool> busy{false};
        // Written only by the claimer; atomic so pending() may peek.
        std::atomic<std::uint32_t> size{0};
        std::uint32_t hints = 0;
        std::uint32_t cap;  // entries ops holds; guarded by the claim
        // steady_clock ns of the first add of the pending ones (0: none or
        // not instrumented); written by the claimer, read by oldest_pending_ns().
        std::atomic<std::int64_t> since{0};
        // Entries this buffer's flushes applied; written by the claimer.
        std::atomic<std::uint64_t> applied{0};
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
            lock();
        } else if (!try_lock_fn_(lock_)) {
            stats_.busy_tries.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        apply(b.ops.get(), n);
        unlock_fn_(lock_);
        b.size.store(0, std::memory_order_relaxed);
        if (b.since.load(std::memory_order_relaxed) != 0) b.since.store(0, std::memory_order_relaxed);
        b.applied.store(b.applied.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        b.hints = 0;
        stats_.flushes.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // Takes the lock. Instrumented, a try_lock first tells whether there is
    // a wait to time, so an uncontended lock costs no clock read.
    void lock() {
        if (!instrumented()) return lock_fn_(lock_);
        if (try_lock_fn_(lock_)) return;
        const std::int64_t t0 = detail::steady_ns();
        lock_fn_(lock_);
        stats_.lock_wait.fetch_add(static_cast<std::uint64_t>(detail::steady_ns() - t0), std::memory_order_relaxed);
    }
    // Lock held.
    static void apply(const AddOp* ops, std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            std::atomic_ref<std::uint64_t> w(*ops[i].counter);
            w.store(w.load(std::memory_order_relaxed) + ops[i].operand, std::memory_order_relaxed);
        }
    }
    // Claimed: drain (if it would not fit) and reallocate to `cap` entries.
    void resize(Buffer& b, std::uint32_t cap) {
        if (b.size.load(std::memory_order_relaxed) > cap) drain(b, true);
        std::unique_ptr<AddOp[]> ops(new AddOp[cap]);
        const std::uint32_t n = b.size.load(std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < n; ++i) ops[i] = b.ops[i];
        b.ops = std::move(ops);
        b.cap = cap;
    }

    void schedule(const AddOp* ops, std::size_t n) {
        if (n == 0) return;
        const std::uint32_t cap = capacity_.load(std::memory_order_relaxed);
        Buffer& b = buffers_.get_or_create([&](ShardInfo) { return Buffer(cap); });
        // Too big to buffer, or another thread is inside this shard's buffer
        // (it was preempted mid-schedule on this CPU): apply directly, as one
        // transaction, rather than wait for it.
        if (n > cap || !claim(b)) {
            lock();
            apply(ops, n);
            unlock_fn_(lock_);
            stats_.direct_applied.fetch_add(n, std::memory_order_relaxed);
            return;
        }
        if (b.cap != cap) resize(b, cap);  // set_config() changed it
        std::uint32_t size = b.size.load(std::memory_order_relaxed);
        if (size + n > cap) {
            drain(b, true);
            size = 0;
        }
        if (size == 0 && instrumented())
            b.since.store(detail::steady_ns(), std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) b.ops[size + i] = ops[i];
        size += static_cast<std::uint32_t>(n);
        b.size.store(size, std::memory_order_relaxed);
        // Soft threshold: flush if nobody holds the lock; a full buffer is
        // flushed (blocking) by the next schedule that would overflow it.
        if (size >= soft_.load(std::memory_order_relaxed)) drain(b, false);
        release(b);
    }

    // The knobs, changed by set_config(); relaxed, read once per schedule.
    std::atomic<std::uint32_t> capacity_, soft_, hint_period_;
    void* lock_;
    void (*lock_fn_)(void*);
    bool (*try_lock_fn_)(void*);
    void (*unlock_fn_)(void*);
    Sharded<Buffer> buffers_;
    std::atomic<bool> instrumented_{false};
    // Written by every flush, from every core: a line of their own, away
    // from the read-mostly fields above that every schedule reads.
    struct alignas(64) Stats {
        std::atomic<std::uint64_t> flushes{0}, busy_tries{0}, direct_applied{0}, lock_wait{0};
    } stats_;
};

}  // namespace percore
