// SPDX-License-Identifier: MIT
// Worker threads count packets and bytes per protocol on the fast path; a
// control thread reads totals and rates every 100 ms and finally resets.
#include <percore/percore.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

enum Proto { tcp, udp, icmp, other, kProtos };
const char* kNames[kProtos] = {"tcp", "udp", "icmp", "other"};

struct Stats {
    std::array<percore::CounterGroup<2>, kProtos> by_proto;  // {packets, bytes}
    percore::MaxGauge largest;
};

}  // namespace

int main() {
    Stats stats;
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    const int n_workers = 4;
    std::atomic<std::uint64_t> sent{0};
    for (int w = 0; w < n_workers; ++w)
        workers.emplace_back([&, w] {
            std::uint64_t x = 88172645463325252ull + w, mine = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                const int proto = static_cast<int>(x % 10 < 6 ? tcp : x % 10 < 9 ? udp : x % 100 < 95 ? icmp : other);
                const std::uint64_t len = 64 + (x >> 20) % 1437;
                stats.by_proto[proto].add({1, len});
                stats.largest.update(static_cast<std::int64_t>(len));
                ++mine;
            }
            sent.fetch_add(mine);
        });

    std::uint64_t last = 0;
    for (int tick = 0; tick < 5; ++tick) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::uint64_t total = 0;
        for (auto& g : stats.by_proto) total += g.value(0);
        std::printf("t=%3d ms  packets=%10llu  rate=%6.1f Mpps\n", (tick + 1) * 100,
                    static_cast<unsigned long long>(total), (total - last) / 0.1 / 1e6);
        last = total;
    }
    stop = true;
    for (auto& t : workers) t.join();

    std::uint64_t total = 0;
    for (int p = 0; p < kProtos; ++p) {
        auto v = stats.by_proto[p].reset();
        total += v[0];
        std::printf("%-6s packets=%10llu bytes=%13llu\n", kNames[p], static_cast<unsigned long long>(v[0]),
                    static_cast<unsigned long long>(v[1]));
    }
    std::printf("largest packet %lld bytes; counted %llu of %llu sent\n",
                static_cast<long long>(stats.largest.value().value_or(0)), static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(sent.load()));
    return total == sent.load() ? 0 : 1;
}
