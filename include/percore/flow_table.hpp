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
// Memory (the table is sized for max_flows up front, pages become resident
// as flows arrive): an index of 8-byte entries at load <= 1/2 (16 B per
// flow), a record per flow holding the key, two flag bytes and, in the
// shared layout, the counters (32 B for an 8-byte key and N = 2), a 4-byte
// free-list entry; per_shard adds N x 8 B x (shards + 1) of counters and
// N x 8 B of bases. 1M flows, u64 key, N = 2: ~53 MB shared; ~52 + 16 x
// (shards + 1) MB per_shard (memory_bytes() tells).
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

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"

namespace percore {

enum class FlowLayout : std::uint8_t { shared, per_shard };

namespace detail {

// Zero-filled anonymous memory: pages cost nothing until touched.
class Mapping {
public:
    explicit Mapping(std::size_t bytes) : bytes_(bytes) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        p_ = p;
    }
    ~Mapping() { munmap(p_, bytes_); }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    template <class T>
    T* as() const noexcept { return static_cast<T*>(p_); }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    void* p_;
    std::size_t bytes_;
};

// A 64-bit finalizer (MurmurHash3's): std::hash of an integer is the
// identity, and the index needs the low bits and the tag (high bits) both
// well mixed.
inline std::uint64_t mix64(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

template <std::size_t KeyWords, std::size_t N, FlowLayout L>
struct FlowRecord {
    std::uint64_t key[KeyWords];
    std::uint8_t touched;  // set by add(), cleared by expire_idle()
    std::uint8_t live;     // in the index (written under the table's mutex)
};
template <std::size_t KeyWords, std::size_t N>
struct FlowRecord<KeyWords, N, FlowLayout::shared> {
    std::uint64_t key[KeyWords];
    std::uint64_t counters[N];  // next to the key: an add touches one line
    std::uint8_t touched;
    std::uint8_t live;
};

}  // namespace detail

template <class Key, FlowLayout L = FlowLayout::shared, std::size_t N = 2, class Hash = std::hash<Key>,
          class KeyEqual = std::equal_to<Key>>
class FlowTable {
    static_assert(std::is_trivially_copyable_v<Key> && std::is_default_constructible_v<Key>,
                  "FlowTable keys are stored as bytes: trivially copyable, default constructible");
    static_assert(N >= 1 && N <= 16, "FlowTable keeps 1..16 counters per flow");

public:
    using Values = std::array<std::uint64_t, N>;

    // Room for max_flows flows (1 .. 2^31; per_shard also needs
    // (max_flows + 1) x N x 8 B <= 64 MiB, one Arena row).
    explicit FlowTable(std::size_t max_flows)
        : cap_(check(max_flows)),
          mask_(std::bit_ceil(std::max<std::size_t>(16, 2 * max_flows)) - 1),
          index_((mask_ + 1) * 8),
          records_((cap_ + 1) * sizeof(Record)),
          free_(cap_) {
        for (std::size_t i = 0; i < cap_; ++i) free_[i] = static_cast<std::uint32_t>(i);
        free_count_ = cap_;
        if constexpr (L == FlowLayout::per_shard) {
            arena_ = std::make_unique<Arena>();
            slots_ = std::make_unique<detail::Slots>(*arena_, (cap_ + 1) * N, 0, 64);
            word0_ = slots_->word0();
            shards_ = slots_->shards();
            bases_.assign((cap_ + 1) * N, 0);
        }
    }
    FlowTable(const FlowTable&) = delete;
    FlowTable& operator=(const FlowTable&) = delete;

    // Adds v[i] to counter i of the key's flow, creating the flow if needed.
    void add(const Key& key, const Values& v) noexcept {
        const std::uint64_t h = detail::mix64(Hash{}(key));
        std::uint32_t id = find_id(key, h);
        if (id == kNone) [[unlikely]]
            id = create(key, h);
        Record& r = rec(id);
        // Read-mostly: written once per expiry interval, so the line stays
        // shared between the cores that use this flow.
        std::atomic_ref<std::uint8_t> t(r.touched);
        if (t.load(std::memory_order_relaxed) == 0) [[unlikely]]
            t.store(1, std::memory_order_relaxed);
        if constexpr (L == FlowLayout::shared) {
            // Relaxed: counters publish nothing; atomicity is all they need.
            for (std::size_t i = 0; i < N; ++i)
                std::atomic_ref<std::uint64_t>(r.counters[i]).fetch_add(v[i], std::memory_order_relaxed);
        } else {
            add_rows(word0_ + std::size_t{id} * N, v, std::make_index_sequence<N / 2>{});
        }
    }

