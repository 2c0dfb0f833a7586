// SPDX-License-Identifier: MIT
// percore/arena.hpp - per-shard storage for counters.
//
// An Arena is max_shards + 1 rows of memory, 64 MiB of address space apart.
// A counter is one offset: its value on shard s is the 8-byte word at that
// offset in row s, so counters are packed 8 bytes apart with no padding, and
// two shards never share a cache line. The last row ("shared row") takes
// updates from threads that have no exclusive row (too many thread slots, a
// thread without rseq, scramble mode); it is only ever updated with atomic
// read-modify-writes.
//
// Cost: (shards + 2) x 64 MiB of address space is reserved up front, as one
// mapping (MAP_NORESERVE: no commit charge, no RAM until touched); counters
// are handed out of every row at once, and a page becomes resident only on
// rows whose shard actually writes. Memory is (rows x bytes of counters),
// independent of the number of threads. Rows beyond 2 MiB are advised to use
// huge pages (Arenas of up to 1024 rows). Creating counters never moves
// existing ones: rows only grow in place. At most 65536 shards (4 TiB of
// address space); see docs/design.md for the address-space budget.
//
// The default Arena (default_arena()) serves every counter created without
// one; more Arenas are for users who want separate shard bounds or memory
// accounting. An Arena must outlive the counters placed in it.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "percore/arch/rseq.hpp"
#include "percore/detail/identity.hpp"

namespace percore {

class Arena {
public:
    static constexpr std::size_t kRowBytes = std::size_t{1} << arch::kRowShift;

