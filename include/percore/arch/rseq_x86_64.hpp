// SPDX-License-Identifier: MIT
// percore/arch/rseq_x86_64.hpp - restartable sequences for x86-64.
//
// Each sequence stores the address of its descriptor into rseq_cs, reads the
// index, and commits with one `add` to memory. If the kernel preempts,
// migrates or signals the thread between the first instruction after arming
// (label 1) and the commit (label 2), it moves the thread to the abort
// handler (label 4), which restarts from arming. An add is one instruction,
// so it either happened entirely on the CPU that owns the row, or not at all:
// no lost update, no double count, no lock prefix.
//
// The abort handler is preceded by the 4-byte signature glibc registered
// (RSEQ_SIG, 0x53053053), encoded as the tail of a `ud1` so a stray jump
// there traps. Descriptors live in section __rseq_cs (32-byte aligned, as the
// ABI requires) and handlers in __rseq_failure, as in the kernel selftests.
// Both are pushed with the "?" flag: they join the section group of the
// function around them. The functions are inline, so every translation
// unit emits a copy in a COMDAT group and the linker keeps one; without the
// flag the discarded copies' descriptors would still point into them, which
// the linker refuses (an unoptimized build of two files was enough).
// The cpu_id test also covers mm_cid: a thread whose registration failed
// has cpu_id < 0 and must not trust any other field.
//
// PERCORE_RSEQ_HOOK(site, k) marks instruction boundary k of a sequence
// (k = 1 before the first instruction after arming, up to k = N before the
// commit). Natural preemption almost never lands on a chosen boundary, so a
// test build (PERCORE_RSEQ_INJECT, arch/rseq_inject.hpp) turns each hook
// into a loop-free check of a thread-local selector that, when it names the
// point, makes a system call chosen by the test (a signal to the thread
// itself aborts the sequence on the way back to user space), and the abort
// handler counts its runs. The check leaves the flags alone (lea, jrcxz),
// since some boundaries sit between a compare and its branch. In any other
// build the hooks, their operands and clobbers expand to nothing, so the
// generated code is byte-identical to code without them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace percore::arch {

inline constexpr bool kHasRseqCommit = true;

template <RseqField F>
inline int rseq_index(long rseq_offset) noexcept {
    int cpu, idx;
    // volatile: the values change behind the compiler's back on migration.
    // [c] is early-clobber: it is written before [r] is read again, so the
    // two must not share a register (without the &, GCC may reuse the
    // offset's register for cpu and the second load reads the TCB).
    asm inline volatile(
        "movl %%fs:%c[cpu](%[r]), %[c]\n\t"
        "movl %%fs:%c[ix](%[r]), %[i]\n\t"
        : [c] "=&r"(cpu), [i] "=r"(idx)
        : [r] "r"(rseq_offset), [cpu] "i"(kRseqCpuId), [ix] "i"(static_cast<long>(F)));
    return cpu < 0 ? -1 : idx;
}

#ifdef PERCORE_RSEQ_INJECT
// Selected (point == id)? Then clear the selector, count, and make the
// test's system call. The kernel preserves the flags and all registers but
// %rax, %rcx and %r11 across it; %r10 carries %rax over.
#define PERCORE_RSEQ_HOOK(site, k)                                  \
    "movl %c[ipt](%[inj]), %%ecx\n\t"                               \
    "leaq -(" #site " * 256 + " #k ")(%%rcx), %%rcx\n\t"           \
    "jrcxz 5f\n\t"                                                  \
    "jmp 6f\n\t"                                                    \
    "5:\n\t"                                                        \
    "movl $0, %c[ipt](%[inj])\n\t"                                  \
    "movq %c[ifired](%[inj]), %%rcx\n\t"                            \
    "leaq 1(%%rcx), %%rcx\n\t"                                      \
    "movq %%rcx, %c[ifired](%[inj])\n\t"                            \
    "movq %%rax, %%r10\n\t"                                         \
    "movq %c[inr](%[inj]), %%rax\n\t"                               \
    "movq %c[ia0](%[inj]), %%rdi\n\t"                               \
    "movq %c[ia1](%[inj]), %%rsi\n\t"                               \
    "movq %c[ia2](%[inj]), %%rdx\n\t"                               \
    "syscall\n\t"                                                   \
    "movq %%r10, %%rax\n\t"                                         \
    "6:\n\t"
