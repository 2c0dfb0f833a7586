// SPDX-License-Identifier: MIT
// Workers handle packets of many short flows: each packet is counted
// against its flow and its handling time goes into a latency histogram. A
// control thread expires idle flows every 50 ms and prints percentiles;
// at the end the flow table's totals must equal what the workers sent.
#include <percore/flow_table.hpp>
#include <percore/histogram.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

int main() {
    // Up to 64K live flows, packets and bytes each, one shared set of
    // counters per flow (a flow's packets mostly stay on one worker here).
    percore::FlowTable<std::uint64_t> flows(1 << 16);
    percore::Histogram handling_ns;  // 2 significant digits, up to 1 hour

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> sent_packets{0}, sent_bytes{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w)
        workers.emplace_back([&, w] {
            std::uint64_t x = 0x2545F4914F6CDD1Dull + static_cast<std::uint64_t>(w), packets = 0, bytes = 0;
            std::uint64_t flow = static_cast<std::uint64_t>(w) << 40;
            while (!stop.load(std::memory_order_relaxed)) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                if (x % 200 == 0) ++flow;  // this worker's flows end and new ones start
                const std::uint64_t len = 64 + x % 1437;
                percore::ScopedTimer t(handling_ns);
                flows.add(flow + x % 8, {1, len});
                packets += 1;
                bytes += len;
            }
            sent_packets.fetch_add(packets);
            sent_bytes.fetch_add(bytes);
        });

    for (int tick = 0; tick < 6; ++tick) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::size_t expired = flows.expire_idle();
        const auto s = handling_ns.snapshot();
        std::printf("live flows %6zu  expired %6zu  handled %9llu  p50 %5llu ns  p99 %6llu ns  p99.9 %7llu ns\n",
                    flows.size(), expired, static_cast<unsigned long long>(s.count()),
                    static_cast<unsigned long long>(s.percentile(50)), static_cast<unsigned long long>(s.percentile(99)),
                    static_cast<unsigned long long>(s.percentile(99.9)));
    }
    stop = true;
    for (auto& t : workers) t.join();

    const auto total = flows.totals();
    const auto retained = flows.retained();
    std::printf("packets %llu (%llu from expired flows), bytes %llu; sent %llu packets, %llu bytes\n",
                static_cast<unsigned long long>(total[0]), static_cast<unsigned long long>(retained[0]),
                static_cast<unsigned long long>(total[1]), static_cast<unsigned long long>(sent_packets.load()),
                static_cast<unsigned long long>(sent_bytes.load()));
    // Prometheus-style cumulative buckets at fixed bounds (ns).
    const std::uint64_t bounds[] = {100, 250, 500, 1000, 10000};
    for (const auto& b : handling_ns.snapshot().cumulative(bounds))
        std::printf("le=%-6llu %llu\n", static_cast<unsigned long long>(b.upper_bound),
                    static_cast<unsigned long long>(b.count));
    return total[0] == sent_packets.load() && total[1] == sent_bytes.load() ? 0 : 1;
}
