// SPDX-License-Identifier: MIT
// percore/tuner.hpp - Tuner: adaptive tuning of percore's knobs by a UCB1
// controller, off unless asked for.
//
// The buffering structures have knobs whose best values depend on the
// traffic: a WriteBuffer's capacity, soft-flush threshold and hint-flush
// cadence, an Accumulator's batch size and watchdog delay, a Sharded's
// shard cap. A Tuner measures the running program and picks each knob's
// value from a short list of candidates (arms) with a UCB1 bandit
// (percore/ucb1.hpp), the way an allocator's adaptive control engine tunes
// its caches:
//
//   - The fast loop (every fast_interval, 500 ms) measures the interval
//     just ended: throughput (the operations counter the application
//     names, else the entries the tuned WriteBuffers applied plus the
//     elements the tuned Accumulators delivered), write-buffer flushes and
//     lock-wait time, propagation delay (the age of the oldest buffered
//     update), the accumulators' delivery delay and the p99 of a latency
//     histogram the application names. It credits the interval's reward
//     to the arm in effect, and lets one knob group (in turn) pick its
//     next arm.
//   - The slow loop (every slow_interval, 30 s) samples resident memory.
//   - Reward: throughput x (1 - penalties), scaled by the bandit to [0, 1]
//     over the arms' means. Penalties: the share of the interval's
//     CPU time spent waiting for write-buffer locks, the relative excess of
//     delay over delay_budget, and of RSS over rss_budget_mb (each capped
//     at 1).
//   - Guards: p99 over max_p99_ns, or RSS over max_rss_mb, reverts the
//     group that moved last to its last arm that violated nothing, and
//     credits the offending arm with the lowest reward seen. The
//     controller's own CPU time over max_cpu_percent of its wall time
//     doubles the fast interval (up to the slow one) instead.
//
// Knob changes are applied while writers run: each structure takes a new
// value at a point where it holds the state it changes (WriteBuffer: a
// claimed shard buffer; Accumulator: the next add or pass), so no update
// is lost or counted twice.
//
// Off by default. percore::ace() is the process-wide instance: it exists,
// with its thread, only when PERCORE_ACE_ENABLED=1, and returns nullptr
// otherwise. The environment (TunerOptions::from_env):
//
//   PERCORE_ACE_ENABLED            1 turns it on                      (0)
//   PERCORE_ACE_FAST_INTERVAL_MS   fast loop period                  (500)
//   PERCORE_ACE_SLOW_INTERVAL_MS   slow loop period                (30000)
//   PERCORE_ACE_LOG_LEVEL          0 off, 1 changes, 2 every tick      (0)
//                                  (stderr, lines start "[percore-ace]")
//   PERCORE_ACE_MAX_RSS_MB         guard                            (none)
//   PERCORE_ACE_MAX_P99_LAT_NS     guard                            (none)
//   PERCORE_ACE_MAX_CPU_PERCENT    guard on the controller's CPU    (none)
//   PERCORE_ACE_EXPLORATION        UCB1's c                      (sqrt 2)
//
// A bad value is reported in one line on stderr and its default used.
//
// Costs: a thread that wakes every fast_interval and, per tick, reads the
// structures' counters (a walk over their shards) and snapshots the named
// histograms. The structures' instrumentation costs nothing on their fast
// paths: lock waits are timed only when a try_lock failed, and buffer ages
// are stamped (once per buffer fill) only while a Tuner watches them.
//
//   percore::Tuner t;                                   // or percore::ace()
//   t.set_operations([&] { return packets.value(); });
//   auto h = t.tune(write_buffer);                      // default arms
//   t.start();                                          // its own thread
//   ...                                                 // h unregisters the knobs
#pragma once

#include "percore/detail/cxx20.hpp"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "percore/detail/steady_ns.hpp"
#include "percore/accumulator.hpp"
#include "percore/histogram.hpp"
#include "percore/patterns/write_buffer.hpp"
#include "percore/sharded.hpp"
#include "percore/ucb1.hpp"