#define PERCORE_RSEQ_ABORT_COUNT "incq %c[iab](%[inj])\n\t"
#define PERCORE_RSEQ_INJECT_INPUTS                                                                        \
    , [inj] "r"(&tl_rseq_inject), [ipt] "i"(offsetof(RseqInject, point)),                                \
        [ifired] "i"(offsetof(RseqInject, fired)), [iab] "i"(offsetof(RseqInject, aborts)),             \
        [inr] "i"(offsetof(RseqInject, nr)), [ia0] "i"(offsetof(RseqInject, a0)),                       \
        [ia1] "i"(offsetof(RseqInject, a1)), [ia2] "i"(offsetof(RseqInject, a2))
#define PERCORE_RSEQ_INJECT_CLOBBERS , "rcx", "rdx", "rsi", "rdi", "r10", "r11"

// Hook points per sequence, for the tests: the row lookup has 4 (cpu_id) or
// 7 (mm_cid), then add has 1 more, add2 has 4.
template <RseqField F>
inline constexpr std::uint32_t kRseqAddPoints = F == RseqField::cpu_id ? 5 : 8;
template <RseqField F>
inline constexpr std::uint32_t kRseqAdd2Points = F == RseqField::cpu_id ? 8 : 11;
// add_at has add's points; add_if compares with the wanted row instead of
// the row count, at the same boundaries. A push has 16 points after the
// row lookup (ring_push: 5 with cpu_id, 8 with mm_cid); 5 of them, from
// the tail refresh to the full test, run only when the cached tail says
// the ring may be full.
template <RseqField F>
inline constexpr std::uint32_t kRseqAddAtPoints = kRseqAddPoints<F>;
template <RseqField F>
inline constexpr std::uint32_t kRseqAddIfPoints = kRseqAddPoints<F>;
template <RseqField F>
inline constexpr std::uint32_t kRseqRingPushPoints = (F == RseqField::cpu_id ? 5 : 8) + 16;
// The ring_push points that run only on the refresh path, numbered after
// the lookup's points (point = lookup points + 5 .. lookup points + 10).
inline constexpr std::uint32_t kRingRefreshFirst = 5, kRingRefreshLast = 10;
#else
#define PERCORE_RSEQ_HOOK(site, k)
#define PERCORE_RSEQ_ABORT_COUNT
#define PERCORE_RSEQ_INJECT_INPUTS
#define PERCORE_RSEQ_INJECT_CLOBBERS
#endif

// The descriptor (version 0, flags 0, start_ip = 1, post_commit_offset =
// 2 - 1, abort_ip = 4) and the arming store; then the body; then the
// signature and the abort handler, which restarts from arming.
#define PERCORE_RSEQ_BEGIN                         \
    ".pushsection __rseq_cs, \"aw?\"\n\t"         \
    ".balign 32\n\t"                              \
    "3:\n\t"                                      \
    ".long 0x0, 0x0\n\t"                          \
    ".quad 1f, (2f - 1f), 4f\n\t"                 \
    ".popsection\n\t"                             \
    "0:\n\t"                                      \
    "leaq 3b(%%rip), %%rax\n\t"                   \
    "movq %%rax, %%fs:%c[cs](%[r])\n\t"           \
    "1:\n\t"
#define PERCORE_RSEQ_END                           \
    "2:\n\t"                                      \
    ".pushsection __rseq_failure, \"ax?\"\n\t"    \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                  \
    ".long 0x53053053\n\t"                        \
    "4:\n\t"                                      \
    PERCORE_RSEQ_ABORT_COUNT                      \
    "jmp 0b\n\t"                                  \
    ".popsection\n\t"
