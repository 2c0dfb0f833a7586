// SPDX-License-Identifier: MIT
// Cycle counting for percore-bench and percore-demo: the TSC, its rate, an
// estimate of the core clock, pinning, a pool of persistent worker threads,
// and the calibrated dummy work both tools give each packet.
//
// This machine has no hardware performance counters, so "cycles" are TSC
// ticks. The TSC runs at a fixed rate that need not match the core clock;
// core_ghz() estimates the core clock from a chain of dependent adds (one
// core cycle each), so reports can say what a TSC cycle is worth.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <x86intrin.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace percore::tools {

inline std::uint64_t tsc() noexcept { return __rdtsc(); }

// TSC ticks per nanosecond, against steady_clock over `ms` milliseconds.
inline double tsc_ghz(int ms = 100) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t c0 = tsc();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(ms)) {
    }
    const std::uint64_t c1 = tsc();
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(c1 - c0) / ns;
}

// Core cycles per TSC tick: 40 dependent single-cycle adds per loop trip
// (the loop counter runs alongside), best of a few tries.
inline double core_per_tsc() {
    double best = 0;
    for (int t = 0; t < 5; ++t) {
        std::uint64_t x = 0;
        const std::uint64_t trips = 2'000'000;
        const std::uint64_t c0 = tsc();
        for (std::uint64_t i = 0; i < trips; ++i) {
#define PERCORE_ADD4 "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
            asm volatile(PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4
                             PERCORE_ADD4 PERCORE_ADD4 PERCORE_ADD4
                         : "+r"(x));
#undef PERCORE_ADD4
        }
        const std::uint64_t c1 = tsc();
        const double r = 40.0 * static_cast<double>(trips) / static_cast<double>(c1 - c0);
        if (r > best) best = r;
    }
    return best;
}

inline void pin_to(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

inline int online_cpus() { return static_cast<int>(std::thread::hardware_concurrency()); }

// Worker threads that live across phases (so per-thread state, pinning and
// warm caches survive between the with- and without-stats runs).
class Pool {
public:
    Pool(int workers, bool pin) : n_(workers), results_(static_cast<std::size_t>(workers)) {
        for (int w = 0; w < workers; ++w)
            threads_.emplace_back([this, w, pin] {
                if (pin) pin_to(w % online_cpus());
                std::uint64_t seen = 0;
                for (;;) {
                    gen_.wait(seen, std::memory_order_acquire);
                    seen = gen_.load(std::memory_order_acquire);
                    if (stop_.load(std::memory_order_relaxed)) return;
                    results_[static_cast<std::size_t>(w)] = job_(w);
                    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) done_.notify_one();
                }
            });
    }
    ~Pool() {
        stop_.store(true);
        gen_.fetch_add(1, std::memory_order_release);
        gen_.notify_all();
        for (auto& t : threads_) t.join();
    }
    // Runs job(worker) on every worker; returns each one's result.
    std::vector<double> run(std::function<double(int)> job) {
        job_ = std::move(job);
        done_.store(0, std::memory_order_relaxed);
        gen_.fetch_add(1, std::memory_order_release);
        gen_.notify_all();
        for (int d = done_.load(std::memory_order_acquire); d != n_; d = done_.load(std::memory_order_acquire))
            done_.wait(d, std::memory_order_acquire);
        return results_;
    }
    int size() const { return n_; }

private:
    int n_;
    std::vector<double> results_;
    std::vector<std::thread> threads_;
    std::function<double(int)> job_;
    std::atomic<std::uint64_t> gen_{0};
    std::atomic<int> done_{0};
    std::atomic<bool> stop_{false};
};

}  // namespace percore::tools
