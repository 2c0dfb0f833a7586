// SPDX-License-Identifier: MIT
// percore/detail/backoff.hpp - how percore's spinning waits wait (internal).
//
// Spinlock, TicketLock and the row claims of the per-core patterns spin on a
// word another thread will change. Spinning is right while that thread runs
// on another core, and useless once it has been preempted: a lock holder
// that is not running cannot release the lock however long we spin. So a
// waiter pauses (the x86 `pause` / arm64 `yield` hint, which also saves
// power and frees the sibling hyperthread) for the first spins, then gives
// its CPU away with sched_yield. Cost: nothing until a wait happens.
#pragma once

#include <cstdint>
#include <thread>

namespace percore::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

class Backoff {
public:
    void pause() noexcept {
        if (++spins_ < 128) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }

private:
    std::uint32_t spins_ = 0;
};

}  // namespace percore::detail
