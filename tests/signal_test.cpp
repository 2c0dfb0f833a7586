// SPDX-License-Identifier: MIT
// Signals interrupt updates: with rseq the kernel aborts and restarts the
// sequence, so an add interrupted by a signal, and adds made inside the
// handler, are all counted exactly. (Thread slots use a load and a store,
// which a handler on the same thread could interleave with, so there the
// handler does not touch the counter; see docs/design.md.)
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "percore/percore.hpp"

namespace {

percore::Counter* g_counter = nullptr;
std::atomic<std::uint64_t> g_signals{0};
bool g_handler_adds = false;
// How many times the handler ran on this thread: the worker's handshake.
thread_local volatile sig_atomic_t t_handled = 0;

void on_signal(int) {
    t_handled = t_handled + 1;
    g_signals.fetch_add(1, std::memory_order_relaxed);
    if (g_handler_adds) g_counter->add(1000);
}

// A signaller bombards the workers with SIGUSR1 while they count, so many
// signals land inside restartable sequences. The workers do not run a fixed
// amount of work (which can finish before the first signal on a loaded
// machine): each counts until its own handler has run kSignals times. It
// then blocks SIGUSR1, so later signals stay pending and are discarded at
// exit, and the signaller stops before any worker is joined, so it never
// names a thread that no longer exists.
TEST(Signals, InterruptedUpdatesStayExact) {
    constexpr int kWorkers = 4;
    constexpr sig_atomic_t kSignals = 50;
    percore::Counter c;
    g_counter = &c;
    g_signals = 0;
    g_handler_adds = percore::backend() != percore::Backend::thread;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);

    // A broken build must fail, not hang: workers give up after this.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::atomic<std::uint64_t> adds{0};
    std::atomic<int> started{0}, finished{0};
    std::vector<std::atomic<bool>> done(kWorkers);
    std::vector<std::thread> ts;
    for (int t = 0; t < kWorkers; ++t)
        ts.emplace_back([&, t] {
            started.fetch_add(1);
            std::uint64_t n = 0;
            while (t_handled < kSignals) {
                for (int i = 0; i < 1000; ++i) c.inc();
                n += 1000;
                if (std::chrono::steady_clock::now() > deadline) break;
            }
            sigset_t block;
            sigemptyset(&block);
            sigaddset(&block, SIGUSR1);
            pthread_sigmask(SIG_BLOCK, &block, nullptr);
            adds.fetch_add(n);
            done[t].store(true);
            finished.fetch_add(1);
            EXPECT_GE(t_handled, kSignals) << "worker " << t << " timed out";
        });
    while (started.load() < kWorkers) std::this_thread::yield();
    std::vector<pthread_t> handles;
    for (auto& t : ts) handles.push_back(t.native_handle());
    std::atomic<bool> stop{false};
    std::thread signaller([&] {
        while (!stop.load()) {
            for (int t = 0; t < kWorkers; ++t)
                if (!done[t].load()) pthread_kill(handles[t], SIGUSR1);
            std::this_thread::yield();
        }
    });
    while (finished.load() < kWorkers) std::this_thread::yield();
    stop.store(true);
    signaller.join();  // no pthread_kill after this point...
    for (auto& t : ts) t.join();  // ...so joining cannot race with one

    const std::uint64_t sigs = g_signals.load();
    std::printf("[          ] %llu signals delivered during %llu adds\n",
                static_cast<unsigned long long>(sigs), static_cast<unsigned long long>(adds.load()));
    EXPECT_GE(sigs, static_cast<std::uint64_t>(kWorkers * kSignals));
    EXPECT_EQ(c.value(), adds.load() + (g_handler_adds ? 1000 * sigs : 0)) << sigs << " signals";
}

}  // namespace
