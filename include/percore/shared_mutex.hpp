// SPDX-License-Identifier: MIT
// percore/shared_mutex.hpp - SharedMutex: a read-write lock whose readers
// count on their own CPU's cache line.
//
// For data read on every request and written rarely: routing tables,
// configuration, a connection pool's membership. A classic read-write lock
// (std::shared_mutex, pthread_rwlock_t) counts readers in one word, so every
// read lock and unlock moves that cache line between CPUs and readers stop
// scaling at two cores. Here each shard (CPU, or thread slot) has its own
// reader count, as in Linux's percpu_rw_semaphore, folly's SharedMutex and
// the RLockHandle of the Go percpu.Sharded proposal, and the writer pays
// for what the readers save.
//
// Cost: with no writer about, read lock plus unlock is two restartable
// sequences on the CPU's own line (rseq; a plain load and store with thread
// slots), two loads of a line only writers change, no lock prefix and no
// fence. While writers are frequent the readers take a fenced path instead
// (one seq_cst fence more per lock), and a writer then pays no system call;
// after a quiet stretch readers return to the fence-free path, and the next
// writer pays one membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (an IPI to
// each other CPU running this process: 0.4 to 10 us on the VM of
// docs/structures.md). Memory: 16 bytes per shard in an Arena row, one
// 64-byte line and a std::mutex.
//
// Guarantees:
//   - writers exclude readers and each other;
//   - writer preference: once a writer has switched the readers to the
//     fenced path (at most one membarrier after it arrived) new readers wait
//     until it is gone, so readers never starve writers (a steady stream of
//     writers can delay readers instead; writers among themselves queue on a
//     std::mutex);
//   - lock_shared() returns a ReadHandle naming the shard it counted on, and
//     unlock_shared(handle) uncounts that shard even if the thread migrated
//     (then with one atomic on that shard's second word) or if another
//     thread unlocks it;
//   - neither side is recursive: a reader that locks again while a writer
//     waits deadlocks, as with any writer-preferring lock;
//   - long waits sleep (futex), short ones spin briefly first.
//
// Memory ordering. A reader stores to its count and then loads the state
// word; a writer stores to the state word and then loads the counts. That
// is Dekker's pattern: each side needs its store ordered before its load,
// which x86-64 does not give for free (a store can wait in the store buffer
// while a later load completes). The state word has a `slow` bit and a
// `writer in` bit, and the lock works like Linux's percpu_rw_semaphore with
// its rcu_sync, membarrier standing in for the RCU grace period:
//
//   reader, fast path (slow clear):  count[s] += 1; compiler barrier;
//       load state: neither bit set -> inside.
//   reader, slow path (slow set):    count[s] += 1; seq_cst fence;
//       load state: `writer in` clear -> inside; else count[s] -= 1, wait
//       until it clears, retry.
//   writer, phase 1 (only if slow is clear): set slow; membarrier().
//   writer, phase 2: set `writer in`; seq_cst fence; wait until the sum of
//       the counts is zero.
//
// membarrier() returns only after every other CPU running a thread of this
// process has executed a full memory barrier. A reader that went in by the
// fast path loaded `slow` clear. If its count store came after the barrier
// on its CPU, so did that load, which then saw `slow` set (set before the
// call): impossible. So its store came before the barrier and is visible to
// phase 2's sum. Readers that see `slow` take the fenced path, whose store,
// fence, load meets phase 2's store, fence, load: the classic fix of the
// pattern, so either the writer counts the reader or the reader sees
// `writer in` and backs out. Readers are never blocked during phase 1: the
// fast path on a CPU that has not yet seen `slow` is covered by the
// membarrier, the others go the fenced way.
//
// `slow` stays set after the writers leave, so a burst of writers pays one
// membarrier and frequent writers pay none; a reader that takes the fenced
// path 1024 times in a row without meeting a writer clears it again (a
// compare-and-swap that fails if a writer has arrived meanwhile). A writer
// sets `slow` only under its mutex, and a writer that finds it set has the
// membarrier of the writer that set it behind it. The writer's sleep for the
// last readers is the pattern again (reader: count -= 1, then look for a
// sleeping writer; writer: mark itself sleeping, membarrier, sum, sleep),
// so a wake-up cannot be lost. Where membarrier is unavailable (old kernel,
// seccomp), forced off with PERCORE_MEMBARRIER=0 or refused with
// Ordering::fences, `slow` is set for good and every fence is a seq_cst
// fence: correct everywhere, a fence per lock and unlock.
//
// Two refinements keep the sum exact. A reader that migrated between lock
// and unlock cannot decrement the old shard's count (only the CPU on it
// writes there, without a lock prefix), so it decrements that shard's
// second, atomic-only word. The writer reads every second word first and
// the counts after: a decrement it sees in a second word was made after its
// increment, so it sees that increment too, and the sum never drops to zero
// while a reader it counted is inside. Readers unlock with release
// stores (plain x86-64 stores, restartable sequences included) and the
// writer reads with acquire loads, so the readers' critical sections happen
// before the writer's; a writer's unlock releases the state word and
// readers acquire it.
//
//   percore::SharedMutex mu;
//   { percore::SharedMutex::ReadLock r(mu); use(table); }    // readers
//   { std::lock_guard w(mu); table = rebuild(); }              // writers
//   auto h = mu.lock_shared(); ...; mu.unlock_shared(h);       // by hand
#pragma once

