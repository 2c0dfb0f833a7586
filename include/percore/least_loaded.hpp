// SPDX-License-Identifier: MIT
// percore/least_loaded.hpp - LeastLoaded<Conn>: the connection with the
// fewest requests in flight, counted per CPU.
//
// The "RPC clients" use case of the Go percpu.Sharded proposal
// (golang/go#18802; design doc golang/proposal
// design/18802-percpu-sharded.md): a client spreads requests over a pool of
// connections with a least-loaded policy, which needs an in-flight count
// per connection; with one shared atomic per connection, every request
// bounces those lines between all the cores that send. Here each shard
// (Sharded<T>) keeps its own row of in-flight gauges, one per connection:
// acquire() reads its shard's row, picks the smallest, and increments it on
// that row; the Guard it returns decrements the same row (not the caller's
// shard at release: a thread that migrated in between still releases what
// it took, so no row drifts).
//
//   percore::LeastLoaded<Conn> pool(8, [](std::size_t i) { return Conn(addr[i]); });
//   {
//       auto c = pool.acquire();          // least loaded, now one more in flight
//       c->send(request);                 // c.index() says which
//   }                                     // released at scope exit (or c.release())
//
// Choosing (LeastLoadedOptions::choices):
//   0 (default)  every connection in pools of up to 16, else 2
//   k >= 1       power of k choices: sample k connections at random (with
//                replacement) and take the least loaded of those; for large
//                pools, k = 2 keeps most of the benefit of a full scan
//                (Mitzenmacher) at a fixed cost. k >= size() scans all.
// Ties go to a per-thread rotating start, so idle pools are used round
// robin rather than always from connection 0.
//
// How stale the figures are (LeastLoadedOptions::view):
//   local (default)  acquire() sees only the requests acquired on its own
//       shard: in-flight requests taken on other shards (other CPUs, or other
//       concurrency ids under mm_cid) are invisible to it. Each shard
//       balances its own requests, so connections differ by about one
//       request per shard in use, not by one. Within a shard, the figure is
//       exact when loaded but another thread of the same shard may choose
//       between the load and the increment (two picks of one connection).
//       It works when each shard has requests in flight (asynchronous
//       clients, or several threads per CPU); a caller that waits for each
//       request before sending the next, alone on its shard, finds its row
//       empty every time and degrades to round robin, blind to a slow
//       connection: use the global view (or fewer rows) there.
//       Cost: the shard's row (size()/8 cache lines, all local) and one
//       uncontended atomic increment; nothing another core writes.
//   global  each considered connection's figure is the sum over all rows:
//       every in-flight request counts, but the sum is a series of relaxed
//       loads, so it may miss or double-see requests that start or end
//       while it is being read, and it is one load of every shard's row per
//       connection considered (other cores' lines: the contention the rows
//       avoid on writes comes back on reads). Worth it for few shards
//       (set_max_shards, or max_shards here) or with choices = 2.
// in_flight(i) is the global figure for connection i, for monitoring.
//
// Guarantees: every Guard's release undoes exactly its acquire (relaxed
// atomics: the counts are exact once all guards are released, at any
// quiescent moment, whatever migrations happened); acquire() never fails
// and never blocks. A Guard must not outlive its LeastLoaded. All methods
// are thread-safe; a Guard is used by one thread at a time.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "percore/detail/thread_slot.hpp"
#include "percore/sharded.hpp"

namespace percore {

enum class LoadView : std::uint8_t { local, global };

struct LeastLoadedOptions {
    std::size_t choices = 0;  // 0: all when size() <= 16, else 2
    LoadView view = LoadView::local;
    std::size_t max_shards = 0;  // rows; 0: percore::max_shards()
    Placement placement = Placement::heap;
};

namespace detail {

inline std::uint64_t ll_random() noexcept {
    PERCORE_TLS_INITIAL_EXEC static thread_local std::uint64_t x = 0;
    if (x == 0) [[unlikely]]
        x = 0x9e3779b97f4a7c15ull ^ (reinterpret_cast<std::uintptr_t>(&x) * 0xbf58476d1ce4e5b9ull);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

// Per-thread start of the scan, so ties rotate.
inline std::size_t ll_rotation() noexcept {
    PERCORE_TLS_INITIAL_EXEC static thread_local std::size_t r = 0;
    return r++;
}

// Lemire's multiply-shift: a value in [0, n) from 32 random bits.
inline std::size_t ll_below(std::uint64_t r, std::size_t n) noexcept {
    return static_cast<std::size_t>(((r & 0xffffffffu) * static_cast<std::uint64_t>(n)) >> 32);
}

}  // namespace detail

template <class Conn>
class LeastLoaded {
    using Cell = std::atomic<std::int64_t>;

public:
    class Guard {
    public:
        Guard() = default;
        Guard(Guard&& o) noexcept : cell_(std::exchange(o.cell_, nullptr)), conn_(o.conn_), index_(o.index_) {}
        Guard& operator=(Guard&& o) noexcept {
            if (this != &o) {
                release();
                cell_ = std::exchange(o.cell_, nullptr);
                conn_ = o.conn_;
                index_ = o.index_;
            }
            return *this;
        }
        ~Guard() { release(); }

