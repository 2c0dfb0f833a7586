// SPDX-License-Identifier: MIT
// percore/flow_table.hpp - per-flow counters for millions of flows.
//
// FlowTable<Key, Layout, N> keeps N counters (say packets and bytes) per
// flow key. add() creates a flow the first time it sees its key; readers
// get one flow (find), all flows (for_each) or the aggregate (totals).
// Flows leave by remove() or, once idle for a whole interval, by
// expire_idle(); their counts fold into retained(), so totals() never
// shrinks: it is exactly everything ever added.
//
// Two layouts, the space/time choice of per-flow statistics:
//   FlowLayout::shared     one set of counters per flow, updated with atomic
//                          adds. Memory x 1. An add is an uncontended
//                          lock-prefixed add when the flow's packets stay on
//                          one core (flow affinity: RSS, a flow-pinning
//                          scheduler), and a cache-line transfer per packet
//                          when they do not.
//   FlowLayout::per_shard  counters in every shard's row of a private Arena,
//                          updated with the Counter fast path (rseq / thread
//                          slot, no lock prefix) and summed on read. Memory x
//                          (shards + 1), allocated up front; no line is ever
//                          written by two cores.
// Per-shard wins when flows are few enough that shards x flows x N x 8 B
// stays in cache, or when one flow's packets are spread over many cores at
// once (a few elephant flows). Shared wins at millions of flows: its
// working set is shards + 1 times smaller, so fewer cache misses pay for
// the lock prefix, and with affinity the line is already local.
// docs/distributions.md has the measured figures.
//
// Memory (the table is sized for max_flows up front; index and records
// become resident as flows arrive, the free list and bases at construction):
// an index of 8-byte entries at load <= 1/2 (16 B per flow), a record per
// flow holding the key, two flag bytes and, in the shared layout, the
// counters (32 B for an 8-byte key and N = 2), a 4-byte free-list entry;
// per_shard adds N x 8 B x (shards + 1) of counters and N x 8 B of bases,
// and reserves (shards + 2) x 64 MiB of address space for its Arena. 1M
// flows, u64 key, N = 2: ~53 MB shared; ~52 + 16 x (shards + 1) MB
// per_shard (memory_bytes() tells).
//
// Concurrency. add() never blocks on an existing flow: a lock-free probe of
// the index, then the counter adds. Creating, removing and expiring flows
// take one mutex; so do find() and for_each(), which must see a flow's key
// and base together. An add that races with the removal of its flow lands
// in the removed slot and is folded into retained() by the next
// expire_idle() (or when the slot is reused), never lost; if the slot was
// already reused by then (the adder stalled for a whole removal and reuse),
// it is counted to the new flow. Free slots are reused oldest-first to make
// that unlikely. When all max_flows slots are taken, adds for new keys go to
// overflow(), which totals() includes.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "percore/detail/flow_index.hpp"
#include "percore/detail/flow_storage.hpp"

namespace percore {

enum class FlowLayout : std::uint8_t { shared, per_shard };

// The index (detail/flow_index.hpp) finds a key's slot and hands out free
// slots; the storage policy (detail/flow_storage.hpp, chosen by the layout)
// keeps the slot's counters. FlowTable joins them: it creates flows on first
// sight, expires idle ones, and folds every slot's counts into retained()
// when its flow leaves, under one mutex.
template <class Key, FlowLayout L = FlowLayout::shared, std::size_t N = 2, class Hash = std::hash<Key>,
          class KeyEqual = std::equal_to<Key>>
class FlowTable {
    static_assert(std::is_trivially_copyable_v<Key> && std::is_default_constructible_v<Key>,
                  "FlowTable keys are stored as bytes: trivially copyable, default constructible");
    static_assert(N >= 1 && N <= 16, "FlowTable keeps 1..16 counters per flow");

    using Storage = std::conditional_t<L == FlowLayout::shared, detail::SharedFlowStorage<N>,
                                       detail::PerShardFlowStorage<N>>;
    using Index = detail::FlowIndex<Key, Hash, KeyEqual, typename Storage::Payload>;

public:
    using Values = std::array<std::uint64_t, N>;

    // Room for max_flows flows (1 .. 2^31; per_shard also needs
    // (max_flows + 1) x N x 8 B <= 64 MiB, one Arena row). Slot max_flows
    // is the overflow flow.
    explicit FlowTable(std::size_t max_flows) : storage_(check(max_flows) + 1), index_(max_flows) {}
    FlowTable(const FlowTable&) = delete;
    FlowTable& operator=(const FlowTable&) = delete;

    // Adds v[i] to counter i of the key's flow, creating the flow if needed.
    void add(const Key& key, const Values& v) noexcept {
        const std::uint64_t h = Index::hash(key);
        std::uint32_t id = index_.find(key, h);
        if (id == Index::npos) [[unlikely]]
            id = create(key, h);
        index_.touch(id);
        storage_.add(index_.payload(id), id, v);
    }

