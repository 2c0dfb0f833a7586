// SPDX-License-Identifier: MIT
// Probes of the machine, run interleaved with the rows they qualify.
//
// BM_Parallel/threads:1,2: each thread adds to its own cache line; the
// 2-thread rate over the 1-thread rate is the parallelism the host gave the
// run (a vCPU pair sharing one host core gives ~1x, two cores ~2x).
//
// BM_CoreToCore: the round trip of one cache line between two threads pinned
// to the first and the last CPU. Everything the structure benchmarks compare
// moves cache lines between cores, and on a virtual machine that cost
// depends on where the host runs the vCPUs at the moment (on the machine of
// docs/structures.md it moved between ~80 and ~600 ns within minutes). Run
// interleaved with the other rows, its median says what the run saw.
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace percore_bench {

inline void pin_cpu(int nth) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &allowed) || nth-- != 0) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        sched_setaffinity(0, sizeof one, &one);
        return;
    }
}

inline void BM_CoreToCore(benchmark::State& state) {
    cpu_set_t allowed;  // restored at the end
    sched_getaffinity(0, sizeof allowed, &allowed);
    const int last = CPU_COUNT(&allowed) - 1;
    alignas(64) static std::atomic<long> line{0};
    alignas(64) static std::atomic<bool> stop{false};
    line.store(0);
    stop.store(false);
    std::thread echo([last] {
        pin_cpu(last);
        long seen = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const long v = line.load(std::memory_order_acquire);
            if (v != seen && (v & 1)) {
                line.store(v + 1, std::memory_order_release);
                seen = v + 1;
            }
        }
    });
    pin_cpu(0);  // the benchmark thread pings from the first CPU
    long v = 0;
    for (auto _ : state) {
        line.store(v + 1, std::memory_order_release);
        while (line.load(std::memory_order_acquire) != v + 2) {
        }
        v += 2;
    }
    sched_setaffinity(0, sizeof allowed, &allowed);
    stop.store(true);
    echo.join();
}

inline void BM_Parallel(benchmark::State& state) {
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> v{0};
    };
    static Slot slots[64];
    Slot& mine = slots[state.thread_index() % 64];
    for (auto _ : state) mine.v.store(mine.v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    state.SetItemsProcessed(state.iterations());
}

inline void register_probes() {
    benchmark::RegisterBenchmark("BM_CoreToCore", BM_CoreToCore)->UseRealTime()->MinTime(0.1);
    benchmark::RegisterBenchmark("BM_Parallel", BM_Parallel)->Threads(1)->Threads(2)->UseRealTime()->MinTime(0.1);
}

}  // namespace percore_bench
