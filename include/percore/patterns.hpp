// SPDX-License-Identifier: MIT
// percore/patterns.hpp - the statistics synchronization patterns, for those
// who want one include. They follow the "Statistics" chapter of the DPDK
// Programmer's Guide (Mattias Roennblom, Ericsson, 2022), which compares the
// ways a data plane can keep counters; each is a template on the user's
// stats struct (patterns/stats_layout.hpp) with the same interface:
// add(field, n), update([](auto& tx) { tx.add(field, n); ... }), read(),
// read(field), reset(). Choose by cost and guarantee:
//
//   SharedAtomic     exact; one lock add per update; line ping-pong
//   SharedLocked     exact, transactional; one lock per update; worst scaling
//   BufferedStats    exact, transactional, shared memory; per-core buffers
//                    amortize the lock (WriteBuffer); delayed visibility
//   PerCoreStats     exact, cheapest (percore::Counter path); no group view
//   PerCoreSeqcount  exact; readers see whole group updates (retrying)
//   PerCoreLocked    exact; per-row locks; readers never retry; reset in place
//   SnapshotStats    exact; snapshots are cuts across all shards
//
// The chapter's seventh, a shared struct with no synchronization at all,
// loses updates; percore-bench keeps it (tools/bench/shared_unsync.hpp) only
// to measure what it loses.
#pragma once

#include "percore/detail/cxx20.hpp"

#include "percore/patterns/buffered_stats.hpp"
#include "percore/patterns/per_core_locked.hpp"
#include "percore/patterns/per_core_seqcount.hpp"
#include "percore/patterns/per_core_stats.hpp"
#include "percore/patterns/shared_atomic.hpp"
#include "percore/patterns/shared_locked.hpp"
#include "percore/patterns/snapshot_stats.hpp"
#include "percore/patterns/stats_layout.hpp"
#include "percore/patterns/write_buffer.hpp"
#include "percore/spinlock.hpp"