    // Starts bringing into cache what add(key, ...) will touch: the key's
    // index entry, its flow's record and, per_shard, its counters in this
    // CPU's row. Call it a few packets ahead of the add (software
    // pipelining, as DPDK's rte_hash bulk lookup does), so the misses of a
    // large table overlap with other work. A hash and one index load; no
    // lock, no store, nothing created.
    void prefetch(const Key& key) const noexcept {
        const std::uint32_t id = index_.prefetch(Index::hash(key));
        if (id != Index::npos) storage_.prefetch(id);
    }

    // The key's counters, if it is in the table.
    std::optional<Values> find(const Key& key) const {
        std::lock_guard lk(mu_);
        const std::uint32_t id = index_.find(key, Index::hash(key));
        if (id == Index::npos) return std::nullopt;
        return values(id);
    }

    // Removes the key's flow, folding its counts into retained(). Returns
    // false if the key was not in the table.
    bool remove(const Key& key) {
        const std::uint64_t h = Index::hash(key);
        std::lock_guard lk(mu_);
        const std::uint32_t id = index_.find(key, h);
        if (id == Index::npos) return false;
        unlink(id, h);
        return true;
    }

    // Removes every flow not updated since the previous call (or since its
    // creation) and returns how many. Call it every interval T: a flow idle
    // for at least T (and at most 2T) goes. Also folds into retained() any
    // adds that raced with earlier removals. O(slots ever used).
    std::size_t expire_idle() {
        std::lock_guard lk(mu_);
        std::size_t n = 0;
        const std::uint32_t used = index_.used();
        for (std::uint32_t id = 0; id < used; ++id) {
            if (!index_.live(id)) {
                fold(id);
                continue;
            }
            if (index_.clear_touched(id)) continue;
            unlink(id, Index::hash(index_.key(id)));
            ++n;
        }
        return n;
    }

    // Calls fn(const Key&, const Values&) for every flow, under the table's
    // mutex: flows cannot come or go meanwhile (adds to existing flows go
    // on), and fn must not call back into the table.
    template <class F>
    void for_each(F&& fn) const {
        std::lock_guard lk(mu_);
        const std::uint32_t used = index_.used();
        for (std::uint32_t id = 0; id < used; ++id)
            if (index_.live(id)) fn(index_.key(id), values(id));
    }

    // Everything ever added: live flows + retained() + overflow() + adds
    // that raced with a removal. Exact once writers are quiescent; while
    // they run, it includes some of the adds in flight. O(max_flows).
    Values totals() const {
        if (const std::optional<Values> t = storage_.try_total(index_, retained_)) return *t;
        std::lock_guard lk(mu_);  // folds happen under it
        return storage_.total(index_, retained_);
    }

    // Counts of flows that were removed or expired.
    Values retained() const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) out[i] = retained_[i].load(std::memory_order_relaxed);
        return out;
    }

    // Counts of adds for new keys made while the table was full.
    Values overflow() const {
        std::lock_guard lk(mu_);
        return values(overflow_id());
    }

    std::size_t size() const noexcept { return index_.size(); }
    std::size_t capacity() const noexcept { return index_.capacity(); }
    // Bytes reserved for max_flows flows: index, records, free list, and
    // for per_shard the counters in every row plus the bases.
    std::size_t memory_bytes() const noexcept { return index_.memory_bytes() + storage_.memory_bytes(); }

private:
    static std::size_t check(std::size_t max_flows) {
        if (max_flows < 1 || max_flows > (std::size_t{1} << 31))
            throw std::invalid_argument("percore::FlowTable: max_flows must be 1..2^31");
        Storage::check(max_flows + 1);
        return max_flows;
    }

    std::uint32_t overflow_id() const noexcept { return static_cast<std::uint32_t>(index_.capacity()); }

    [[gnu::noinline]] std::uint32_t create(const Key& key, std::uint64_t h) noexcept {
        std::lock_guard lk(mu_);
        if (const std::uint32_t id = index_.find(key, h); id != Index::npos) return id;  // another thread won
        const std::uint32_t id = index_.acquire();
        if (id == Index::npos) return overflow_id();  // full
        fold(id);  // stragglers of the slot's previous flow stay with it
        index_.insert(id, key, h);
        return id;
    }

    // Under mu_: takes flow `id` (hash h) out of the index and retains its
    // counts. Adds still in flight to it land in the freed slot, to be
    // folded by the next expire_idle() or reuse of the slot.
    void unlink(std::uint32_t id, std::uint64_t h) {
        index_.erase(id, h);
        fold(id);
    }

    // Under mu_: moves the slot's counts since its last fold to retained_.
    void fold(std::uint32_t id) { storage_.fold(index_.payload(id), id, retained_); }

    Values values(std::uint32_t id) const noexcept { return storage_.values(index_.payload(id), id); }

    // What every add reads (the rows' base and shard count, the index's
    // arrays) shares no line with what creation, removal and folds write:
    // storage_ leads with its read-only part, and index_ is 64-byte aligned
    // with its written part on lines of its own.
    Storage storage_;
    Index index_;
    mutable std::mutex mu_;
    detail::FlowRetained<N> retained_{};
};

}  // namespace percore
