// SPDX-License-Identifier: MIT
// percore/percore.hpp - everything in the core, for those who want one include.
#pragma once

#include "percore/detail/cxx20.hpp"

#include "percore/arena.hpp"
#include "percore/counter.hpp"
#include "percore/counter_group.hpp"
#include "percore/minmax.hpp"
#include "percore/shard.hpp"
#include "percore/shard_atomic.hpp"
#include "percore/sharded.hpp"
#include "percore/sharded_ring.hpp"
#include "percore/shared_mutex.hpp"