namespace percore {

struct TunerOptions {
    std::chrono::milliseconds fast_interval{500};
    std::chrono::milliseconds slow_interval{30000};
    int log_level = 0;                // 0 off, 1 arm changes and guards, 2 every tick
    std::uint64_t max_rss_mb = 0;     // guards; 0: none
    std::uint64_t max_p99_ns = 0;
    double max_cpu_percent = 0;
    double exploration = std::sqrt(2.0);  // UCB1's c
    // Penalty budgets (0: none): delay (propagation, delivery) and RSS.
    std::chrono::nanoseconds delay_budget = std::chrono::milliseconds(100);
    std::uint64_t rss_budget_mb = 0;
    // false: no thread; call poll() yourself (tests, an event loop).
    bool thread = true;
    // Injected for tests; nullptr: steady_clock, this thread's CPU clock,
    // /proc/self/statm, stderr.
    std::function<std::int64_t()> clock{};
    std::function<std::int64_t()> cpu_clock{};
    std::function<std::uint64_t()> rss_bytes{};
    std::function<void(std::string_view)> log{};

    // Reads the PERCORE_ACE_* variables (see above) over the defaults; a
    // bad value is reported through `warn` (default: one line on stderr)
    // and leaves the default. `enabled` is PERCORE_ACE_ENABLED.
    static TunerOptions from_env(bool* enabled = nullptr, const std::function<void(std::string_view)>& warn = {});
};

// One arm of a knob group: a value per parameter.
using TunerArm = std::vector<std::int64_t>;

// What the controller saw in one fast interval.
struct TunerTick {
    std::uint64_t index = 0;
    std::int64_t at_ns = 0, interval_ns = 0;
    double throughput = 0;          // operations per second
    std::uint64_t flushes = 0;      // write-buffer flushes in the interval
    double lock_wait_share = 0;     // lock-wait ns / (interval x CPUs)
    std::int64_t propagation_ns = 0;  // oldest buffered update, at the tick
    std::uint64_t delivery_p99_ns = 0, latency_p99_ns = 0;
    std::uint64_t rss_bytes = 0;    // the slow loop's last sample
    double reward = 0;
    std::string guard;              // the guard that tripped, if any
    std::string group;              // the group credited
    std::size_t arm = 0;            // its arm in the interval
};

// The state of one knob group, for introspection.
struct TunerGroupState {
    std::string name;
    std::vector<std::string> params;
    std::vector<TunerArm> arms;
    std::vector<std::uint64_t> pulls;
    std::vector<double> mean_reward;
    std::size_t current = 0, last_safe = 0, best = 0;
    std::uint64_t changes = 0, reverts = 0;
};

class Tuner {
public:
    // What the measured structures add up to at a tick: cumulative counters
    // (the controller takes differences) and current delays.
    struct Sources {
        std::uint64_t flushes = 0, lock_wait_ns = 0, moved = 0;
        std::int64_t propagation_ns = 0;
        std::uint64_t delivery_p99_ns = 0;
    };

    struct GroupSpec {
        std::string name;                    // e.g. "write_buffer"
        std::vector<std::string> params;     // e.g. {"capacity", "soft_threshold"}
        std::vector<TunerArm> arms;          // candidate values, one per param each
        std::size_t initial = 0;             // the arm in effect now
        std::function<void(const TunerArm&)> apply;  // called by the controller
    };

    // Unregisters what tune()/add_group() registered when destroyed; after
    // that no apply() of it runs or will run.
    class Handle {
    public:
        Handle() = default;
        Handle(Handle&& o) noexcept : t_(std::exchange(o.t_, nullptr)), ids_(std::move(o.ids_)) {}
        Handle& operator=(Handle&& o) noexcept {
            if (this != &o) {
                reset();
                t_ = std::exchange(o.t_, nullptr);
                ids_ = std::move(o.ids_);
            }
            return *this;
        }
        ~Handle() { reset(); }
        void reset() {
            if (t_ != nullptr) t_->remove(ids_);
            t_ = nullptr;
            ids_.clear();
        }
        void merge(Handle&& o) {
            if (o.t_ == nullptr) return;
            if (t_ != nullptr && t_ != o.t_) throw std::invalid_argument("percore::Tuner::Handle: two tuners");
            t_ = std::exchange(o.t_, nullptr);
            ids_.insert(ids_.end(), o.ids_.begin(), o.ids_.end());
            o.ids_.clear();
        }

