// SPDX-License-Identifier: MIT
// Sharded<T> as an order-independent accumulator: threads append results to
// their shard's batch (a lock that is almost never contended), and a final
// walk collects every batch. Nothing is lost, whichever shards were used.
#include <percore/sharded.hpp>

#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Batch {
    std::mutex mu;
    std::vector<int> items;
};

}  // namespace

int main() {
    percore::Sharded<Batch> batches;
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 10000; ++i) {
                Batch& b = batches.get_or_create([](percore::ShardInfo) { return Batch{}; });
                std::lock_guard lk(b.mu);
                b.items.push_back(t * 10000 + i);
            }
        });
    for (auto& t : ts) t.join();
    long long sum = 0;
    std::size_t n = 0, shards = 0;
    batches.for_each_locked([&](Batch& b) {
        ++shards;
        n += b.items.size();
        for (int v : b.items) sum += v;
    });
    const long long want = 80000LL * 79999 / 2;
    std::printf("%zu items in %zu shard batches, sum %lld (expected %lld)\n", n, shards, sum, want);
    return (n == 80000 && sum == want) ? 0 : 1;
}
