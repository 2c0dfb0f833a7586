// SPDX-License-Identifier: MIT
// percore/accumulator.hpp - Accumulator<T>: an order-independent accumulator.
//
// The stage buffer of a data pipeline: many threads add() elements, and a
// sink you provide receives them in batches, as std::vector<T>&&, in no
// particular order. It is the "order-independent accumulators" use case of
// the Go percpu.Sharded proposal (golang/go#18802; design doc
// golang/proposal design/18802-percpu-sharded.md), built the way it sketches:
// each shard (Sharded<T>) holds a buffer behind a Spinlock that is almost
// never contended, because mostly one CPU uses it; a buffer that reaches
// batch_size goes to the sink from the add() that filled it; and a watchdog
// thread walks the buffers and flushes any partial one whose oldest element
// is max_delay old. When a walk finds every buffer empty it counts a useless
// scan; after park_after of them in a row it parks, and the first add() into
// an empty buffer wakes it.
//
// Costs: add() is a shard lookup, an uncontended lock, a push_back and an
// unlock; the first add into an empty buffer also reads the clock and a flag
// (the watchdog's "parked", a line that is only written when it parks or
// wakes). Once per batch: a swap of vectors under the lock, two short mutex
// sections that order deliveries, the sink call, a histogram record. A sink
// that keeps its vector costs an allocation per batch; one that leaves it
// (reads it, moves the elements out) gets it back cleared, capacity kept.
// The watchdog wakes at most every scan_period while anything is buffered
// and not at all once parked. Memory: a batch (or two, while one is being
// delivered) per shard that was used.
//
// Guarantees:
//   - Exactly once: every element added is delivered once, by the add()
//     that filled its buffer, the watchdog, flush() or the destructor.
//   - One delivery at a time per shard: the sink is never called
//     concurrently for the same shard (BatchInfo::shard), and a shard's
//     batches arrive in the order they were taken. Different shards'
//     batches may be delivered concurrently, and there is no order across
//     shards.
//   - Delay: a partial buffer is handed over when its oldest element is at
//     most max(max_delay, scan_period) <= max_delay + scan_period old, plus
//     the time the watchdog was kept from running when it planned to (it
//     reports that per batch as BatchInfo::late_ns: preemption, timer slack,
//     other shards' sinks in the same walk, a waking add() preempted before
//     it could wake it). Full buffers are handed over at once.
//   - flush() returns once every element whose add() returned before it was
//     called has been handed to the sink (and that sink call returned).
//     The destructor stops the watchdog and flushes.
//
// The sink runs on whichever thread hands the batch over: an adding thread,
// the watchdog, or a flusher. It must not throw (that terminates), and must
// not add to or flush the same Accumulator (it would wait for itself).
//
//   percore::Accumulator<Event> acc(
//       [&](std::vector<Event>&& batch, const percore::BatchInfo&) { write(batch); },
//       {.batch_size = 512, .max_delay = std::chrono::milliseconds(5)});
//   acc.add(e);     // any thread
//   acc.flush();    // everything out now
//
// Instrumentation, cheap enough to leave on, for a tuner of batch_size and
// max_delay: stats() (elements, batches by reason, watchdog scans, useless
// scans, parks, wakes), delivery_delay() (a histogram of each batch's
// oldest-element age at hand-off) and the BatchInfo passed with each batch.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "percore/detail/steady_ns.hpp"
#include "percore/histogram.hpp"
#include "percore/sharded.hpp"
#include "percore/spinlock.hpp"

