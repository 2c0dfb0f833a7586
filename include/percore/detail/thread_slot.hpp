// SPDX-License-Identifier: MIT
// percore/detail/thread_slot.hpp - per-thread slots, the shard identity of
// the thread backend (internal).
//
// Each live thread that asks gets the smallest free slot. The slot is the
// thread's exclusive row in every Arena whose shard count exceeds it, so the
// thread updates it with a plain load and store. When the thread exits the
// slot goes back to the free list; the row keeps its values, and the next
// owner continues from them, so an exiting thread's counts are never lost.
// The mutex orders the hand-over: the old owner's last stores happen-before
// the new owner's first load.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "percore/arch/rseq.hpp"

// The thread_locals that updates read (tl_slot, tl_row_bytes, the scramble
// generator) use the initial-exec TLS model. percore is header-only, so they
// are defined in whatever module includes it; in a shared library (-fPIC)
// the default model, global-dynamic, makes every access a call to
// __tls_get_addr, while initial-exec is one load of the variable's offset
// from the GOT and an %fs-relative access (docs/benchmarks.md, "Updates from
// a shared library"). It is safe because such a variable must sit in the
// static TLS block, and it always does for the executable and for every
// library loaded at startup. A library loaded later with dlopen must then
// fit its whole TLS block (percore's part is about 32 bytes, plus the
// library's own thread_locals) into glibc's static TLS surplus, which is
// small and shared by every dlopen'ed module that uses initial-exec
// (GLIBC_TUNABLES glibc.rtld.optional_static_tls, 512 bytes by default).
// When it is used up, that dlopen fails with "cannot allocate memory in
// static TLS block": raise the tunable, or build that library with
// -DPERCORE_NO_INITIAL_EXEC_TLS to get the default model back.
#ifdef PERCORE_NO_INITIAL_EXEC_TLS
#define PERCORE_TLS_INITIAL_EXEC
#else
#define PERCORE_TLS_INITIAL_EXEC [[gnu::tls_model("initial-exec")]]
#endif

namespace percore::detail {

// tl_slot holds slot + 1; 0 means "not asked yet", kRetired means the thread
// is exiting and must use the shared row from now on.
inline constexpr std::uint32_t kRetired = 0xffffffffu;
PERCORE_TLS_INITIAL_EXEC inline thread_local std::uint32_t tl_slot = 0;
// The byte offset of the thread's row (slot << kRowShift), or ~0 while it
// has none: the fast path compares it with an Arena's row span directly.
PERCORE_TLS_INITIAL_EXEC inline thread_local std::uint64_t tl_row_bytes = ~std::uint64_t{0};

class ThreadSlots {
public:
    std::uint32_t claim() {
        std::lock_guard lk(mu_);
        for (std::uint32_t i = 0; i < used_.size(); ++i) {
            if (!used_[i]) {
                used_[i] = true;
                return i;
            }
        }
        used_.push_back(true);
        return static_cast<std::uint32_t>(used_.size() - 1);
    }
    void release(std::uint32_t s) {
        std::lock_guard lk(mu_);
        used_[s] = false;
    }
    std::size_t live() {
        std::lock_guard lk(mu_);
        std::size_t n = 0;
        for (bool b : used_) n += b;
        return n;
    }

private:
    std::mutex mu_;
    std::vector<bool> used_;
};

inline ThreadSlots& thread_slots() {
    // Never destroyed: threads may exit after static destructors ran.
    static ThreadSlots* s = new ThreadSlots;
    return *s;
}

// Gives the calling thread's slot back; its next update claims one again.
inline void release_thread_slot() {
    tl_row_bytes = ~std::uint64_t{0};
    if (tl_slot != 0 && tl_slot != kRetired) thread_slots().release(tl_slot - 1);
    tl_slot = 0;
}

struct SlotReturn {
    ~SlotReturn() {
        release_thread_slot();
        tl_slot = kRetired;  // later updates (other TLS destructors) use the shared row
    }
};

// Claims a slot for the calling thread (first use) and returns slot + 1, or
// kRetired when the thread is past its thread_local destructors.
[[gnu::noinline]] inline std::uint32_t claim_thread_slot() {
    if (tl_slot == 0) {
        static thread_local SlotReturn giver_back;  // constructed on first claim only
        tl_slot = thread_slots().claim() + 1;
        tl_row_bytes = std::uint64_t{tl_slot - 1} << arch::kRowShift;
        (void)&giver_back;
    }
    return tl_slot;
}

}  // namespace percore::detail