#define PERCORE_RSEQ_OPERANDS                                                                      \
    : [r] "r"(rseq_offset), [w] "r"(word0), [rows] "r"(rows), [n] "r"(n), [shift] "i"(kRowShift), \
      [cs] "i"(kRseqCs), [cpu] "i"(kRseqCpuId), [cid] "i"(static_cast<long>(RseqField::mm_cid))    \
      PERCORE_RSEQ_INJECT_INPUTS                                                                    \
    : "rax", "memory", "cc" PERCORE_RSEQ_INJECT_CLOBBERS

#define PERCORE_RSEQ_OPERANDS2                                                                     \
    : [r] "r"(rseq_offset), [w] "r"(word0), [rows] "r"(rows), [v] "x"(v), [shift] "i"(kRowShift), \
      [cs] "i"(kRseqCs), [cpu] "i"(kRseqCpuId), [cid] "i"(static_cast<long>(RseqField::mm_cid))    \
      PERCORE_RSEQ_INJECT_INPUTS                                                                    \
    : "rax", "xmm15", "memory", "cc" PERCORE_RSEQ_INJECT_CLOBBERS

// The body's first part: %rax = this CPU's row offset (index << kRowShift),
// or leave to `no` if the index is out of range. With cpu_id one unsigned
// compare also rejects cpu_id < 0 (not registered); with mm_cid the cpu_id
// sign is tested first, since mm_cid is meaningless on such a thread.
// Its boundaries are hook points 1..4 (cpu_id) or 1..7 (mm_cid).
#define PERCORE_RSEQ_ROW_CPU_ID(s)              \
    PERCORE_RSEQ_HOOK(s, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 2)                     \
    "cmpl %[rows], %%eax\n\t"                   \
    PERCORE_RSEQ_HOOK(s, 3)                     \
    "jae %l[no]\n\t"                            \
    PERCORE_RSEQ_HOOK(s, 4)                     \
    "shlq %[shift], %%rax\n\t"
#define PERCORE_RSEQ_ROW_MM_CID(s)              \
    PERCORE_RSEQ_HOOK(s, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 2)                     \
    "testl %%eax, %%eax\n\t"                    \
    PERCORE_RSEQ_HOOK(s, 3)                     \
    "js %l[no]\n\t"                             \
    PERCORE_RSEQ_HOOK(s, 4)                     \
    "movl %%fs:%c[cid](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 5)                     \
    "cmpl %[rows], %%eax\n\t"                   \
    PERCORE_RSEQ_HOOK(s, 6)                     \
    "jae %l[no]\n\t"                            \
    PERCORE_RSEQ_HOOK(s, 7)                     \
    "shlq %[shift], %%rax\n\t"

template <RseqField F>
inline bool rseq_add(long rseq_offset, std::uint64_t* word0, std::uint32_t rows, std::uint64_t n) noexcept {
    // `asm inline`: the section directives make the text long, but the code
    // is under ten instructions; without it GCC refuses to inline callers.
    // The "memory" clobber keeps the add ordered with the caller's other
    // memory operations (a release store after it, a thread exit), as a C++
    // relaxed atomic add would be.
    if constexpr (F == RseqField::cpu_id) {
        asm inline goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_CPU_ID(1)
                        PERCORE_RSEQ_HOOK(1, 5)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        : PERCORE_RSEQ_OPERANDS
                        : no);
    } else {
        asm inline goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_MM_CID(1)
                        PERCORE_RSEQ_HOOK(1, 8)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        : PERCORE_RSEQ_OPERANDS
                        : no);
    }
    return true;
no:
    return false;
}

