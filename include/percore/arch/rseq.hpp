// SPDX-License-Identifier: MIT
// percore/arch/rseq.hpp - the only door to restartable sequences.
//
// Everything architecture-specific about Linux rseq sits behind these few
// functions, one implementation file per architecture. The rest of percore
// never touches the rseq area or writes assembly.
//
// Ownership rules (see docs/design.md): glibc >= 2.35 registers the rseq
// area of every thread. percore only reads `__rseq_offset`/`__rseq_size`,
// reads `cpu_id`/`mm_cid`, and stores its own critical-section descriptor
// into `rseq_cs`, which is the purpose of that field. It never registers a
// second area and never stores anything else into the ABI fields.
//
// Interface (all functions are inline and noexcept; F selects the field
// used as the shard index, RseqField::cpu_id or RseqField::mm_cid):
//
//   template <RseqField F> int rseq_index(long rseq_offset)
//     The calling thread's index, or -1 if rseq is not registered on this
//     thread (cpu_id < 0). A plain read: the thread may migrate right after.
//
//   template <RseqField F> bool rseq_add(long rseq_offset, uint64_t* word0,
//                                        uint32_t rows, uint64_t n)
//     Adds n to word0[index << (kRowShift - 3)] as one restartable sequence
//     whose commit is the add itself. Returns false, writing nothing, if
//     rseq is not registered on this thread or index >= rows.
//
//   template <RseqField F> bool rseq_add2(long rseq_offset, uint64_t* word0,
//                                         uint32_t rows, V2u64 v)
//     Adds v[0] and v[1] to the two adjacent words at word0 (16-byte
//     aligned) in the current CPU's row, as one sequence. Same returns.
//
//   template <RseqField F> int rseq_add_at(long rseq_offset, uint64_t* word0,
//                                         uint32_t rows, uint64_t n)
//     rseq_add that also says where it committed: the row index, or -1
//     (nothing written) if rseq is not registered or index >= rows.
//     SharedMutex's reader count, whose handle must remember the row.
//
//   template <RseqField F> bool rseq_add_if(long rseq_offset, uint64_t* word0,
//                                         uint32_t row, uint64_t n)
//     Adds n to word0[row << (kRowShift - 3)] only if the calling thread is
//     on that row now, as one sequence; false, writing nothing, otherwise.
//     SharedMutex's unlock on the shard its lock counted on.
//
//   template <RseqField F> uint64_t rseq_ring_push(long rseq_offset,
//                                         RingShard* shards, uint32_t n, item)
//     ShardedRing's push: into the ring of shard `index` (index < n; the
//     shards are RingShard headers 1 << kRingShardShift bytes apart), as one
//     sequence that reads the head, checks space against the consumer's
//     tail, stores the item into its slot and commits by incrementing the
//     head. item is a uint64_t (8-byte slots) or a V2u64 (16-byte slots).
//     Returns the shard index if pushed, index | kRingFull if that shard's
//     ring was full (nothing written but the producer's cached tail), or
//     kRingNoRseq (nothing written) if rseq is not registered or index >= n.
//
//   constexpr bool kHasRseqCommit
//     True where rseq_add is a real restartable sequence. Where false it
//     returns false and callers use an atomic add instead.
//
// rseq_offset is glibc's __rseq_offset: the area's distance from the thread
// pointer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace percore::arch {

// Distance between two shards' rows in an Arena: 64 MiB of address space,
// reserved but not committed. A compile-time constant so the fast path can
// use an immediate shift.
inline constexpr unsigned kRowShift = 26;

// Offsets inside struct rseq (linux/rseq.h): cpu_id at 4, rseq_cs at 8,
// node_id at 20, mm_cid at 24. node_id and mm_cid are filled by kernels
// whose AT_RSEQ_FEATURE_SIZE covers them (>= 6.3). node_id is read with
// rseq_index<RseqField::node_id> but is never a row index.
enum class RseqField : long { cpu_id = 4, node_id = 20, mm_cid = 24 };
inline constexpr long kRseqCpuId = 4;
inline constexpr long kRseqCs = 8;

// One shard of a ShardedRing (sharded_ring.hpp), as the push sequence sees
// it. Line 0 belongs to the producers of the shard (head, their cached copy
// of the consumer's tail, the drop counter, the overflow lock), line 2 to the
// consumer (tail and its cached copy of the head); lines 1 and 3 keep the
// adjacent-line prefetcher from pairing a producer line with a consumer line.
struct alignas(64) RingShard {
    std::uint64_t head;         // next slot to fill; written only by the shard's producer, +1 per push
    std::uint64_t* slots;       // capacity slots of 8 or 16 bytes
    std::uint64_t mask;         // capacity - 1
    std::uint64_t cached_tail;  // the producer's last view of `tail` (<= tail)
    std::uint64_t drops;        // pushes refused because the ring was full (atomic increments)
    std::uint32_t lock;         // Spinlock state, for shards pushed without rseq
    std::uint32_t pad0_;
    std::uint64_t pad1_[10];
    alignas(64) std::uint64_t tail;  // next slot to read; written only by the consumer
    std::uint64_t cached_head;       // the consumer's last view of `head` (<= head)
    std::uint64_t pad2_[14];
};
inline constexpr unsigned kRingShardShift = 8;
static_assert(sizeof(RingShard) == std::size_t{1} << kRingShardShift);
inline constexpr std::uint64_t kRingFull = std::uint64_t{1} << 32;
inline constexpr std::uint64_t kRingNoRseq = ~std::uint64_t{0};

}  // namespace percore::arch

// Test builds (PERCORE_RSEQ_INJECT) get numbered preemption points.
#include "percore/arch/rseq_inject.hpp"

#if defined(__x86_64__) && !defined(PERCORE_NO_RSEQ_ASM)
#include "percore/arch/rseq_x86_64.hpp"
#else
#include "percore/arch/rseq_generic.hpp"
#endif
