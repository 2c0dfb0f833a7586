// SPDX-License-Identifier: MIT
// NUMA: ShardInfo::node is a node this machine has (sysfs), and the node
// getcpu(2) reports for the CPU the thread is pinned to; the rseq fields
// percore reads match the rseq area; Sharded<T> with Placement::numa_node
// keeps every Sharded guarantee, and its elements' pages are on the node
// recorded for their shard (where the kernel lets us ask).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/rseq.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "percore/accumulator.hpp"
#include "percore/least_loaded.hpp"
#include "percore/sharded.hpp"
#include "stress_scale.hpp"

namespace {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &set)) cpus.push_back(i);
    return cpus;
}

// Runs fn(cpu) on a thread pinned to each allowed CPU in turn.
template <class F>
void on_each_cpu(F&& fn) {
    for (int cpu : allowed_cpus()) {
        std::thread t([&] {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            ASSERT_EQ(sched_setaffinity(0, sizeof set, &set), 0);
            fn(cpu);
        });
        t.join();
    }
}

// The online nodes, parsed here independently of percore.
std::set<std::uint32_t> online_nodes() {
    std::set<std::uint32_t> nodes;
    std::ifstream f("/sys/devices/system/node/online");
    std::string s;
    if (!std::getline(f, s)) return {0};
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t end = s.find(',', pos);
        if (end == std::string::npos) end = s.size();
        const std::string part = s.substr(pos, end - pos);
        const std::size_t dash = part.find('-');
        const unsigned a = std::stoul(part.substr(0, dash));
        const unsigned b = dash == std::string::npos ? a : std::stoul(part.substr(dash + 1));
        for (unsigned v = a; v <= b; ++v) nodes.insert(v);
        pos = end + 1;
    }
    return nodes;
}

TEST(Numa, TopologyMatchesSysfs) {
    const auto nodes = online_nodes();
    ASSERT_FALSE(nodes.empty());
    EXPECT_EQ(percore::numa_nodes(), *nodes.rbegin() + 1);
    for (int cpu : allowed_cpus()) {
        const std::uint32_t node = percore::cpu_node(static_cast<std::uint32_t>(cpu));
        EXPECT_TRUE(nodes.count(node)) << "cpu " << cpu;
        // sysfs links each CPU to its node: cpuN/nodeM.
        const std::string link = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/node" + std::to_string(node);
        if (std::filesystem::exists("/sys/devices/system/node/node0")) {
            EXPECT_TRUE(std::filesystem::exists(link)) << link;
        }
    }
}

TEST(Numa, CurrentNodeIsTheCpusNode) {
    const auto nodes = online_nodes();
    on_each_cpu([&](int cpu) {
        unsigned c = 0, node = 0;
        ASSERT_EQ(getcpu(&c, &node), 0);
        EXPECT_EQ(static_cast<int>(c), cpu);
        EXPECT_EQ(percore::current_node(), node);
        EXPECT_EQ(percore::cpu_node(static_cast<std::uint32_t>(cpu)), node);
        const percore::ShardInfo s = percore::current_shard();
        EXPECT_LT(s.index, percore::max_shards());
        EXPECT_EQ(s.node, node);
        EXPECT_TRUE(nodes.count(s.node));
        EXPECT_LT(s.node, percore::numa_nodes());
    });
}

// The fields percore reads with inline assembly equal a plain read of the
// thread's rseq area (a regression test: the index load once reused the
// offset's register for cpu_id and read the thread control block).
TEST(Numa, RseqFieldsMatchTheArea) {
    const auto& id = percore::detail::identity();
    if (__rseq_size < 20) {
        EXPECT_FALSE(id.have_node_id);  // no rseq: getcpu() answers (checked above)
        return;
    }
    on_each_cpu([&](int cpu) {
        const auto* area = static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset;
        auto field = [&](int off) {
            return std::atomic_ref<const int>(*reinterpret_cast<const int*>(area + off)).load();
        };
        using percore::arch::RseqField;
        EXPECT_EQ(percore::arch::rseq_index<RseqField::cpu_id>(__rseq_offset), cpu);
        EXPECT_EQ(percore::arch::rseq_index<RseqField::cpu_id>(__rseq_offset), field(4));
        if (getauxval(27) >= 28) {
            EXPECT_EQ(percore::arch::rseq_index<RseqField::mm_cid>(__rseq_offset), field(24));
        }
        if (id.have_node_id) {
            unsigned c = 0, node = 0;
            ASSERT_EQ(getcpu(&c, &node), 0);
            EXPECT_EQ(percore::arch::rseq_index<RseqField::node_id>(__rseq_offset), static_cast<int>(node));
        }
        if (percore::backend() == percore::Backend::rseq_cpu_id && !percore::scramble()) {
            EXPECT_EQ(percore::current_shard().index, static_cast<std::size_t>(cpu) % percore::max_shards());
        }
    });
}

