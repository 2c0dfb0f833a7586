// Signals interrupt updates: with rseq the kernel aborts and restarts the
// sequence, so an add interrupted by a signal, and adds made inside the
// handler, are all counted exactly. (Thread slots use a load and a store,
// which a handler on the same thread could interleave with, so there the
// handler does not touch the counter; see docs/design.md.)
#include <gtest/gtest.h>

#include <signal.h>
#include <pthread.h>

#include <cstdio>

#include <atomic>
#include <thread>
#include <vector>

#include "percore/percore.hpp"
#include "stress_scale.hpp"

namespace {

percore::Counter* g_counter = nullptr;
std::atomic<std::uint64_t> g_signals{0};
bool g_handler_adds = false;

void on_signal(int) {
    g_signals.fetch_add(1, std::memory_order_relaxed);
    if (g_handler_adds) g_counter->add(1000);
}

// A signaller thread bombards the workers with SIGUSR1 while they count, so
// many signals land inside restartable sequences.
TEST(Signals, InterruptedUpdatesStayExact) {
    percore::Counter c;
    g_counter = &c;
    g_handler_adds = percore::backend() != percore::Backend::thread;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
    const std::uint64_t per = scaled(5'000'000);
    std::atomic<int> running{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&] {
            running.fetch_add(1);
            for (std::uint64_t i = 0; i < per; ++i) c.inc();
        });
    while (running.load() < 4) std::this_thread::yield();
    std::vector<pthread_t> handles;
    for (auto& t : ts) handles.push_back(t.native_handle());
    std::thread signaller([&] {
        while (!done.load()) {
            for (pthread_t h : handles) pthread_kill(h, SIGUSR1);
            std::this_thread::yield();
        }
    });
    for (auto& t : ts) t.join();
    done.store(true);
    signaller.join();
    const std::uint64_t sigs = g_signals.load();
    std::printf("%llu signals delivered during %llu adds\n", static_cast<unsigned long long>(sigs),
                static_cast<unsigned long long>(4 * per));
    EXPECT_GT(sigs, 0u);
    EXPECT_EQ(c.value(), 4 * per + (g_handler_adds ? 1000 * sigs : 0)) << sigs << " signals";
}

}  // namespace
