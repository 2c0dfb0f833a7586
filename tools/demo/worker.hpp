// SPDX-License-Identifier: MIT
// percore-demo's packet loop: read the next packet of the worker's trace,
// run the domain logic, update the statistics. One template for every kind
// of statistics (stats.hpp), so the modes differ in nothing else.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "common/clock.hpp"
#include "common/work.hpp"
#include "demo/traffic.hpp"

namespace percore::demo {

// What every worker counts for itself in plain locals: the ground truth the
// statistics are checked against at the end.
struct Tally {
    std::uint64_t packets = 0, bytes = 0, timed = 0;
    std::array<std::uint64_t, kProtos> proto_packets{}, proto_bytes{};
    std::array<std::uint64_t, kFates> fates{};

    Tally& operator+=(const Tally& o) {
        packets += o.packets, bytes += o.bytes, timed += o.timed;
        for (std::size_t i = 0; i < kProtos; ++i) proto_packets[i] += o.proto_packets[i], proto_bytes[i] += o.proto_bytes[i];
        for (std::size_t i = 0; i < kFates; ++i) fates[i] += o.fates[i];
        return *this;
    }
};

struct LoopConfig {
    std::uint32_t work_iters = 0;      // domain_logic trips per packet
    std::uint64_t sample_mask = 31;    // time packets whose index & mask == 0
    double ns_per_tsc = 1;
    double packets_per_tsc = 0;        // this worker's pace; 0 = as fast as it can
    std::uint32_t lookahead = 4;       // prefetch the flow of the packet this far ahead; 0 = off
};

// A worker's progress, published once per batch for the control thread
// (dashboard, rate report): its own cache line, one relaxed store.
struct alignas(64) Progress {
    std::atomic<std::uint64_t> packets{0};
};

struct WorkerResult {
    Tally tally;
    double cycles_per_packet = 0;  // TSC cycles of wall time per packet, pacing waits excluded
    double seconds = 0;
};

inline constexpr std::size_t kBatch = 64;

template <class Stats>
WorkerResult run_worker(Stats& stats, Trace& trace, const LoopConfig& c, const std::atomic<bool>& stop,
                        Progress& progress) {
    using tools::tsc;
    WorkerResult r;
    Tally t;
    std::uint64_t sink = trace.size();
    std::uint64_t i = 0;
    std::uint64_t waited = 0;  // TSC cycles spent holding back for the pace
    const auto wall0 = std::chrono::steady_clock::now();
    const std::uint64_t t_start = tsc();
    while (!stop.load(std::memory_order_relaxed)) {
        for (std::size_t b = 0; b < kBatch; ++b, ++i) {
            if ((i & (trace.size() - 1)) == 0 && i != 0) trace.next_pass();
            const Packet& p = trace[i];
            const FlowKey k = flow_key(trace.flow_id(p), p.proto);
            if constexpr (Stats::kPrefetch) {
                if (c.lookahead != 0) {
                    // The flow of a packet `lookahead` ahead: its table lines
                    // arrive while this packet is processed. (Wrong across
                    // the end of a pass, where the churn shifts flows:
                    // harmless.)
                    const Packet& q = trace[i + c.lookahead];
                    stats.prefetch(flow_key(trace.flow_id(q), q.proto));
                }
            }
            const bool timed = Stats::kTimed && (i & c.sample_mask) == 0;
            std::uint64_t t0 = 0;
            if (timed) t0 = tsc();
            sink = tools::domain_logic(sink ^ k.src ^ k.dst, c.work_iters);
            stats.packet(p, k);
            if (timed) {
                stats.latency_ns(static_cast<std::uint64_t>(static_cast<double>(tsc() - t0) * c.ns_per_tsc));
                ++t.timed;
            }
            ++t.packets;
            t.bytes += p.size;
            ++t.proto_packets[p.proto];
            t.proto_bytes[p.proto] += p.size;
            ++t.fates[p.fate];
        }
        progress.packets.store(t.packets, std::memory_order_relaxed);
        if (c.packets_per_tsc > 0) {
            // Token bucket: at most one batch ahead of the pace. Far ahead
            // sleeps, near spins; the wait is not counted as packet time.
            const std::uint64_t w0 = tsc();
            for (std::uint64_t now = w0;; now = tsc()) {
                const double due = static_cast<double>(now - t_start) * c.packets_per_tsc + kBatch;
                if (static_cast<double>(t.packets) <= due || stop.load(std::memory_order_relaxed)) break;
                const double ahead_ns = (static_cast<double>(t.packets) - due) / c.packets_per_tsc * c.ns_per_tsc;
                if (ahead_ns > 200'000)
                    std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<long>(ahead_ns / 2)));
                else
                    _mm_pause();
            }
            waited += tsc() - w0;
        }
    }
    tools::consume(sink);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    // Everything the worker's time went to, lock waits and preemptions
    // included: those are real costs of a mode, and the modes are measured
    // interleaved so that other load on the machine hits them alike.
    r.cycles_per_packet =
        t.packets ? static_cast<double>(tsc() - t_start - waited) / static_cast<double>(t.packets) : 0;
    r.tally = t;
    return r;
}

}  // namespace percore::demo
