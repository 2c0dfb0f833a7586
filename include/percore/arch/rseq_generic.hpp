// SPDX-License-Identifier: MIT
// percore/arch/rseq_generic.hpp - architectures without a percore rseq port.
//
// The index is still read from the rseq area (glibc registers it on every
// Linux architecture), but updates commit with an atomic add on the
// CPU-local line instead of a restartable sequence: correct, a few cycles
// slower. ShardedRing pushes take the shard's spinlock and SharedMutex
// readers an atomic add instead. Porting means writing rseq_<arch>.hpp with
// the same functions; nothing else in percore changes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace percore::arch {

inline constexpr bool kHasRseqCommit = false;

template <RseqField F>
inline int rseq_index(long rseq_offset) noexcept {
    auto* area = static_cast<char*>(__builtin_thread_pointer()) + rseq_offset;
    int cpu = std::atomic_ref<int>(*reinterpret_cast<int*>(area + kRseqCpuId)).load(std::memory_order_relaxed);
    int idx = std::atomic_ref<int>(*reinterpret_cast<int*>(area + static_cast<long>(F)))
                  .load(std::memory_order_relaxed);
    return cpu < 0 ? -1 : idx;
}

template <RseqField F>
inline bool rseq_add(long, std::uint64_t*, std::uint32_t, std::uint64_t) noexcept {
    return false;
}

using V2u64 = std::uint64_t __attribute__((vector_size(16)));

template <RseqField F>
inline bool rseq_add2(long, std::uint64_t*, std::uint32_t, V2u64) noexcept {
    return false;
}

template <RseqField F>
inline int rseq_add_at(long, std::uint64_t*, std::uint32_t, std::uint64_t) noexcept {
    return -1;
}

template <RseqField F>
inline bool rseq_add_if(long, std::uint64_t*, std::uint32_t, std::uint64_t) noexcept {
    return false;
}

template <RseqField F, class Item>
inline std::uint64_t rseq_ring_push(long, RingShard*, std::uint32_t, Item) noexcept {
    return kRingNoRseq;
}

}  // namespace percore::arch
