// SPDX-License-Identifier: MIT
// SharedMutex against the read-write locks a user would otherwise pick, all
// in one run:
//   std::shared_mutex (libstdc++: a wrapper of glibc's pthread_rwlock_t),
//   pthread_rwlock_t (default attributes, as most code uses it),
//   Concurrency Kit ck_brlock (big-reader lock: one registered record per
//     reader thread) and ck_bytelock (one byte per slotted reader)
//     (libck-dev; left out if missing),
//   percore::SharedMutex: rseq + membarrier (the default), rseq + fences
//     (the fallback), thread slots + membarrier.
//
//   BM_ReadLockUnlock/<lock>/threads:N   one read lock and unlock around a
//       one-word read, no writer: the reader's fixed cost (ns per pair;
//       with 2 threads, aggregate).
//   BM_Mixed/<lock>/write_permille:W/threads:N   each thread takes the
//       write lock with probability W/1000 (0, 1, 10: 0%, 0.1%, 1%), else
//       the read lock; readers sum 8 words, writers increment them. Ops/s,
//       aggregate, at 1, 2, 4, 8 threads.
//   BM_WriterLatency/<lock>/readers:R   R threads take read locks back to
//       back; the main thread takes the write lock every 20 us and times
//       lock(): p50 and p99 in ns (counters), for PERCORE_BENCH_LATENCY_MS
//       (default 300) per run.
#include <benchmark/benchmark.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend_switch.hpp"
#include "core_to_core.hpp"
#include "percore/shard.hpp"
#include "percore/shared_mutex.hpp"

#ifdef PERCORE_BENCH_CK
#include "ck_peers.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;

// The protected data: 8 words on their own lines.
struct alignas(64) Data {
    std::uint64_t w[8];
};

// ---- the locks, behind one interface -------------------------------------
// Ctx is per-thread state (ck_brlock's reader record, ck_bytelock's slot).

struct StdShared {
    static constexpr const char* name = "std::shared_mutex";
    struct Ctx {};
    Ctx enter(int) { return {}; }
    void leave(Ctx&) {}
    int rlock(Ctx&) {
        mu.lock_shared();
        return 0;
    }
    void runlock(Ctx&, int) { mu.unlock_shared(); }
    void wlock(Ctx&) { mu.lock(); }
    void wunlock(Ctx&) { mu.unlock(); }
    std::shared_mutex mu;
};

struct PthreadRw {
    static constexpr const char* name = "pthread_rwlock_t";
    struct Ctx {};
    PthreadRw() { pthread_rwlock_init(&mu, nullptr); }
    ~PthreadRw() { pthread_rwlock_destroy(&mu); }
    Ctx enter(int) { return {}; }
    void leave(Ctx&) {}
    int rlock(Ctx&) {
        pthread_rwlock_rdlock(&mu);
        return 0;
    }
    void runlock(Ctx&, int) { pthread_rwlock_unlock(&mu); }
    void wlock(Ctx&) { pthread_rwlock_wrlock(&mu); }
    void wunlock(Ctx&) { pthread_rwlock_unlock(&mu); }
    alignas(64) pthread_rwlock_t mu;
};

#ifdef PERCORE_BENCH_CK
struct CkBrlock {
    static constexpr const char* name = "ck_brlock";
    struct Ctx {
        pc_ck_brlock_reader* r;
    };
    CkBrlock() : l(pc_ck_brlock_new()) {}
    ~CkBrlock() { pc_ck_brlock_free(l); }
    Ctx enter(int) { return {pc_ck_brlock_register(l)}; }
    void leave(Ctx& c) { pc_ck_brlock_unregister(l, c.r); }
    int rlock(Ctx& c) {
        pc_ck_brlock_read_lock(l, c.r);
        return 0;
    }
    void runlock(Ctx& c, int) { pc_ck_brlock_read_unlock(c.r); }
    void wlock(Ctx&) { pc_ck_brlock_write_lock(l); }
    void wunlock(Ctx&) { pc_ck_brlock_write_unlock(l); }
    pc_ck_brlock* l;
};

