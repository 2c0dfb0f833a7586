// SPDX-License-Identifier: MIT
// percore/patterns/buffered_stats.hpp - BufferedStats<S, Lock>: one shared struct
// behind one lock, updated through a per-core WriteBuffer.
//
// The write-buffer pattern of the DPDK "Statistics" chapter on a user's struct: writers schedule
// adds into their shard's buffer; flushes apply them to the shared S under
// the lock; readers and resets take the lock, as with SharedLocked. Memory:
// one S plus capacity x 16 bytes per shard.
//
// Cost: per update, the buffered entry (see write_buffer.hpp); per flush,
// one lock hold. Updates reach readers when their buffer is flushed, so call
// hint_flush() once per batch of work, or flush()/try_flush() yourself.
//
// Guarantees: exact; the adds of one update() are one transaction (if they
// fit in the buffer's capacity, else they are applied directly, still as
// one transaction); read() and reset() are transactions over flushed adds.
// Adds still buffered during a reset() are applied after it, so they count
// toward the next period rather than being lost.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <array>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <vector>

#include "percore/patterns/shared_locked.hpp"
#include "percore/patterns/write_buffer.hpp"

namespace percore {

template <StatsLayout S, class Lock = Spinlock>
class BufferedStats {
public:
    explicit BufferedStats(WriteBufferConfig cfg = {}) : wb_(target_.lock(), cfg) {}

    template <std::integral T>
    void add(Field<S> f, T n) {
        wb_.schedule_add(target_.word(f), n);
    }
    // fn(tx) with tx.add(Field, n): buffered and applied as one transaction.
    template <class F>
    void update(F&& fn) {
        Tx tx{*this};
        fn(tx);
        tx.commit();
    }

    // Transactions over what has been flushed so far.
    std::uint64_t read(Field<S> f) const { return target_.read(f); }
    S read() const { return target_.read(); }
    S reset() { return target_.reset(); }
    typename SharedLocked<S, Lock>::ReadGuard lock_for_read() { return target_.lock_for_read(); }

    void flush() { wb_.flush(); }
    bool try_flush() { return wb_.try_flush(); }
    bool hint_flush() { return wb_.hint_flush(); }
    void flush_all() { wb_.flush_all(); }
    WriteBuffer& buffer() noexcept { return wb_; }

    // Collects the adds of one update(); up to 16 stay on the stack.
    class Tx {
    public:
        explicit Tx(BufferedStats& s) noexcept : s_(s) {}
        template <std::integral T>
        void add(Field<S> f, T n) {
            const AddOp op{s_.target_.word(f), static_cast<std::uint64_t>(n)};
            if (n_ < inline_.size()) {
                inline_[n_++] = op;
            } else {
                if (spill_.empty()) spill_.assign(inline_.begin(), inline_.end());
                spill_.push_back(op);
                ++n_;
            }
        }
        void commit() {
            if (spill_.empty()) {
                s_.wb_.schedule_add(std::span<const AddOp>(inline_.data(), n_));
            } else {
                s_.wb_.schedule_add(std::span<const AddOp>(spill_));
            }
        }

    private:
        BufferedStats& s_;
        std::array<AddOp, 16> inline_;
        std::size_t n_ = 0;
        std::vector<AddOp> spill_;
    };

private:
    SharedLocked<S, Lock> target_;
    WriteBuffer wb_;
};

}  // namespace percore