// Two adjacent words (16-byte aligned) as one sequence: load both, add in a
// vector register, commit with one 16-byte store. Correct because only this
// CPU writes its row: the loaded values are current, and a restart reloads
// them. Readers load each word with an 8-byte atomic load, and an aligned
// 16-byte store writes each aligned quadword atomically, so no reader sees
// a torn word. This is what lets a CounterGroup<2> pay for one lookup.
// With AVX enabled the VEX forms avoid SSE/AVX transition penalties.
using V2u64 = std::uint64_t __attribute__((vector_size(16)));
// Hook points k, k+1 and k+2.
#ifdef __AVX__
#define PERCORE_RSEQ_PAIR(s, k)                 \
    PERCORE_RSEQ_HOOK(s, k)                     \
    "vmovdqa (%%rax), %%xmm15\n\t"              \
    PERCORE_RSEQ_HOOK(s, k + 1)                 \
    "vpaddq %[v], %%xmm15, %%xmm15\n\t"         \
    PERCORE_RSEQ_HOOK(s, k + 2)                 \
    "vmovdqa %%xmm15, (%%rax)\n\t" /* commit */
#else
#define PERCORE_RSEQ_PAIR(s, k)                 \
    PERCORE_RSEQ_HOOK(s, k)                     \
    "movdqa (%%rax), %%xmm15\n\t"               \
    PERCORE_RSEQ_HOOK(s, k + 1)                 \
    "paddq %[v], %%xmm15\n\t"                   \
    PERCORE_RSEQ_HOOK(s, k + 2)                 \
    "movdqa %%xmm15, (%%rax)\n\t" /* commit */
#endif

template <RseqField F>
inline bool rseq_add2(long rseq_offset, std::uint64_t* word0, std::uint32_t rows, V2u64 v) noexcept {
    if constexpr (F == RseqField::cpu_id) {
        asm inline goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_CPU_ID(2)
                        PERCORE_RSEQ_HOOK(2, 5)
                        "addq %[w], %%rax\n\t"
                        PERCORE_RSEQ_PAIR(2, 6)
                        PERCORE_RSEQ_END
                        : PERCORE_RSEQ_OPERANDS2
                        : no);
    } else {
        asm inline goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_MM_CID(2)
                        PERCORE_RSEQ_HOOK(2, 8)
                        "addq %[w], %%rax\n\t"
                        PERCORE_RSEQ_PAIR(2, 9)
                        PERCORE_RSEQ_END
                        : PERCORE_RSEQ_OPERANDS2
                        : no);
    }
    return true;
no:
    return false;
}

// ---- SharedMutex reader counts ------------------------------------------

// The operands of add_at and add_if: rax is an output (the row offset)
// instead of a clobber. An asm goto with outputs is not implicitly volatile
// (GCC deletes it when the output is unused, as add_if's is), hence the
// explicit volatile.
#define PERCORE_RSEQ_OPERANDS_AT(bound)                                                              \
    : [row] "=&a"(row)                                                                              \
    : [r] "r"(rseq_offset), [w] "r"(word0), [rows] "r"(bound), [n] "r"(n), [shift] "i"(kRowShift), \
      [cs] "i"(kRseqCs), [cpu] "i"(kRseqCpuId), [cid] "i"(static_cast<long>(RseqField::mm_cid))    \
      PERCORE_RSEQ_INJECT_INPUTS                                                                    \
    : "memory", "cc" PERCORE_RSEQ_INJECT_CLOBBERS

// rseq_add, returning the row it committed to (the lock's handle keeps it).
template <RseqField F>
inline int rseq_add_at(long rseq_offset, std::uint64_t* word0, std::uint32_t rows, std::uint64_t n) noexcept {
    std::uint64_t row;
    if constexpr (F == RseqField::cpu_id) {
        asm inline volatile goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_CPU_ID(4)
                        PERCORE_RSEQ_HOOK(4, 5)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        PERCORE_RSEQ_OPERANDS_AT(rows)
                        : no);
    } else {
        asm inline volatile goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_ROW_MM_CID(4)
                        PERCORE_RSEQ_HOOK(4, 8)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        PERCORE_RSEQ_OPERANDS_AT(rows)
                        : no);
    }
    return static_cast<int>(row >> kRowShift);
no:
    return -1;
}

