// SPDX-License-Identifier: MIT
// percore/detail/flow_storage.hpp - where FlowTable keeps a flow's counters
// (internal).
//
// FlowTable joins a FlowIndex (key -> slot) with one of two storage
// policies, chosen by FlowLayout:
//   SharedFlowStorage     N words per slot inside the index's record, next
//                         to the key, updated with relaxed atomic adds.
//                         Costs nothing beyond the record (N x 8 B per slot).
//   PerShardFlowStorage   N words per slot in every row of a private Arena,
//                         updated with the Counter fast path and summed on
//                         read, plus N x 8 B of bases per slot. Costs
//                         (slots x N x 8 B) x (shards + 1) + bases, all
//                         committed up front (arena.hpp says when a row's
//                         pages become resident).
//
// A policy provides, for slot ids below `slots` (the last one being the
// table's overflow flow):
//   Payload                 its part of the index's record (may be empty)
//   check(slots)            throws std::invalid_argument if it cannot hold them
//   add(payload, id, v)     lock-free, from any thread
//   values(payload, id)     the slot's counts since its last fold
//   fold(payload, id, r)    moves those counts into `r` (the table's retained
//                           total); never loses a concurrent add
//   try_total(index, r)     lock-free sum of everything, or nullopt if folds
//                           kept it from a consistent view
//   total(index, r)         the same, with folds excluded by the caller
//   memory_bytes()          bytes reserved beyond the index
// values(), fold() and total() run under the table's mutex, which is what
// serializes folds.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "percore/arena.hpp"
#include "percore/detail/flow_index.hpp"
#include "percore/detail/update.hpp"

namespace percore::detail {

template <std::size_t N>
using FlowRetained = std::array<std::atomic<std::uint64_t>, N>;

template <std::size_t N>
class SharedFlowStorage {
public:
    using Values = std::array<std::uint64_t, N>;
    struct Payload {
        std::uint64_t counters[N];  // zero in a fresh mapping
    };

    static void check(std::size_t) {}
    explicit SharedFlowStorage(std::size_t) {}
    SharedFlowStorage(const SharedFlowStorage&) = delete;
    SharedFlowStorage& operator=(const SharedFlowStorage&) = delete;

    // The counters share the record's line, which the index prefetches.
    void prefetch(std::uint32_t) const noexcept {}

    void add(Payload& p, std::uint32_t, const Values& v) noexcept {
        // Relaxed: counters publish nothing; atomicity is all they need.
        for (std::size_t i = 0; i < N; ++i)
            std::atomic_ref<std::uint64_t>(p.counters[i]).fetch_add(v[i], std::memory_order_relaxed);
    }

    Values values(const Payload& p, std::uint32_t) const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) out[i] = relaxed_load(p.counters[i]);
        return out;
    }

    void fold(Payload& p, std::uint32_t, FlowRetained<N>& retained) noexcept {
        bool any = false;
        for (std::size_t i = 0; i < N; ++i) any |= relaxed_load(p.counters[i]) != 0;
        if (!any) return;
        // Seqcount write side (see try_total()): the odd count is ordered
        // before each store of the fold by the release on that store.
        // exchange, not load+store: an add racing with the fold lands before
        // it (moved) or after it (left for the next fold).
        const std::uint64_t s = seq_.load(std::memory_order_relaxed);
        seq_.store(s + 1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < N; ++i) {
            const std::uint64_t d =
                std::atomic_ref<std::uint64_t>(p.counters[i]).exchange(0, std::memory_order_acq_rel);
            retained[i].store(retained[i].load(std::memory_order_relaxed) + d, std::memory_order_release);
        }
        seq_.store(s + 2, std::memory_order_release);
    }

    // A fold moves counts from a record to `retained`; the seqcount makes
    // sure a sum saw both sides of every fold or neither. The sum's loads
    // are acquire (free on x86), so a sum that saw any store of a fold also
    // sees the fold's odd count afterwards.
    template <class Index>
    std::optional<Values> try_total(const Index& index, const FlowRetained<N>& retained) const noexcept {
        for (int attempt = 0; attempt < 3; ++attempt) {
            const std::uint64_t s = seq_.load(std::memory_order_acquire);
            if (s & 1) continue;
            Values out = sum(index, retained, std::memory_order_acquire);
            if (seq_.load(std::memory_order_relaxed) == s) return out;
        }
        return std::nullopt;
    }
    template <class Index>
    Values total(const Index& index, const FlowRetained<N>& retained) const noexcept {
        return sum(index, retained, std::memory_order_relaxed);
    }

    std::size_t memory_bytes() const noexcept { return 0; }  // the counters are in the index's records

