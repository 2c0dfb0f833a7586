// SPDX-License-Identifier: MIT
// Ucb1 on synthetic rewards (deterministic), the Tuner's loops under an
// injected clock (cadence, guards, the environment, no thread when off),
// and knob changes under 64 writers (WriteBuffer, Accumulator, a running
// Tuner) keeping totals exact.
#include <percore/tuner.hpp>

#include <gtest/gtest.h>
#include <dirent.h>

#include <fstream>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "stress_scale.hpp"

namespace {

// ---- Ucb1 --------------------------------------------------------------------

// Regret of n pulls against arms with these mean rewards, noise +-0.25
// from a fixed seed. Returns the regret at each checkpoint.
std::vector<double> run_bandit(percore::Ucb1& b, const std::vector<double>& means, std::uint64_t n,
                               const std::vector<std::uint64_t>& checkpoints, std::vector<std::size_t>* first = nullptr) {
    std::mt19937_64 rng(12345);
    std::uniform_real_distribution<double> noise(-0.25, 0.25);
    double best = 0;
    for (double m : means) best = std::max(best, m);
    double regret = 0;
    std::vector<double> out;
    std::size_t next = 0;
    for (std::uint64_t i = 1; i <= n; ++i) {
        const std::size_t arm = b.select();
        if (first && first->size() < means.size()) first->push_back(arm);
        b.update(arm, means[arm] + noise(rng));
        regret += best - means[arm];
        if (next < checkpoints.size() && i == checkpoints[next]) {
            out.push_back(regret);
            ++next;
        }
    }
    return out;
}

TEST(Ucb1, TriesEveryArmOnceFirstInOrder) {
    percore::Ucb1 b(5);
    std::vector<std::size_t> first;
    run_bandit(b, {0.1, 0.9, 0.3, 0.5, 0.2}, 5, {}, &first);
    EXPECT_EQ(first, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(b.pulls(i), 1u);
}

TEST(Ucb1, ConvergesOnTheBestArm) {
    const std::vector<double> means{0.2, 0.5, 0.8, 0.45, 0.7};
    percore::Ucb1 b(means.size());
    run_bandit(b, means, 10000, {});
    EXPECT_EQ(b.best(), 2u);
    EXPECT_GT(b.pulls(2), 8000u) << "the best arm should take most pulls";
    for (std::size_t i : {0u, 1u, 3u}) EXPECT_LT(b.pulls(i), 400u) << "arm " << i;
}

TEST(Ucb1, RegretGrowsSublinearly) {
    const std::vector<double> means{0.2, 0.5, 0.8, 0.45, 0.7};
    percore::Ucb1 b(means.size());
    const auto r = run_bandit(b, means, 10000, {100, 1000, 10000});
    ASSERT_EQ(r.size(), 3u);
    // Linear regret would grow 10x per decade; UCB1's O(log n) far less.
    EXPECT_LT(r[2], 3.0 * r[1]) << r[1] << " -> " << r[2];
    EXPECT_LT(r[1], 5.0 * r[0]) << r[0] << " -> " << r[1];
    EXPECT_LT(r[2] / 10000.0, 0.04) << "average regret per pull";
}

TEST(Ucb1, IsDeterministicAndChecksItsInput) {
    const std::vector<double> means{0.3, 0.6, 0.5};
    percore::Ucb1 a(3), b(3);
    run_bandit(a, means, 2000, {});
    run_bandit(b, means, 2000, {});
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(a.pulls(i), b.pulls(i));
    EXPECT_THROW(percore::Ucb1(0), std::invalid_argument);
    EXPECT_THROW(percore::Ucb1(2, -1.0), std::invalid_argument);
    EXPECT_THROW(a.update(3, 1.0), std::out_of_range);
    EXPECT_THROW(a.update(0, NAN), std::invalid_argument);
    // c = 0: pure greedy after the first round.
    percore::Ucb1 g(3, 0.0);
    g.update(g.select(), 1.0);
    g.update(g.select(), 3.0);
    g.update(g.select(), 2.0);
    EXPECT_EQ(g.select(), 1u);
}

// ---- the Tuner under an injected clock ----------------------------------------

struct Fake {
    std::int64_t now = 0, cpu = 0;
    std::uint64_t rss = 100ull << 20;
    std::vector<std::string> log;
    percore::TunerOptions options() {
        percore::TunerOptions o;
        o.thread = false;
        o.log_level = 1;
        o.clock = [this] { return now; };
        o.cpu_clock = [this] { return cpu; };
        o.rss_bytes = [this] { return rss; };
        o.log = [this](std::string_view s) { log.emplace_back(s); };
        return o;
    }
};
constexpr std::int64_t kMs = 1'000'000;

TEST(Tuner, TicksAtTheirCadence) {
    Fake f;
    auto o = f.options();
    o.fast_interval = std::chrono::milliseconds(500);
    o.slow_interval = std::chrono::milliseconds(30000);
    percore::Tuner t(o);
    EXPECT_EQ(t.poll(), 500 * kMs);  // the first poll starts the intervals
    EXPECT_EQ(t.fast_ticks(), 0u);
    f.now = 499 * kMs;
    EXPECT_EQ(t.poll(), 500 * kMs);
    EXPECT_EQ(t.fast_ticks(), 0u);
    f.now = 500 * kMs;
    EXPECT_EQ(t.poll(), 1000 * kMs);
    EXPECT_EQ(t.fast_ticks(), 1u);
    for (int i = 0; i < 200; ++i) {
        f.now += 100 * kMs;
        t.poll();
    }
    // 20.5 s: a tick every 500 ms from 0.5 s.
    EXPECT_EQ(t.fast_ticks(), 41u);
    EXPECT_EQ(t.slow_ticks(), 0u);
    f.now = 30000 * kMs;
    t.poll();
    EXPECT_EQ(t.slow_ticks(), 1u);
    // A late poll ticks once, not once per missed interval.
    f.now = 40000 * kMs;
    const auto before = t.fast_ticks();
    EXPECT_EQ(t.poll(), 40500 * kMs);
    EXPECT_EQ(t.fast_ticks(), before + 1);
}

// A synthetic system: throughput depends on the arm; arm 2 is fastest but
// blows the p99 guard.
struct System {
    Fake f;
    std::uint64_t ops = 0;
    std::size_t arm = 0;
    std::vector<std::size_t> applied;
    percore::Histogram lat;
    std::array<double, 4> rate{1000, 3000, 9000, 2000};  // ops per ms
    std::array<std::uint64_t, 4> p99{1000, 1000, 50000, 1000};
    void advance(std::int64_t ms) {
        f.now += ms * kMs;
        ops += static_cast<std::uint64_t>(rate[arm] * double(ms));
        for (int i = 0; i < 100; ++i) lat.record(p99[arm]);
    }
};

TEST(Tuner, GuardRevertsAndPenalizes) {
    System s;
    auto o = s.f.options();
    o.max_p99_ns = 10000;
    percore::Tuner t(o);
    t.set_operations([&] { return s.ops; });
    t.set_latency(s.lat);
    auto h = t.add_group({"knob", {"v"}, {{10}, {20}, {30}, {40}}, 0, [&](const percore::TunerArm& a) {
                              s.arm = static_cast<std::size_t>(a[0] / 10 - 1);
                              s.applied.push_back(s.arm);
                          }});
    t.poll();
    for (int i = 0; i < 400; ++i) {
        s.advance(100);
        t.poll();
    }
    const auto g = t.groups().at(0);
    EXPECT_GE(g.reverts, 1u);
    // The revert went back to the arm before it, which was safe.
    bool saw = false;
    for (std::size_t i = 1; i < s.applied.size(); ++i)
        if (s.applied[i - 1] == 2) {
            EXPECT_NE(s.applied[i], 2u);
            saw = true;
        }
    EXPECT_TRUE(saw) << "arm 2 was never tried";
    bool logged = false;
    for (const auto& l : s.f.log) logged = logged || l.rfind("[percore-ace] guard p99", 0) == 0;
    EXPECT_TRUE(logged);
    // Penalized: arm 1, the fastest safe one, wins; arm 2 is left alone.
    EXPECT_EQ(g.best, 1u);
    EXPECT_EQ(g.current, 1u);
    EXPECT_LT(g.pulls[2], g.pulls[1] / 4);
}

TEST(Tuner, RssGuardAndCpuGuard) {
    System s;
    auto o = s.f.options();
    o.max_rss_mb = 500;
    o.max_cpu_percent = 1;
    o.slow_interval = std::chrono::milliseconds(2000);
    percore::Tuner t(o);
    t.set_operations([&] { return s.ops; });
    auto h = t.add_group({"knob", {"v"}, {{10}, {20}, {30}, {40}}, 0, [&](const percore::TunerArm& a) {
                              s.arm = static_cast<std::size_t>(a[0] / 10 - 1);
                              // Arm 2 takes memory.
                              s.f.rss = (s.arm == 2 ? 900ull : 100ull) << 20;
                          }});
    t.poll();
    for (int i = 0; i < 100; ++i) {
        s.advance(100);
        t.poll();
    }
    EXPECT_GE(t.groups().at(0).reverts, 1u);
    // CPU guard: 5% of a slow interval spent by the controller doubles the
    // fast interval.
    const auto before = t.fast_interval();
    s.f.cpu += 100 * kMs;
    s.advance(2000);
    t.poll();
    EXPECT_EQ(t.fast_interval(), before * 2);
}

TEST(Tuner, EveryArmOnceThenTheBest) {
    System s;
    s.rate = {1000, 1500, 4000, 900};
    percore::Tuner t(s.f.options());
    t.set_operations([&] { return s.ops; });
    auto h = t.add_group({"knob", {"v"}, {{10}, {20}, {30}, {40}}, 0,
                          [&](const percore::TunerArm& a) { s.arm = static_cast<std::size_t>(a[0] / 10 - 1); }});
    t.poll();
    std::vector<std::size_t> seen;
    for (int i = 0; i < 200; ++i) {
        seen.push_back(s.arm);
        s.advance(500);
        t.poll();
    }
    EXPECT_EQ(std::vector<std::size_t>(seen.begin(), seen.begin() + 4), (std::vector<std::size_t>{0, 1, 2, 3}));
    EXPECT_EQ(t.groups().at(0).best, 2u);
    int on_best = 0;
    for (std::size_t i = 100; i < 200; ++i) on_best += seen[i] == 2;
    EXPECT_GT(on_best, 80);
    ASSERT_TRUE(t.last_tick());
    EXPECT_NEAR(t.last_tick()->throughput, 4000.0 * 1000, 1.0);
}

TEST(Tuner, HandleUnregisters) {
    Fake f;
    percore::Tuner t(f.options());
    int applied = 0;
    {
        auto h = t.add_group({"k", {"v"}, {{1}, {2}}, 0, [&](const percore::TunerArm&) { ++applied; }});
        EXPECT_EQ(t.groups().size(), 1u);
    }
    EXPECT_TRUE(t.groups().empty());
    t.poll();
    f.now += 10'000 * kMs;
    t.poll();
    EXPECT_EQ(applied, 0);
    EXPECT_THROW(t.add_group({"k", {"v"}, {}, 0, [](const percore::TunerArm&) {}}), std::invalid_argument);
    EXPECT_THROW(t.add_group({"k", {"v"}, {{1, 2}}, 0, [](const percore::TunerArm&) {}}), std::invalid_argument);
}

// Threads of this process named "percore-ace" (the tuner's thread).
int tuner_threads() {
    int n = 0;
    if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
            std::string name;
            std::getline(comm, name);
            n += name == "percore-ace";
        }
        closedir(d);
    }
    return n;
}

