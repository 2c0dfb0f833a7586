// SPDX-License-Identifier: MIT
// Forced migrations for the stress tests: pin_to(k) moves the calling
// thread to the k-th CPU it may use (mod their count), so its next update
// runs there; unpin() gives it back every CPU the process started with.
#pragma once

#include <sched.h>

namespace percore::test {

inline bool pin_to(unsigned k) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
    const int n = CPU_COUNT(&allowed);
    if (n <= 0) return false;
    int want = static_cast<int>(k % static_cast<unsigned>(n));
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (want-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            return sched_setaffinity(0, sizeof one, &one) == 0;
        }
    }
    return false;
}

// The CPUs the process started with (read before main, before any pin).
inline cpu_set_t& initial_cpus() {
    static cpu_set_t all = [] {
        cpu_set_t s;
        CPU_ZERO(&s);
        sched_getaffinity(0, sizeof s, &s);
        return s;
    }();
    return all;
}
inline const bool kInitialCpusSaved = (initial_cpus(), true);

inline void unpin() { sched_setaffinity(0, sizeof(cpu_set_t), &initial_cpus()); }

}  // namespace percore::test