struct CkBytelock {
    static constexpr const char* name = "ck_bytelock";
    struct Ctx {
        unsigned slot;
    };
    CkBytelock() : l(pc_ck_bytelock_new()) {}
    ~CkBytelock() { pc_ck_bytelock_free(l); }
    Ctx enter(int thread) { return {static_cast<unsigned>(thread) + 1}; }  // slots 1..56
    void leave(Ctx&) {}
    int rlock(Ctx& c) {
        pc_ck_bytelock_read_lock(l, c.slot);
        return 0;
    }
    void runlock(Ctx& c, int) { pc_ck_bytelock_read_unlock(l, c.slot); }
    void wlock(Ctx& c) { pc_ck_bytelock_write_lock(l, c.slot); }
    void wunlock(Ctx&) { pc_ck_bytelock_write_unlock(l); }
    pc_ck_bytelock* l;
};
#endif

using percore_bench::use_backend;

template <bool Rseq, bool Membarrier>
struct Percore {
    static constexpr bool kRseq = Rseq;
    static constexpr const char* name = !Rseq        ? "percore::SharedMutex (thread slots, membarrier)"
                                        : Membarrier ? "percore::SharedMutex (rseq, membarrier)"
                                                     : "percore::SharedMutex (rseq, fences)";
    struct Ctx {};
    // Thread slots get an Arena with a row for each of up to 16 threads.
    Percore()
        : arena(Rseq ? 0 : 16),
          mu(Membarrier ? percore::SharedMutex::Ordering::automatic : percore::SharedMutex::Ordering::fences, arena) {}
    Ctx enter(int) { return {}; }
    void leave(Ctx&) {}
    percore::SharedMutex::ReadHandle rlock(Ctx&) { return mu.lock_shared(); }
    void runlock(Ctx&, percore::SharedMutex::ReadHandle h) { mu.unlock_shared(h); }
    void wlock(Ctx&) { mu.lock(); }
    void wunlock(Ctx&) { mu.unlock(); }
    percore::Arena arena;
    percore::SharedMutex mu;
};

template <class L>
bool prepare(benchmark::State& state) {
    if constexpr (requires { L::kRseq; }) {
        if (state.thread_index() == 0 && !use_backend(L::kRseq)) {
            state.SkipWithError("backend not available");
            return false;
        }
    }
    return true;
}

// One lock object per type for the whole process (all threads of a run
// share it).
template <class L>
L& the_lock() {
    static L* l = new L;
    return *l;
}
template <class L>
Data& the_data() {
    static Data* d = new Data{};
    return *d;
}

template <class L>
void BM_ReadLockUnlock(benchmark::State& state) {
    if (!prepare<L>(state)) return;
    L& l = the_lock<L>();
    Data& d = the_data<L>();
    auto ctx = l.enter(state.thread_index());
    for (auto _ : state) {
        auto h = l.rlock(ctx);
        benchmark::DoNotOptimize(d.w[0]);
        l.runlock(ctx, h);
    }
    l.leave(ctx);
    state.SetItemsProcessed(state.iterations());
    if (state.thread_index() == 0) state.SetLabel(L::name);
}

template <class L>
void BM_Mixed(benchmark::State& state) {
    if (!prepare<L>(state)) return;
    L& l = the_lock<L>();
    Data& d = the_data<L>();
    const std::uint64_t permille = static_cast<std::uint64_t>(state.range(0));
    auto ctx = l.enter(state.thread_index());
    std::uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(state.thread_index() + 1);
    std::uint64_t writes = 0;
    for (auto _ : state) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 1000 < permille) {
            l.wlock(ctx);
            for (auto& w : d.w) w = w + 1;
            l.wunlock(ctx);
            ++writes;
        } else {
            auto h = l.rlock(ctx);
            std::uint64_t s = 0;
            for (auto& w : d.w) s += w;
            benchmark::DoNotOptimize(s);
            l.runlock(ctx, h);
        }
    }
    l.leave(ctx);
    state.SetItemsProcessed(state.iterations());
    state.counters["writes"] = benchmark::Counter(static_cast<double>(writes), benchmark::Counter::kIsRate);
    if (state.thread_index() == 0) state.SetLabel(L::name);
}