TEST(Tuner, OffStartsNoThread) {
    ::unsetenv("PERCORE_ACE_ENABLED");
    EXPECT_EQ(percore::ace(), nullptr);
    EXPECT_EQ(tuner_threads(), 0);
    Fake f;
    percore::Tuner t(f.options());  // thread = false
    t.start();
    EXPECT_FALSE(t.running());
    EXPECT_EQ(tuner_threads(), 0);
    // A Tuner with a thread has one (named, so this test can tell it from
    // a sanitizer's), and stops it.
    percore::TunerOptions o;
    o.fast_interval = std::chrono::milliseconds(1);
    percore::Tuner on(o);
    on.start();
    EXPECT_TRUE(on.running());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (tuner_threads() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // it names itself when it runs
    EXPECT_EQ(tuner_threads(), 1);
    on.stop();
    EXPECT_FALSE(on.running());
    EXPECT_EQ(tuner_threads(), 0);
}

TEST(Tuner, EnvironmentWithBadValues) {
    ::setenv("PERCORE_ACE_ENABLED", "1", 1);
    ::setenv("PERCORE_ACE_FAST_INTERVAL_MS", "250", 1);
    ::setenv("PERCORE_ACE_SLOW_INTERVAL_MS", "soon", 1);
    ::setenv("PERCORE_ACE_LOG_LEVEL", "7", 1);
    ::setenv("PERCORE_ACE_MAX_RSS_MB", "512", 1);
    ::setenv("PERCORE_ACE_MAX_P99_LAT_NS", "-3", 1);
    ::setenv("PERCORE_ACE_MAX_CPU_PERCENT", "2.5", 1);
    std::vector<std::string> warnings;
    bool on = false;
    const auto o = percore::TunerOptions::from_env(&on, [&](std::string_view s) { warnings.emplace_back(s); });
    EXPECT_TRUE(on);
    EXPECT_EQ(o.fast_interval.count(), 250);
    EXPECT_EQ(o.slow_interval.count(), 30000);
    EXPECT_EQ(o.log_level, 0);
    EXPECT_EQ(o.max_rss_mb, 512u);
    EXPECT_EQ(o.max_p99_ns, 0u);
    EXPECT_DOUBLE_EQ(o.max_cpu_percent, 2.5);
    ASSERT_EQ(warnings.size(), 3u);
    EXPECT_NE(warnings[0].find("PERCORE_ACE_SLOW_INTERVAL_MS=soon"), std::string::npos);
    for (const auto& w : warnings) {
        EXPECT_EQ(w.rfind("[percore-ace] ", 0), 0u) << w;
        EXPECT_EQ(w.find('\n'), std::string::npos);
    }
    for (const char* v : {"PERCORE_ACE_ENABLED", "PERCORE_ACE_FAST_INTERVAL_MS", "PERCORE_ACE_SLOW_INTERVAL_MS",
                          "PERCORE_ACE_LOG_LEVEL", "PERCORE_ACE_MAX_RSS_MB", "PERCORE_ACE_MAX_P99_LAT_NS",
                          "PERCORE_ACE_MAX_CPU_PERCENT"})
        ::unsetenv(v);
}

// ---- knob changes under 64 writers ---------------------------------------------

constexpr int kWriters = 64;

TEST(KnobChanges, WriteBufferStaysExact) {
    percore::Spinlock lock;
    std::array<std::uint64_t, 8> counters{};
    percore::WriteBuffer wb(lock, {64, 48, 4});
    wb.instrument(true);
    const std::uint64_t per = scaled(100000);
    std::atomic<bool> done{false};
    std::thread changer([&] {
        std::mt19937 rng(7);
        const std::uint32_t caps[] = {1, 2, 16, 64, 256, 2048};
        while (!done.load(std::memory_order_relaxed)) {
            const std::uint32_t c = caps[rng() % 6];
            wb.set_config({c, 1 + static_cast<std::uint32_t>(rng() % c), 1 + static_cast<std::uint32_t>(rng() % 8)});
            if (rng() % 4 == 0) wb.flush_all();
            (void)wb.oldest_pending_ns();
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> ws;
    for (int w = 0; w < kWriters; ++w)
        ws.emplace_back([&, w] {
            for (std::uint64_t i = 0; i < per; ++i) {
                if (i % 3 == 0) {
                    wb.schedule_add({{&counters[w % 8], 1}, {&counters[(w + 1) % 8], 2}, {&counters[(w + 2) % 8], 3}});
                } else {
                    wb.schedule_add(&counters[w % 8], 1);
                }
                if (i % 64 == 0) wb.hint_flush();
            }
        });
    for (auto& t : ws) t.join();
    done = true;
    changer.join();
    wb.flush_all();
    std::uint64_t total = 0;
    std::lock_guard g(lock);
    for (auto c : counters) total += c;
    const std::uint64_t tx = (per + 2) / 3;
    EXPECT_EQ(total, kWriters * ((per - tx) + tx * 6));
    EXPECT_EQ(wb.applied(), kWriters * ((per - tx) + tx * 3));
    EXPECT_EQ(wb.pending_all(), 0u);
    EXPECT_EQ(wb.oldest_pending_ns(), 0);
}

TEST(KnobChanges, AccumulatorStaysExact) {
    std::atomic<std::uint64_t> n{0}, sum{0};
    percore::Accumulator<std::uint64_t> acc(
        [&](std::vector<std::uint64_t>&& b) {
            n += b.size();
            std::uint64_t s = 0;
            for (auto v : b) s += v;
            sum += s;
        },
        {.batch_size = 64, .max_delay = std::chrono::microseconds(200)});
    const std::uint64_t per = scaled(20000);
    std::atomic<bool> done{false};
    std::thread changer([&] {
        std::mt19937 rng(9);
        while (!done.load(std::memory_order_relaxed)) {
            acc.set_batch_size(1 + rng() % 512);
            acc.set_max_delay(std::chrono::microseconds(1 + rng() % 2000));
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> ws;
    for (int w = 0; w < kWriters; ++w)
        ws.emplace_back([&, w] {
            for (std::uint64_t i = 0; i < per; ++i) acc.add(static_cast<std::uint64_t>(w) * per + i);
        });
    for (auto& t : ws) t.join();
    done = true;
    changer.join();
    acc.flush();
    const std::uint64_t total = kWriters * per;
    EXPECT_EQ(n.load(), total);
    EXPECT_EQ(sum.load(), total * (total - 1) / 2);
}

// A real Tuner thread moving every knob, 1 ms apart, while 64 writers run.
TEST(KnobChanges, RunningTunerStaysExact) {
    percore::Spinlock lock;
    std::uint64_t counter = 0;
    percore::WriteBuffer wb(lock, {64, 48, 2});
    std::atomic<std::uint64_t> delivered{0};
    percore::Accumulator<std::uint32_t> acc([&](std::vector<std::uint32_t>&& b) { delivered += b.size(); },
                                            {.batch_size = 128, .max_delay = std::chrono::milliseconds(1)});
    percore::Sharded<std::atomic<std::uint64_t>> cells;
    percore::TunerOptions o;
    o.fast_interval = std::chrono::milliseconds(1);
    o.exploration = 50;  // keep moving
    percore::Tuner t(o);
    auto h1 = t.tune(wb, {{1, 1, 1}, {16, 12, 1}, {256, 192, 4}, {2048, 1536, 8}});
    auto h2 = t.tune(acc, {{1, 1}, {64, 100}, {4096, 5000}});
    auto h3 = t.tune_shard_cap(cells);
    t.start();
    const std::uint64_t per = scaled(20000);
    std::vector<std::thread> ws;
    for (int w = 0; w < kWriters; ++w)
        ws.emplace_back([&] {
            for (std::uint64_t i = 0; i < per; ++i) {
                wb.schedule_add(&counter, 1);
                acc.add(1);
                cells.get_or_create([](percore::ShardInfo) { return 0; }).fetch_add(1, std::memory_order_relaxed);
                if (i % 32 == 0) wb.hint_flush();
            }
        });
    for (auto& th : ws) th.join();
    // Wait (deadline 60 s) until the controller has moved each group.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto moved_all = [&] {  // every group that has a choice (one shard: the cap has one arm)
        for (const auto& g : t.groups())
            if (g.arms.size() > 1 && g.changes == 0) return false;
        return true;
    };
    while (!moved_all() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(moved_all());
    t.stop();
    wb.flush_all();
    acc.flush();
    {
        std::lock_guard g(lock);
        EXPECT_EQ(counter, kWriters * per);
    }
    EXPECT_EQ(delivered.load(), kWriters * per);
    std::uint64_t c = 0;
    cells.for_each([&](std::atomic<std::uint64_t>& x) { c += x.load(); });
    EXPECT_EQ(c, kWriters * per);
    EXPECT_GT(t.fast_ticks(), 0u);
}

}  // namespace
