// SPDX-License-Identifier: MIT
// Cost of recording a latency and of counting a packet against its flow:
//   Histogram::record at 1 and 2 threads, beside one shared array of atomic
//   buckets (what a mutex-free but shared histogram does), and ScopedTimer;
//   FlowTable::add in both layouts and a std::unordered_map behind a mutex,
//   at 1K, 100K and 1M flows, one thread, and two threads with and without
//   flow affinity (with it, each thread only sees its own half of the
//   flows). Flow counters report memory per flow: resident bytes added by
//   building the table (rss_B_per_flow) and bytes reserved for it
//   (reserved_B_per_flow).
// Results and the command line: docs/distributions.md.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "percore/flow_table.hpp"
#include "percore/histogram.hpp"
#include "percore/shard.hpp"

namespace {

// ---- histograms --------------------------------------------------------------

// RPC-like latencies in ns: a lognormal body around 40 us, a 3% tail of
// milliseconds. 4096 of them, cycled.
const std::vector<std::uint64_t>& latencies() {
    static const std::vector<std::uint64_t> v = [] {
        std::mt19937_64 rng(1);
        std::lognormal_distribution<double> body(std::log(40'000.0), 0.6), tail(std::log(5e6), 1.5);
        std::vector<std::uint64_t> out(4096);
        for (auto& x : out) x = static_cast<std::uint64_t>(rng() % 100 < 97 ? body(rng) : tail(rng));
        return out;
    }();
    return v;
}

void BM_HistogramRecord(benchmark::State& state) {
    static percore::Histogram h;
    const auto& v = latencies();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 1024;
    for (auto _ : state) h.record(v[i++ & 4095]);
    state.SetItemsProcessed(state.iterations());
}

// The shared alternative: one array of atomic buckets for every thread.
void BM_SharedAtomicBuckets(benchmark::State& state) {
    static const percore::HistogramLayout layout;
    static std::unique_ptr<std::atomic<std::uint64_t>[]> buckets(new std::atomic<std::uint64_t>[layout.buckets()]());
    alignas(64) static std::atomic<std::uint64_t> sum{0};
    const auto& v = latencies();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 1024;
    for (auto _ : state) {
        const std::uint64_t x = v[i++ & 4095];
        buckets[layout.index(x)].fetch_add(1, std::memory_order_relaxed);
        sum.fetch_add(x, std::memory_order_relaxed);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_ScopedTimer(benchmark::State& state) {
    static percore::Histogram h;
    for (auto _ : state) {
        percore::ScopedTimer t(h);
    }
    state.SetItemsProcessed(state.iterations());
}

// ---- flow tables ------------------------------------------------------------

using Values = std::array<std::uint64_t, 2>;

std::size_t resident_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Flow i's key: scattered, as 5-tuple hashes are.
std::uint64_t key_of(std::uint64_t i) { return percore::detail::mix64(i + 0x5eed); }

// The baseline a per-CPU flow table is measured against (the "Per-CPU
// Counter System" lab's first exercise): one map, one lock.
class LockedMap {
public:
    explicit LockedMap(std::size_t n) { map_.reserve(n); }
    void add(std::uint64_t k, const Values& v) {
        std::lock_guard lk(mu_);
        auto& c = map_[k];
        c[0] += v[0];
        c[1] += v[1];
    }
    std::size_t memory_bytes() const { return 0; }  // not known; RSS tells

private:
    std::mutex mu_;
    std::unordered_map<std::uint64_t, Values> map_;
};

using Shared = percore::FlowTable<std::uint64_t, percore::FlowLayout::shared>;
using PerShard = percore::FlowTable<std::uint64_t, percore::FlowLayout::per_shard>;

template <class Table>
struct Built {
    std::unique_ptr<Table> table;
    double rss_per_flow;
    double reserved_per_flow;
};

// One table per (type, flow count), built on first use with every flow
// present, kept for the whole run (so cases can share it).
template <class Table>
Built<Table>& table_for(std::size_t flows) {
    static std::mutex mu;
    static std::map<std::size_t, Built<Table>> tables;
    std::lock_guard lk(mu);
    auto it = tables.find(flows);
    if (it != tables.end()) return it->second;
    const std::size_t before = resident_bytes();
    auto t = std::make_unique<Table>(flows);
    for (std::uint64_t i = 0; i < flows; ++i) t->add(key_of(i), {1, 64});
    const double n = static_cast<double>(flows);
    const double rss = static_cast<double>(resident_bytes() - before) / n;
    const double reserved = t->memory_bytes() ? static_cast<double>(t->memory_bytes()) / n : rss;
    return tables.emplace(flows, Built<Table>{std::move(t), rss, reserved}).first->second;
}

// args: flows, affinity (0/1).
template <class Table>
void BM_FlowAdd(benchmark::State& state) {
    const auto flows = static_cast<std::size_t>(state.range(0));
    const bool affinity = state.range(1) != 0;
    Built<Table>& b = table_for<Table>(flows);
    Table& t = *b.table;
    const auto tid = static_cast<std::uint64_t>(state.thread_index());
    const auto nth = static_cast<std::uint64_t>(state.threads());
    std::uint64_t x = 0x9e3779b97f4a7c15ull * (tid + 1);
    for (auto _ : state) {
        // With affinity each flow belongs to one thread, chosen by its key
        // (as RSS would); flows are created in index order, so neighbouring
        // records belong to either thread at random, as when cores create
        // flows as they see them.
        std::uint64_t i;
        do {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            i = x % flows;
        } while (affinity && (key_of(i) >> 60) % nth != tid);
        t.add(key_of(i), {1, 64 + (x >> 54)});
    }
    state.SetItemsProcessed(state.iterations());
    // kAvgThreads: each thread reports the same figure.
    state.counters["rss_B_per_flow"] = benchmark::Counter(b.rss_per_flow, benchmark::Counter::kAvgThreads);
    state.counters["reserved_B_per_flow"] = benchmark::Counter(b.reserved_per_flow, benchmark::Counter::kAvgThreads);
}

template <class Table>
void register_flows(const char* name) {
    for (long flows : {1'000L, 100'000L, 1'000'000L}) {
        const std::string base = std::string("BM_FlowAdd<") + name + ">/" + std::to_string(flows);
        benchmark::RegisterBenchmark((base + "/spread").c_str(), BM_FlowAdd<Table>)
            ->Args({flows, 0})->Threads(1)->Threads(2)->UseRealTime();
        benchmark::RegisterBenchmark((base + "/affinity").c_str(), BM_FlowAdd<Table>)
            ->Args({flows, 1})->Threads(2)->UseRealTime();
    }
}

}  // namespace

BENCHMARK(BM_HistogramRecord)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_SharedAtomicBuckets)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ScopedTimer)->UseRealTime();

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("percore_backend", percore::backend_name());
    benchmark::AddCustomContext("percore_max_shards", std::to_string(percore::max_shards()));
    register_flows<Shared>("shared");
    register_flows<PerShard>("per_shard");
    register_flows<LockedMap>("mutex_map");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
