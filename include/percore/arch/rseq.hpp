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

}  // namespace percore::arch

// Test builds (PERCORE_RSEQ_INJECT) get numbered preemption points.
#include "percore/arch/rseq_inject.hpp"

#if defined(__x86_64__) && !defined(PERCORE_NO_RSEQ_ASM)
#include "percore/arch/rseq_x86_64.hpp"
#else
#include "percore/arch/rseq_generic.hpp"
#endif