namespace percore {

enum class FlushReason : std::uint8_t {
    full,   // the add() that filled the buffer
    timer,  // the watchdog: the oldest element reached max_delay
    flush,  // flush() or the destructor
};

// Passed to the sink with each batch. Times are in ns of the accumulator's
// clock (AccumulatorOptions::clock).
struct BatchInfo {
    std::size_t shard = 0;  // the shard whose buffer this was
    FlushReason reason = FlushReason::full;
    std::int64_t age_ns = 0;   // hand-off time minus the add time of the batch's first element
    std::int64_t late_ns = 0;  // timer batches: hand-off time minus when the watchdog planned the pass that
                               // took it; age_ns - late_ns <= max(max_delay, scan_period). 0 otherwise.
};

struct AccumulatorOptions {
    std::size_t batch_size = 1024;                                       // >= 1
    std::chrono::nanoseconds max_delay = std::chrono::milliseconds(10);  // > 0
    std::chrono::nanoseconds scan_period{0};  // how often the watchdog looks for new buffers; 0: max_delay
    unsigned park_after = 4;                  // useless scans in a row before the watchdog parks (>= 1)
    // false: no thread. Call scan() yourself (an event loop, a test); when
    // it returns kParked, on_wake (if set) is called by the next add() into
    // an empty buffer, from that thread, and scan() is due again.
    bool watchdog_thread = true;
    std::function<void()> on_wake = {};
    std::size_t max_shards = 0;  // 0: percore::max_shards()
    Placement placement = Placement::heap;
    // Monotonic ns. nullptr: std::chrono::steady_clock. The watchdog thread
    // sleeps on steady_clock, so another clock only goes with
    // watchdog_thread = false.
    std::int64_t (*clock)() noexcept = nullptr;
};

struct AccumulatorStats {
    std::uint64_t elements = 0;  // delivered
    std::uint64_t batches_full = 0, batches_timer = 0, batches_flush = 0;
    std::uint64_t scans = 0, useless_scans = 0;  // watchdog walks; those that found every buffer empty
    std::uint64_t parks = 0, wakes = 0;
};

template <class T>
class Accumulator {
public:
    using Sink = std::function<void(std::vector<T>&&, const BatchInfo&)>;
    static constexpr std::int64_t kParked = std::numeric_limits<std::int64_t>::max();

    // sink: void(std::vector<T>&&, const BatchInfo&) or void(std::vector<T>&&).
    template <class F>
    explicit Accumulator(F&& sink, AccumulatorOptions opts = {})
        : opts_(check(std::move(opts))),
          batch_(opts_.batch_size),
          max_delay_(opts_.max_delay.count()),
          period_(opts_.scan_period.count() > 0 ? opts_.scan_period.count() : opts_.max_delay.count()),
          clock_(opts_.clock != nullptr ? opts_.clock : &detail::steady_ns),
          sink_(wrap(std::forward<F>(sink))),
          shards_(opts_.max_shards, opts_.placement),
          delay_(2, HistogramLayout::kOneHourNs) {
        asked_ = clock_();
        if (opts_.watchdog_thread) thread_ = std::thread([this] { run(); });
    }
    ~Accumulator() {
        if (thread_.joinable()) {
            {
                std::lock_guard lk(wd_mu_);
                stop_ = true;
            }
            wd_cv_.notify_one();
            thread_.join();
        }
        flush();
    }
    Accumulator(const Accumulator&) = delete;
    Accumulator& operator=(const Accumulator&) = delete;

    void add(const T& v) { push(v); }
    void add(T&& v) { push(std::move(v)); }
    template <class... A>
    void emplace(A&&... a) {
        push(std::forward<A>(a)...);
    }

    // Hands every buffered element to the sink now (see the guarantees).
    void flush() {
        shards_.for_each([&](Shard& s) {
            std::unique_lock lk(s.lock);
            const bool have = !s.buf.empty();
            Taken t{};
            if (have) t = take(s);
            const std::uint64_t target = s.taken;
            lk.unlock();
            if (have) deliver(s, t, FlushReason::flush, 0);
            std::unique_lock dl(s.dmu);
            s.dcv.wait(dl, [&] { return s.served >= target; });
        });
    }

