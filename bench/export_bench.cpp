// SPDX-License-Identifier: MIT
// Scrape cost: rendering a registry of 10,000 series (target: <= 10 ms),
// in both exposition formats, plus the collect step alone.
#include <benchmark/benchmark.h>

#include "percore/export/prometheus.hpp"

namespace {

percore::Registry& big_registry() {
    static percore::Registry* reg = [] {
        auto* r = new percore::Registry;
        for (int i = 0; i < 10'000; ++i)
            r->counter("bench_requests_total", "Requests.", {{"route", "/api/v1/item/" + std::to_string(i)}, {"code", "200"}})
                ->add(static_cast<std::uint64_t>(i) * 1000);
        return r;
    }();
    return *reg;
}

void BM_Collect10k(benchmark::State& st) {
    auto& reg = big_registry();
    for (auto _ : st) benchmark::DoNotOptimize(reg.collect());
}

void BM_Render10k(benchmark::State& st) {
    auto& reg = big_registry();
    const auto fmt = st.range(0) ? percore::ExpositionFormat::openmetrics : percore::ExpositionFormat::text;
    std::size_t bytes = 0;
    for (auto _ : st) {
        auto s = percore::render(reg, fmt);
        bytes = s.size();
        benchmark::DoNotOptimize(s);
    }
    st.counters["bytes"] = static_cast<double>(bytes);
    st.counters["series"] = 10'000;
}

}  // namespace

BENCHMARK(BM_Collect10k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Render10k)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
