// SPDX-License-Identifier: MIT
// percore/shard.hpp - which shard the calling thread should use.
//
// A shard is a dense index below max_shards(). With Linux restartable
// sequences (registered by glibc >= 2.35) it is the current CPU: the
// per-process concurrency id `mm_cid` where the kernel provides it (>= 6.3;
// a process allowed 4 of 256 CPUs uses indices 0..3), else `cpu_id`. Without
// rseq it is a per-thread slot, handed back when the thread exits and reused
// by the next one. Asking costs two loads from the thread's rseq area (rseq)
// or one TLS load (thread); the answer may be stale by the time it is used,
// so it is a hint for placement, never a lock.
//
// The backend is chosen once per process, at the first use of percore:
//   PERCORE_BACKEND=auto|rseq|rseq-mm_cid|rseq-cpu_id|thread   (the names
//       backend_name() prints, plus rseq and auto; empty or unset is auto:
//       rseq if glibc registered it, preferring mm_cid; a forced backend that
//       is not available falls back with one line on stderr)
//   PERCORE_MAX_SHARDS=N    bound on indices, 1..65536 (default: possible
//       CPUs with rseq, 4 x CPUs (min 8) for thread slots; a larger value is
//       lowered to 65536, a malformed one ignored, each with one line)
//   PERCORE_SCRAMBLE=1      test mode, see set_scramble()
//
// ShardInfo::node is the NUMA node (percore/numa.hpp) the caller was running
// on when it asked (struct rseq's node_id, else getcpu(2)). How much it says
// about the shard depends on where the index comes from:
//   rseq-cpu_id  a shard is a CPU, and a CPU never changes node: exact. (For
//                an element of a Sharded<T> it is that CPU's node from
//                sysfs, whoever created it; with max_shards below the CPU
//                count, shards fold several CPUs, possibly of several nodes,
//                and it is again the creator's node.)
//   rseq-mm_cid  a concurrency id follows threads, not CPUs: the kernel hands
//                a process's ids out without regard to nodes, so the same id
//                may run on node 0 now and node 1 later. Only a hint.
//   thread       a slot follows its thread wherever it is scheduled: a hint.
// On a single-node machine it is always 0.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <cstddef>
#include <cstdint>

#include "percore/detail/identity.hpp"
#include "percore/numa.hpp"

namespace percore {

// percore::Backend (rseq_mm_cid, rseq_cpu_id, thread) says where shard
// indices come from; it is fixed for the life of the process.

struct ShardInfo {
    std::size_t index;       // < max_shards()
    std::uint32_t node = 0;  // NUMA node, < numa_nodes(); see above
};

inline Backend backend() noexcept { return detail::identity().backend; }

// "rseq-mm_cid", "rseq-cpu_id" or "thread".
inline const char* backend_name() noexcept { return detail::backend_name(detail::identity().backend); }

// Exclusive bound on ShardInfo::index, and the number of per-shard rows of
// the default Arena.
inline std::size_t max_shards() noexcept { return detail::identity().max_shards; }

// The caller's shard and the node it runs on: a few loads from the rseq
// area (or a TLS load and, without rseq, a vDSO getcpu call).
inline ShardInfo current_shard() noexcept { return ShardInfo{detail::current_index(), current_node()}; }

// Test mode: current_shard() (hence Sharded<T>, ShardAtomic) returns 0 half
// of the time and a random index the other half, so code that assumes two
// calls return the same shard fails in tests. Counter updates are not
// affected: they never depend on a stable mapping.
inline void set_scramble(bool on) noexcept { detail::set_scramble(on); }
inline bool scramble() noexcept { return detail::identity().scramble.load(std::memory_order_relaxed); }

}  // namespace percore