int latency_ms() {
    const char* e = std::getenv("PERCORE_BENCH_LATENCY_MS");
    const int v = e != nullptr ? std::atoi(e) : 0;
    return v > 0 ? v : 300;
}

template <class L>
void BM_WriterLatency(benchmark::State& state) {
    if constexpr (requires { L::kRseq; }) {
        if (!use_backend(L::kRseq)) {
            state.SkipWithError("backend not available");
            return;
        }
    }
    const int readers = static_cast<int>(state.range(0));
    std::vector<double> lat;
    std::uint64_t reads = 0;
    double seconds = 0;
    for (auto _ : state) {
        L& l = the_lock<L>();
        Data& d = the_data<L>();
        std::atomic<bool> stop{false};
        std::atomic<int> ready{0};
        std::atomic<std::uint64_t> nreads{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < readers; ++t)
            ts.emplace_back([&, t] {
                auto ctx = l.enter(t + 1);
                ready.fetch_add(1);
                std::uint64_t n = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    auto h = l.rlock(ctx);
                    std::uint64_t s = 0;
                    for (auto& w : d.w) s += w;
                    benchmark::DoNotOptimize(s);
                    l.runlock(ctx, h);
                    ++n;
                }
                nreads.fetch_add(n);
                l.leave(ctx);
            });
        auto ctx = l.enter(0);
        while (ready.load() < readers) std::this_thread::yield();
        const auto t0 = Clock::now();
        const auto end = t0 + std::chrono::milliseconds(latency_ms());
        for (auto now = t0; now < end; now = Clock::now()) {
            const auto a = Clock::now();
            l.wlock(ctx);
            const auto b = Clock::now();
            for (auto& w : d.w) w = w + 1;
            l.wunlock(ctx);
            lat.push_back(std::chrono::duration<double, std::nano>(b - a).count());
            const auto until = Clock::now() + std::chrono::microseconds(20);
            while (Clock::now() < until) {
            }
        }
        stop.store(true);
        for (auto& t : ts) t.join();
        l.leave(ctx);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        state.SetIterationTime(s);
        seconds += s;
        reads += nreads.load();
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[static_cast<std::size_t>(p * (lat.size() - 1))]; };
    state.counters["p50_ns"] = pct(0.50);
    state.counters["p99_ns"] = pct(0.99);
    state.counters["writes"] = static_cast<double>(lat.size());
    state.counters["reads_per_s"] = seconds > 0 ? static_cast<double>(reads) / seconds : 0;
    state.SetLabel(L::name);
}

template <class L>
void register_lock(const std::string& n) {
    benchmark::RegisterBenchmark(("BM_ReadLockUnlock/" + n).c_str(), BM_ReadLockUnlock<L>)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_Mixed/" + n).c_str(), BM_Mixed<L>)
        ->ArgName("write_permille")
        ->Arg(0)
        ->Arg(1)
        ->Arg(10)
        ->Threads(1)
        ->Threads(2)
        ->Threads(4)
        ->Threads(8)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_WriterLatency/" + n).c_str(), BM_WriterLatency<L>)
        ->ArgName("readers")
        ->Arg(1)
        ->Arg(3)
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
    percore_bench::register_probes();
    register_lock<Percore<true, true>>("percore_rseq_membarrier");
    register_lock<Percore<true, false>>("percore_rseq_fences");
    register_lock<Percore<false, true>>("percore_thread_membarrier");
#ifdef PERCORE_BENCH_CK
    register_lock<CkBrlock>("ck_brlock");
    register_lock<CkBytelock>("ck_bytelock");
#endif
    register_lock<StdShared>("std_shared_mutex");
    register_lock<PthreadRw>("pthread_rwlock");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    std::printf("backend at start: %s; membarrier %s\n", percore::backend_name(),
                percore::detail::membarrier_available() ? "available" : "unavailable");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