    private:
        friend class Tuner;
        Handle(Tuner* t, std::vector<std::uint64_t> ids) : t_(t), ids_(std::move(ids)) {}
        Tuner* t_ = nullptr;
        std::vector<std::uint64_t> ids_;
    };

    explicit Tuner(TunerOptions opts = {}) : opts_(std::move(opts)) {
        if (opts_.fast_interval.count() <= 0 || opts_.slow_interval.count() <= 0)
            throw std::invalid_argument("percore::Tuner: intervals must be > 0");
        if (!opts_.clock) opts_.clock = [] { return detail::steady_ns(); };
        if (!opts_.cpu_clock) opts_.cpu_clock = [] { return thread_cpu_ns(); };
        if (!opts_.rss_bytes) opts_.rss_bytes = [] { return proc_rss_bytes(); };
        if (!opts_.log) opts_.log = [](std::string_view s) { std::fprintf(stderr, "%.*s\n", int(s.size()), s.data()); };
        fast_ns_ = std::chrono::nanoseconds(opts_.fast_interval).count();
    }
    ~Tuner() { stop(); }
    Tuner(const Tuner&) = delete;
    Tuner& operator=(const Tuner&) = delete;

    // ---- what to measure -------------------------------------------------
    // The application's operations counter (cumulative). Without it,
    // throughput is what the tuned structures moved.
    void set_operations(std::function<std::uint64_t()> read) {
        std::lock_guard lk(mu_);
        ops_ = std::move(read);
    }
    // A latency histogram (cumulative snapshots): its per-interval p99 is
    // reported and guarded by max_p99_ns.
    void set_latency(std::function<HistogramSnapshot()> read) {
        std::lock_guard lk(mu_);
        latency_ = std::move(read);
        latency_prev_.reset();
    }
    void set_latency(const Histogram& h) {
        set_latency([&h] { return h.snapshot(); });
    }

    // ---- what to tune ----------------------------------------------------
    // A knob group with its own bandit. Throws std::invalid_argument on no
    // arms, an arm of the wrong width, or initial out of range.
    [[nodiscard]] Handle add_group(GroupSpec g) {
        if (g.arms.empty() || g.params.empty() || !g.apply || g.initial >= g.arms.size())
            throw std::invalid_argument("percore::Tuner::add_group: needs params, arms, apply and a valid initial arm");
        for (const auto& a : g.arms)
            if (a.size() != g.params.size())
                throw std::invalid_argument("percore::Tuner::add_group: each arm needs one value per param");
        std::lock_guard lk(mu_);
        const std::uint64_t id = ++next_id_;
        groups_.push_back(std::make_unique<Group>(id, std::move(g), opts_.exploration));
        return Handle(this, {id});
    }
    [[nodiscard]] Handle add_source(std::function<void(Sources&)> add);  // defined below

    // The default arms of a WriteBuffer: capacities 16 to 4096 by 4x, the
    // soft threshold at 3/4, and a hint period of capacity / 256 batches
    // (at least 1), so that with four adds per packet and hint_flush()
    // every 32 packets the hints flush at about half capacity: a bigger
    // buffer both holds more and is flushed less often.
    static std::vector<WriteBufferConfig> write_buffer_arms() {
        std::vector<WriteBufferConfig> arms;
        for (std::uint32_t c = 16; c <= 4096; c *= 4) arms.push_back({c, c / 4 * 3, std::max(1u, c / 256)});
        return arms;
    }

    // A WriteBuffer: group "<name>" over (capacity, soft_threshold,
    // hint_period), by default write_buffer_arms(). The group starts at
    // the arm equal to the current config (added if absent). Its flushes,
    // lock waits, applied entries and oldest pending update are measured.
    [[nodiscard]] Handle tune(WriteBuffer& wb, std::vector<WriteBufferConfig> arms = {},
                              std::string name = "write_buffer") {
        const WriteBufferConfig cur = wb.config();
        if (arms.empty()) arms = write_buffer_arms();
        GroupSpec g;
        g.name = std::move(name);
        g.params = {"capacity", "soft_threshold", "hint_period"};
        for (const auto& a : arms) g.arms.push_back({a.capacity, a.soft_threshold, a.hint_period});
        g.initial = find_or_add(g.arms, {cur.capacity, cur.soft_threshold, cur.hint_period});
        g.apply = [&wb](const TunerArm& a) {
            wb.set_config({static_cast<std::uint32_t>(a[0]), static_cast<std::uint32_t>(a[1]),
                           static_cast<std::uint32_t>(a[2])});
        };
        Handle h = add_group(std::move(g));
        wb.instrument(true);
        h.merge(add_source_impl([&wb](Sources& s) {
            s.flushes += wb.flushes();
            s.lock_wait_ns += wb.lock_wait_ns();
            s.moved += wb.applied();
            s.propagation_ns = std::max(s.propagation_ns, wb.oldest_pending_ns());
        }));
        return h;
    }

