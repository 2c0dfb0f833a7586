// SPDX-License-Identifier: MIT
// percore/numa.hpp - NUMA nodes: of CPUs, of the calling thread, of memory.
//
// What ShardInfo::node and Sharded<T>'s node placement are made of, public
// because a program that places its own data wants the same answers. Linux
// only, no libnuma: the topology comes from sysfs, the calling thread's node
// from the rseq area (struct rseq's node_id, filled by kernels >= 6.3) or
// getcpu(2), and placement is the mbind(2) system call.
//
//   numa_nodes()          highest online node + 1 (1 on a machine without
//                         NUMA, or where sysfs does not say)
//   cpu_node(cpu)         the node of a CPU, from /sys/devices/system/cpu
//   current_node()        the node the caller runs on now: one load from the
//                         rseq area (or a vDSO getcpu call without rseq). A
//                         hint, like current_shard(): the thread may migrate
//                         right after.
//   memory_node(p)        the node holding the page at p (get_mempolicy), or
//                         -1 when the kernel will not say (seccomp, no page)
//   prefer_node(p, n, k)  asks the kernel to allocate the pages of [p, p+n)
//                         on node k (mbind MPOL_PREFERRED: another node when
//                         k is full, never a failed allocation). Only pages
//                         not yet touched are affected. false when refused
//                         (e.g. a container's seccomp filter without
//                         CAP_SYS_NICE); first touch then decides, as usual.
//
// The topology is read once, at the first call, and cached: CPUs and nodes
// brought online later are reported as node 0.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <dirent.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "percore/detail/identity.hpp"

namespace percore {

namespace detail {

// Parses a sysfs list ("0-3,8,10-11") into its members.
inline std::vector<std::uint32_t> parse_cpu_list(const char* s) {
    std::vector<std::uint32_t> out;
    while (*s != '\0' && *s != '\n') {
        char* end = nullptr;
        const unsigned long a = std::strtoul(s, &end, 10);
        if (end == s) break;
        unsigned long b = a;
        s = end;
        if (*s == '-') {
            b = std::strtoul(s + 1, &end, 10);
            s = end;
        }
        for (unsigned long v = a; v <= b && v < (1ul << 20); ++v) out.push_back(static_cast<std::uint32_t>(v));
        if (*s == ',') ++s;
    }
    return out;
}

inline std::string read_small_file(const char* path) {
    std::string out;
    if (std::FILE* f = std::fopen(path, "r")) {
        char buf[4096];
        const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        out.assign(buf, n);
        std::fclose(f);
    }
    return out;
}

struct Topology {
    std::uint32_t nodes = 1;
    std::vector<std::uint32_t> cpu_node;  // indexed by CPU number
};

inline Topology read_topology() {
    Topology t;
    const int conf = get_nprocs_conf();
    t.cpu_node.assign(conf > 0 ? static_cast<std::size_t>(conf) : 1, 0);
    const std::string online = read_small_file("/sys/devices/system/node/online");
    for (std::uint32_t node : parse_cpu_list(online.c_str())) {
        if (node + 1 > t.nodes) t.nodes = node + 1;
        char path[96];
        std::snprintf(path, sizeof path, "/sys/devices/system/node/node%u/cpulist", node);
        const std::string cpus = read_small_file(path);
        for (std::uint32_t cpu : parse_cpu_list(cpus.c_str())) {
            if (cpu >= t.cpu_node.size()) t.cpu_node.resize(cpu + 1, 0);
            t.cpu_node[cpu] = node;
        }
    }
    return t;
}

inline const Topology& topology() {
    static const Topology* t = new Topology(read_topology());  // never destroyed: used by exiting threads
    return *t;
}

}  // namespace detail

inline std::uint32_t numa_nodes() { return detail::topology().nodes; }

inline std::uint32_t cpu_node(std::uint32_t cpu) {
    const auto& t = detail::topology();
    return cpu < t.cpu_node.size() ? t.cpu_node[cpu] : 0;
}

inline std::uint32_t current_node() noexcept {
    const detail::Identity& id = detail::identity();
    if (id.have_node_id) {
        const int n = arch::rseq_index<arch::RseqField::node_id>(id.rseq_offset);
        if (n >= 0) return static_cast<std::uint32_t>(n);
    }
    unsigned cpu = 0, node = 0;
    if (::getcpu(&cpu, &node) != 0) return 0;
    return node;
}

inline int memory_node(const void* addr) noexcept {
    int node = -1;
    if (::syscall(SYS_get_mempolicy, &node, nullptr, 0ul, const_cast<void*>(addr), MPOL_F_NODE | MPOL_F_ADDR) != 0)
        return -1;
    return node;
}

// addr must be page-aligned.
inline bool prefer_node(void* addr, std::size_t len, std::uint32_t node) noexcept {
    constexpr std::size_t kBits = 8 * sizeof(unsigned long);
    if (node >= 4096) return false;
    unsigned long mask[4096 / kBits] = {};
    mask[node / kBits] = 1ul << (node % kBits);
    const unsigned long words = node / kBits + 1;
    // maxnode counts bits; the kernel has long ignored the last one, so ask
    // for one more than the mask holds (as libnuma does).
    return ::syscall(SYS_mbind, addr, len, MPOL_PREFERRED, mask, words * kBits + 1, 0u) == 0;
}

}  // namespace percore
