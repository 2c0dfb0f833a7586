// SPDX-License-Identifier: MIT
// Cost of one counter update, per backend, beside the alternatives:
//   shared std::atomic fetch_add (one line for everyone),
//   a per-thread padded slot (the floor: a TLS pointer, a load and a store),
//   rseq index + atomic fetch_add on the CPU's line (the alternative commit),
//   percore::Counter::add under rseq mm_cid, rseq cpu_id and thread slots,
//   CounterGroup<2>::add versus two Counter adds.
// Each at 1 and 2 threads; items_per_second is the aggregate rate.
//
// The backend is process-wide; this benchmark switches it between runs, when
// no thread is updating, which is safe (see use_backend) but only meant for
// measurement.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backend_switch.hpp"
#include "percore/percore.hpp"

namespace {

using percore::detail::g_identity;

using percore_bench::use_backend;

void BM_SharedAtomic(benchmark::State& state) {
    alignas(64) static std::atomic<std::uint64_t> a{0};
    for (auto _ : state) a.fetch_add(1, std::memory_order_relaxed);
    state.SetItemsProcessed(state.iterations());
}

void BM_PerThreadSlot(benchmark::State& state) {
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> v{0};
    };
    static Slot slots[64];
    static std::atomic<int> next{0};
    thread_local Slot* mine = &slots[next.fetch_add(1) % 64];
    for (auto _ : state) {
        Slot* s = mine;
        benchmark::DoNotOptimize(s);
        s->v.store(s->v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_RseqIndexAtomicAdd(benchmark::State& state) {
    static percore::Arena arena;
    static percore::ShardAtomic<std::uint64_t> cells(0, arena);
    if (!use_backend(percore::Backend::rseq_cpu_id)) {
        state.SkipWithError("rseq not available");
        return;
    }
    for (auto _ : state) {
        const int i = percore::arch::rseq_index<percore::arch::RseqField::cpu_id>(g_identity.rseq_offset);
        cells.at(static_cast<std::size_t>(i)).fetch_add(1, std::memory_order_relaxed);
    }
    state.SetItemsProcessed(state.iterations());
}

template <percore::Backend B>
void BM_CounterAdd(benchmark::State& state) {
    static percore::Counter c;
    if (state.thread_index() == 0 && !use_backend(B)) {
        state.SkipWithError("backend not available");
        return;
    }
    for (auto _ : state) c.add(1);
    state.SetItemsProcessed(state.iterations());
}

template <percore::Backend B>
void BM_GroupAdd2(benchmark::State& state) {
    static percore::CounterGroup<2> g;
    if (state.thread_index() == 0 && !use_backend(B)) {
        state.SkipWithError("backend not available");
        return;
    }
    for (auto _ : state) g.add({1, 1500});
    state.SetItemsProcessed(state.iterations());
}

template <percore::Backend B>
void BM_TwoCounterAdds(benchmark::State& state) {
    static percore::Counter p, b;
    if (state.thread_index() == 0 && !use_backend(B)) {
        state.SkipWithError("backend not available");
        return;
    }
    for (auto _ : state) {
        p.add(1);
        b.add(1500);
    }
    state.SetItemsProcessed(state.iterations());
}

// The same over 1024 flows visited in turn, as a packet loop would: no
// back-to-back dependency through one counter, so this shows throughput.
template <percore::Backend B>
void BM_FlowsGroupAdd2(benchmark::State& state) {
    static std::vector<std::unique_ptr<percore::CounterGroup<2>>> flows = [] {
        std::vector<std::unique_ptr<percore::CounterGroup<2>>> v;
        for (int i = 0; i < 1024; ++i) v.push_back(std::make_unique<percore::CounterGroup<2>>());
        return v;
    }();
    if (state.thread_index() == 0 && !use_backend(B)) {
        state.SkipWithError("backend not available");
        return;
    }
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 512;
    for (auto _ : state) flows[i++ & 1023]->add({1, 1500});
    state.SetItemsProcessed(state.iterations());
}

template <percore::Backend B>
void BM_FlowsTwoCounterAdds(benchmark::State& state) {
    struct Flow {
        percore::Counter packets, bytes;
    };
    static std::vector<std::unique_ptr<Flow>> flows = [] {
        std::vector<std::unique_ptr<Flow>> v;
        for (int i = 0; i < 1024; ++i) v.push_back(std::make_unique<Flow>());
        return v;
    }();
    if (state.thread_index() == 0 && !use_backend(B)) {
        state.SkipWithError("backend not available");
        return;
    }
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 512;
    for (auto _ : state) {
        Flow& f = *flows[i++ & 1023];
        f.packets.add(1);
        f.bytes.add(1500);
    }
    state.SetItemsProcessed(state.iterations());
}

#define PERCORE_BENCH(fn) BENCHMARK(fn)->Threads(1)->Threads(2)->UseRealTime()

PERCORE_BENCH(BM_SharedAtomic);
PERCORE_BENCH(BM_PerThreadSlot);
PERCORE_BENCH(BM_RseqIndexAtomicAdd);
PERCORE_BENCH(BM_CounterAdd<percore::Backend::rseq_mm_cid>);
PERCORE_BENCH(BM_CounterAdd<percore::Backend::rseq_cpu_id>);
PERCORE_BENCH(BM_CounterAdd<percore::Backend::thread>);
PERCORE_BENCH(BM_GroupAdd2<percore::Backend::rseq_mm_cid>);
PERCORE_BENCH(BM_TwoCounterAdds<percore::Backend::rseq_mm_cid>);
PERCORE_BENCH(BM_FlowsGroupAdd2<percore::Backend::rseq_mm_cid>);
PERCORE_BENCH(BM_FlowsTwoCounterAdds<percore::Backend::rseq_mm_cid>);
PERCORE_BENCH(BM_GroupAdd2<percore::Backend::thread>);
PERCORE_BENCH(BM_TwoCounterAdds<percore::Backend::thread>);
PERCORE_BENCH(BM_FlowsGroupAdd2<percore::Backend::thread>);
PERCORE_BENCH(BM_FlowsTwoCounterAdds<percore::Backend::thread>);

}  // namespace

BENCHMARK_MAIN();
