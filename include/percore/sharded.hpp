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
// lock. Memory: one pointer and one node number per possible shard plus the
// T's created.
//
// NUMA placement: Sharded<T>(n, Placement::numa_node) gives each T pages of
// its own (the size of T rounded up to a page), asks the kernel to allocate
// them on the shard's node (mbind, MPOL_PREFERRED) and constructs the T
// there, so the first touch is the creating thread's, which runs on that
// node. The node is ShardInfo::node of the creation (shard.hpp says how
// exact it is per backend: exact under rseq-cpu_id, a hint under mm_cid and
// thread slots); for_each_shard() reports it. Where mbind is refused, first
// touch alone decides. Memory the T allocates itself (a std::vector's
// buffer) follows the allocator's own policy, not this one. On a one-node
// machine it changes nothing but the page-per-T cost.
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
//     already made stay and are still visited);
//   - create(ShardInfo) and for_each_shard() see the same ShardInfo for a
//     shard: its index and the node its T was placed for.
// Test with PERCORE_SCRAMBLE=1 (or percore::set_scramble) to flush out code
// that assumes a stable mapping.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "percore/shard.hpp"

namespace percore {

// Where Sharded<T> puts each T: the default heap (operator new), or pages of
// its own on the shard's NUMA node.
enum class Placement : std::uint8_t { heap, numa_node };

namespace detail {

inline std::size_t page_size() noexcept {
    static const std::size_t p = [] {
        const long v = ::sysconf(_SC_PAGESIZE);
        return v > 0 ? static_cast<std::size_t>(v) : std::size_t{4096};
    }();
    return p;
}

// The node a new element of shard `index` (of a Sharded capped at `limit`)
// belongs to: under rseq-cpu_id with one CPU per shard, that CPU's node;
// otherwise the creating thread's.
inline std::uint32_t shard_node(std::size_t index, std::size_t limit) {
    const Identity& id = identity();
    if (id.mode.load(std::memory_order_relaxed) == Mode::rseq_cpu_id && !id.scramble.load(std::memory_order_relaxed) &&
        limit >= topology().cpu_node.size())
        return cpu_node(static_cast<std::uint32_t>(index));
    return current_node();
}

}  // namespace detail

template <class T>
class Sharded {
public:
    // max_shards == 0: percore::max_shards().
    explicit Sharded(std::size_t max_shards = 0, Placement placement = Placement::heap)
        : capacity_(percore::max_shards()),
          slots_(new std::atomic<T*>[capacity_]),
          nodes_(new std::uint32_t[capacity_]()),
          placement_(placement) {
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

    Placement placement() const noexcept { return placement_; }

    // Which shard the caller would use now (index < max_shards()), and the
    // node it runs on.
    ShardInfo shard() const noexcept { return ShardInfo{index_now(), current_node()}; }

    // The caller's shard's T, or nullptr if that shard has none yet.
    T* get() const noexcept {
        // acquire: pairs with the release in create(), so the T's
        // construction is visible before its address.
        return slots_[index_now()].load(std::memory_order_acquire);
    }

    // The caller's shard's T, created with create(ShardInfo) if missing.
    // create returns a T by value; the construction is elided, so T need
    // not be copyable or movable (atomics and mutexes are fine).
    template <class F>
    T& get_or_create(F&& create) {
        const std::size_t index = index_now();
        if (T* p = slots_[index].load(std::memory_order_acquire)) return *p;
        return make(index, std::forward<F>(create));
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
            // acquire: also makes nodes_[i], written before the release, visible.
            if (T* p = slots_[i].load(std::memory_order_acquire)) fn(ShardInfo{i, nodes_[i]}, *p);
    }

private:
    static constexpr std::size_t kAlign = alignof(T) > 64 ? alignof(T) : 64;
    static constexpr std::size_t kSize = (sizeof(T) + kAlign - 1) / kAlign * kAlign;

    std::size_t index_now() const noexcept { return detail::current_index() % limit_.load(std::memory_order_relaxed); }

    // Pages of its own for a placed T (alignments above a page are left to
    // the heap).
    bool mapped() const noexcept { return placement_ == Placement::numa_node && kAlign <= detail::page_size(); }
    static std::size_t mapped_size() noexcept {
        const std::size_t pg = detail::page_size();
        return (kSize + pg - 1) / pg * pg;
    }

    template <class F>
    [[gnu::noinline]] T& make(std::size_t index, F&& create) {
        std::lock_guard lk(mu_);
        if (T* p = slots_[index].load(std::memory_order_relaxed)) return *p;
        const ShardInfo info{index, detail::shard_node(index, limit_.load(std::memory_order_relaxed))};
        void* mem;
        if (mapped()) {
            mem = ::mmap(nullptr, mapped_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mem == MAP_FAILED) throw std::bad_alloc();
            (void)prefer_node(mem, mapped_size(), info.node);  // refused: first touch (below) decides
        } else {
            mem = ::operator new(kSize, std::align_val_t(kAlign));
        }
        T* p;
        try {
            p = new (mem) T(create(info));
        } catch (...) {
            release(mem);
            throw;
        }
        nodes_[index] = info.node;
        slots_[index].store(p, std::memory_order_release);
        return *p;
    }
    void release(void* mem) const noexcept {
        if (mapped()) {
            ::munmap(mem, mapped_size());
        } else {
            ::operator delete(mem, std::align_val_t(kAlign));
        }
    }
    void destroy(T* p) const {
        p->~T();
        release(static_cast<void*>(p));
    }

    const std::size_t capacity_;
    std::unique_ptr<std::atomic<T*>[]> slots_;
    std::unique_ptr<std::uint32_t[]> nodes_;
    std::atomic<std::size_t> limit_{1};
    const Placement placement_;
    mutable std::mutex mu_;
};

}  // namespace percore
