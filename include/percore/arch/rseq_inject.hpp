// SPDX-License-Identifier: MIT
// percore/arch/rseq_inject.hpp - deterministic preemption points for tests.
//
// A restartable sequence is only as correct as its abort path, and a real
// preemption lands inside a sequence of a few instructions far too rarely
// for a test to hit every instruction boundary. So, built with
// PERCORE_RSEQ_INJECT (test targets only), each boundary inside an x86-64
// sequence (arch/rseq_x86_64.hpp) and each step of the seqcount writer
// (detail/rows.hpp, patterns/per_core_seqcount.hpp) is a numbered point
// that checks a thread-local selector. When the selector names the point,
// the point clears it (one shot, so the restarted sequence runs through)
// and makes the system call the test chose: tgkill of the calling thread
// raises a signal, and delivering it on the way back to user space makes
// the kernel abort the armed sequence. The abort handler counts its runs,
// so a test can prove that the point was reached and aborted.
//
// Without PERCORE_RSEQ_INJECT the hooks expand to nothing: the asm text,
// the operands and the generated code are those of a normal build.
#pragma once

#include <cstdint>

#ifdef PERCORE_RSEQ_INJECT
#include <unistd.h>

#include <cstddef>
#endif

namespace percore::arch {

// A point's id is site << 8 | k, k = 1..N counting the instruction
// boundaries (rseq) or steps (seqcount) of that site in program order.
enum class InjectSite : std::uint32_t {
    add = 1,
    add2 = 2,
    seqcount = 3,
    add_at = 4,     // SharedMutex reader lock (rseq_add_at)
    add_if = 5,     // SharedMutex reader unlock (rseq_add_if)
    ring_push = 6,  // ShardedRing push (rseq_ring_push)
};

constexpr std::uint32_t inject_id(InjectSite s, std::uint32_t k) noexcept {
    return static_cast<std::uint32_t>(s) << 8 | k;
}

// Steps of the seqcount writer (PerCoreSeqcount::update): 1 before it
// reads a row's sequence word, 2 between that read and the claiming CAS,
// 3 after the claim, 4 between the load and the store of the first add,
// 5 after that store (half a group applied), 6 before the release store.
inline constexpr std::uint32_t kSeqcountPoints = 6;

#ifdef PERCORE_RSEQ_INJECT

struct RseqInject {
    std::uint32_t point = 0;  // the selected point's id; 0 = none. Cleared when it fires.
    long nr = -1;  // the system call a point makes, and its arguments
    long a0 = 0, a1 = 0, a2 = 0;
    std::uint64_t fired = 0;   // points fired on this thread
    std::uint64_t aborts = 0;  // runs of an abort handler on this thread (injected or not)
};
inline thread_local RseqInject tl_rseq_inject;

// The C++ form of a point, for the steps of writers that are not sequences.
inline void inject_point(std::uint32_t id) noexcept {
    RseqInject& s = tl_rseq_inject;
    if (s.point != id) return;
    s.point = 0;
    ++s.fired;
    ::syscall(s.nr, s.a0, s.a1, s.a2);
}
#define PERCORE_INJECT_POINT(site, k) ::percore::arch::inject_point(::percore::arch::inject_id(site, k))

#else

#define PERCORE_INJECT_POINT(site, k) ((void)0)

#endif

}  // namespace percore::arch
