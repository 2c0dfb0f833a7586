// SPDX-License-Identifier: MIT
// Scrape cost: rendering a registry of 10,000 series (target: <= 10 ms),
// in both exposition formats, plus the collect step alone; and the cost of
// finding an existing labelled series, by Family::with() and by name; and
// the dashboard's /api/metrics reply for the same registry (its per-shard
// rows included), beside the text scrape in the same run.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "dashboard.hpp"  // internal: export/src
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

// What one dashboard poll costs the process (the HTTP exchange aside).
void BM_DashboardJson10k(benchmark::State& st) {
    auto& reg = big_registry();
    std::size_t bytes = 0;
    for (auto _ : st) {
        auto s = percore::detail::dashboard_json(reg);
        bytes = s.size();
        benchmark::DoNotOptimize(s);
    }
    st.counters["bytes"] = static_cast<double>(bytes);
    st.counters["series"] = 10'000;
}

// One family of 100 series {route, code}, shared by the lookup benchmarks.
struct Lookup {
    percore::Registry reg;
    percore::Family<percore::Counter> fam = reg.counter_family("bench_lookup_total", "Requests.", {"route", "code"});
    Lookup() {
        for (int i = 0; i < 100; ++i) fam.with({"/api/v1/item/" + std::to_string(i), "200"});
    }
};

Lookup& lookup() {
    static Lookup l;
    return l;
}

// Family::with() for a series that exists: the shared-lock lookup.
void BM_FamilyWithExisting(benchmark::State& st) {
    auto& l = lookup();
    const std::vector<std::string> values{"/api/v1/item/42", "200"};
    for (auto _ : st) benchmark::DoNotOptimize(l.fam.with(values));
    st.SetItemsProcessed(st.iterations());
}

// The same series through Registry::counter(): validation and the exclusive
// lock, which is what with() did for every call before it had a fast path.
void BM_RegistryCounterExisting(benchmark::State& st) {
    auto& l = lookup();
    const percore::Labels labels{{"route", "/api/v1/item/42"}, {"code", "200"}};
    for (auto _ : st) benchmark::DoNotOptimize(l.reg.counter("bench_lookup_total", "Requests.", labels));
    st.SetItemsProcessed(st.iterations());
}

}  // namespace

BENCHMARK(BM_FamilyWithExisting)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RegistryCounterExisting)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Collect10k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Render10k)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DashboardJson10k)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