    // One watchdog pass now: hands over every buffer whose oldest element
    // is max_delay old, and returns the clock time at which the next pass
    // is due, or kParked after park_after useless passes in a row (then
    // the next add() into an empty buffer calls on_wake). For use with
    // watchdog_thread = false; passes are serialized.
    std::int64_t scan() {
        std::lock_guard sl(scan_mu_);
        const std::int64_t start = clock_();
        std::int64_t planned;
        bool after_wake;
        {
            std::lock_guard lk(wd_mu_);
            planned = std::min(asked_, start);
            // Woken, or called while parked (scan() by hand): the plan was
            // "run when the first element arrives".
            after_wake = woken_ || parked_.load(std::memory_order_relaxed);
            woken_ = false;
            parked_.store(false, std::memory_order_relaxed);  // a pass is running: adds need not wake anyone
        }
        std::int64_t earliest = kParked;
        bool any = false;
        const std::int64_t delay = max_delay_.load(std::memory_order_relaxed);
        // Under the creation lock: a shard created after this walk passed
        // its slot gets its first element after the walk, hence after
        // `start`, which is what the next pass's plan assumes. Creation
        // waits for the walk (and the sinks it calls): it happens once per
        // shard.
        shards_.for_each_locked([&](Shard& s) {
            std::unique_lock lk(s.lock);
            if (s.buf.empty()) return;
            any = true;
            const std::int64_t now = clock_();
            if (now - s.first_ns < delay) {
                earliest = std::min(earliest, s.first_ns + delay);
                return;
            }
            Taken t = take(s);
            lk.unlock();
            // After a park the plan was "run when the first element
            // arrives": no buffer found now was planned for earlier than
            // its own first add.
            deliver(s, t, FlushReason::timer, after_wake ? std::min(planned, t.first_ns) : planned);
        });
        bump(scans_);
        if (any) {
            useless_in_a_row_ = 0;
        } else {
            bump(useless_scans_);
            ++useless_in_a_row_;
        }
        // A buffer seen here is due at first_ns + max_delay; one started
        // after this walk looked at its shard is found by the next pass,
        // at most scan_period after `start`.
        std::int64_t next = std::min(start + period_.load(std::memory_order_relaxed), earliest);
        const bool try_park = useless_in_a_row_ >= opts_.park_after;
        bool found = false;
        if (try_park) {
            {
                std::lock_guard lk(wd_mu_);
                parked_.store(true, std::memory_order_relaxed);
            }
            // Look once more: an add() this look misses comes after it in
            // its shard's lock order (or creates its shard after it), so it
            // reads parked_ == true and wakes us.
            shards_.for_each_locked([&](Shard& s) {
                std::lock_guard g(s.lock);
                found = found || !s.buf.empty();
            });
        }
        std::lock_guard lk(wd_mu_);
        if (try_park) {
            useless_in_a_row_ = 0;
            if (!parked_.load(std::memory_order_relaxed)) {
                next = asked_;  // a waker came meanwhile and set the plan
            } else if (found) {
                // Empty when the walk looked, so it arrived after `start`.
                parked_.store(false, std::memory_order_relaxed);
                next = start;
            } else {
                bump(parks_);
                next = kParked;
            }
        }
        asked_ = next;  // kParked while parked; a waker replaces it
        return next;
    }

    AccumulatorStats stats() const {
        AccumulatorStats st;
        shards_.for_each([&](Shard& s) {
            st.elements += s.n_elements.load(std::memory_order_relaxed);
            st.batches_full += s.n_full.load(std::memory_order_relaxed);
            st.batches_timer += s.n_timer.load(std::memory_order_relaxed);
            st.batches_flush += s.n_flush.load(std::memory_order_relaxed);
        });
        st.scans = scans_.load(std::memory_order_relaxed);
        st.useless_scans = useless_scans_.load(std::memory_order_relaxed);
        st.parks = parks_.load(std::memory_order_relaxed);
        st.wakes = wakes_.load(std::memory_order_relaxed);
        return st;
    }
    // Oldest-element age of each batch at hand-off, in ns (all reasons).
    HistogramSnapshot delivery_delay() const { return delay_.snapshot(); }
    bool watchdog_parked() const noexcept { return parked_.load(std::memory_order_relaxed); }

    std::size_t batch_size() const noexcept { return batch_.load(std::memory_order_relaxed); }
    std::chrono::nanoseconds max_delay() const noexcept {
        return std::chrono::nanoseconds(max_delay_.load(std::memory_order_relaxed));
    }
    std::chrono::nanoseconds scan_period() const noexcept {
        return std::chrono::nanoseconds(period_.load(std::memory_order_relaxed));
    }