#include "percore/detail/cxx20.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "percore/arena.hpp"
#include "percore/detail/backoff.hpp"
#include "percore/detail/update.hpp"

#if defined(__SANITIZE_THREAD__)
#define PERCORE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PERCORE_TSAN 1
#endif
#endif

#ifdef PERCORE_TSAN
// ThreadSanitizer does not see the restartable sequences (inline asm), so
// their release and the writer's matching acquire are told to it.
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace percore {

namespace detail {

// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), registered once per
// process. False if the kernel lacks it (or PERCORE_MEMBARRIER=0).
inline bool membarrier_available() {
    static const bool ok = [] {
        const char* env = std::getenv("PERCORE_MEMBARRIER");
        if (env != nullptr && std::strcmp(env, "0") == 0) return false;
        const long q = ::syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (q < 0 || (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
        return ::syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    }();
    return ok;
}

inline void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t expect) noexcept {
    ::syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, expect, nullptr, nullptr, 0);
}
inline void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept {
    ::syscall(SYS_futex, &w, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// A seq_cst fence. (GCC warns that ThreadSanitizer does not model fences;
// it need not: it checks happens-before, which the acquire and release
// operations carry.)
inline void full_fence() noexcept {
#if defined(PERCORE_TSAN) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
    std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(PERCORE_TSAN) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

// Consecutive fenced-path read locks by one thread since the last writer
// left, after which it switches a lock back to the fence-free path. A fence costs
// ~10 ns here and a membarrier 0.4 to 10 us, so about a thousand fenced
// reads pay for the next writer's membarrier.
// Counted per thread, for one lock and one writer epoch at a time.
inline constexpr std::uint32_t kSharedMutexQuietReads = 1024;
struct QuietReads {
    std::uint32_t lock = 0;   // SharedMutex id
    std::uint32_t epoch = 0;  // its drain_ word when counting began
    std::uint32_t reads = 0;
};
inline thread_local QuietReads tl_quiet;
inline std::atomic<std::uint32_t> g_shared_mutex_ids{1};

}  // namespace detail

class SharedMutex {
public:
    // automatic: membarrier where the kernel has it (Linux 4.14+), else
    // fences. fences: always fences (tests, or a process that must not
    // send IPIs). membarrier: like automatic (falls back if unavailable).
    enum class Ordering { automatic, membarrier, fences };

    // The shard a read lock counted on; give it back to unlock_shared().
    class ReadHandle {
    public:
        ReadHandle() = default;
        std::uint32_t shard() const noexcept { return row_; }

    private:
        friend class SharedMutex;
        ReadHandle(std::uint32_t row, bool local) : row_(row), local_(local) {}
        std::uint32_t row_ = 0;
        bool local_ = false;  // counted in the shard's own word (else its atomic word)
    };

    explicit SharedMutex(Ordering ordering = Ordering::automatic, Arena& arena = default_arena())
        : slots_(arena, 2, 0, 16),
          word0_(slots_.word0()),
          shards_(slots_.shards()),
          membarrier_(ordering != Ordering::fences && detail::membarrier_available()),
          state_(membarrier_ ? 0 : kSlow) {}
    explicit SharedMutex(Arena& arena) : SharedMutex(Ordering::automatic, arena) {}
    SharedMutex(const SharedMutex&) = delete;
    SharedMutex& operator=(const SharedMutex&) = delete;

    // ---- readers ----------------------------------------------------------

    [[nodiscard]] ReadHandle lock_shared() noexcept {
        const ReadHandle h = enter();
        if (membarrier_) [[likely]] {
            std::atomic_signal_fence(std::memory_order_seq_cst);
            const std::uint32_t s = state_.load(std::memory_order_acquire);
            if ((s & (kSlow | kWriterIn)) == 0) [[likely]]
                return h;  // the fast path: no writer about
            if ((s & kWriterIn) == 0 && fenced_check()) return h;
        } else {
            detail::full_fence();
            if ((state_.load(std::memory_order_acquire) & kWriterIn) == 0) [[likely]]
                return h;
        }
        return lock_shared_slow(h);
    }

    [[nodiscard]] bool try_lock_shared(ReadHandle& out) noexcept {
        const ReadHandle h = enter();
        detail::full_fence();  // the fenced path: correct in every state
        if ((state_.load(std::memory_order_acquire) & kWriterIn) == 0) {
            out = h;
            return true;
        }
        unlock_shared(h);
        return false;
    }

    void unlock_shared(ReadHandle h) noexcept {
        leave(h);
        reader_order();
        if (drain_.load(std::memory_order_relaxed) & kSleeping) [[unlikely]]
            wake_writer();
    }

    // RAII reader: percore::SharedMutex::ReadLock r(mu);
    class ReadLock {
    public:
        explicit ReadLock(SharedMutex& m) noexcept : m_(&m), h_(m.lock_shared()) {}
        ~ReadLock() {
            if (m_ != nullptr) m_->unlock_shared(h_);
        }
        ReadLock(ReadLock&& o) noexcept : m_(o.m_), h_(o.h_) { o.m_ = nullptr; }
        ReadLock(const ReadLock&) = delete;
        ReadLock& operator=(const ReadLock&) = delete;
        ReadLock& operator=(ReadLock&&) = delete;

    private:
        SharedMutex* m_;
        ReadHandle h_;
    };

    // ---- writers (Lockable: std::lock_guard, std::unique_lock) ------------

    void lock() {
        state_.fetch_add(1, std::memory_order_relaxed);  // pending: readers may not clear `slow` now
        wmu_.lock();
        enter_phase2();
        wait_for_readers();
    }

    bool try_lock() {
        if (!wmu_.try_lock()) return false;
        state_.fetch_add(1, std::memory_order_relaxed);
        enter_phase2();
        if (readers_gone()) return true;
        release_writer();
        return false;
    }

    void unlock() { release_writer(); }

    // True if this mutex uses membarrier (readers can run without fences).
    bool uses_membarrier() const noexcept { return membarrier_; }
    std::size_t shards() const noexcept { return shards_; }

    // Readers inside right now (racy unless the caller holds the write lock).
    std::int64_t readers_approx() const noexcept { return static_cast<std::int64_t>(sum()); }
    // A writer has stopped new readers (it waits for the last ones, or is
    // inside). Racy.
    bool writer_pending() const noexcept { return (state_.load(std::memory_order_relaxed) & kWriterIn) != 0; }
    // Readers take the fenced path now (a writer came recently; always with
    // Ordering::fences). Racy.
    bool readers_fenced() const noexcept { return (state_.load(std::memory_order_relaxed) & kSlow) != 0; }

private:
    static constexpr std::uint32_t kWriters = 0x1fffffffu;   // writers waiting or inside (count)
    static constexpr std::uint32_t kSlow = 0x20000000u;      // readers take the fenced path
    static constexpr std::uint32_t kWriterIn = 0x40000000u;  // a writer is draining readers, or inside
    static constexpr std::uint32_t kSleepers = 0x80000000u;  // a reader sleeps on state_
    static constexpr std::uint32_t kSleeping = 1;            // drain_: the writer sleeps on it

    // Row r's words: count (written by the row's owner only) and spill
    // (atomic read-modify-writes only).
    std::atomic_ref<std::uint64_t> count(std::uint32_t r) const noexcept { return detail::row_word(word0_, r); }
    std::atomic_ref<std::uint64_t> spill(std::uint32_t r) const noexcept { return detail::row_word(word0_ + 1, r); }

    void reader_order() const noexcept {
        if (membarrier_) [[likely]]
            std::atomic_signal_fence(std::memory_order_seq_cst);
        else detail::full_fence();
    }
    void writer_fence() const noexcept {
        if (membarrier_) [[likely]]
            ::syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        else detail::full_fence();
    }

    // The rest of the fenced path, for a reader already counted that saw
    // `slow` and not `writer in`: fence, look again. Counts the thread's
    // quiet passes since the last writer left (every writer's unlock changes
    // drain_) and clears `slow` after enough of them.
    [[gnu::noinline]] bool fenced_check() noexcept {
        detail::full_fence();
        const std::uint32_t s = state_.load(std::memory_order_acquire);
        if (s & kWriterIn) return false;
        detail::QuietReads& q = detail::tl_quiet;
        const std::uint32_t epoch = drain_.load(std::memory_order_relaxed) & ~kSleeping;
        if (s != kSlow || q.lock != id_ || q.epoch != epoch) {
            q = {id_, epoch, 0};  // another lock, a writer since, or one waiting: start again
        } else if (++q.reads >= detail::kSharedMutexQuietReads) {
            q.reads = 0;
            std::uint32_t expect = kSlow;  // fails if a writer arrived (count) or readers sleep
            state_.compare_exchange_strong(expect, 0, std::memory_order_relaxed);
        }
        return true;
    }

    // Counts the caller on its shard. Exclusive row (rseq: the CPU's; thread
    // backend: the thread's slot): a plain add. Otherwise an atomic add on
    // a spill word.
    ReadHandle enter() noexcept {
        detail::Identity& id = detail::g_identity;
        const detail::Mode m = id.mode.load(std::memory_order_relaxed);
        if (m == detail::Mode::thread) {
            const std::uint32_t s = detail::tl_slot - 1;
            if (s < shards_) [[likely]] {
                auto w = count(s);
                w.store(w.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                return ReadHandle(s, true);
            }
        } else if constexpr (arch::kHasRseqCommit) {
            const int r = m == detail::Mode::rseq_mm_cid
                              ? arch::rseq_add_at<arch::RseqField::mm_cid>(id.rseq_offset, word0_, shards_, 1)
                              : arch::rseq_add_at<arch::RseqField::cpu_id>(id.rseq_offset, word0_, shards_, 1);
            if (r >= 0) [[likely]]
                return ReadHandle(static_cast<std::uint32_t>(r), true);
        }
        return enter_slow();
    }

    [[gnu::noinline]] ReadHandle enter_slow() noexcept {
        detail::Identity& id = detail::g_identity;
        std::uint32_t row = shards_;  // the shared row
        if (id.mode.load(std::memory_order_relaxed) == detail::Mode::thread) {
            std::uint32_t slot = detail::tl_slot;
            if (slot == 0) slot = detail::claim_thread_slot();
            if (slot != detail::kRetired && slot - 1 < shards_) {
                auto w = count(slot - 1);
                w.store(w.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                return ReadHandle(slot - 1, true);
            }
        } else if constexpr (!arch::kHasRseqCommit) {
            // No restartable add on this architecture: the CPU's spill word.
            const int i = detail::rseq_index(id);
            if (i >= 0 && static_cast<std::uint32_t>(i) < shards_) row = static_cast<std::uint32_t>(i);
        }
        spill(row).fetch_add(1, std::memory_order_relaxed);
        return ReadHandle(row, false);
    }

    // Uncounts a reader: on the shard's own word if the caller owns that row
    // now, else on the shard's spill word. Release either way.
    void leave(ReadHandle h) noexcept {
        if (h.local_) {
            detail::Identity& id = detail::g_identity;
            const detail::Mode m = id.mode.load(std::memory_order_relaxed);
            if (m == detail::Mode::thread) {
                if (detail::tl_slot - 1 == h.row_) {
                    auto w = count(h.row_);
                    w.store(w.load(std::memory_order_relaxed) - 1, std::memory_order_release);
                    return;
                }
            } else if constexpr (arch::kHasRseqCommit) {
#ifdef PERCORE_TSAN
                __tsan_release(word0_ + h.row_ * detail::kRowWords);
#endif
                const std::uint64_t minus1 = ~std::uint64_t{0};
                if (m == detail::Mode::rseq_mm_cid
                        ? arch::rseq_add_if<arch::RseqField::mm_cid>(id.rseq_offset, word0_, h.row_, minus1)
                        : arch::rseq_add_if<arch::RseqField::cpu_id>(id.rseq_offset, word0_, h.row_, minus1)) [[likely]]
                    return;
            }
        }
        spill(h.row_).fetch_sub(1, std::memory_order_release);
    }

    // A writer is in: back out, wait until it is gone, and come in again by
    // the fenced path (correct whatever the state).
    [[gnu::noinline]] ReadHandle lock_shared_slow(ReadHandle h) noexcept {
        for (;;) {
            unlock_shared(h);  // back out, waking a writer that sleeps on the counts
            wait_while_writer_in();
            h = enter();
            detail::full_fence();
            if ((state_.load(std::memory_order_acquire) & kWriterIn) == 0) return h;
        }
    }

    void wait_while_writer_in() noexcept {
        detail::Backoff b;
        for (int i = 0; i < 200; ++i) {
            if ((state_.load(std::memory_order_relaxed) & kWriterIn) == 0) return;
            b.pause();
        }
        for (;;) {
            std::uint32_t s = state_.load(std::memory_order_relaxed);
            if ((s & kWriterIn) == 0) return;
            if ((s & kSleepers) == 0 && !state_.compare_exchange_weak(s, s | kSleepers, std::memory_order_relaxed))
                continue;
            detail::futex_wait(state_, s | kSleepers);
        }
    }

    // The sum of every row's counts: spill words first, then counts (see
    // the header comment), all with acquire loads.
    std::uint64_t sum() const noexcept {
        std::uint64_t n = 0;
        for (std::uint32_t r = 0; r <= shards_; ++r) n += spill(r).load(std::memory_order_acquire);
        for (std::uint32_t r = 0; r < shards_; ++r) n += count(r).load(std::memory_order_acquire);
        return n;
    }

    bool readers_gone() const noexcept {
        if (sum() != 0) return false;
#ifdef PERCORE_TSAN
        for (std::uint32_t r = 0; r < shards_; ++r) __tsan_acquire(word0_ + r * detail::kRowWords);
#endif
        return true;
    }

    // Phases 1 and 2 of the header comment. Called under wmu_, so only one
    // writer at a time sets `slow` (and makes its membarrier before any other
    // writer can look at it).
    void enter_phase2() {
        if ((state_.load(std::memory_order_relaxed) & kSlow) == 0) {
            state_.fetch_or(kSlow, std::memory_order_seq_cst);
            writer_fence();
        }
        state_.fetch_or(kWriterIn, std::memory_order_seq_cst);
        detail::full_fence();
    }

    void wait_for_readers() {
        detail::Backoff b;
        for (int i = 0; i < 200; ++i) {
            if (readers_gone()) return;
            b.pause();
        }
        for (;;) {
            // Announce the sleep, then the fence, then look: a reader that
            // leaves after the fence sees kSleeping and wakes us.
            const std::uint32_t d = drain_.fetch_or(kSleeping, std::memory_order_seq_cst) | kSleeping;
            writer_fence();
            if (readers_gone()) break;
            detail::futex_wait(drain_, d);
        }
        drain_.fetch_and(~kSleeping, std::memory_order_relaxed);
    }

    [[gnu::noinline]] void wake_writer() noexcept {
        std::uint32_t d = drain_.load(std::memory_order_relaxed);
        while (d & kSleeping) {
            // Clear the flag and change the value, so a writer about to
            // sleep on the old value does not.
            if (drain_.compare_exchange_weak(d, (d & ~kSleeping) + 2, std::memory_order_relaxed)) {
                detail::futex_wake_all(drain_);
                return;
            }
        }
    }

    // One writer fewer, readers may come in (and those asleep are woken);
    // `slow` stays. Called under wmu_, which it releases.
    void release_writer() noexcept {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        while (!state_.compare_exchange_weak(s, (s - 1) & ~(kWriterIn | kSleepers), std::memory_order_release,
                                             std::memory_order_relaxed)) {
        }
        drain_.fetch_add(2, std::memory_order_relaxed);  // a new writer epoch: quiet counts start again
        wmu_.unlock();
        if (s & kSleepers) detail::futex_wake_all(state_);
    }

    // The line readers read: where the counts are, and the two state words.
    alignas(64) detail::Slots slots_;
    std::uint64_t* const word0_;
    const std::uint32_t shards_;
    const bool membarrier_;
    std::atomic<std::uint32_t> state_;     // writers (count) | kSlow | kWriterIn | kSleepers
    std::atomic<std::uint32_t> drain_{0};  // kSleeping | a sequence number (wake-ups, writers' exits)
    // Writers only (and id_ on the readers' fenced path).
    alignas(64) std::mutex wmu_;
    const std::uint32_t id_ = detail::g_shared_mutex_ids.fetch_add(1, std::memory_order_relaxed);
};

}  // namespace percore
