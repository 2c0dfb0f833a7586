// SPDX-License-Identifier: MIT
// percore/shard_atomic.hpp - one atomic value per shard.
//
// ShardAtomic<T> (T = uint64_t or int64_t) gives the calling thread's shard
// the operations of std::atomic: fetch_add, fetch_max, fetch_min, exchange,
// compare_exchange. Every operation is a real atomic read-modify-write, so it
// is correct whichever shard the thread lands on, and cheap because that
// line is normally local and uncontended (an uncontended lock-prefixed
// instruction, ~20 cycles on x86). Use Counter when a plain add is enough:
// it avoids the lock prefix entirely.
//
// Per-shard values are a building block: a max tracker, a per-CPU "last
// seen" stamp, a per-CPU token bucket. Readers combine shards with sum(),
// max(), min() or load(shard).
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <cstdint>
#include <algorithm>
#include <limits>
#include <type_traits>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"

namespace percore {

template <class T>
class ShardAtomic {
    static_assert(std::is_same_v<T, std::uint64_t> || std::is_same_v<T, std::int64_t>,
                  "ShardAtomic holds uint64_t or int64_t");

public:
    explicit ShardAtomic(T init = T{}, Arena& arena = default_arena())
        : init_(init), slots_(arena, 1, static_cast<std::uint64_t>(init)) {}
    ShardAtomic(const ShardAtomic&) = delete;
    ShardAtomic& operator=(const ShardAtomic&) = delete;

    // The calling shard's value (a std::atomic_ref; relaxed unless you ask).
    std::atomic_ref<T> local() const noexcept { return ref(detail::atomic_row(slots_.shards(), false)); }
    std::atomic_ref<T> at(std::size_t shard) const noexcept { return ref(shard); }

    T fetch_add(T v) noexcept { return local().fetch_add(v, std::memory_order_relaxed); }
    T exchange(T v) noexcept { return local().exchange(v, std::memory_order_relaxed); }
    bool compare_exchange(T& expected, T desired) noexcept {
        return local().compare_exchange_strong(expected, desired, std::memory_order_relaxed);
    }
    // Raises the shard's value to v; returns the previous value. Stores only
    // when v is larger, so repeated calls with small values stay read-only.
    T fetch_max(T v) noexcept {
        auto r = local();
        T cur = r.load(std::memory_order_relaxed);
        while (cur < v && !r.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
        }
        return cur;
    }
    T fetch_min(T v) noexcept {
        auto r = local();
        T cur = r.load(std::memory_order_relaxed);
        while (v < cur && !r.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
        }
        return cur;
    }

    T load(std::size_t shard) const noexcept { return ref(shard).load(std::memory_order_relaxed); }
    T sum() const noexcept {
        T s{};
        for (std::size_t r = 0; r < arena().rows(); ++r) s += load(r);
        return s;
    }
    T max() const noexcept {
        T m = std::numeric_limits<T>::min();
        for (std::size_t r = 0; r < arena().rows(); ++r) m = std::max(m, load(r));
        return m;
    }
    T min() const noexcept {
        T m = std::numeric_limits<T>::max();
        for (std::size_t r = 0; r < arena().rows(); ++r) m = std::min(m, load(r));
        return m;
    }
    // Stores `v` into every shard and returns what was there (in shard order).
    template <class F>
    void exchange_all(T v, F&& on_old) noexcept {
        for (std::size_t r = 0; r < arena().rows(); ++r) on_old(ref(r).exchange(v, std::memory_order_relaxed));
    }

    // Shards plus the shared row.
    std::size_t rows() const noexcept { return arena().rows(); }
    T initial() const noexcept { return init_; }
    const Arena& arena() const noexcept { return slots_.arena(); }

private:
    std::atomic_ref<T> ref(std::size_t row) const noexcept {
        return std::atomic_ref<T>(*reinterpret_cast<T*>(slots_.word0() + row * detail::kRowWords));
    }

    T init_;
    detail::Slots slots_;
};

}  // namespace percore
