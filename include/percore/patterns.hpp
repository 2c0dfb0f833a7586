// percore/patterns.hpp - the seven statistics patterns of seed 001, plus
// cross-shard snapshots, for those who want one include. Each is a template
// on the user's stats struct (stats_layout.hpp) with the same interface:
// add(field, n), update([](auto& tx) { tx.add(field, n); ... }), read(),
// read(field), reset(). Choose by cost and guarantee:
//
//   SharedUnsync     broken: loses updates under contention (for comparison)
//   SharedAtomic     exact; one lock add per update; line ping-pong
//   SharedLocked     exact, transactional; one lock per update; worst scaling
//   BufferedStats    exact, transactional, shared memory; per-core buffers
//                    amortize the lock (WriteBuffer); delayed visibility
//   PerCoreStats     exact, cheapest (percore::Counter path); no group view
//   PerCoreSeqcount  exact; readers see whole group updates (retrying)
//   PerCoreLocked    exact; per-row locks; readers never retry; reset in place
//   SnapshotStats    exact; snapshots are cuts across all shards
#pragma once

#include "percore/buffered_stats.hpp"
#include "percore/per_core_locked.hpp"
#include "percore/per_core_stats.hpp"
#include "percore/seqcount.hpp"
#include "percore/shared_atomic.hpp"
#include "percore/shared_locked.hpp"
#include "percore/shared_unsync.hpp"
#include "percore/snapshot.hpp"
#include "percore/spinlock.hpp"
#include "percore/stats_layout.hpp"
#include "percore/write_buffer.hpp"