    // The key's counters, if it is in the table.
    std::optional<Values> find(const Key& key) const {
        std::lock_guard lk(mu_);
        const std::uint32_t id = find_id(key, detail::mix64(Hash{}(key)));
        if (id == kNone) return std::nullopt;
        return values(id);
    }

    // Removes the key's flow, folding its counts into retained(). Returns
    // false if the key was not in the table.
    bool remove(const Key& key) {
        const std::uint64_t h = detail::mix64(Hash{}(key));
        std::lock_guard lk(mu_);
        const std::uint32_t id = find_id(key, h);
        if (id == kNone) return false;
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
        const std::uint32_t used = high_water_.load(std::memory_order_relaxed);
        for (std::uint32_t id = 0; id < used; ++id) {
            Record& r = rec(id);
            if (!r.live) {
                fold(id);
                continue;
            }
            std::atomic_ref<std::uint8_t> t(r.touched);
            if (t.load(std::memory_order_relaxed) != 0) {
                t.store(0, std::memory_order_relaxed);
                continue;
            }
            unlink(id, detail::mix64(Hash{}(key_of(id))));
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
        const std::uint32_t used = high_water_.load(std::memory_order_relaxed);
        for (std::uint32_t id = 0; id < used; ++id)
            if (rec(id).live) fn(key_of(id), values(id));
    }

    // Everything ever added: live flows + retained() + overflow() + adds
    // that raced with a removal. Exact once writers are quiescent; while
    // they run, it includes some of the adds in flight. O(max_flows).
    Values totals() const {
        if constexpr (L == FlowLayout::per_shard) {
            // Rows are never cleared (removal moves a base instead), so the
            // plain sum of every word is the total.
            Values out{};
            const std::size_t used = std::size_t{high_water_.load(std::memory_order_relaxed)} * N;
            for (std::size_t r = 0; r <= shards_; ++r) {
                const std::uint64_t* row = word0_ + r * detail::kRowWords;
                for (std::size_t w = 0; w < used; ++w) out[w % N] += load(row[w]);
                for (std::size_t i = 0; i < N; ++i) out[i] += load(row[cap_ * N + i]);  // overflow
            }
            return out;
        } else {
            // A fold moves counts from a record to retained_; the seqcount
            // makes sure a sum saw both sides of every fold or neither. The
            // sum's loads are acquire (free on x86), so a sum that saw any
            // store of a fold also sees the fold's odd count afterwards.
            for (int attempt = 0; attempt < 3; ++attempt) {
                const std::uint64_t s = seq_.load(std::memory_order_acquire);
                if (s & 1) continue;
                Values out = shared_sum(std::memory_order_acquire);
                if (seq_.load(std::memory_order_relaxed) == s) return out;
            }
            std::lock_guard lk(mu_);  // folds happen under it
            return shared_sum(std::memory_order_relaxed);
        }
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
        return values(static_cast<std::uint32_t>(cap_));
    }

    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
    std::size_t capacity() const noexcept { return cap_; }
    // Bytes reserved for max_flows flows: index, records, free list, and
    // for per_shard the counters in every row plus the bases.
    std::size_t memory_bytes() const noexcept {
        std::size_t b = index_.bytes() + records_.bytes() + free_.capacity() * sizeof(std::uint32_t);
        if constexpr (L == FlowLayout::per_shard)
            b += (cap_ + 1) * N * 8 * (std::size_t{shards_} + 1) + bases_.capacity() * 8;
        return b;
    }

private:
    static constexpr std::size_t kKeyWords = (sizeof(Key) + 7) / 8;
    using Record = detail::FlowRecord<kKeyWords, N, L>;
    static constexpr std::uint32_t kNone = 0xffffffffu;
    // Index entries: 0 empty, 1 tombstone, else (tag << 32) | (id + 2). The
    // tag (hash high bits) skips most foreign records without reading them.
    static constexpr std::uint64_t kEmpty = 0, kTomb = 1;

    static std::size_t check(std::size_t max_flows) {
        if (max_flows < 1 || max_flows > (std::size_t{1} << 31))
            throw std::invalid_argument("percore::FlowTable: max_flows must be 1..2^31");
        if (L == FlowLayout::per_shard && (max_flows + 1) * N * 8 > Arena::kRowBytes)
            throw std::invalid_argument("percore::FlowTable: per_shard counters exceed one Arena row (64 MiB)");
        return max_flows;
    }
    static std::uint64_t load(const std::uint64_t& w) noexcept {
        return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(w)).load(std::memory_order_relaxed);
    }

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