// The row lookup of add_if: the index must equal `rows` (here the wanted
// row), else leave to `no`. A thread with cpu_id < 0 never matches: the
// wanted row is >= 0, and with mm_cid the sign is tested first.
#define PERCORE_RSEQ_IF_CPU_ID(s)               \
    PERCORE_RSEQ_HOOK(s, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 2)                     \
    "cmpl %[rows], %%eax\n\t"                   \
    PERCORE_RSEQ_HOOK(s, 3)                     \
    "jne %l[no]\n\t"                            \
    PERCORE_RSEQ_HOOK(s, 4)                     \
    "shlq %[shift], %%rax\n\t"
#define PERCORE_RSEQ_IF_MM_CID(s)               \
    PERCORE_RSEQ_HOOK(s, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 2)                     \
    "testl %%eax, %%eax\n\t"                    \
    PERCORE_RSEQ_HOOK(s, 3)                     \
    "js %l[no]\n\t"                             \
    PERCORE_RSEQ_HOOK(s, 4)                     \
    "movl %%fs:%c[cid](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(s, 5)                     \
    "cmpl %[rows], %%eax\n\t"                   \
    PERCORE_RSEQ_HOOK(s, 6)                     \
    "jne %l[no]\n\t"                            \
    PERCORE_RSEQ_HOOK(s, 7)                     \
    "shlq %[shift], %%rax\n\t"

// Adds n to row `want` if the thread is on that row; the unlock of a reader
// that did not migrate.
template <RseqField F>
inline bool rseq_add_if(long rseq_offset, std::uint64_t* word0, std::uint32_t want, std::uint64_t n) noexcept {
    std::uint64_t row;
    if constexpr (F == RseqField::cpu_id) {
        asm inline volatile goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_IF_CPU_ID(5)
                        PERCORE_RSEQ_HOOK(5, 5)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        PERCORE_RSEQ_OPERANDS_AT(want)
                        : no);
    } else {
        asm inline volatile goto(PERCORE_RSEQ_BEGIN PERCORE_RSEQ_IF_MM_CID(5)
                        PERCORE_RSEQ_HOOK(5, 8)
                        "addq %[n], (%[w], %%rax)\n\t"  // commit
                        PERCORE_RSEQ_END
                        PERCORE_RSEQ_OPERANDS_AT(want)
                        : no);
    }
    (void)row;
    return true;
no:
    return false;
}

// ---- ShardedRing push ------------------------------------------------------
//
// After the lookup, %rax points at the shard's RingShard. The body, with
// hook points k .. k+15 (k = 6 with cpu_id, 9 with mm_cid):
//
//   t = head - cached_tail; if (t > mask) {              // may be full:
//       t = tail; cached_tail = t;                       //   refresh (a plain
//       t = head - t; if (t > mask) goto full;           //   store, not the commit)
//   }
//   t = slots + (head & mask) * slot_size; *t = item;    // the item store
//   head += 1;                                           // commit: one add
//
// An abort anywhere before the commit leaves head unchanged, so the slot
// is invisible to the consumer and the restart overwrites it. The refresh
// store may survive an abort; it is harmless: every value stored there was
// just loaded from `tail`, by the one thread that owns the shard at that
// moment, so cached_tail only moves forward and never passes tail.
// Ordering with the consumer, on x86-64's TSO: the item store precedes the
// commit in program order and stores are not reordered with stores, so a
// consumer that loads the new head (an acquire load) then reads the item.
// The producer loads tail before it stores into the slot, and loads are not
// reordered with later stores, so the consumer's reads of a slot (before
// its release store of tail) finish before the slot is overwritten.
#define PERCORE_RING_BODY(k, store)                         \
    PERCORE_RSEQ_HOOK(6, k)                                 \
    "movq %c[ohead](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 1)                             \
    "subq %c[octail](%%rax), %[t]\n\t"                      \
    PERCORE_RSEQ_HOOK(6, k + 2)                             \
    "cmpq %c[omask](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 3)                             \
    "jbe 10f\n\t"                                           \
    PERCORE_RSEQ_HOOK(6, k + 4)                             \
    "movq %c[otail](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 5)                             \
    "movq %[t], %c[octail](%%rax)\n\t"                      \
    PERCORE_RSEQ_HOOK(6, k + 6)                             \
    "negq %[t]\n\t"                                         \
    PERCORE_RSEQ_HOOK(6, k + 7)                             \
    "addq %c[ohead](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 8)                             \
    "cmpq %c[omask](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 9)                             \
    "ja 8f\n\t"                                             \
    "10:\n\t"                                               \
    PERCORE_RSEQ_HOOK(6, k + 10)                            \
    "movq %c[ohead](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 11)                            \
    "andq %c[omask](%%rax), %[t]\n\t"                       \
    PERCORE_RSEQ_HOOK(6, k + 12)                            \
    "shlq %[ss], %[t]\n\t"                                  \
    PERCORE_RSEQ_HOOK(6, k + 13)                            \
    "addq %c[oslots](%%rax), %[t]\n\t"                      \
    PERCORE_RSEQ_HOOK(6, k + 14)                            \
    store                                                   \
    PERCORE_RSEQ_HOOK(6, k + 15)                            \
    "addq $1, %c[ohead](%%rax)\n\t" /* commit */

