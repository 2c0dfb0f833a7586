// SPDX-License-Identifier: MIT
// The EP data model of the DPDK "Statistics" chapter's benchmark and one adapter per counting
// pattern. Per packet: the two global counters (packets, bytes) and the two
// counters of the packet's flow, 1024 flows. Every adapter offers:
//   packet(flow, len)   the four counter updates of one packet
//   batch_end()         end of a batch of packets (the write buffer's hint)
//   settle()            make everything visible (flush write buffers)
//   pkts()              the global packet count (exactness, lost updates)
//   snapshot()          a full read of all 2050 counters, as the pattern reads
//   probe_add(), probe()  a separate counter for propagation-delay probes
#pragma once

#if PERCORE_BENCH_TBB
#include <tbb/combinable.h>
#include <tbb/enumerable_thread_specific.h>
#endif

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "percore/counter.hpp"
#include "percore/counter_group.hpp"
#include "bench/shared_unsync.hpp"
#include "percore/patterns.hpp"
#include "common/work.hpp"

namespace percore::bench {

using namespace percore::tools;  // tsc, consume, domain_logic, median

inline constexpr std::size_t kFlows = 1024;

struct FlowStats {
    std::uint64_t pkts, bytes;
};
struct EpStats {
    std::uint64_t pkts, bytes;
    FlowStats flows[kFlows];
    std::uint64_t probe;
};

inline Field<EpStats> flow_pkts(std::size_t f) { return field(&EpStats::flows, f, &FlowStats::pkts); }
inline Field<EpStats> flow_bytes(std::size_t f) { return field(&EpStats::flows, f, &FlowStats::bytes); }
inline const Field<EpStats> kPkts = field(&EpStats::pkts);
inline const Field<EpStats> kBytes = field(&EpStats::bytes);
inline const Field<EpStats> kProbe = field(&EpStats::probe);


// Baseline: the same loop without statistics.
struct NoStats {
    void packet(std::size_t, std::uint64_t) {}
    void batch_end() {}
    void settle() {}
    std::uint64_t pkts() { return 0; }
    void snapshot() {}
    void probe_add() {}
    std::uint64_t probe() { return 0; }
};

// Any of percore's struct patterns (patterns.hpp).
template <class P>
struct StructPattern {
    P p;
    template <class... A>
    explicit StructPattern(A&&... a) : p(std::forward<A>(a)...) {}
    void packet(std::size_t f, std::uint64_t len) {
        p.update([&](auto& tx) {
            tx.add(kPkts, 1);
            tx.add(kBytes, len);
            tx.add(flow_pkts(f), 1);
            tx.add(flow_bytes(f), len);
        });
    }
    void batch_end() {
        if constexpr (requires { p.hint_flush(); }) p.hint_flush();
    }
    void settle() {
        if constexpr (requires { p.flush_all(); }) p.flush_all();
    }
    std::uint64_t pkts() { return p.read(kPkts); }
    void snapshot() {
        const EpStats s = p.read();
        consume(s.pkts + s.flows[kFlows - 1].bytes);
    }
    void probe_add() { p.add(kProbe, 1); }
    std::uint64_t probe() { return p.read(kProbe); }
};

// percore's per-core relaxed pattern as users write it: a CounterGroup<2>
// for the globals and one per flow.
struct PerCoreCounters {
    CounterGroup<2> global;
    std::vector<std::unique_ptr<CounterGroup<2>>> flows;
    Counter probe_c;
    PerCoreCounters() {
        for (std::size_t f = 0; f < kFlows; ++f) flows.push_back(std::make_unique<CounterGroup<2>>());
    }
    void packet(std::size_t f, std::uint64_t len) {
        global.add({1, len});
        flows[f]->add({1, len});
    }
    void batch_end() {}
    void settle() {}
    std::uint64_t pkts() { return global.value(0); }
    void snapshot() {
        std::uint64_t x = global.value(0) + global.value(1);
        for (auto& g : flows) x += g->value(0) + g->value(1);
        consume(x);
    }
    void probe_add() { probe_c.inc(); }
    std::uint64_t probe() { return probe_c.value(); }
};

#if PERCORE_BENCH_TBB
// Per-thread copies of the struct through TBB's thread-local containers.
// Fields are written with relaxed atomic stores (plain mov) so that a
// concurrent reader is not a data race.
struct alignas(64) LocalStats {
    EpStats s{};
};
inline void local_add(std::uint64_t& w, std::uint64_t n) {
    std::atomic_ref<std::uint64_t> r(w);
    r.store(r.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline std::uint64_t local_load(const std::uint64_t& w) {
    return std::atomic_ref<const std::uint64_t>(w).load(std::memory_order_relaxed);
}
inline void local_packet(EpStats& s, std::size_t f, std::uint64_t len) {
    local_add(s.pkts, 1);
    local_add(s.bytes, len);
    local_add(s.flows[f].pkts, 1);
    local_add(s.flows[f].bytes, len);
}

struct TbbCombinable {
    tbb::combinable<LocalStats> c;
    void packet(std::size_t f, std::uint64_t len) { local_packet(c.local().s, f, len); }
    void batch_end() {}
    void settle() {}
    std::uint64_t pkts() {
        std::uint64_t n = 0;
        c.combine_each([&](const LocalStats& l) { n += local_load(l.s.pkts); });
        return n;
    }
    void snapshot() {
        std::uint64_t x = 0;
        c.combine_each([&](const LocalStats& l) {
            x += local_load(l.s.pkts) + local_load(l.s.bytes);
            for (const auto& f : l.s.flows) x += local_load(f.pkts) + local_load(f.bytes);
        });
        consume(x);
    }
    void probe_add() { local_add(c.local().s.probe, 1); }
    std::uint64_t probe() {
        std::uint64_t n = 0;
        c.combine_each([&](const LocalStats& l) { n += local_load(l.s.probe); });
        return n;
    }
};

// ets_key_per_instance: a native TLS key per container, the fastest lookup
// TBB offers (the default, ets_no_key, hashes the thread id).
struct TbbEts {
    tbb::enumerable_thread_specific<LocalStats, tbb::cache_aligned_allocator<LocalStats>, tbb::ets_key_per_instance> e;
    void packet(std::size_t f, std::uint64_t len) { local_packet(e.local().s, f, len); }
    void batch_end() {}
    void settle() {}
    std::uint64_t pkts() {
        std::uint64_t n = 0;
        for (const auto& l : e) n += local_load(l.s.pkts);
        return n;
    }
    void snapshot() {
        std::uint64_t x = 0;
        for (const auto& l : e) {
            x += local_load(l.s.pkts) + local_load(l.s.bytes);
            for (const auto& f : l.s.flows) x += local_load(f.pkts) + local_load(f.bytes);
        }
        consume(x);
    }
    void probe_add() { local_add(e.local().s.probe, 1); }
    std::uint64_t probe() {
        std::uint64_t n = 0;
        for (const auto& l : e) n += local_load(l.s.probe);
        return n;
    }
};

#endif  // PERCORE_BENCH_TBB

}  // namespace percore::bench
