// SPDX-License-Identifier: MIT
// The statistics of percore-demo, three ways, behind one interface so the
// same worker loop runs with each:
//
//   PercoreStats  everything through percore: a CounterGroup {packets,
//                 bytes} per protocol, Counters per drop reason, a FlowTable
//                 per flow, a Histogram of sampled per-packet time, a
//                 MaxGauge of packet size. Exported through a Registry.
//   SharedStats   what programs commonly write today: shared std::atomic
//                 counters and a mutex-protected std::unordered_map of flows.
//   NoStats       none: the baseline the cost of the other two is taken from.
//
// packet() is the whole per-packet statistics work; read() is for the
// control thread (the dashboard) and may lock.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "demo/traffic.hpp"
#include "percore/counter.hpp"
#include "percore/counter_group.hpp"
#include "percore/export/registry.hpp"
#include "percore/flow_table.hpp"
#include "percore/histogram.hpp"
#include "percore/minmax.hpp"
#include "percore/shard.hpp"

namespace percore::demo {

struct LatencyFigures {
    std::uint64_t count = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;
};

struct TopFlow {
    FlowKey key;
    std::uint64_t packets = 0, bytes = 0;
};

// What the dashboard shows, read from any of the three.
struct View {
    std::array<std::uint64_t, kProtos> packets{}, bytes{};
    std::array<std::uint64_t, kDropReasons> drops{};
    std::uint64_t bad_checksum = 0;
    LatencyFigures latency;
    std::int64_t max_size = 0;
    std::size_t active_flows = 0;
    std::uint64_t expired = 0;
    std::array<std::uint64_t, 2> flow_totals{};  // live + expired flows: {packets, bytes}
    std::vector<std::uint64_t> shard_packets;    // per CPU shard (percore only; last = shared row)
    std::vector<TopFlow> top;                    // by bytes, largest first
};

inline constexpr std::size_t kTopFlows = 5;

// Keeps the n largest by bytes.
class TopFlows {
public:
    void offer(const FlowKey& k, std::uint64_t packets, std::uint64_t bytes) {
        if (top_.size() == kTopFlows && bytes <= top_.back().bytes) return;
        TopFlow f{k, packets, bytes};
        top_.insert(std::upper_bound(top_.begin(), top_.end(), f,
                                     [](const TopFlow& a, const TopFlow& b) { return a.bytes > b.bytes; }),
                    f);
        if (top_.size() > kTopFlows) top_.pop_back();
    }
    std::vector<TopFlow> take() { return std::move(top_); }

private:
    std::vector<TopFlow> top_;
};

// percore::Histogram's layout for the per-packet time: 2 digits up to 1 s.
inline HistogramLayout latency_layout() { return HistogramLayout(2, 1'000'000'000); }

inline LatencyFigures figures(const HistogramSnapshot& s) {
    return {s.count(), s.percentile(50), s.percentile(99), s.percentile(99.9), s.max()};
}

// One element of a CounterGroup, exported as a counter with its per-shard
// rows (the Registry's MetricSource extension point).
template <std::size_t N>
class GroupCounterSource : public MetricSource {
public:
    GroupCounterSource(const CounterGroup<N>& g, std::size_t i) : g_(g), i_(i) {}
    MetricType type() const override { return MetricType::counter; }
    MetricValue read() const override { return g_.value(i_); }
    std::vector<std::int64_t> shards() const override {
        std::vector<std::int64_t> v(g_.arena().rows());
        for (std::size_t r = 0; r < v.size(); ++r) v[r] = static_cast<std::int64_t>(g_.shard_value(r, i_));
        return v;
    }

private:
    const CounterGroup<N>& g_;
    std::size_t i_;
};

template <FlowLayout L>
class PercoreStats {
public:
    static constexpr bool kTimed = true;
    static constexpr bool kPrefetch = true;
    using Flows = FlowTable<FlowKey, L, 2, FlowKeyHash>;

    explicit PercoreStats(std::size_t max_flows) : flows_(max_flows) {}

    void packet(const Packet& p, const FlowKey& k) noexcept {
        proto_[p.proto].add({1, p.size});
        if (p.fate != forwarded) [[unlikely]] {
            if (p.fate == bad_checksum)
                bad_checksum_.inc();
            else
                drops_[p.fate - drop_acl].inc();
        }
        flows_.add(k, {1, p.size});
        size_max_.update(p.size);
    }
    void latency_ns(std::uint64_t ns) noexcept { latency_.record(ns); }
    // Starts loading the flow's table lines for a packet a few ahead.
    void prefetch(const FlowKey& k) const noexcept { flows_.prefetch(k); }

    // Expires flows idle since the previous call (control thread).
    std::size_t expire() {
        const std::size_t n = flows_.expire_idle();
        expired_.add(n);
        return n;
    }

    View read(bool with_top) const {
        View v;
        for (std::size_t p = 0; p < kProtos; ++p) v.packets[p] = proto_[p].value(0), v.bytes[p] = proto_[p].value(1);
        for (std::size_t d = 0; d < kDropReasons; ++d) v.drops[d] = drops_[d].value();
        v.bad_checksum = bad_checksum_.value();
        v.latency = figures(latency_.snapshot());
        v.max_size = size_max_.value().value_or(0);
        v.active_flows = flows_.size();
        v.expired = expired_.value();
        v.flow_totals = flows_.totals();
        v.shard_packets.assign(proto_[0].arena().rows(), 0);
        for (std::size_t r = 0; r < v.shard_packets.size(); ++r)
            for (std::size_t p = 0; p < kProtos; ++p) v.shard_packets[r] += proto_[p].shard_value(r, 0);
        if (with_top) {
            TopFlows top;
            flows_.for_each([&](const FlowKey& k, const auto& c) { top.offer(k, c[0], c[1]); });
            v.top = top.take();
        }
        return v;
    }
    HistogramSnapshot latency_snapshot() const { return latency_.snapshot(); }

    // The Prometheus names below are the demo's public interface (the
    // Grafana dashboard and the fleet test use them).
    void register_metrics(Registry& reg) {
        for (std::size_t p = 0; p < kProtos; ++p) {
            const Labels l{{"proto", kProtoNames[p]}};
            reg.add("percore_demo_packets_total", "Packets received, by protocol.", l,
                    std::make_shared<GroupCounterSource<2>>(proto_[p], 0));
            reg.add("percore_demo_bytes_total", "Bytes received, by protocol.", l,
                    std::make_shared<GroupCounterSource<2>>(proto_[p], 1));
        }
        for (std::size_t d = 0; d < kDropReasons; ++d)
            reg.add_counter("percore_demo_drops_total", "Packets dropped, by reason.", {{"reason", kDropNames[d]}},
                            drops_[d]);
        reg.add_counter("percore_demo_errors_total", "Packets that failed a check, by reason.",
                        {{"reason", "bad_checksum"}}, bad_checksum_);
        reg.add_counter("percore_demo_flows_expired_total", "Flows removed after a whole idle interval.", {},
                        expired_);
        reg.add_histogram("percore_demo_packet_duration_seconds",
                          "Per-packet processing time (domain logic and statistics), sampled with the TSC.", {},
                          latency_, {.records = Unit::nanoseconds});
        reg.add_gauge("percore_demo_packet_size_max_bytes", "Largest packet seen.", {}, size_max_);
        reg.add_gauge("percore_demo_active_flows", "Flows in the flow table.", {},
                      [this] { return static_cast<double>(flows_.size()); });
    }

private:
    std::array<CounterGroup<2>, kProtos> proto_;
    std::array<Counter, kDropReasons> drops_;
    Counter bad_checksum_;
    Flows flows_;
    Histogram latency_{latency_layout()};
    MaxGauge size_max_;
    Counter expired_;
};

// The shared-memory statistics of a typical program: one atomic per
// figure (each protocol's pair on its own cache line, which is already more
// care than most take), a mutex around a hash map of flows, and a shared
// array of atomic histogram buckets.
class SharedStats {
public:
    static constexpr bool kTimed = true;
    static constexpr bool kPrefetch = false;

    explicit SharedStats(std::size_t max_flows) : layout_(latency_layout()), buckets_(layout_.buckets()) {
        flows_.reserve(max_flows);
    }

    void packet(const Packet& p, const FlowKey& k) {
        proto_[p.proto].packets.fetch_add(1, std::memory_order_relaxed);
        proto_[p.proto].bytes.fetch_add(p.size, std::memory_order_relaxed);
        if (p.fate != forwarded) [[unlikely]] {
            if (p.fate == bad_checksum)
                bad_checksum_.fetch_add(1, std::memory_order_relaxed);
            else
                drops_[p.fate - drop_acl].fetch_add(1, std::memory_order_relaxed);
        }
        {
            std::lock_guard lk(mu_);
            Flow& f = flows_[k];
            f.packets += 1;
            f.bytes += p.size;
            f.touched = true;
        }
        std::int64_t m = size_max_.load(std::memory_order_relaxed);
        while (p.size > m && !size_max_.compare_exchange_weak(m, p.size, std::memory_order_relaxed)) {
        }
    }
    void latency_ns(std::uint64_t ns) noexcept {
        ns = std::min(ns, layout_.highest());
        buckets_[layout_.index(ns)].fetch_add(1, std::memory_order_relaxed);
        std::uint64_t m = latency_max_.load(std::memory_order_relaxed);
        while (ns > m && !latency_max_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
        }
    }

    std::size_t expire() {
        std::lock_guard lk(mu_);
        std::size_t n = 0;
        for (auto it = flows_.begin(); it != flows_.end();) {
            if (it->second.touched) {
                it->second.touched = false;
                ++it;
                continue;
            }
            retained_[0] += it->second.packets;
            retained_[1] += it->second.bytes;
            it = flows_.erase(it);
            ++n;
        }
        expired_ += n;
        return n;
    }

    View read(bool with_top) const {
        View v;
        for (std::size_t p = 0; p < kProtos; ++p)
            v.packets[p] = proto_[p].packets.load(std::memory_order_relaxed),
            v.bytes[p] = proto_[p].bytes.load(std::memory_order_relaxed);
        for (std::size_t d = 0; d < kDropReasons; ++d) v.drops[d] = drops_[d].load(std::memory_order_relaxed);
        v.bad_checksum = bad_checksum_.load(std::memory_order_relaxed);
        v.latency = latency();
        v.max_size = size_max_.load(std::memory_order_relaxed);
        std::lock_guard lk(mu_);
        v.active_flows = flows_.size();
        v.expired = expired_;
        v.flow_totals = retained_;
        TopFlows top;
        for (const auto& [k, f] : flows_) {
            v.flow_totals[0] += f.packets, v.flow_totals[1] += f.bytes;
            if (with_top) top.offer(k, f.packets, f.bytes);
        }
        v.top = top.take();
        return v;
    }

private:
    struct alignas(64) Pair {
        std::atomic<std::uint64_t> packets{0}, bytes{0};
    };
    struct Flow {
        std::uint64_t packets = 0, bytes = 0;
        bool touched = false;
    };

    // Percentiles from the shared buckets: upper edge of the bucket holding
    // the q-th value, as HistogramSnapshot::percentile reports.
    LatencyFigures latency() const {
        std::vector<std::uint64_t> c(buckets_.size());
        std::uint64_t n = 0;
        for (std::size_t i = 0; i < c.size(); ++i) n += c[i] = buckets_[i].load(std::memory_order_relaxed);
        LatencyFigures f;
        f.count = n;
        f.max = latency_max_.load(std::memory_order_relaxed);
        if (n == 0) return f;
        auto at = [&](double q) {
            const auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(n)));
            std::uint64_t seen = 0;
            for (std::size_t i = 0; i < c.size(); ++i)
                if ((seen += c[i]) >= std::max<std::uint64_t>(rank, 1)) return std::min(layout_.upper(i), f.max);
            return f.max;
        };
        f.p50 = at(50), f.p99 = at(99), f.p999 = at(99.9);
        return f;
    }

    std::array<Pair, kProtos> proto_;
    std::array<std::atomic<std::uint64_t>, kDropReasons> drops_{};
    std::atomic<std::uint64_t> bad_checksum_{0};
    std::atomic<std::int64_t> size_max_{0};
    HistogramLayout layout_;
    std::vector<std::atomic<std::uint64_t>> buckets_;
    std::atomic<std::uint64_t> latency_max_{0};
    mutable std::mutex mu_;
    std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
    std::array<std::uint64_t, 2> retained_{};
    std::uint64_t expired_ = 0;
};

class NoStats {
public:
    static constexpr bool kTimed = false;
    static constexpr bool kPrefetch = false;
    explicit NoStats(std::size_t) {}
    void packet(const Packet&, const FlowKey&) noexcept {}
    void latency_ns(std::uint64_t) noexcept {}
    std::size_t expire() { return 0; }
    View read(bool) const { return {}; }
};

}  // namespace percore::demo