    // Knobs that may change while adders run (percore::Tuner does). A new
    // batch size applies from the next add() on each shard: a buffer that
    // already holds as many goes out with that add. A new max_delay (and
    // the scan period, when it follows max_delay) applies from the
    // watchdog's next pass, at most the old period away. Relaxed: the
    // values are sizes and times, read under no ordering; each buffer's
    // contents stay under its shard's lock, so nothing is lost or doubled.
    void set_batch_size(std::size_t n) {
        if (n < 1) throw std::invalid_argument("percore::Accumulator: batch_size must be >= 1");
        batch_.store(n, std::memory_order_relaxed);
    }
    void set_max_delay(std::chrono::nanoseconds d) {
        if (d.count() <= 0) throw std::invalid_argument("percore::Accumulator: max_delay must be > 0");
        max_delay_.store(d.count(), std::memory_order_relaxed);
        if (opts_.scan_period.count() == 0) period_.store(d.count(), std::memory_order_relaxed);
    }
    std::int64_t now() const noexcept { return clock_(); }

private:
    struct Shard {
        Shard(std::size_t i, std::size_t batch) : index(i) { buf.reserve(batch); }
        // Guarded by lock: the buffer being filled and what goes with it.
        Spinlock lock;
        std::int64_t first_ns = 0;  // clock at the add of buf's first element
        std::uint64_t taken = 0;    // batches taken so far: the next delivery ticket
        std::vector<T> buf;
        std::vector<T> spare;  // empty, keeps its capacity for the next batch
        const std::size_t index;
        // Deliveries, one at a time in ticket order.
        alignas(64) std::mutex dmu;
        std::condition_variable dcv;
        std::uint64_t served = 0;  // guarded by dmu: batches delivered so far
        // Written only by the delivery holding the turn; read by stats().
        std::atomic<std::uint64_t> n_elements{0}, n_full{0}, n_timer{0}, n_flush{0};
    };
    struct Taken {
        std::vector<T> batch;
        std::uint64_t ticket = 0;
        std::int64_t first_ns = 0;
    };

    static AccumulatorOptions check(AccumulatorOptions o) {
        if (o.batch_size < 1) throw std::invalid_argument("percore::Accumulator: batch_size must be >= 1");
        if (o.max_delay.count() <= 0) throw std::invalid_argument("percore::Accumulator: max_delay must be > 0");
        if (o.scan_period.count() < 0) throw std::invalid_argument("percore::Accumulator: scan_period must be >= 0");
        if (o.park_after < 1) throw std::invalid_argument("percore::Accumulator: park_after must be >= 1");
        return o;
    }
    template <class F>
    static Sink wrap(F&& f) {
        if constexpr (std::is_invocable_v<F&, std::vector<T>&&, const BatchInfo&>) {
            return Sink(std::forward<F>(f));
        } else {
            static_assert(std::is_invocable_v<F&, std::vector<T>&&>,
                          "sink must be callable as f(std::vector<T>&&, const BatchInfo&) or f(std::vector<T>&&)");
            return [g = std::forward<F>(f)](std::vector<T>&& b, const BatchInfo&) mutable { g(std::move(b)); };
        }
    }
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    template <class... A>
    void push(A&&... a) {
        const std::size_t batch = batch_.load(std::memory_order_relaxed);
        Shard& s = shards_.get_or_create([&](ShardInfo i) { return Shard(i.index, batch); });
        std::unique_lock lk(s.lock);
        const bool first = s.buf.empty();
        s.buf.emplace_back(std::forward<A>(a)...);
        if (first) s.first_ns = clock_();
        if (s.buf.size() < batch) {
            lk.unlock();
            // The watchdog sets parked_ before its last look at the buffers
            // (under their locks), so an add it did not see reads true here.
            if (first && parked_.load(std::memory_order_relaxed)) wake();
            return;
        }
        Taken t = take(s);
        lk.unlock();
        deliver(s, t, FlushReason::full, 0);
    }

