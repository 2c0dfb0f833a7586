// SPDX-License-Identifier: MIT
// percore/detail/identity.hpp - process-wide shard identity (internal).
//
// One Identity per process, filled once by init_identity() before the first
// shard is handed out and read on every update afterwards. Its fields are
// written before any Arena exists and every Arena constructor goes through
// identity(), so a thread that can see an Arena sees them initialized
// (happens-before through the function-local static's guard). `scramble`
// changes later, hence the relaxed atomic; `mode` is atomic only so that a
// benchmark can switch paths between runs.
#pragma once

#include <sys/auxv.h>
#include <sys/rseq.h>
#include <sys/sysinfo.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

#include "percore/arch/rseq.hpp"
#include "percore/detail/thread_slot.hpp"

namespace percore {

enum class Backend : std::uint8_t { rseq_mm_cid, rseq_cpu_id, thread };

}  // namespace percore

namespace percore::detail {

// The update path in force. rseq_* differ only in the index field read.
enum class Mode : std::uint8_t { rseq_mm_cid, rseq_cpu_id, thread };

struct Identity {
    std::atomic<Mode> mode{Mode::thread};
    Backend backend = Backend::thread;
    std::atomic<bool> scramble{false};
    std::uint32_t max_shards = 1;
    long rseq_offset = 0;       // glibc's __rseq_offset (set whenever glibc registered rseq)
    bool have_node_id = false;  // the kernel fills struct rseq's node_id
};

// constinit: usable from other translation units' static initializers.
alignas(64) constinit inline Identity g_identity{};

inline const char* backend_name(Backend b) noexcept {
    switch (b) {
        case Backend::rseq_mm_cid: return "rseq-mm_cid";
        case Backend::rseq_cpu_id: return "rseq-cpu_id";
        case Backend::thread: return "thread";
    }
    return "?";
}

// vm.overcommit_memory = 2: the kernel charges every writable private
// mapping, MAP_NORESERVE or not, against its commit limit.
inline bool strict_overcommit() {
    static const bool strict = [] {
        int mode = 0;
        if (std::FILE* f = std::fopen("/proc/sys/vm/overcommit_memory", "r")) {
            if (std::fscanf(f, "%d", &mode) != 1) mode = 0;
            std::fclose(f);
        }
        return mode == 2;
    }();
    return strict;
}

// The most shards an Arena may have. Each Arena reserves (shards + 2) x 64
// MiB of address space; at 65536 that is 4 TiB, so a process still fits
// dozens of Arenas in x86-64's 128 TiB of user address space.
inline constexpr std::uint32_t kMaxShards = 65536;

// Under strict overcommit (vm.overcommit_memory = 2) an Arena commits each
// row with mprotect, which costs two kernel memory maps per row; the
// process has vm.max_map_count of them in all. Keep one Arena at an eighth.
inline std::uint32_t map_budget_shards() {
    if (!strict_overcommit()) return kMaxShards;
    long maps = 65530;  // the kernel's default
    if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
        if (std::fscanf(f, "%ld", &maps) != 1) maps = 65530;
        std::fclose(f);
    }
    const long n = maps / 16;
    return n < 8 ? 8 : (n > long{kMaxShards} ? kMaxShards : static_cast<std::uint32_t>(n));
}

// PERCORE_MAX_SHARDS: an integer in 1..65536. Anything else gets one line on
// stderr and the default; a value this machine cannot map (strict
// overcommit) is lowered, with one line, never fatal.
inline std::uint32_t env_max_shards(std::uint32_t dflt) {
    const std::uint32_t budget = map_budget_shards();
    if (dflt > budget) dflt = budget;
    const char* v = std::getenv("PERCORE_MAX_SHARDS");
    if (v == nullptr || *v == '\0') return dflt;
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v, &end, 10);
    if (*end != '\0' || x == 0 || errno == ERANGE || v[0] == '-' || v[0] == '+' || v[0] == ' ') {
        std::fprintf(stderr, "percore: ignoring PERCORE_MAX_SHARDS=%s (want an integer in 1..%u); using %u\n", v,
                     kMaxShards, dflt);
        return dflt;
    }
    if (x > kMaxShards) {
        const std::uint32_t use = budget < kMaxShards ? budget : kMaxShards;
        std::fprintf(stderr, "percore: PERCORE_MAX_SHARDS=%s is above %u; using %u\n", v, kMaxShards, use);
        return use;
    }
    if (x > budget) {
        std::fprintf(stderr,
                     "percore: PERCORE_MAX_SHARDS=%s needs more memory maps than vm.max_map_count allows under "
                     "strict overcommit; using %u\n",
                     v, budget);
        return budget;
    }
    return static_cast<std::uint32_t>(x);
}