private:
    template <class Index>
    static Values sum(const Index& index, const FlowRetained<N>& retained, std::memory_order mo) noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) out[i] = retained[i].load(mo);
        const std::uint32_t used = index.used();
        auto add_slot = [&](std::uint32_t id) {
            const Payload& p = index.payload(id);
            for (std::size_t i = 0; i < N; ++i)
                out[i] += std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(p.counters[i])).load(mo);
        };
        for (std::uint32_t id = 0; id < used; ++id) add_slot(id);
        add_slot(static_cast<std::uint32_t>(index.capacity()));  // overflow
        return out;
    }

    std::atomic<std::uint64_t> seq_{0};  // odd while a fold is moving counts
};

template <std::size_t N>
class PerShardFlowStorage {
public:
    using Values = std::array<std::uint64_t, N>;
    struct Payload {};

    static void check(std::size_t slots) {
        if (slots * N * 8 > Arena::kRowBytes)
            throw std::invalid_argument("percore::FlowTable: per_shard counters exceed one Arena row (64 MiB)");
    }
    explicit PerShardFlowStorage(std::size_t slots)
        : arena_(std::make_unique<Arena>()),
          slots_(std::make_unique<Slots>(*arena_, slots * N, 0, 64)),
          bases_(slots * N, 0) {
        word0_ = slots_->word0();
        shards_ = slots_->shards();
    }
    PerShardFlowStorage(const PerShardFlowStorage&) = delete;
    PerShardFlowStorage& operator=(const PerShardFlowStorage&) = delete;

    // The flow's counters in the row this thread will most likely add to.
    void prefetch(std::uint32_t id) const noexcept {
        __builtin_prefetch(word0_ + std::size_t{id} * N + detail::local_row(shards_) * kRowWords, 1, 3);
    }

    void add(Payload&, std::uint32_t id, const Values& v) noexcept {
        add_rows(word0_ + std::size_t{id} * N, v, std::make_index_sequence<N / 2>{});
    }

    Values values(const Payload&, std::uint32_t id) const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i)
            out[i] = detail::sum(word0_ + std::size_t{id} * N + i, shards_) - bases_[std::size_t{id} * N + i];
        return out;
    }

    void fold(Payload&, std::uint32_t id, FlowRetained<N>& retained) noexcept {
        // Rows take plain (non-atomic RMW) adds from their owners, so they
        // cannot be cleared; advance the base instead, as Counter::reset
        // does with its offset. Relaxed: retained has one writer (the mutex
        // holder) and publishes nothing.
        for (std::size_t i = 0; i < N; ++i) {
            const std::uint64_t c = detail::sum(word0_ + std::size_t{id} * N + i, shards_);
            std::uint64_t& b = bases_[std::size_t{id} * N + i];
            if (c != b)
                retained[i].store(retained[i].load(std::memory_order_relaxed) + (c - b), std::memory_order_relaxed);
            b = c;
        }
    }

    // Rows are never cleared (a fold moves a base instead), so the plain sum
    // of every word is the total, whatever folds run meanwhile.
    template <class Index>
    std::optional<Values> try_total(const Index& index, const FlowRetained<N>& retained) const noexcept {
        return total(index, retained);
    }
    template <class Index>
    Values total(const Index& index, const FlowRetained<N>&) const noexcept {
        Values out{};
        const std::size_t used = std::size_t{index.used()} * N;
        const std::size_t overflow = index.capacity() * N;
        for (std::size_t r = 0; r <= shards_; ++r) {
            const std::uint64_t* row = word0_ + r * kRowWords;
            for (std::size_t w = 0; w < used; ++w) out[w % N] += relaxed_load(row[w]);
            for (std::size_t i = 0; i < N; ++i) out[i] += relaxed_load(row[overflow + i]);
        }
        return out;
    }

    // Counter words in every row (shards + the shared row), and the bases.
    std::size_t memory_bytes() const noexcept {
        return bases_.size() * 8 * (std::size_t{shards_} + 1) + bases_.capacity() * 8;
    }

private:
    // As CounterGroup::add: adjacent pairs commit in one restartable
    // sequence. add_pair needs 16-byte alignment, which a flow's words have
    // only when N is even (the block is 64-byte aligned).
    template <std::size_t... I>
    void add_rows(std::uint64_t* w, const Values& v, std::index_sequence<I...>) noexcept {
        if constexpr (N % 2 == 0) {
            (detail::add_pair(w + 2 * I, shards_, v[2 * I], v[2 * I + 1]), ...);
        } else {
            for (std::size_t i = 0; i < N; ++i) detail::add(w + i, shards_, v[i]);
        }
    }

    // Read by every add: first, and kept inline rather than behind slots_.
    std::uint64_t* word0_ = nullptr;
    std::uint32_t shards_ = 0;
    std::unique_ptr<Arena> arena_;
    std::unique_ptr<Slots> slots_;  // slots x N words per row
    std::vector<std::uint64_t> bases_;  // sum of a slot's rows at its last fold (under the mutex)
};

}  // namespace percore::detail