    // An Accumulator: group "<name>" over (batch_size, max_delay_us).
    // Default arms: batches 64..4096 by 4x, at the current max_delay, and
    // the current batch at max_delay / 4 and x 4. Its delivered elements
    // and delivery delay are measured.
    template <class T>
    [[nodiscard]] Handle tune(Accumulator<T>& acc, std::vector<TunerArm> arms = {},
                              std::string name = "accumulator") {
        const auto us = [](std::chrono::nanoseconds d) { return std::max<std::int64_t>(1, d.count() / 1000); };
        const TunerArm cur{static_cast<std::int64_t>(acc.batch_size()), us(acc.max_delay())};
        if (arms.empty()) {
            for (std::int64_t b = 64; b <= 4096; b *= 4) arms.push_back({b, cur[1]});
            arms.push_back({cur[0], std::max<std::int64_t>(1, cur[1] / 4)});
            arms.push_back({cur[0], cur[1] * 4});
        }
        GroupSpec g;
        g.name = std::move(name);
        g.params = {"batch_size", "max_delay_us"};
        g.arms = std::move(arms);
        for (const auto& a : g.arms)
            if (a.size() != 2 || a[0] < 1 || a[1] < 1)
                throw std::invalid_argument("percore::Tuner::tune(Accumulator): arms are {batch_size >= 1, max_delay_us >= 1}");
        g.initial = find_or_add(g.arms, cur);
        g.apply = [&acc](const TunerArm& a) {
            acc.set_batch_size(static_cast<std::size_t>(a[0]));
            acc.set_max_delay(std::chrono::microseconds(a[1]));
        };
        Handle h = add_group(std::move(g));
        auto prev = std::make_shared<std::optional<HistogramSnapshot>>();
        h.merge(add_source_impl([&acc, prev](Sources& s) {
            s.moved += acc.stats().elements;
            HistogramSnapshot now = acc.delivery_delay();
            if (*prev) s.delivery_p99_ns = std::max(s.delivery_p99_ns, now.since(**prev).percentile(99));
            *prev = std::move(now);
        }));
        return h;
    }

    // A Sharded<T>'s shard cap: group "<name>" over (max_shards). Default
    // arms: 1, 2, 4, ... up to percore::max_shards().
    template <class T>
    [[nodiscard]] Handle tune_shard_cap(Sharded<T>& s, std::vector<std::int64_t> caps = {},
                                        std::string name = "shard_cap") {
        if (caps.empty())
            for (std::size_t c = 1;; c *= 2) {
                caps.push_back(static_cast<std::int64_t>(std::min(c, percore::max_shards())));
                if (c >= percore::max_shards()) break;
            }
        GroupSpec g;
        g.name = std::move(name);
        g.params = {"max_shards"};
        for (auto c : caps) {
            if (c < 1) throw std::invalid_argument("percore::Tuner::tune_shard_cap: caps must be >= 1");
            g.arms.push_back({c});
        }
        g.initial = find_or_add(g.arms, {static_cast<std::int64_t>(s.max_shards())});
        g.apply = [&s](const TunerArm& a) { s.set_max_shards(static_cast<std::size_t>(a[0])); };
        return add_group(std::move(g));
    }

    // ---- running -----------------------------------------------------------
    // Starts the controller thread (no-op if TunerOptions::thread is false
    // or it runs already).
    void start() {
        std::lock_guard lk(run_mu_);
        if (!opts_.thread || worker_.joinable()) return;
        stop_ = false;
        worker_ = std::thread([this] { run(); });
    }
    void stop() {
        {
            std::lock_guard lk(run_mu_);
            stop_ = true;
        }
        run_cv_.notify_all();
        if (worker_.joinable()) worker_.join();
    }
    bool running() const noexcept { return worker_.joinable(); }

