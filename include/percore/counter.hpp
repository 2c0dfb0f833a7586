// SPDX-License-Identifier: MIT
// percore/counter.hpp - Counter (monotonic u64) and Gauge (signed).
//
// Both are one 8-byte word per shard in an Arena plus a 16-byte handle. An
// update is a single add on the caller's shard: with rseq, a restartable
// sequence of about six instructions and no lock prefix; with thread slots,
// a TLS load, a load and a store. value() reads every shard (relaxed loads,
// O(shards)), so reads are for control threads, not the fast path.
//
//   percore::Counter packets;          // usable as a global or static
//   packets.inc();                     // fast path
//   uint64_t n = packets.value();      // any thread
//   uint64_t cleared = packets.reset(); // exact: no concurrent add is lost
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <cstdint>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"

namespace percore {

class Counter {
public:
    explicit Counter(Arena& arena = default_arena()) : slots_(arena, 1, 0) {}
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    void inc() noexcept { add(1); }
    void add(std::uint64_t n) noexcept { detail::add(slots_.word0(), slots_.shards(), n); }

    // Everything added since creation or the last reset().
    std::uint64_t value() const noexcept {
        const std::uint64_t b = base_.load(std::memory_order_acquire);  // see reset_by_offset
        return detail::sum(slots_.word0(), slots_.shards()) - b;
    }

    // Clears the counter and returns what it cleared. Never loses an add
    // that races with it (detail::reset_by_offset explains how).
    std::uint64_t reset() noexcept { return detail::reset_by_offset(slots_.word0(), slots_.shards(), base_); }

    // Raw per-shard value since creation (resets do not touch shards).
    // shard == arena().shards() is the shared row.
    std::uint64_t shard_value(std::size_t shard) const noexcept {
        return detail::row_word(slots_.word0(), shard).load(std::memory_order_relaxed);
    }
    const Arena& arena() const noexcept { return slots_.arena(); }

private:
    detail::Slots slots_;
    std::atomic<std::uint64_t> base_{0};
};

// A signed value that goes up and down (connections open, queue depth).
// Stored as two's complement in the same words as a Counter: shards may go
// negative individually, the sum is exact.
class Gauge {
public:
    explicit Gauge(Arena& arena = default_arena()) : slots_(arena, 1, 0) {}
    Gauge(const Gauge&) = delete;
    Gauge& operator=(const Gauge&) = delete;

    void add(std::int64_t n) noexcept { detail::add(slots_.word0(), slots_.shards(), static_cast<std::uint64_t>(n)); }
    void sub(std::int64_t n) noexcept { add(-n); }
    void inc() noexcept { add(1); }
    void dec() noexcept { add(-1); }

    std::int64_t value() const noexcept {
        const std::uint64_t b = base_.load(std::memory_order_acquire);
        return static_cast<std::int64_t>(detail::sum(slots_.word0(), slots_.shards()) - b);
    }

    // Sets the value (slow path: reads every shard). Adds racing with set()
    // count on top of v or are absorbed before it, never lost halfway.
    void set(std::int64_t v) noexcept {
        std::uint64_t old = base_.load(std::memory_order_acquire);
        for (;;) {
            const std::uint64_t want = detail::sum(slots_.word0(), slots_.shards()) - static_cast<std::uint64_t>(v);
            if (base_.compare_exchange_weak(old, want, std::memory_order_acq_rel, std::memory_order_acquire)) return;
        }
    }

    std::int64_t shard_value(std::size_t shard) const noexcept {
        return static_cast<std::int64_t>(detail::row_word(slots_.word0(), shard).load(std::memory_order_relaxed));
    }
    const Arena& arena() const noexcept { return slots_.arena(); }

private:
    detail::Slots slots_;
    std::atomic<std::uint64_t> base_{0};
};

}  // namespace percore