        // Ends the request early (the destructor then does nothing).
        void release() noexcept {
            if (cell_ != nullptr) {
                cell_->fetch_sub(1, std::memory_order_relaxed);
                cell_ = nullptr;
            }
        }
        explicit operator bool() const noexcept { return cell_ != nullptr; }
        std::size_t index() const noexcept { return index_; }
        Conn& operator*() const noexcept { return *conn_; }
        Conn* operator->() const noexcept { return conn_; }

    private:
        friend class LeastLoaded;
        Guard(Cell* cell, Conn* conn, std::size_t index) noexcept : cell_(cell), conn_(conn), index_(index) {}
        Cell* cell_ = nullptr;
        Conn* conn_ = nullptr;
        std::size_t index_ = 0;
    };

    // n connections, connection i made by make(i) (returning Conn by
    // value: it is constructed in place, so Conn need not be movable).
    template <class Make>
    LeastLoaded(std::size_t n, Make&& make, LeastLoadedOptions opts = {})
        : n_(check(n)),
          choices_(pick_choices(n, opts.choices)),
          view_(opts.view),
          rows_(opts.max_shards, opts.placement),
          list_(new std::atomic<Row*>[percore::max_shards()]) {
        conns_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::unique_ptr<Conn> c(new Conn(make(i)));
            conns_.push_back(std::move(c));
        }
    }
    explicit LeastLoaded(std::vector<Conn> conns, LeastLoadedOptions opts = {})
        : n_(check(conns.size())),
          choices_(pick_choices(conns.size(), opts.choices)),
          view_(opts.view),
          rows_(opts.max_shards, opts.placement),
          list_(new std::atomic<Row*>[percore::max_shards()]) {
        conns_.reserve(n_);
        for (auto& c : conns) conns_.push_back(std::make_unique<Conn>(std::move(c)));
    }
    LeastLoaded(const LeastLoaded&) = delete;
    LeastLoaded& operator=(const LeastLoaded&) = delete;

    // The least-loaded connection (see the header comment for which
    // figures), now with one more request in flight until the Guard goes.
    Guard acquire() {
        Row& row = rows_.get_or_create([&](ShardInfo) { return Row(n_, *this); });
        const std::size_t best = view_ == LoadView::local ? pick_local(row) : pick_global();
        Cell* cell = &row.cells[best];
        cell->fetch_add(1, std::memory_order_relaxed);
        return Guard(cell, conns_[best].get(), best);
    }

    std::size_t size() const noexcept { return n_; }
    std::size_t choices() const noexcept { return choices_; }
    Conn& operator[](std::size_t i) noexcept { return *conns_[i]; }
    const Conn& operator[](std::size_t i) const noexcept { return *conns_[i]; }

    // Requests in flight on connection i, summed over every shard's row.
    std::int64_t in_flight(std::size_t i) const noexcept {
        std::int64_t sum = 0;
        const std::size_t rows = nrows_.load(std::memory_order_acquire);
        for (std::size_t k = 0; k < rows; ++k)
            sum += list_[k].load(std::memory_order_acquire)->cells[i].load(std::memory_order_relaxed);
        return sum;
    }
    // The same as acquire() sees it under the local view: the caller's
    // shard's row only.
    std::int64_t local_in_flight(std::size_t i) const {
        const Row* r = rows_.get();
        return r == nullptr ? 0 : r->cells[i].load(std::memory_order_relaxed);
    }