    // Runs the loops that are due at the clock's now; returns when the
    // next one is due. The thread calls it; with thread = false, you do.
    std::int64_t poll();

    // ---- introspection -----------------------------------------------------
    std::vector<TunerGroupState> groups() const;
    std::optional<TunerTick> last_tick() const {
        std::lock_guard lk(mu_);
        return last_;
    }
    std::uint64_t fast_ticks() const noexcept { return fast_ticks_.load(std::memory_order_relaxed); }
    std::uint64_t slow_ticks() const noexcept { return slow_ticks_.load(std::memory_order_relaxed); }
    std::chrono::nanoseconds fast_interval() const {
        std::lock_guard lk(mu_);
        return std::chrono::nanoseconds(fast_ns_);
    }
    const TunerOptions& options() const noexcept { return opts_; }


private:
    struct Group {
        Group(std::uint64_t i, GroupSpec s, double c)
            : id(i), spec(std::move(s)), bandit(spec.arms.size(), c), current(spec.initial), last_safe(spec.initial) {}
        std::uint64_t id;
        GroupSpec spec;
        Ucb1 bandit;
        std::size_t current, last_safe;
        std::uint64_t changes = 0, reverts = 0;
    };
    struct Source {
        std::uint64_t id;
        std::function<void(Sources&)> add;
    };

    static std::size_t find_or_add(std::vector<TunerArm>& arms, const TunerArm& cur) {
        for (std::size_t i = 0; i < arms.size(); ++i)
            if (arms[i] == cur) return i;
        arms.push_back(cur);
        return arms.size() - 1;
    }
    Handle add_source_impl(std::function<void(Sources&)> add) {
        std::lock_guard lk(mu_);
        const std::uint64_t id = ++next_id_;
        sources_.push_back({id, std::move(add)});
        return Handle(this, {id});
    }
    void remove(const std::vector<std::uint64_t>& ids) {
        std::lock_guard lk(mu_);
        for (auto id : ids) {
            std::erase_if(groups_, [&](const std::unique_ptr<Group>& g) { return g->id == id; });
            std::erase_if(sources_, [&](const Source& s) { return s.id == id; });
        }
        if (next_group_ >= groups_.size()) next_group_ = 0;
        moved_group_ = 0;  // ids, not positions: forget which group moved last
        moved_valid_ = false;
    }

