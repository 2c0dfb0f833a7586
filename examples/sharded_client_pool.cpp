// SPDX-License-Identifier: MIT
// A sharded RPC client pool, the "RPC clients" use case of the Go
// percpu.Sharded proposal (golang/go#18802):
//   - percore::LeastLoaded picks, per request, the backend with the fewest
//     requests in flight (counted per CPU, so picking contends on nothing);
//   - each backend's connections are a percore::Sharded<Connection> capped
//     with set_max_shards(2): a CPU's requests share its shard's connection,
//     dialed on first use, and however many CPUs send, no backend gets more
//     than two connections from this client (grpc.ShardedClient(2) in the
//     proposal's words).
// The workers are asynchronous clients: each keeps up to 8 requests in
// flight. One backend is ten times slower; least-loaded routing sends it
// fewer requests because they stay in flight longer. (LeastLoaded's default,
// local view counts the requests acquired on the caller's own CPU, which is
// enough when each CPU has requests in flight, as here; a caller that
// waits for each request before sending the next sees only its own empty
// row and should ask for LoadView::global.)
#include <percore/least_loaded.hpp>
#include <percore/sharded.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// One multiplexed connection (think HTTP/2 or gRPC): requests on it
// overlap, each on a stream of its own; the reply arrives a round trip
// later.
struct Connection {
    Connection(const std::string& addr, std::size_t shard) : addr(addr), shard(shard) {}
    Connection(const Connection&) = delete;
    Clock::time_point send(std::chrono::microseconds latency) {
        next_stream.fetch_add(1, std::memory_order_relaxed);
        return Clock::now() + latency;
    }
    std::string addr;
    std::size_t shard;
    std::atomic<std::uint64_t> next_stream{0};
};

struct Backend {
    Backend(std::string a, std::chrono::microseconds l, std::size_t max_conns) : addr(std::move(a)), latency(l) {
        conns.set_max_shards(max_conns);  // at most this many connections, whatever the CPU count
    }
    Backend(const Backend&) = delete;
    // Sends a request on this CPU's connection; returns when the reply is due.
    Clock::time_point send() {
        Connection& c = conns.get_or_create([&](percore::ShardInfo s) {
            dials.fetch_add(1, std::memory_order_relaxed);  // dial: once per shard, ever
            return Connection(addr, s.index);
        });
        served.fetch_add(1, std::memory_order_relaxed);
        return c.send(latency);
    }
    std::string addr;
    std::chrono::microseconds latency;
    percore::Sharded<Connection> conns;
    std::atomic<std::uint64_t> dials{0}, served{0};
};

}  // namespace

int main() {
    const std::size_t max_conns = 2;
    percore::LeastLoaded<Backend> pool(3, [&](std::size_t i) {
        return Backend("10.0.0." + std::to_string(i + 1) + ":443", std::chrono::microseconds(i == 2 ? 1000 : 100),
                       max_conns);
    });
    const int workers = 8, per = 1000;
    const std::size_t window = 8;
    std::vector<std::thread> ts;
    for (int w = 0; w < workers; ++w)
        ts.emplace_back([&] {
            struct Pending {
                percore::LeastLoaded<Backend>::Guard backend;  // releases when the reply is in
                Clock::time_point due;
            };
            std::vector<Pending> in_flight;
            int sent = 0;
            while (sent < per || !in_flight.empty()) {
                while (sent < per && in_flight.size() < window) {
                    auto backend = pool.acquire();  // least requests in flight
                    const auto due = backend->send();
                    in_flight.push_back({std::move(backend), due});
                    ++sent;
                }
                // Wait for the next reply, then complete every reply that is in.
                auto next = std::min_element(in_flight.begin(), in_flight.end(),
                                             [](const Pending& a, const Pending& b) { return a.due < b.due; });
                std::this_thread::sleep_until(next->due);
                const auto now = Clock::now();
                std::erase_if(in_flight, [&](const Pending& p) { return p.due <= now; });
            }
        });
    for (auto& t : ts) t.join();

    std::uint64_t total = 0;
    bool ok = true;
    for (std::size_t i = 0; i < pool.size(); ++i) {
        Backend& b = pool[i];
        std::size_t conns = 0;
        b.conns.for_each([&](Connection&) { ++conns; });
        std::printf("%s  latency %4lld us  served %5llu  connections %zu (dialed %llu)  in flight %lld\n",
                    b.addr.c_str(), (long long)b.latency.count(), (unsigned long long)b.served.load(), conns,
                    (unsigned long long)b.dials.load(), (long long)pool.in_flight(i));
        total += b.served.load();
        ok = ok && conns <= max_conns && b.dials.load() == conns && pool.in_flight(i) == 0;
    }
    const std::uint64_t slow = pool[2].served.load();
    const bool routed = slow < pool[0].served.load() && slow < pool[1].served.load();
    std::printf("%llu requests (expected %d); the slow backend got %s\n", (unsigned long long)total, workers * per,
                routed ? "the fewest" : "NOT the fewest");
    return ok && routed && total == static_cast<std::uint64_t>(workers * per) ? 0 : 1;
}
