// SPDX-License-Identifier: MIT
// Counter::add made from inside a shared library, with the initial-exec TLS
// model percore uses (libpercore_shlib_ie.so) beside global-dynamic
// (libpercore_shlib_gd.so, built with PERCORE_NO_INITIAL_EXEC_TLS), side by
// side in one run. Run it with PERCORE_BACKEND=thread for the thread-slot
// path; the rseq paths read the same thread_local first. Results in
// docs/benchmarks.md, "Updates from a shared library".
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>

extern "C" {
void percore_shlib_ie_add_once();
void percore_shlib_ie_noop();
void percore_shlib_ie_add_loop(std::uint64_t n);
std::uint64_t percore_shlib_ie_value();
const char* percore_shlib_ie_backend();
void percore_shlib_gd_add_once();
void percore_shlib_gd_noop();
void percore_shlib_gd_add_loop(std::uint64_t n);
std::uint64_t percore_shlib_gd_value();
const char* percore_shlib_gd_backend();
}

namespace {

// Updates each library was asked for, to check its counter against.
std::uint64_t asked_gd = 0, asked_ie = 0;

template <void (*Call)(), std::uint64_t* Asked = nullptr>
void BM_Call(benchmark::State& state) {
    for (auto _ : state) Call();
    state.SetItemsProcessed(state.iterations());
    if constexpr (Asked != nullptr) *Asked += state.iterations();
}

constexpr std::uint64_t kLoop = 1000;

template <void (*Loop)(std::uint64_t), std::uint64_t* Asked>
void BM_Loop(benchmark::State& state) {
    for (auto _ : state) Loop(kLoop);
    state.SetItemsProcessed(state.iterations() * kLoop);
    *Asked += state.iterations() * kLoop;
}

BENCHMARK(BM_Call<percore_shlib_gd_noop>)->Name("call_noop/global-dynamic");
BENCHMARK(BM_Call<percore_shlib_ie_noop>)->Name("call_noop/initial-exec");
BENCHMARK(BM_Call<percore_shlib_gd_add_once, &asked_gd>)->Name("call_add/global-dynamic");
BENCHMARK(BM_Call<percore_shlib_ie_add_once, &asked_ie>)->Name("call_add/initial-exec");
BENCHMARK(BM_Loop<percore_shlib_gd_add_loop, &asked_gd>)->Name("loop_add/global-dynamic");
BENCHMARK(BM_Loop<percore_shlib_ie_add_loop, &asked_ie>)->Name("loop_add/initial-exec");

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("percore backend", percore_shlib_ie_backend());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    // Every update must have landed, whichever TLS model made it.
    const std::uint64_t gd = percore_shlib_gd_value(), ie = percore_shlib_ie_value();
    std::printf("counted: global-dynamic %llu of %llu, initial-exec %llu of %llu\n", (unsigned long long)gd,
                (unsigned long long)asked_gd, (unsigned long long)ie, (unsigned long long)asked_ie);
    return gd == asked_gd && ie == asked_ie ? 0 : 1;
}
