// SPDX-License-Identifier: MIT
// Switches the process's shard backend between benchmark runs, so one
// binary measures rseq and thread slots side by side. Safe only while no
// thread updates (rows written under one backend and then another are
// never written concurrently, so totals stay exact); a measurement device,
// not a public feature.
#pragma once

#include "percore/shard.hpp"

namespace percore_bench {

// The backend the process started with (rseq with mm_cid where the kernel
// has it), read on first use, before any switch.
inline percore::Backend start_backend() {
    static const percore::Backend b = (percore::detail::identity(), percore::backend());
    return b;
}

// False (nothing changed) when b is an rseq backend and the process has no rseq.
inline bool use_backend(percore::Backend b) {
    using percore::detail::Mode;
    if (b != percore::Backend::thread && start_backend() == percore::Backend::thread) return false;
    // The calling thread gives back its slot (it may hold one from a thread
    // run); threads started for a run are new.
    percore::detail::release_thread_slot();
    percore::detail::g_identity.mode.store(b == percore::Backend::thread        ? Mode::thread
                                           : b == percore::Backend::rseq_mm_cid ? Mode::rseq_mm_cid
                                                                                : Mode::rseq_cpu_id);
    return true;
}
// rseq: the backend the process started with; else thread slots.
inline bool use_backend(bool rseq) { return use_backend(rseq ? start_backend() : percore::Backend::thread); }

}  // namespace percore_bench
