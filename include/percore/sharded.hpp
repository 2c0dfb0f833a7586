// SPDX-License-Identifier: MIT
// percore/sharded.hpp - Sharded<T>: one T per shard, created on demand.
//
// The generic per-CPU container: each shard lazily gets its own T, built by
// a function you pass, and the caller gets the T of the shard it is running
// on. Two calls may return different T's (the thread migrated) and two
// threads may get the same T (they share a CPU, or shards are capped), so a
// T must be safe for concurrent use: typically atomics or a lock, which stay
// uncontended because each shard's T is mostly used by one CPU. Every T gets
// its own cache lines (allocated 64-byte aligned and padded).
//
// Costs: get() is one shard lookup plus an acquire load. get_or_create()
// adds a mutex only the first time a shard is seen. for_each() takes no
// lock. Memory: one pointer per possible shard plus the T's created.
//
// Guarantees (all methods are thread-safe):
//   - creation functions run one at a time (serialized by a mutex);
//   - a shard index is created at most once, ever; a T lives as long as the
//     Sharded, at a stable address;
//   - for_each(fn) visits a snapshot: T's created during the walk may or may
//     not be visited;
//   - for_each_locked(fn) visits every T created before it started, and
//     creations wait until it returns;
//   - set_max_shards(n) caps future indices to 0..n-1 (not retroactive: T's
//     already made stay and are still visited).
// Test with PERCORE_SCRAMBLE=1 (or percore::set_scramble) to flush out code
// that assumes a stable mapping.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "percore/shard.hpp"

namespace percore {

template <class T>
class Sharded {
public:
    // max_shards == 0: percore::max_shards().
    explicit Sharded(std::size_t max_shards = 0)
        : capacity_(percore::max_shards()), slots_(new std::atomic<T*>[capacity_]) {
        for (std::size_t i = 0; i < capacity_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
        set_max_shards(max_shards == 0 ? capacity_ : max_shards);
    }
    ~Sharded() {
        for (std::size_t i = 0; i < capacity_; ++i)
            if (T* p = slots_[i].load(std::memory_order_relaxed)) destroy(p);
    }
    Sharded(const Sharded&) = delete;
    Sharded& operator=(const Sharded&) = delete;

    // Caps shard indices to n (clamped to percore::max_shards()). n < 1
    // throws std::invalid_argument.
    void set_max_shards(std::size_t n) {
        if (n < 1) throw std::invalid_argument("percore::Sharded::set_max_shards: n must be >= 1");
        limit_.store(n < capacity_ ? n : capacity_, std::memory_order_relaxed);
    }
    std::size_t max_shards() const noexcept { return limit_.load(std::memory_order_relaxed); }

    // Which shard the caller would use now (index < max_shards()).
    ShardInfo shard() const noexcept {
        return ShardInfo{detail::current_index() % limit_.load(std::memory_order_relaxed)};
    }

    // The caller's shard's T, or nullptr if that shard has none yet.
    T* get() const noexcept {
        // acquire: pairs with the release in create(), so the T's
        // construction is visible before its address.
        return slots_[shard().index].load(std::memory_order_acquire);
    }

    // The caller's shard's T, created with create(ShardInfo) if missing.
    // create returns a T by value; the construction is elided, so T need
    // not be copyable or movable (atomics and mutexes are fine).
    template <class F>
    T& get_or_create(F&& create) {
        const ShardInfo info = shard();
        if (T* p = slots_[info.index].load(std::memory_order_acquire)) return *p;
        return make(info, std::forward<F>(create));
    }

    // Calls fn(T&) for each existing T, without locking.
    template <class F>
    void for_each(F&& fn) const {
        for (std::size_t i = 0; i < capacity_; ++i)
            if (T* p = slots_[i].load(std::memory_order_acquire)) fn(*p);
    }

    // Calls fn(T&) for each existing T while holding the creation lock.
    template <class F>
    void for_each_locked(F&& fn) const {
        std::lock_guard lk(mu_);
        for (std::size_t i = 0; i < capacity_; ++i)
            if (T* p = slots_[i].load(std::memory_order_relaxed)) fn(*p);
    }

    // Calls fn(ShardInfo, T&) for each existing T, without locking.
    template <class F>
    void for_each_shard(F&& fn) const {
        for (std::size_t i = 0; i < capacity_; ++i)
            if (T* p = slots_[i].load(std::memory_order_acquire)) fn(ShardInfo{i}, *p);
    }

private:
    static constexpr std::size_t kAlign = alignof(T) > 64 ? alignof(T) : 64;
    static constexpr std::size_t kSize = (sizeof(T) + kAlign - 1) / kAlign * kAlign;

    template <class F>
    [[gnu::noinline]] T& make(ShardInfo info, F&& create) {
        std::lock_guard lk(mu_);
        if (T* p = slots_[info.index].load(std::memory_order_relaxed)) return *p;
        void* mem = ::operator new(kSize, std::align_val_t(kAlign));
        T* p;
        try {
            p = new (mem) T(create(info));
        } catch (...) {
            ::operator delete(mem, std::align_val_t(kAlign));
            throw;
        }
        slots_[info.index].store(p, std::memory_order_release);
        return *p;
    }
    static void destroy(T* p) {
        p->~T();
        ::operator delete(static_cast<void*>(p), std::align_val_t(kAlign));
    }

    const std::size_t capacity_;
    std::unique_ptr<std::atomic<T*>[]> slots_;
    std::atomic<std::size_t> limit_{1};
    mutable std::mutex mu_;
};

}  // namespace percore