    // s.lock held, s.buf not empty.
    Taken take(Shard& s) noexcept {
        Taken t;
        t.batch.swap(s.buf);
        s.buf.swap(s.spare);
        t.ticket = s.taken++;
        t.first_ns = s.first_ns;
        return t;
    }

    void deliver(Shard& s, Taken& t, FlushReason why, std::int64_t planned) noexcept {
        {
            std::unique_lock dl(s.dmu);
            s.dcv.wait(dl, [&] { return s.served == t.ticket; });
        }
        // This shard's turn: no other delivery of it runs until served moves.
        BatchInfo info;
        info.shard = s.index;
        info.reason = why;
        const std::int64_t handoff = clock_();
        info.age_ns = handoff - t.first_ns;
        info.late_ns = why == FlushReason::timer ? handoff - planned : 0;
        const std::size_t n = t.batch.size();
        sink_(std::move(t.batch), info);
        bump(s.n_elements, n);
        bump(why == FlushReason::full ? s.n_full : why == FlushReason::timer ? s.n_timer : s.n_flush);
        delay_.record(static_cast<std::uint64_t>(info.age_ns > 0 ? info.age_ns : 0));
        {
            std::lock_guard dl(s.dmu);
            ++s.served;
        }
        s.dcv.notify_all();
        // Recycle the vector if the sink left it, else make the next one
        // here, outside the shard's lock.
        std::vector<T> next = std::move(t.batch);
        next.clear();
        const std::size_t batch = batch_.load(std::memory_order_relaxed);
        if (next.capacity() < batch) {
            try {
                next.reserve(batch);
            } catch (...) {
                return;  // no memory now: the buffer grows as it fills
            }
        }
        std::lock_guard lk(s.lock);
        if (s.buf.capacity() == 0 && s.buf.empty()) s.buf.swap(next);
        else if (s.spare.capacity() == 0) s.spare.swap(next);
    }

    void wake() {
        std::function<void()> hook;
        {
            std::lock_guard lk(wd_mu_);
            if (!parked_.load(std::memory_order_relaxed)) return;
            parked_.store(false, std::memory_order_relaxed);
            asked_ = clock_();
            woken_ = true;
            bump(wakes_);
            if (!opts_.watchdog_thread) hook = opts_.on_wake;
        }
        if (opts_.watchdog_thread) wd_cv_.notify_one();
        else if (hook) hook();
    }

    void run() {
        std::unique_lock lk(wd_mu_);
        while (!stop_) {
            lk.unlock();
            const std::int64_t next = scan();
            lk.lock();
            if (stop_) break;
            if (next == kParked) {
                wd_cv_.wait(lk, [&] { return stop_ || !parked_.load(std::memory_order_relaxed); });
            } else {
                const auto at = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next));
                wd_cv_.wait_until(lk, at, [&] { return stop_; });
            }
        }
    }

    const AccumulatorOptions opts_;
    std::atomic<std::size_t> batch_;
    std::atomic<std::int64_t> max_delay_;
    std::atomic<std::int64_t> period_;
    std::int64_t (*const clock_)() noexcept;
    Sink sink_;
    Sharded<Shard> shards_;
    Histogram delay_;

    // The watchdog's state. scan_mu_ serializes passes; wd_mu_ guards
    // asked_, woken_, stop_ and the writes of parked_ (read without it on
    // the add path).
    std::mutex scan_mu_;
    unsigned useless_in_a_row_ = 0;  // guarded by scan_mu_
    std::mutex wd_mu_;
    std::condition_variable wd_cv_;
    std::int64_t asked_ = 0;  // when the next pass is planned (or the wake time)
    bool woken_ = false;      // the next pass follows a wake from parked
    bool stop_ = false;
    alignas(64) std::atomic<bool> parked_{false};
    alignas(64) std::atomic<std::uint64_t> scans_{0}, useless_scans_{0}, parks_{0}, wakes_{0};
    std::thread thread_;
};

}  // namespace percore