// Row lookup for the ring: %rax = shards + (index << kRingShardShift), or
// leave to 7 (no rseq / index out of range).
#define PERCORE_RING_ROW_CPU_ID                 \
    PERCORE_RSEQ_HOOK(6, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(6, 2)                     \
    "cmpl %[ns], %%eax\n\t"                     \
    PERCORE_RSEQ_HOOK(6, 3)                     \
    "jae 7f\n\t"                                \
    PERCORE_RSEQ_HOOK(6, 4)                     \
    "shlq %[hs], %%rax\n\t"                     \
    PERCORE_RSEQ_HOOK(6, 5)                     \
    "addq %[h], %%rax\n\t"
#define PERCORE_RING_ROW_MM_CID                 \
    PERCORE_RSEQ_HOOK(6, 1)                     \
    "movl %%fs:%c[cpu](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(6, 2)                     \
    "testl %%eax, %%eax\n\t"                    \
    PERCORE_RSEQ_HOOK(6, 3)                     \
    "js 7f\n\t"                                 \
    PERCORE_RSEQ_HOOK(6, 4)                     \
    "movl %%fs:%c[cid](%[r]), %%eax\n\t"        \
    PERCORE_RSEQ_HOOK(6, 5)                     \
    "cmpl %[ns], %%eax\n\t"                     \
    PERCORE_RSEQ_HOOK(6, 6)                     \
    "jae 7f\n\t"                                \
    PERCORE_RSEQ_HOOK(6, 7)                     \
    "shlq %[hs], %%rax\n\t"                     \
    PERCORE_RSEQ_HOOK(6, 8)                     \
    "addq %[h], %%rax\n\t"

// After the sequence: %rax = the shard index (pushed), index | kRingFull,
// or kRingNoRseq.
#define PERCORE_RING_TAIL                       \
    "subq %[h], %%rax\n\t"                      \
    "shrq %[hs], %%rax\n\t"                     \
    "jmp 9f\n\t"                                \
    "7:\n\t"                                    \
    "movq $-1, %%rax\n\t"                       \
    "jmp 9f\n\t"                                \
    "8:\n\t"                                    \
    "subq %[h], %%rax\n\t"                      \
    "shrq %[hs], %%rax\n\t"                     \
    "btsq $32, %%rax\n\t"                       \
    "9:\n\t"

#define PERCORE_RING_OPERANDS(vcon)                                                                   \
    : [res] "=&a"(res), [t] "=&r"(t)                                                                 \
    : [r] "r"(rseq_offset), [h] "r"(shards), [ns] "r"(n), [v] vcon(item), [hs] "i"(kRingShardShift), \
      [ss] "i"(kSlotShift), [ohead] "i"(offsetof(RingShard, head)),                                  \
      [oslots] "i"(offsetof(RingShard, slots)), [omask] "i"(offsetof(RingShard, mask)),              \
      [octail] "i"(offsetof(RingShard, cached_tail)), [otail] "i"(offsetof(RingShard, tail)),        \
      [cs] "i"(kRseqCs), [cpu] "i"(kRseqCpuId), [cid] "i"(static_cast<long>(RseqField::mm_cid))     \
      PERCORE_RSEQ_INJECT_INPUTS                                                                      \
    : "memory", "cc" PERCORE_RSEQ_INJECT_CLOBBERS

#ifdef __AVX__
#define PERCORE_RING_STORE16 "vmovdqu %[v], (%[t])\n\t"
#else
#define PERCORE_RING_STORE16 "movdqu %[v], (%[t])\n\t"
#endif

// Item is std::uint64_t (8-byte slots) or V2u64 (16-byte slots).
template <RseqField F, class Item>
inline std::uint64_t rseq_ring_push(long rseq_offset, RingShard* shards, std::uint32_t n, Item item) noexcept {
    static_assert(sizeof(Item) == 8 || sizeof(Item) == 16);
    constexpr unsigned kSlotShift = sizeof(Item) == 8 ? 3 : 4;
    std::uint64_t res, t;
    if constexpr (sizeof(Item) == 8) {
        if constexpr (F == RseqField::cpu_id) {
            asm inline volatile(PERCORE_RSEQ_BEGIN PERCORE_RING_ROW_CPU_ID
                                PERCORE_RING_BODY(6, "movq %[v], (%[t])\n\t")
                                PERCORE_RSEQ_END PERCORE_RING_TAIL
                                PERCORE_RING_OPERANDS("r"));
        } else {
            asm inline volatile(PERCORE_RSEQ_BEGIN PERCORE_RING_ROW_MM_CID
                                PERCORE_RING_BODY(9, "movq %[v], (%[t])\n\t")
                                PERCORE_RSEQ_END PERCORE_RING_TAIL
                                PERCORE_RING_OPERANDS("r"));
        }
    } else {
        if constexpr (F == RseqField::cpu_id) {
            asm inline volatile(PERCORE_RSEQ_BEGIN PERCORE_RING_ROW_CPU_ID
                                PERCORE_RING_BODY(6, PERCORE_RING_STORE16)
                                PERCORE_RSEQ_END PERCORE_RING_TAIL
                                PERCORE_RING_OPERANDS("x"));
        } else {
            asm inline volatile(PERCORE_RSEQ_BEGIN PERCORE_RING_ROW_MM_CID
                                PERCORE_RING_BODY(9, PERCORE_RING_STORE16)
                                PERCORE_RSEQ_END PERCORE_RING_TAIL
                                PERCORE_RING_OPERANDS("x"));
        }
    }
    (void)t;
    return res;
}

#undef PERCORE_RSEQ_OPERANDS_AT
#undef PERCORE_RSEQ_IF_CPU_ID
#undef PERCORE_RSEQ_IF_MM_CID
#undef PERCORE_RING_BODY
#undef PERCORE_RING_ROW_CPU_ID
#undef PERCORE_RING_ROW_MM_CID
#undef PERCORE_RING_TAIL
#undef PERCORE_RING_OPERANDS
#undef PERCORE_RING_STORE16
#undef PERCORE_RSEQ_OPERANDS2
#undef PERCORE_RSEQ_HOOK
#undef PERCORE_RSEQ_ABORT_COUNT
#undef PERCORE_RSEQ_INJECT_INPUTS
#undef PERCORE_RSEQ_INJECT_CLOBBERS
#undef PERCORE_RSEQ_ROW_CPU_ID
#undef PERCORE_RSEQ_ROW_MM_CID
#undef PERCORE_RSEQ_PAIR
#undef PERCORE_RSEQ_BEGIN
#undef PERCORE_RSEQ_END
#undef PERCORE_RSEQ_OPERANDS

}  // namespace percore::arch