    // Caps the number of rows (Sharded::set_max_shards): fewer rows make
    // the local view see more of the load and the global view cheaper.
    void set_max_shards(std::size_t n) { rows_.set_max_shards(n); }
    std::size_t max_shards() const noexcept { return rows_.max_shards(); }

private:
    // One shard's gauges: n cells, in cache lines of their own.
    struct Row {
        // Constructed in place (creation is serialized by Sharded), so
        // `this` is final: it joins the owner's list of rows here.
        Row(std::size_t n, LeastLoaded& owner) : cells(alloc(n)) {
            for (std::size_t i = 0; i < n; ++i) new (&cells[i]) Cell(0);
            const std::size_t k = owner.nrows_.load(std::memory_order_relaxed);
            owner.list_[k].store(this, std::memory_order_release);
            owner.nrows_.store(k + 1, std::memory_order_release);
        }
        ~Row() { ::operator delete(static_cast<void*>(cells), std::align_val_t(64)); }  // atomics: trivial dtors
        Row(const Row&) = delete;
        Row& operator=(const Row&) = delete;
        static Cell* alloc(std::size_t n) {
            const std::size_t bytes = (n * sizeof(Cell) + 63) / 64 * 64;
            return static_cast<Cell*>(::operator new(bytes, std::align_val_t(64)));
        }
        Cell* const cells;
    };

    static std::size_t check(std::size_t n) {
        if (n < 1) throw std::invalid_argument("percore::LeastLoaded: needs at least one connection");
        return n;
    }
    static std::size_t pick_choices(std::size_t n, std::size_t k) {
        if (k == 0) k = n <= 16 ? n : 2;
        return k >= n ? n : k;
    }

    std::size_t pick_local(const Row& row) const noexcept {
        if (choices_ == n_) {
            std::size_t i = detail::ll_rotation() % n_;
            std::size_t best = i;
            std::int64_t least = row.cells[i].load(std::memory_order_relaxed);
            for (std::size_t k = 1; k < n_; ++k) {
                if (++i == n_) i = 0;
                const std::int64_t v = row.cells[i].load(std::memory_order_relaxed);
                if (v < least) {
                    least = v;
                    best = i;
                }
            }
            return best;
        }
        std::uint64_t r = detail::ll_random();
        std::size_t best = detail::ll_below(r, n_);
        std::int64_t least = row.cells[best].load(std::memory_order_relaxed);
        for (std::size_t k = 1; k < choices_; ++k) {
            if ((k & 1) == 1) {
                r >>= 32;
            } else {
                r = detail::ll_random();
            }
            const std::size_t i = detail::ll_below(r, n_);
            const std::int64_t v = row.cells[i].load(std::memory_order_relaxed);
            if (v < least) {
                least = v;
                best = i;
            }
        }
        return best;
    }

    std::size_t pick_global() const {
        if (choices_ == n_) {
            // One pass over the rows sums every connection.
            constexpr std::size_t kStack = 64;
            std::int64_t stack[kStack];
            thread_local std::vector<std::int64_t> heap;
            std::int64_t* sums = stack;
            if (n_ > kStack) {
                heap.resize(n_);
                sums = heap.data();
            }
            for (std::size_t i = 0; i < n_; ++i) sums[i] = 0;
            const std::size_t rows = nrows_.load(std::memory_order_acquire);
            for (std::size_t k = 0; k < rows; ++k) {
                const Cell* cells = list_[k].load(std::memory_order_acquire)->cells;
                for (std::size_t i = 0; i < n_; ++i) sums[i] += cells[i].load(std::memory_order_relaxed);
            }
            std::size_t i = detail::ll_rotation() % n_;
            std::size_t best = i;
            for (std::size_t k = 1; k < n_; ++k) {
                if (++i == n_) i = 0;
                if (sums[i] < sums[best]) best = i;
            }
            return best;
        }
        std::uint64_t r = detail::ll_random();
        std::size_t best = detail::ll_below(r, n_);
        std::int64_t least = in_flight(best);
        for (std::size_t k = 1; k < choices_; ++k) {
            if ((k & 1) == 1) {
                r >>= 32;
            } else {
                r = detail::ll_random();
            }
            const std::size_t i = detail::ll_below(r, n_);
            const std::int64_t v = in_flight(i);
            if (v < least) {
                least = v;
                best = i;
            }
        }
        return best;
    }

    const std::size_t n_;
    const std::size_t choices_;
    const LoadView view_;
    std::vector<std::unique_ptr<Conn>> conns_;
    Sharded<Row> rows_;
    // The rows created so far, densely, for the global view's sums.
    std::unique_ptr<std::atomic<Row*>[]> list_;
    std::atomic<std::size_t> nrows_{0};
};

}  // namespace percore
