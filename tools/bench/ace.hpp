// SPDX-License-Identifier: MIT
// percore-bench ace: the adaptive tuner (percore/tuner.hpp) against every
// fixed setting of a WriteBuffer, in one process, on one workload.
//
// The workload is bursty multi-flow traffic through a write buffer: each
// worker sends bursts of packets, a burst to one flow of its own (RSS
// style), each packet some cycles of domain logic and one transaction of
// four adds ({packets, bytes} of the flow and of the total), with
// hint_flush() once per batch of packets. A small buffer (the bad default)
// flushes every few packets, and every flush takes the shared lock and
// pulls the counters' lines from the other core.
//
// Phases, all on the same worker threads and the same WriteBuffer, whose
// knobs move with set_config() as the tuner moves them: the bad default,
// every fixed arm (an exhaustive sweep), ACE on (a Tuner with the
// environment's settings, starting from the bad default), then the sweep
// again in reverse order, so a drift of the machine shows as a difference
// between the two sweeps. Throughput is sampled every 100 ms.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/work.hpp"
#include "percore/counter.hpp"
#include "percore/patterns/write_buffer.hpp"
#include "percore/spinlock.hpp"
#include "percore/tuner.hpp"

namespace percore::bench {

struct AceConfig {
    int workers = 2;
    double work_cycles = 100;  // TSC cycles of domain logic per packet
    int flows = 1024;
    int burst = 16;   // packets per flow burst
    int batch = 32;   // packets per hint_flush
    double phase_s = 3;    // each fixed arm, measured (after 0.5 s of settling)
    double ace_s = 60;     // the ACE run
    double after_s = 20;   // ACE is judged from here on
    WriteBufferConfig bad{16, 12, 1};
    std::vector<WriteBufferConfig> arms = Tuner::write_buffer_arms();
    bool progress = true;
};

struct AceSample {
    double t = 0;           // s since the phase started
    double pps = 0;         // packets per second over the sample
    WriteBufferConfig cfg;  // in effect at the sample's end
};

struct AceResult {
    std::vector<double> sweep1, sweep2;  // packets/s per arm
    double bad_pps = 0;      // the first phase
    double bad_ref_pps = 0;  // the bad default over all its phases (the first, and both sweeps if it is an arm)
    std::vector<AceSample> ace;
    double ace_after_pps = 0;  // mean from after_s to the end
    double converged_s = NAN;  // first t from which every 5 s window is within 5% of the best fixed arm
    std::vector<TunerGroupState> groups;
    // The WriteBuffer's instrumentation (what a Tuner switches on) on and
    // off, alternated, at the best arm and at the bad default: medians,
    // packets/s.
    double instrumented_pps = NAN, plain_pps = NAN, bad_instrumented_pps = NAN, bad_plain_pps = NAN;
    bool exact = true;
};

inline std::string wb_text(const WriteBufferConfig& c) {
    return std::to_string(c.capacity) + "/" + std::to_string(c.soft_threshold) + "/" + std::to_string(c.hint_period);
}

class AceWorkload {
public:
    explicit AceWorkload(const AceConfig& c)
        : c_(c), words_(2 * static_cast<std::size_t>(c.flows) + 2, 0), wb_(lock_, c.bad), tallies_(c.workers) {
        iters_ = tools::calibrate(c.work_cycles);
        for (int w = 0; w < c.workers; ++w) threads_.emplace_back([this, w] { run(w); });
    }
    ~AceWorkload() {
        stop_.store(true);
        for (auto& t : threads_) t.join();
    }
    WriteBuffer& buffer() { return wb_; }
    std::uint64_t packets() const { return packets_.value(); }

    // Packets per second over `secs`, sampled every 100 ms into `out`.
    double measure(double secs, std::vector<AceSample>* out = nullptr) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::uint64_t p0 = packets();
        auto last = t0;
        std::uint64_t lp = p0;
        while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < secs) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            const auto now = std::chrono::steady_clock::now();
            const std::uint64_t p = packets();
            if (out)
                out->push_back({std::chrono::duration<double>(now - t0).count(),
                                static_cast<double>(p - lp) / std::chrono::duration<double>(now - last).count(),
                                wb_.config()});
            last = now, lp = p;
        }
        return static_cast<double>(packets() - p0) /
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }

    // Stops the workers and checks the shared totals against their tallies.
    bool stop_and_check() {
        stop_.store(true);
        for (auto& t : threads_) t.join();
        threads_.clear();
        wb_.flush_all();
        std::uint64_t pk = 0, by = 0;
        for (const auto& t : tallies_) pk += t.packets, by += t.bytes;
        std::lock_guard g(lock_);
        std::uint64_t fp = 0, fb = 0;
        for (int f = 0; f < c_.flows; ++f) fp += words_[2 * f], fb += words_[2 * f + 1];
        const std::size_t tot = 2 * static_cast<std::size_t>(c_.flows);
        return fp == pk && fb == by && words_[tot] == pk && words_[tot + 1] == by;
    }