inline void init_identity(Identity& id) {
    const std::uint32_t cpus = static_cast<std::uint32_t>(get_nprocs_conf() > 0 ? get_nprocs_conf() : 1);
    // PERCORE_BACKEND takes the names backend_name() prints, plus "rseq" (the
    // best rseq index) and "auto"; empty means auto.
    const char* env = std::getenv("PERCORE_BACKEND");
    std::string_view want = env != nullptr && *env != '\0' ? env : "auto";
    if (want != "auto" && want != "rseq" && want != "rseq-mm_cid" && want != "rseq-cpu_id" && want != "thread") {
        std::fprintf(stderr,
                     "percore: unknown PERCORE_BACKEND=%.*s (want auto, rseq, rseq-mm_cid, rseq-cpu_id or thread); "
                     "using auto\n",
                     int(want.size()), want.data());
        want = "auto";
    }
    // glibc sets __rseq_size to 0 when it did not register (old kernel,
    // glibc.pthread.rseq=0 tunable, or running under valgrind).
    const bool have_rseq = __rseq_size >= 20;
    // mm_cid sits at offset 24; the kernel fills it when its feature size
    // (AT_RSEQ_FEATURE_SIZE, 27) covers it.
    const bool have_cid = have_rseq && getauxval(27) >= 28;
    // node_id sits at offset 20 and is filled when the feature size reaches 24.
    // Read by current_node() under every backend, so recorded whenever glibc
    // registered rseq.
    id.have_node_id = have_rseq && getauxval(27) >= 24;
    if (have_rseq) id.rseq_offset = __rseq_offset;
    if (want.starts_with("rseq") && !have_rseq) {
        std::fprintf(stderr, "percore: PERCORE_BACKEND=%.*s but rseq is not registered; using thread\n",
                     int(want.size()), want.data());
    } else if (want == "rseq-mm_cid" && !have_cid) {
        std::fprintf(stderr, "percore: PERCORE_BACKEND=rseq-mm_cid but this kernel has no mm_cid; using rseq-cpu_id\n");
    }
    if (want != "thread" && have_rseq) {
        id.backend = (have_cid && want != "rseq-cpu_id") ? Backend::rseq_mm_cid : Backend::rseq_cpu_id;
        id.mode.store(id.backend == Backend::rseq_mm_cid ? Mode::rseq_mm_cid : Mode::rseq_cpu_id,
                      std::memory_order_relaxed);
        id.rseq_offset = __rseq_offset;
        id.max_shards = env_max_shards(cpus);
    } else {
        id.backend = Backend::thread;
        id.mode.store(Mode::thread, std::memory_order_relaxed);
        id.max_shards = env_max_shards(cpus * 4 < 8 ? 8 : cpus * 4);
    }
    const char* scr = std::getenv("PERCORE_SCRAMBLE");
    id.scramble.store(scr != nullptr && *scr != '\0' && *scr != '0', std::memory_order_relaxed);
}

inline Identity& identity() {
    static const bool done = (init_identity(g_identity), true);
    (void)done;
    return g_identity;
}

inline void set_scramble(bool on) noexcept {
    identity().scramble.store(on, std::memory_order_relaxed);
}

// Cheap per-thread xorshift for scramble mode. Constant-initialized and
// seeded on first use, so no guard variable (which would not be
// initial-exec) sits on the update path.
inline std::uint64_t scramble_random() noexcept {
    PERCORE_TLS_INITIAL_EXEC static thread_local std::uint64_t x = 0;
    if (x == 0) [[unlikely]]
        x = 0x9e3779b97f4a7c15ull ^ reinterpret_cast<std::uintptr_t>(&x);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

// The rseq index of the calling thread (-1 if not registered).
inline int rseq_index(const Identity& id) noexcept {
    return id.mode.load(std::memory_order_relaxed) == Mode::rseq_mm_cid
               ? arch::rseq_index<arch::RseqField::mm_cid>(id.rseq_offset)
               : arch::rseq_index<arch::RseqField::cpu_id>(id.rseq_offset);
}

// Index for current_shard(): always < max_shards.
inline std::size_t current_index() noexcept {
    Identity& id = identity();
    const std::uint32_t n = id.max_shards;
    if (id.scramble.load(std::memory_order_relaxed)) {
        const std::uint64_t r = scramble_random();
        return (r & 1) ? 0 : (r >> 1) % n;
    }
    if (id.mode.load(std::memory_order_relaxed) == Mode::thread) {
        std::uint32_t s = tl_slot;
        if (s == 0) s = claim_thread_slot();
        return s == kRetired ? 0 : (s - 1) % n;
    }
    const int i = rseq_index(id);
    return i < 0 ? 0 : static_cast<std::uint32_t>(i) % n;
}

}  // namespace percore::detail