    // shards == 0 means the process bound, percore::max_shards(). Fewer
    // shards than that fold the excess CPUs or threads onto the shared row
    // (atomic adds); more only cost address space.
    explicit Arena(std::size_t shards = 0) {
        if (shards > detail::kMaxShards)
            throw std::invalid_argument("percore::Arena: more than 65536 shards (" + std::to_string(shards) + ")");
        // Identity first: updates read it, and they can only reach an Arena
        // that was constructed after it.
        const std::uint32_t bound = detail::identity().max_shards;
        shards_ = static_cast<std::uint32_t>(shards == 0 ? bound : shards);
        // Over-reserve one row so that row 0 starts 2 MiB-aligned (huge pages).
        const std::size_t span = (shards_ + 2) * kRowBytes;
        // One writable, unaccounted mapping for all rows: pages cost memory
        // only once touched, and the whole Arena is one kernel memory map
        // however many rows it has (one mprotect per row would spend two of
        // the process's vm.max_map_count maps per row, exhausting them at
        // ~32k rows). Under strict overcommit MAP_NORESERVE is ignored and
        // the span would be charged in full, so there rows are reserved
        // PROT_NONE and committed by mprotect as they grow (commit()).
        strict_ = detail::strict_overcommit();
        void* p = mmap(nullptr, span, strict_ ? PROT_NONE : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        auto addr = reinterpret_cast<std::uintptr_t>(p);
        auto aligned = (addr + kHuge - 1) & ~(kHuge - 1);
        reserved_ = static_cast<std::byte*>(p);
        reserved_bytes_ = span;
        base_ = reinterpret_cast<std::byte*>(aligned);
    }
    ~Arena() { munmap(reserved_, reserved_bytes_); }
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // Rows with a single writer at a time (one per CPU or thread slot).
    std::size_t shards() const noexcept { return shards_; }
    // shards() + the shared row.
    std::size_t rows() const noexcept { return shards_ + 1; }

    // Reserves `words` consecutive 8-byte slots aligned to `align` bytes
    // (a power of two <= 64) and sets them to `init` in every row. Returns
    // the byte offset. Throws std::bad_alloc when a row is full.
    std::size_t allocate(std::size_t words, std::uint64_t init, std::size_t align = 8) {
        std::lock_guard lk(mu_);
        std::size_t off = 0;
        bool reused = false;
        if (auto it = free_.find(words); it != free_.end()) {
            // Reuse a freed block of the same size if it is aligned enough.
            auto& v = it->second;
            for (auto f = v.rbegin(); f != v.rend(); ++f) {
                if (*f % align == 0) {
                    off = *f;
                    v.erase(std::next(f).base());
                    reused = true;
                    break;
                }
            }
        }
        if (!reused) {
            off = (next_ + align - 1) & ~(align - 1);
            if (off + words * 8 > kRowBytes) throw std::bad_alloc();
            commit(off + words * 8);
            next_ = off + words * 8;
        }
        // No thread can be writing these words: they belong to no live
        // counter. Relaxed stores; the counter is published to other threads
        // by whatever publishes the counter object itself. Words never
        // handed out before are still zero pages: writing a zero there would
        // make a page resident in every row, written by a shard or not.
        for (std::size_t r = 0; r < rows() && (reused || init != 0); ++r)
            for (std::size_t w = 0; w < words; ++w)
                std::atomic_ref<std::uint64_t>(*word(r, off + w * 8)).store(init, std::memory_order_relaxed);
        live_words_ += words;
        return off;
    }

    void deallocate(std::size_t off, std::size_t words) {
        std::lock_guard lk(mu_);
        free_[words].push_back(off);
        live_words_ -= words;
    }

    std::uint64_t* word(std::size_t row, std::size_t off) const noexcept {
        return reinterpret_cast<std::uint64_t*>(base_ + (row << arch::kRowShift) + off);
    }
    std::byte* base() const noexcept { return base_; }

    // Bytes committed in all rows (what the Arena may use).
    std::size_t committed_bytes() const {
        std::lock_guard lk(mu_);
        return committed_ * rows();
    }
    // Bytes of the Arena actually in RAM (pages touched), via mincore.
    std::size_t resident_bytes() const {
        std::lock_guard lk(mu_);
        const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        std::size_t total = 0;
        std::vector<unsigned char> vec(committed_ / page + 1);
        for (std::size_t r = 0; r < rows() && committed_ > 0; ++r) {
            if (mincore(base_ + (r << arch::kRowShift), committed_, vec.data()) != 0) continue;
            for (std::size_t i = 0; i < committed_ / page; ++i) total += (vec[i] & 1) ? page : 0;
        }
        return total;
    }
    // Live 8-byte words per row (counters x their width).
    std::size_t live_words() const {
        std::lock_guard lk(mu_);
        return live_words_;
    }

private:
    static constexpr std::size_t kHuge = std::size_t{2} << 20;
    static constexpr std::size_t kHugeRowsMax = 1024;

    void commit(std::size_t upto) {
        if (upto <= committed_) return;
        // Grow geometrically up to 2 MiB, then in 2 MiB steps.
        std::size_t want = committed_ == 0 ? 64 * 1024 : committed_;
        while (want < upto) want = want < kHuge ? want * 2 : want + kHuge;
        if (want > kRowBytes) want = kRowBytes;
        // Huge pages split a row's map in two, so only Arenas with few rows
        // (the CPU-sized ones this is for) ask for them.
        const bool huge = want >= kHuge && rows() <= kHugeRowsMax;
        for (std::size_t r = 0; r < rows() && (strict_ || huge); ++r) {
            std::byte* row = base_ + (r << arch::kRowShift);
            if (strict_ && mprotect(row + committed_, want - committed_, PROT_READ | PROT_WRITE) != 0)
                throw std::bad_alloc();
            if (huge) madvise(row, want, MADV_HUGEPAGE);
        }
        committed_ = want;
    }

    // Hot fields first: the update path reads base_ and shards_ only.
    std::byte* base_ = nullptr;
    std::uint32_t shards_ = 1;

    mutable std::mutex mu_;
    std::byte* reserved_ = nullptr;
    std::size_t reserved_bytes_ = 0;
    bool strict_ = false;
    std::size_t next_ = 0;
    std::size_t committed_ = 0;
    std::size_t live_words_ = 0;
    std::map<std::size_t, std::vector<std::size_t>> free_;
};

// The Arena of counters created without one; sized by percore::max_shards().
// Never destroyed, so counters with static storage duration stay valid
// during static destruction.
inline Arena& default_arena() {
    static Arena* a = new Arena(0);
    return *a;
}

}  // namespace percore