    Record& rec(std::uint32_t id) const noexcept { return records_.as<Record>()[id]; }
    std::atomic_ref<std::uint64_t> entry(std::size_t i) const noexcept {
        return std::atomic_ref<std::uint64_t>(index_.as<std::uint64_t>()[i]);
    }

    // Key words are atomics because a lock-free reader may compare a key
    // while create() rewrites it for a reused slot: the reader sees some
    // mix of words and simply fails (or, harmlessly, passes) the compare.
    Key key_of(std::uint32_t id) const noexcept {
        std::uint64_t w[kKeyWords];
        for (std::size_t i = 0; i < kKeyWords; ++i) w[i] = load(rec(id).key[i]);
        Key k;
        std::memcpy(static_cast<void*>(&k), w, sizeof(Key));
        return k;
    }

    // Lock-free probe. acquire pairs with create()'s release store of the
    // entry, so the record's key is visible before its id is.
    std::uint32_t find_id(const Key& key, std::uint64_t h) const noexcept {
        const std::uint64_t tag = h >> 32;
        std::size_t i = h & mask_;
        for (std::size_t n = 0; n <= mask_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t e = entry(i).load(std::memory_order_acquire);
            if (e == kEmpty) return kNone;
            if (e == kTomb || (e >> 32) != tag) continue;
            const auto id = static_cast<std::uint32_t>(e) - 2;
            if (KeyEqual{}(key_of(id), key)) return id;
        }
        return kNone;
    }

    [[gnu::noinline]] std::uint32_t create(const Key& key, std::uint64_t h) noexcept {
        std::lock_guard lk(mu_);
        if (const std::uint32_t id = find_id(key, h); id != kNone) return id;  // another thread won
        if (free_count_ == 0) return static_cast<std::uint32_t>(cap_);       // full: overflow slot
        const std::uint32_t id = free_[free_head_];
        free_head_ = (free_head_ + 1) % cap_;
        --free_count_;
        // Set before the entry is published, so a reader that can see the
        // flow's adds scans far enough (totals, for_each).
        if (id >= high_water_.load(std::memory_order_relaxed)) high_water_.store(id + 1, std::memory_order_relaxed);
        fold(id);  // stragglers of the slot's previous flow stay with it
        Record& r = rec(id);
        std::uint64_t w[kKeyWords] = {};
        std::memcpy(w, static_cast<const void*>(&key), sizeof(Key));
        for (std::size_t i = 0; i < kKeyWords; ++i)
            std::atomic_ref<std::uint64_t>(r.key[i]).store(w[i], std::memory_order_relaxed);
        std::atomic_ref<std::uint8_t>(r.touched).store(1, std::memory_order_relaxed);
        r.live = 1;
        // Take the first tombstone or empty entry of the probe sequence; the
        // key is absent (checked above, and only the mutex holder inserts).
        std::size_t i = h & mask_;
        for (;; i = (i + 1) & mask_) {
            const std::uint64_t e = entry(i).load(std::memory_order_relaxed);
            if (e == kEmpty || e == kTomb) break;
        }
        entry(i).store(((h >> 32) << 32) | (std::uint64_t{id} + 2), std::memory_order_release);
        size_.fetch_add(1, std::memory_order_relaxed);
        return id;
    }