private:
    struct alignas(64) Tally {
        std::uint64_t packets = 0, bytes = 0;
    };
    void run(int w) {
        if (c_.workers <= tools::online_cpus()) tools::pin_to(w);
        std::uint64_t r = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(w + 1);
        const auto own = static_cast<std::uint64_t>(std::max(1, c_.flows / c_.workers));
        std::uint64_t* total = &words_[2 * static_cast<std::size_t>(c_.flows)];
        std::uint64_t sink = r;
        int in_batch = 0;
        std::uint64_t unpublished = 0;
        Tally& t = tallies_[static_cast<std::size_t>(w)];
        while (!stop_.load(std::memory_order_relaxed)) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const std::size_t flow = static_cast<std::size_t>((r % own) * static_cast<std::uint64_t>(c_.workers) +
                                                              static_cast<std::uint64_t>(w)) %
                                     static_cast<std::size_t>(c_.flows);
            std::uint64_t* f = &words_[2 * flow];
            for (int k = 0; k < c_.burst; ++k) {
                sink = tools::domain_logic(sink, iters_);
                const std::uint64_t len = 64 + (r >> 54) * 16 + static_cast<std::uint64_t>(k);
                wb_.schedule_add({{f, 1}, {f + 1, len}, {total, 1}, {total + 1, len}});
                t.packets += 1, t.bytes += len;
                ++unpublished;
                if (++in_batch == c_.batch) {
                    in_batch = 0;
                    wb_.hint_flush();
                    packets_.add(unpublished);
                    unpublished = 0;
                }
            }
        }
        packets_.add(unpublished);
        tools::consume(sink);
    }

    const AceConfig& c_;
    std::uint32_t iters_ = 0;
    std::mutex lock_;  // a futex: a holder the host preempts puts waiters to sleep instead of spinning
    std::vector<std::uint64_t> words_;  // flows x {packets, bytes}, then the total; under lock_
    WriteBuffer wb_;
    Counter packets_;
    std::vector<Tally> tallies_;
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

inline AceResult run_ace(const AceConfig& c) {
    AceResult res;
    AceWorkload load(c);
    WriteBuffer& wb = load.buffer();
    const auto fixed = [&](const WriteBufferConfig& cfg) {
        wb.set_config(cfg);
        load.measure(0.5);  // settle: every shard buffer has taken the new size
        const double pps = load.measure(c.phase_s);
        if (c.progress) std::fprintf(stderr, "  fixed %-15s %8.3f Mpkt/s\n", wb_text(cfg).c_str(), pps / 1e6);
        return pps;
    };
    res.bad_pps = fixed(c.bad);
    for (const auto& a : c.arms) res.sweep1.push_back(fixed(a));

    // ACE: the environment's settings (PERCORE_ACE_*), from the bad default.
    wb.set_config(c.bad);
    load.measure(0.5);
    {
        bool enabled = false;
        TunerOptions o = TunerOptions::from_env(&enabled);
        Tuner t(o);
        t.set_operations([&] { return load.packets(); });
        auto h = t.tune(wb, c.arms);
        if (c.progress)
            std::fprintf(stderr, "  ACE on for %.0f s (fast loop %lld ms, c = %.3f)\n", c.ace_s,
                         static_cast<long long>(o.fast_interval.count()), o.exploration);
        t.start();
        load.measure(c.ace_s, &res.ace);
        t.stop();
        res.groups = t.groups();
        wb.instrument(false);
    }
    res.sweep2.assign(c.arms.size(), 0);
    for (std::size_t i = c.arms.size(); i-- > 0;) res.sweep2[i] = fixed(c.arms[i]);

    // Judge ACE against the best fixed arm (mean of the two sweeps).
    double best = 0;
    std::size_t bi = 0;
    for (std::size_t i = 0; i < c.arms.size(); ++i)
        if ((res.sweep1[i] + res.sweep2[i]) / 2 > best) best = (res.sweep1[i] + res.sweep2[i]) / 2, bi = i;

    // The bad default swings the most with the host (every flush moves the
    // lock's and the counters' lines between cores): average all its phases.
    double bad_sum = res.bad_pps;
    int bad_n = 1;
    for (std::size_t i = 0; i < c.arms.size(); ++i)
        if (c.arms[i].capacity == c.bad.capacity && c.arms[i].soft_threshold == c.bad.soft_threshold &&
            c.arms[i].hint_period == c.bad.hint_period)
            bad_sum += res.sweep1[i] + res.sweep2[i], bad_n += 2;
    res.bad_ref_pps = bad_sum / bad_n;

    // What the instrumentation costs: on and off, alternated, at the best
    // arm (rare flushes) and at the bad default (a contended lock every few
    // packets, where the timing of lock waits costs most).
    const auto on_off = [&](const WriteBufferConfig& cfg, double& on_pps, double& off_pps) {
        wb.set_config(cfg);
        std::vector<double> on, off;
        for (int k = 0; k < 5; ++k)
            for (bool instr : {true, false}) {
                wb.instrument(instr);
                load.measure(0.2);
                (instr ? on : off).push_back(load.measure(c.phase_s / 3));
            }
        wb.instrument(false);
        on_pps = tools::median(on);
        off_pps = tools::median(off);
    };
    on_off(c.arms[bi], res.instrumented_pps, res.plain_pps);
    on_off(c.bad, res.bad_instrumented_pps, res.bad_plain_pps);
    res.exact = load.stop_and_check();
    double sum = 0, n = 0;
    for (const auto& s : res.ace)
        if (s.t >= c.after_s) sum += s.pps, n += 1;
    res.ace_after_pps = n > 0 ? sum / n : NAN;
    // Convergence: the first sample from which every 5 s window's mean
    // stays within 5% of the best fixed arm.
    const std::size_t win = 50;
    if (res.ace.size() >= win) {
        std::vector<double> mean(res.ace.size() - win + 1);
        for (std::size_t i = 0; i + win <= res.ace.size(); ++i) {
            double s = 0;
            for (std::size_t k = i; k < i + win; ++k) s += res.ace[k].pps;
            mean[i] = s / static_cast<double>(win);
        }
        for (std::size_t i = mean.size(); i-- > 0;) {
            if (mean[i] < 0.95 * best) break;
            res.converged_s = res.ace[i].t - 0.1;
        }
    }
    return res;
}

}  // namespace percore::bench
