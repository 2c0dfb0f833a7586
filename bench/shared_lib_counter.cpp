// SPDX-License-Identifier: MIT
// The library half of shared_lib_bench: percore updates made from inside a
// shared library. bench/CMakeLists.txt builds it twice, as
// libpercore_shlib_ie.so (percore's default, initial-exec TLS) and as
// libpercore_shlib_gd.so (PERCORE_NO_INITIAL_EXEC_TLS: global-dynamic, the
// compiler's default for -fPIC), with a prefix on the exported names so that
// one program can link both and compare them in one run.
#include <cstdint>

#include "percore/percore.hpp"

#define PERCORE_SHLIB_CAT2(a, b) a##b
#define PERCORE_SHLIB_CAT(a, b) PERCORE_SHLIB_CAT2(a, b)
#define PERCORE_SHLIB_FN(name) PERCORE_SHLIB_CAT(PERCORE_SHLIB_PREFIX, name)

namespace {
percore::Counter events;
}  // namespace

extern "C" {

// A library counting its own events: one update per call from outside.
void PERCORE_SHLIB_FN(add_once)() { events.add(1); }

// The same call without the update, to show the cost of the call itself.
void PERCORE_SHLIB_FN(noop)() {}

// n updates in one call, no call per update. (GCC 12 does not hoist the
// __tls_get_addr call of the global-dynamic model out of this loop.)
void PERCORE_SHLIB_FN(add_loop)(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) events.add(1);
}

std::uint64_t PERCORE_SHLIB_FN(value)() { return events.value(); }

const char* PERCORE_SHLIB_FN(backend)() { return percore::backend_name(); }

}  // extern "C"