    static std::int64_t thread_cpu_ns() noexcept {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
    static std::uint64_t proc_rss_bytes() noexcept {
        std::FILE* f = std::fopen("/proc/self/statm", "r");
        if (f == nullptr) return 0;
        unsigned long long size = 0, resident = 0;
        const int n = std::fscanf(f, "%llu %llu", &size, &resident);
        std::fclose(f);
        return n == 2 ? resident * 4096ull : 0;
    }

    void log(int level, const std::string& line) const {
        if (opts_.log_level >= level) opts_.log("[percore-ace] " + line);
    }
    static std::string arm_text(const Group& g, std::size_t arm);
    void fast_tick(std::int64_t now);  // mu_ held
    void slow_tick(std::int64_t now);  // mu_ held

    void run() {
        pthread_setname_np(pthread_self(), "percore-ace");  // what top -H and /proc/<pid>/task/*/comm show
        std::unique_lock lk(run_mu_);
        while (!stop_) {
            lk.unlock();
            const std::int64_t next = poll();
            const std::int64_t wait = std::max<std::int64_t>(0, next - opts_.clock());
            lk.lock();
            run_cv_.wait_for(lk, std::chrono::nanoseconds(wait), [&] { return stop_; });
        }
    }

    TunerOptions opts_;
    mutable std::mutex mu_;  // everything below but the run state
    std::function<std::uint64_t()> ops_;
    std::function<HistogramSnapshot()> latency_;
    std::optional<HistogramSnapshot> latency_prev_;
    std::vector<std::unique_ptr<Group>> groups_;
    std::vector<Source> sources_;
    std::uint64_t next_id_ = 0;
    std::size_t next_group_ = 0;    // the group that explores next
    std::uint64_t moved_group_ = 0;  // id of the group whose arm the last interval ran
    bool moved_valid_ = false;
    bool started_ = false;
    std::int64_t fast_ns_ = 0;
    std::int64_t next_fast_ = 0, next_slow_ = 0, last_fast_ = 0, last_slow_ = 0;
    std::int64_t cpu_at_slow_ = 0;
    std::uint64_t prev_ops_ = 0, prev_flushes_ = 0, prev_wait_ = 0;
    std::uint64_t rss_ = 0;
    std::optional<TunerTick> last_;
    std::atomic<std::uint64_t> fast_ticks_{0}, slow_ticks_{0};

    std::mutex run_mu_;
    std::condition_variable run_cv_;
    bool stop_ = false;
    std::thread worker_;
};

inline Tuner::Handle Tuner::add_source(std::function<void(Sources&)> add) { return add_source_impl(std::move(add)); }

inline std::string Tuner::arm_text(const Group& g, std::size_t arm) {
    std::string s;
    for (std::size_t i = 0; i < g.spec.params.size(); ++i) {
        if (i) s += ' ';
        s += g.spec.params[i] + '=' + std::to_string(g.spec.arms[arm][i]);
    }
    return s;
}

inline std::int64_t Tuner::poll() {
    std::lock_guard lk(mu_);
    const std::int64_t now = opts_.clock();
    const std::int64_t slow_ns = std::chrono::nanoseconds(opts_.slow_interval).count();
    if (!started_) {
        // The first call starts the intervals: there is nothing to credit yet.
        started_ = true;
        last_fast_ = last_slow_ = now;
        next_fast_ = now + fast_ns_;
        next_slow_ = now + slow_ns;
        cpu_at_slow_ = opts_.cpu_clock();
        rss_ = opts_.rss_bytes();
        Sources s;
        for (auto& src : sources_) src.add(s);
        prev_ops_ = ops_ ? ops_() : s.moved;
        prev_flushes_ = s.flushes;
        prev_wait_ = s.lock_wait_ns;
        if (latency_) latency_prev_ = latency_();
        return std::min(next_fast_, next_slow_);
    }
    if (now >= next_slow_) {
        slow_tick(now);
        next_slow_ = now + slow_ns;
    }
    if (now >= next_fast_) {
        fast_tick(now);
        next_fast_ = now + fast_ns_;
    }
    return std::min(next_fast_, next_slow_);
}

inline void Tuner::slow_tick(std::int64_t now) {
    rss_ = opts_.rss_bytes();
    const std::int64_t cpu = opts_.cpu_clock();
    const double wall = static_cast<double>(now - last_slow_);
    const double pct = wall > 0 ? 100.0 * static_cast<double>(cpu - cpu_at_slow_) / wall : 0;
    cpu_at_slow_ = cpu;
    last_slow_ = now;
    slow_ticks_.fetch_add(1, std::memory_order_relaxed);
    const std::int64_t slow_ns = std::chrono::nanoseconds(opts_.slow_interval).count();
    if (opts_.max_cpu_percent > 0 && pct > opts_.max_cpu_percent && fast_ns_ < slow_ns) {
        fast_ns_ = std::min(fast_ns_ * 2, slow_ns);
        log(1, "guard cpu: controller used " + std::to_string(pct) + "% > " + std::to_string(opts_.max_cpu_percent) +
                   "%; fast interval now " + std::to_string(fast_ns_ / 1'000'000) + " ms");
    }
    log(2, "slow tick: rss " + std::to_string(rss_ >> 20) + " MB, controller cpu " + std::to_string(pct) + "%");
}

inline void Tuner::fast_tick(std::int64_t now) {
    TunerTick t;
    t.index = fast_ticks_.load(std::memory_order_relaxed) + 1;
    t.at_ns = now;
    t.interval_ns = std::max<std::int64_t>(1, now - last_fast_);
    last_fast_ = now;
    const double secs = static_cast<double>(t.interval_ns) / 1e9;

    Sources s;
    for (auto& src : sources_) src.add(s);
    const std::uint64_t ops = ops_ ? ops_() : s.moved;
    t.throughput = static_cast<double>(ops - prev_ops_) / secs;
    t.flushes = s.flushes - prev_flushes_;
    const double cpus = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
    t.lock_wait_share = std::min(1.0, static_cast<double>(s.lock_wait_ns - prev_wait_) /
                                          (static_cast<double>(t.interval_ns) * cpus));
    prev_ops_ = ops, prev_flushes_ = s.flushes, prev_wait_ = s.lock_wait_ns;
    t.propagation_ns = s.propagation_ns;
    t.delivery_p99_ns = s.delivery_p99_ns;
    if (latency_) {
        HistogramSnapshot cur = latency_();
        if (latency_prev_) t.latency_p99_ns = cur.since(*latency_prev_).percentile(99);
        latency_prev_ = std::move(cur);
    }
    t.rss_bytes = rss_;

    // Reward: throughput less the share the penalties take (each in
    // [0, 1]); Ucb1 scales rewards to [0, 1] by the lowest and highest
    // seen, so this is normalized throughput minus the penalties, in
    // proportion. Raw throughput is what is averaged: a reference that
    // moved while the arms were tried (the peak so far) would favour the
    // arms tried first.
    const auto over = [](double x, double budget) {
        return budget > 0 && x > budget ? std::min(1.0, (x - budget) / budget) : 0.0;
    };
    const double budget = static_cast<double>(opts_.delay_budget.count());
    const double delay = static_cast<double>(
        std::max<std::uint64_t>(static_cast<std::uint64_t>(std::max<std::int64_t>(0, t.propagation_ns)), t.delivery_p99_ns));
    const double penalty = t.lock_wait_share + over(delay, budget) +
                           over(static_cast<double>(rss_ >> 20), static_cast<double>(opts_.rss_budget_mb));
    t.reward = t.throughput * std::max(0.0, 1.0 - penalty);
    if (opts_.max_p99_ns > 0 && t.latency_p99_ns > opts_.max_p99_ns)
        t.guard = "p99 " + std::to_string(t.latency_p99_ns) + " ns > " + std::to_string(opts_.max_p99_ns);
    else if (opts_.max_rss_mb > 0 && (rss_ >> 20) > opts_.max_rss_mb)
        t.guard = "rss " + std::to_string(rss_ >> 20) + " MB > " + std::to_string(opts_.max_rss_mb);

    // Credit the group whose arm ran this interval.
    Group* moved = nullptr;
    if (moved_valid_)
        for (auto& g : groups_)
            if (g->id == moved_group_) moved = g.get();
    if (moved == nullptr && !groups_.empty()) moved = groups_[next_group_ % groups_.size()].get();
    if (moved != nullptr) {
        t.group = moved->spec.name;
        t.arm = moved->current;
        if (!t.guard.empty()) {
            // The lowest reward seen: an arm that trips a guard is the worst.
            const double worst = moved->bandit.total_pulls() ? std::min(t.reward, moved->bandit.lowest()) : t.reward;
            moved->bandit.update(moved->current, worst);
            if (moved->current != moved->last_safe) {
                log(1, "guard " + t.guard + ": " + moved->spec.name + " back to " + arm_text(*moved, moved->last_safe) +
                           " from " + arm_text(*moved, moved->current));
                moved->current = moved->last_safe;
                moved->spec.apply(moved->spec.arms[moved->current]);
                ++moved->reverts;
            } else {
                log(1, "guard " + t.guard + ": " + moved->spec.name + " stays at " + arm_text(*moved, moved->current));
            }
        } else {
            moved->bandit.update(moved->current, t.reward);
            moved->last_safe = moved->current;
        }
    }
    log(2, "tick " + std::to_string(t.index) + ": " + std::to_string(static_cast<long long>(t.throughput)) +
               " ops/s, flushes " + std::to_string(t.flushes) + ", lock wait " + std::to_string(t.lock_wait_share) +
               ", delay " + std::to_string(t.propagation_ns) + " ns, p99 " + std::to_string(t.latency_p99_ns) +
               " ns, reward " + std::to_string(t.reward) + (t.group.empty() ? "" : ", " + t.group + " arm " + std::to_string(t.arm)));

    // The next group in turn picks its next arm (after a revert, the
    // reverted one stays put for an interval).
    if (!groups_.empty()) {
        Group& g = *groups_[next_group_ % groups_.size()];
        next_group_ = (next_group_ + 1) % groups_.size();
        if (t.guard.empty() || &g != moved) {
            const std::size_t pick = g.bandit.select();
            if (pick != g.current) {
                log(1, g.spec.name + ": " + arm_text(g, g.current) + " -> " + arm_text(g, pick));
                g.current = pick;
                g.spec.apply(g.spec.arms[pick]);
                ++g.changes;
            }
        }
        moved_group_ = g.id;
        moved_valid_ = true;
    }
    last_ = std::move(t);
    fast_ticks_.fetch_add(1, std::memory_order_relaxed);
}

inline std::vector<TunerGroupState> Tuner::groups() const {
    std::lock_guard lk(mu_);
    std::vector<TunerGroupState> out;
    for (const auto& g : groups_) {
        TunerGroupState s;
        s.name = g->spec.name;
        s.params = g->spec.params;
        s.arms = g->spec.arms;
        for (std::size_t i = 0; i < g->spec.arms.size(); ++i) {
            s.pulls.push_back(g->bandit.pulls(i));
            s.mean_reward.push_back(g->bandit.mean(i));
        }
        s.current = g->current;
        s.last_safe = g->last_safe;
        s.best = g->bandit.best();
        s.changes = g->changes;
        s.reverts = g->reverts;
        out.push_back(std::move(s));
    }
    return out;
}

// ---- the environment -------------------------------------------------------

namespace detail {
inline bool env_number(const char* name, double lo, double hi, double& out,
                       const std::function<void(std::string_view)>& warn) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return false;
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d >= lo && d <= hi)) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "[percore-ace] %s=%s is not a number in [%g, %g]; using the default", name, v, lo,
                      hi);
        warn(buf);
        return false;
    }
    out = d;
    return true;
}
}  // namespace detail