    // Under mu_: takes flow `id` (hash h) out of the index and frees its slot.
    void unlink(std::uint32_t id, std::uint64_t h) {
        const std::uint64_t want = ((h >> 32) << 32) | (std::uint64_t{id} + 2);
        std::size_t i = h & mask_;
        while (entry(i).load(std::memory_order_relaxed) != want) i = (i + 1) & mask_;
        entry(i).store(kTomb, std::memory_order_relaxed);
        // A tombstone followed by an empty entry ends every probe sequence
        // through it, so it can become empty itself (and so on backwards).
        // Safe with lock-free readers: no present key lies beyond an empty
        // entry in its sequence, so no live key's sequence passes here.
        if (entry((i + 1) & mask_).load(std::memory_order_relaxed) == kEmpty)
            while (entry(i).load(std::memory_order_relaxed) == kTomb) {
                entry(i).store(kEmpty, std::memory_order_relaxed);
                i = (i - 1) & mask_;
            }
        fold(id);
        rec(id).live = 0;
        free_[(free_head_ + free_count_) % cap_] = id;
        ++free_count_;
        size_.fetch_sub(1, std::memory_order_relaxed);
    }

    // Under mu_: moves the slot's counts since its last fold to retained_.
    void fold(std::uint32_t id) {
        if constexpr (L == FlowLayout::per_shard) {
            // Rows take plain (non-atomic RMW) adds from their owners, so
            // they cannot be cleared; advance the base instead, as
            // Counter::reset does with its offset.
            for (std::size_t i = 0; i < N; ++i) {
                const std::uint64_t c = detail::sum(word0_ + std::size_t{id} * N + i, shards_);
                std::uint64_t& b = bases_[std::size_t{id} * N + i];
                if (c != b) retained_[i].store(retained_[i].load(std::memory_order_relaxed) + (c - b),
                                               std::memory_order_relaxed);
                b = c;
            }
        } else {
            Record& r = rec(id);
            bool any = false;
            for (std::size_t i = 0; i < N; ++i) any |= load(r.counters[i]) != 0;
            if (!any) return;
            // Seqcount write side (see totals()): the odd count is ordered
            // before each store of the fold by the release on that store.
            // exchange, not load+store: an add racing with the fold lands
            // before it (moved) or after it (left for the next fold).
            const std::uint64_t s = seq_.load(std::memory_order_relaxed);
            seq_.store(s + 1, std::memory_order_relaxed);
            for (std::size_t i = 0; i < N; ++i) {
                const std::uint64_t d =
                    std::atomic_ref<std::uint64_t>(r.counters[i]).exchange(0, std::memory_order_acq_rel);
                retained_[i].store(retained_[i].load(std::memory_order_relaxed) + d, std::memory_order_release);
            }
            seq_.store(s + 2, std::memory_order_release);
        }
    }

    Values values(std::uint32_t id) const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) {
            if constexpr (L == FlowLayout::per_shard)
                out[i] = detail::sum(word0_ + std::size_t{id} * N + i, shards_) -
                         bases_[std::size_t{id} * N + i];
            else
                out[i] = load(rec(id).counters[i]);
        }
        return out;
    }

    Values shared_sum(std::memory_order mo) const noexcept {
        Values out;
        for (std::size_t i = 0; i < N; ++i) out[i] = retained_[i].load(mo);
        const std::uint32_t used = high_water_.load(std::memory_order_relaxed);
        auto add_slot = [&](std::uint32_t id) {
            for (std::size_t i = 0; i < N; ++i)
                out[i] += std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(rec(id).counters[i])).load(mo);
        };
        for (std::uint32_t id = 0; id < used; ++id) add_slot(id);
        add_slot(static_cast<std::uint32_t>(cap_));  // overflow
        return out;
    }

    const std::size_t cap_;   // slot cap_ is the overflow flow
    const std::size_t mask_;  // index entries - 1
    detail::Mapping index_;
    detail::Mapping records_;
    std::unique_ptr<Arena> arena_;          // per_shard only
    std::unique_ptr<detail::Slots> slots_;  // per_shard only: (cap_ + 1) x N words per row
    std::uint64_t* word0_ = nullptr;        // slots_->word0(), kept inline for add()
    std::uint32_t shards_ = 0;

    mutable std::mutex mu_;
    std::vector<std::uint32_t> free_;    // ring of free ids, oldest first
    std::size_t free_head_ = 0, free_count_ = 0;
    std::atomic<std::uint32_t> high_water_{0};  // ids below it have been used (written under mu_)
    std::vector<std::uint64_t> bases_;   // per_shard: sum of a slot's rows at its last fold
    std::array<std::atomic<std::uint64_t>, N> retained_{};
    std::atomic<std::uint64_t> seq_{0};  // shared: odd while a fold is moving counts
    std::atomic<std::size_t> size_{0};
};

}  // namespace percore
