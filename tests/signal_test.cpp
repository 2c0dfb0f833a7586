// Signals interrupt updates: with rseq the kernel aborts and restarts the
// sequence, so an add interrupted by a signal, and adds made inside the
// handler, are all counted exactly. (Thread slots use a load and a store,
// which a handler on the same thread could interleave with, so there the
// handler does not touch the counter; see docs/design.md.)
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <thread>
#include <vector>

#include "percore/percore.hpp"
#include "stress_scale.hpp"

namespace {

percore::Counter* g_counter = nullptr;
std::atomic<std::uint64_t> g_signals{0};
bool g_handler_adds = false;

void on_prof(int) {
    g_signals.fetch_add(1, std::memory_order_relaxed);
    if (g_handler_adds) g_counter->add(1000);
}

TEST(Signals, InterruptedUpdatesStayExact) {
    percore::Counter c;
    g_counter = &c;
    g_handler_adds = percore::backend() != percore::Backend::thread && !percore::scramble();
    struct sigaction sa {};
    sa.sa_handler = on_prof;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGPROF, &sa, nullptr), 0);
    itimerval every{{0, 100}, {0, 100}};  // every 100 us of CPU time
    ASSERT_EQ(setitimer(ITIMER_PROF, &every, nullptr), 0);
    const std::uint64_t per = scaled(3'000'000);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            for (std::uint64_t i = 0; i < per; ++i) c.inc();
        });
    for (auto& t : ts) t.join();
    itimerval off{};
    setitimer(ITIMER_PROF, &off, nullptr);
    signal(SIGPROF, SIG_IGN);
    const std::uint64_t sigs = g_signals.load();
    EXPECT_GT(sigs, 0u);
    EXPECT_EQ(c.value(), 4 * per + (g_handler_adds ? 1000 * sigs : 0)) << sigs << " signals";
}

}  // namespace