inline TunerOptions TunerOptions::from_env(bool* enabled, const std::function<void(std::string_view)>& warn_in) {
    const std::function<void(std::string_view)> warn =
        warn_in ? warn_in : [](std::string_view s) { std::fprintf(stderr, "%.*s\n", int(s.size()), s.data()); };
    TunerOptions o;
    double d = 0;
    if (enabled != nullptr) *enabled = detail::env_number("PERCORE_ACE_ENABLED", 0, 1, d, warn) && d == 1;
    if (detail::env_number("PERCORE_ACE_FAST_INTERVAL_MS", 1, 3.6e6, d, warn))
        o.fast_interval = std::chrono::milliseconds(static_cast<std::int64_t>(d));
    if (detail::env_number("PERCORE_ACE_SLOW_INTERVAL_MS", 1, 3.6e7, d, warn))
        o.slow_interval = std::chrono::milliseconds(static_cast<std::int64_t>(d));
    if (detail::env_number("PERCORE_ACE_LOG_LEVEL", 0, 2, d, warn)) o.log_level = static_cast<int>(d);
    if (detail::env_number("PERCORE_ACE_MAX_RSS_MB", 1, 1e9, d, warn)) o.max_rss_mb = static_cast<std::uint64_t>(d);
    if (detail::env_number("PERCORE_ACE_MAX_P99_LAT_NS", 1, 1e15, d, warn)) o.max_p99_ns = static_cast<std::uint64_t>(d);
    if (detail::env_number("PERCORE_ACE_MAX_CPU_PERCENT", 0.001, 100, d, warn)) o.max_cpu_percent = d;
    if (detail::env_number("PERCORE_ACE_EXPLORATION", 0, 100, d, warn)) o.exploration = d;
    return o;
}

// The process-wide tuner: created, with its thread started, on the first
// call if PERCORE_ACE_ENABLED=1; nullptr (and no thread) otherwise. It
// lives until exit; tune() what you want tuned on it.
inline Tuner* ace() {
    static Tuner* const instance = [] {
        bool on = false;
        TunerOptions o = TunerOptions::from_env(&on);
        if (!on) return static_cast<Tuner*>(nullptr);
        auto* t = new Tuner(std::move(o));  // never destroyed: structures may outlive any static order
        t->start();
        return t;
    }();
    return instance;
}

}  // namespace percore
