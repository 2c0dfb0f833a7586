// SPDX-License-Identifier: MIT
// percore/spinlock.hpp - Spinlock and TicketLock for short critical sections.
//
// The locks of the lock-protected statistics patterns: a critical section
// is a few adds, so waiting by spinning beats sleeping in the kernel. Both
// satisfy Lockable (lock, try_lock, unlock) and work with std::lock_guard.
//
//   Spinlock    test-and-test-and-set on one byte. Uncontended: one xchg
//               (~6 cycles here) to lock, a plain store to unlock. Unfair:
//               a core that just unlocked tends to win again.
//   TicketLock  two 32-bit counters; waiters are served in arrival order.
//               Uncontended: one lock xadd. Fair, which also means a waiter
//               that was preempted stalls everyone queued behind it.
//
// Both spin with a pause hint and, after a while, yield the CPU: with more
// runnable threads than cores (or a holder preempted mid-section) pure
// spinning would burn the holder's own time slice. Neither is recursive, and
// neither is a substitute for a mutex around long sections.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <cstdint>

#include "percore/detail/backoff.hpp"

namespace percore {

class Spinlock {
public:
    void lock() noexcept {
        // Acquire on the winning exchange: the section's reads and writes
        // cannot move before it, and it reads-from the previous unlock's
        // release store, so the previous section happens-before this one.
        while (held_.exchange(true, std::memory_order_acquire)) {
            // Wait on a plain load so the line stays shared while held,
            // instead of bouncing it with failed exchanges.
            detail::Backoff b;
            while (held_.load(std::memory_order_relaxed)) b.pause();
        }
    }
    bool try_lock() noexcept {
        // Load first: a failing try_lock should not take the line exclusive.
        return !held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire);
    }
    // Release: the section's writes are visible to the next owner.
    void unlock() noexcept { held_.store(false, std::memory_order_release); }

    bool is_locked() const noexcept { return held_.load(std::memory_order_relaxed); }

private:
    std::atomic<bool> held_{false};
};

class TicketLock {
public:
    void lock() noexcept {
        // Taking a ticket needs no ordering; acquire is on the load that
        // sees our turn, which reads-from the previous owner's release.
        const std::uint32_t me = next_.fetch_add(1, std::memory_order_relaxed);
        detail::Backoff b;
        while (serving_.load(std::memory_order_acquire) != me) b.pause();
    }
    bool try_lock() noexcept {
        // Take a ticket only if it would be served now: next == serving.
        std::uint32_t s = serving_.load(std::memory_order_acquire);
        return next_.compare_exchange_strong(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed);
    }
    void unlock() noexcept {
        // Only the owner writes serving_, so a relaxed load of it is exact;
        // the release store hands the section's writes to the next ticket.
        serving_.store(serving_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    bool is_locked() const noexcept {
        return next_.load(std::memory_order_relaxed) != serving_.load(std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint32_t> next_{0};
    std::atomic<std::uint32_t> serving_{0};
};

}  // namespace percore