struct Cell {
    explicit Cell(percore::ShardInfo i) : info(i) {}
    Cell(const Cell&) = delete;
    percore::ShardInfo info;
    std::atomic<std::uint64_t> n{0};
    char pad[200];
};

// Placement changes where a T lives, nothing else: concurrent creation,
// one creation per index, every increment found, and the node a T was
// made for is the one for_each_shard reports and (if the kernel says) the
// one its page is on.
TEST(Numa, PlacedShardedKeepsItsGuarantees) {
    for (percore::Placement p : {percore::Placement::heap, percore::Placement::numa_node}) {
        percore::Sharded<Cell> s(0, p);
        EXPECT_EQ(s.placement(), p);
        std::atomic<int> creations{0};
        const int threads = 32;
        const std::uint64_t per = scaled(20000);
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&] {
                for (std::uint64_t i = 0; i < per; ++i)
                    s.get_or_create([&](percore::ShardInfo info) {
                         creations.fetch_add(1);
                         return Cell(info);
                     }).n.fetch_add(1, std::memory_order_relaxed);
            });
        for (auto& t : ts) t.join();
        std::uint64_t total = 0;
        int visited = 0;
        const auto nodes = online_nodes();
        s.for_each_shard([&](percore::ShardInfo info, Cell& c) {
            ++visited;
            total += c.n.load();
            EXPECT_EQ(info.index, c.info.index);
            EXPECT_EQ(info.node, c.info.node);
            EXPECT_TRUE(nodes.count(info.node));
            if (percore::backend() == percore::Backend::rseq_cpu_id && !percore::scramble()) {
                EXPECT_EQ(info.node, percore::cpu_node(static_cast<std::uint32_t>(info.index)));
            }
            if (p == percore::Placement::numa_node) {
                EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&c) % percore::detail::page_size(), 0u);
                const int on = percore::memory_node(&c);
                if (on >= 0) {
                    EXPECT_EQ(static_cast<std::uint32_t>(on), info.node);
                }
            }
        });
        EXPECT_EQ(visited, creations.load());
        EXPECT_EQ(total, threads * per);
    }
}

// A T bigger than a page, and one aligned beyond a page (left to the heap).
TEST(Numa, PlacementOfLargeAndOveralignedTypes) {
    struct Big {
        char bytes[3 * 4096 + 100];
    };
    struct alignas(8192) Huge {
        int v = 0;
    };
    percore::Sharded<Big> big(0, percore::Placement::numa_node);
    Big& b = big.get_or_create([](percore::ShardInfo) { return Big{}; });
    for (char& c : b.bytes) c = 1;
    percore::Sharded<Huge> huge(0, percore::Placement::numa_node);
    Huge& h = huge.get_or_create([](percore::ShardInfo) { return Huge{}; });
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&h) % 8192, 0u);
    h.v = 1;
}

TEST(Numa, PreferNodeAndMemoryNode) {
    const std::size_t pg = percore::detail::page_size();
    void* p = ::mmap(nullptr, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    const std::uint32_t node = percore::current_node();
    const bool bound = percore::prefer_node(p, pg, node);
    static_cast<volatile char*>(p)[0] = 1;
    const int on = percore::memory_node(p);
    if (bound && on >= 0) {
        EXPECT_EQ(static_cast<std::uint32_t>(on), node);
    }
    EXPECT_FALSE(percore::prefer_node(p, pg, 5000));  // beyond any node mask
    ::munmap(p, pg);
    std::printf("[ info ] mbind %s, get_mempolicy %s\n", bound ? "allowed" : "refused",
                on >= 0 ? "allowed" : "refused");
}

// The structures built on Sharded take the placement too.
TEST(Numa, StructuresWithPlacement) {
    std::atomic<int> got{0};
    {
        percore::Accumulator<int> acc([&](std::vector<int>&& b) { got += static_cast<int>(b.size()); },
                                      {.batch_size = 7, .placement = percore::Placement::numa_node});
        for (int i = 0; i < 100; ++i) acc.add(i);
    }
    EXPECT_EQ(got.load(), 100);
    percore::LeastLoaded<int> pool(3, [](std::size_t i) { return static_cast<int>(i); },
                                   {.placement = percore::Placement::numa_node});
    auto g = pool.acquire();
    EXPECT_EQ(pool.in_flight(g.index()), 1);
}

}  // namespace
