// SPDX-License-Identifier: MIT
// Deterministic aborts. This binary is built with PERCORE_RSEQ_INJECT, so
// every instruction boundary of the x86-64 restartable sequences, and every
// step of the seqcount writer, is a numbered point (arch/rseq_inject.hpp).
// Before each update a thread selects one point; when the update reaches it,
// the point sends SIGUSR1 to the thread itself, and delivering the signal on
// the way back to user space makes the kernel abort the sequence, which
// restarts from arming. Each point is run from more threads than CPUs, and
// the totals must stay exact. With rseq, every update in which the point
// fired must also have run the abort handler: that proves the point lies
// inside the critical section and that the restart commits exactly once.
// (A sched_yield at the point aborts only when the kernel actually switches
// to another task, so it is not deterministic; a signal always is.)
//
// The seqcount writer has no sequence (claim CAS, plain adds, release
// store), so its points only interrupt it: a signal, or a sched_yield that
// lets the other writers and a reader run while the row is claimed or half
// updated. There the test proves that each point was reached, that totals
// are exact and that the reader only ever sees whole groups.
//
// Thread slots run no sequence: the rseq points never fire, and the test
// checks only the totals.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "percore/patterns/per_core_seqcount.hpp"
#include "percore/percore.hpp"
#include "percore/sharded_ring.hpp"
#include "percore/shared_mutex.hpp"
#include "stress_scale.hpp"

#ifndef PERCORE_RSEQ_INJECT
#error "rseq_inject_test needs PERCORE_RSEQ_INJECT (tests/CMakeLists.txt)"
#endif

namespace {

namespace pa = percore::arch;
using Clock = std::chrono::steady_clock;

// The handler only has to exist (the default action would end the process):
// delivering the signal is what aborts the sequence.
void on_signal(int) {}

void install_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
}

enum class How { signal, yield };
void PrintTo(How h, std::ostream* os) { *os << (h == How::signal ? "signal" : "sched_yield"); }

// What the calling thread's points do when they fire.
void arm(How how) {
    pa::RseqInject& s = pa::tl_rseq_inject;
    if (how == How::signal) {
        s.nr = SYS_tgkill;
        s.a0 = getpid();
        s.a1 = gettid();
        s.a2 = SIGUSR1;
    } else {
        s.nr = SYS_sched_yield;
        s.a0 = s.a1 = s.a2 = 0;
    }
}

bool rseq_in_use() { return percore::backend() != percore::Backend::thread; }

// Points of a sequence in the backend in force (thread slots run none; any
// count will do there).
std::uint32_t add_points() {
    return percore::backend() == percore::Backend::rseq_cpu_id ? pa::kRseqAddPoints<pa::RseqField::cpu_id>
                                                               : pa::kRseqAddPoints<pa::RseqField::mm_cid>;
}
std::uint32_t ring_push_points() {
    return percore::backend() == percore::Backend::rseq_cpu_id ? pa::kRseqRingPushPoints<pa::RseqField::cpu_id>
                                                               : pa::kRseqRingPushPoints<pa::RseqField::mm_cid>;
}
std::uint32_t add2_points() {
    return percore::backend() == percore::Backend::rseq_cpu_id ? pa::kRseqAdd2Points<pa::RseqField::cpu_id>
                                                               : pa::kRseqAdd2Points<pa::RseqField::mm_cid>;
}

// More threads than CPUs, so that preempted writers and the seqcount reader
// interleave with the injected ones.
unsigned workers() { return std::thread::hardware_concurrency() + 4; }

struct Tally {
    std::atomic<std::uint64_t> updates{0};
    std::atomic<std::uint64_t> fired{0};    // updates in which the point fired
    std::atomic<std::uint64_t> aborted{0};  // ...and an abort handler ran during the update
    bool timed_out = false;
};

// Runs update(thread, i) from workers() threads, each update with point `id`
// selected. Each thread does at least `min_updates`; while `want_fired` is
// set, threads go on until the point has fired that often in all, since a
// point behind an index check fires only on threads whose index is in range
// (PERCORE_MAX_SHARDS=1). A deadline turns a hang into a failure.
void run_point(std::uint32_t id, How how, std::uint64_t min_updates, std::uint64_t want_fired, Tally& tally,
               const std::function<void(unsigned, std::uint64_t)>& update) {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    std::atomic<bool> late{false};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < workers(); ++t)
        ts.emplace_back([&, t] {
            arm(how);
            pa::RseqInject& s = pa::tl_rseq_inject;
            std::uint64_t aborted = 0, i = 0;
            for (;; ++i) {
                if (i >= min_updates && tally.fired.load(std::memory_order_relaxed) >= want_fired) break;
                if ((i & 63) == 0 && Clock::now() > deadline) {
                    late.store(true);
                    break;
                }
                const std::uint64_t f0 = s.fired, a0 = s.aborts;
                s.point = id;
                update(t, i);
                if (s.fired != f0) {
                    aborted += s.aborts != a0;
                    tally.fired.fetch_add(1, std::memory_order_relaxed);
                } else {
                    s.point = 0;  // not reached: this update left the sequence before it
                }
            }
            tally.updates.fetch_add(i);
            tally.aborted.fetch_add(aborted);
        });
    for (auto& t : ts) t.join();
    tally.timed_out = late.load();
}

std::string name(std::uint32_t id) {
    static const char* const sites[] = {"?", "add", "add2", "seqcount", "add_at", "add_if", "ring_push"};
    return std::string(sites[std::min<std::uint32_t>(id >> 8, 6)]) + " point " + std::to_string(id & 0xff);
}

// The checks for one rseq point: fired often enough and aborted every time.
void expect_aborts(std::uint32_t id, const Tally& t, std::uint64_t want_fired) {
    EXPECT_FALSE(t.timed_out) << name(id) << ": deadline passed";
    if (!rseq_in_use()) {
        EXPECT_EQ(t.fired.load(), 0u) << name(id) << ": thread slots run no sequence";
        return;
    }
    EXPECT_GE(t.fired.load(), want_fired) << name(id);
    EXPECT_EQ(t.aborted.load(), t.fired.load()) << name(id) << ": an injected signal did not abort the sequence";
}

// One past the last point of a sequence must never fire: the point counts
// in arch/rseq_x86_64.hpp match the asm.
void expect_silent(std::uint32_t id, const std::function<void()>& update) {
    pa::RseqInject& s = pa::tl_rseq_inject;
    arm(How::signal);
    const std::uint64_t f0 = s.fired;
    for (int i = 0; i < 100; ++i) {
        s.point = id;
        update();
    }
    s.point = 0;
    EXPECT_EQ(s.fired, f0) << name(id) << " should not exist";
}

void report(const char* what, std::uint32_t points, std::uint64_t updates, std::uint64_t fired,
            std::uint64_t aborted) {
    std::printf("[          ] %s: %u points, %llu updates, %llu fired, %llu aborted (%s)\n", what, points,
                static_cast<unsigned long long>(updates), static_cast<unsigned long long>(fired),
                static_cast<unsigned long long>(aborted), percore::backend_name());
    if (!rseq_in_use())
        std::printf("[          ] thread backend: no restartable sequences; abort counts not asserted\n");
}

std::uint64_t value_of(unsigned t, std::uint64_t i) { return 1 + (t * 7 + i) % 13; }

const std::uint64_t kMinUpdates = scaled(500);
const std::uint64_t kWantFired = scaled(300);
// Thread slots run no sequence, so there the rseq points never fire.
std::uint64_t rseq_want_fired() { return rseq_in_use() ? kWantFired : 0; }

TEST(RseqInject, CounterAddAbortsAtEveryPoint) {
    install_handler();
    const std::uint32_t n = add_points();
    std::uint64_t updates = 0, fired = 0, aborted = 0;
    for (std::uint32_t k = 1; k <= n; ++k) {
        const std::uint32_t id = pa::inject_id(pa::InjectSite::add, k);
        percore::Counter c;
        std::atomic<std::uint64_t> want{0};
        Tally t;
        run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned th, std::uint64_t i) {
            c.add(value_of(th, i));
            want.fetch_add(value_of(th, i), std::memory_order_relaxed);
        });
        EXPECT_EQ(c.value(), want.load()) << name(id);
        expect_aborts(id, t, kWantFired);
        updates += t.updates;
        fired += t.fired;
        aborted += t.aborted;
    }
    percore::Counter c;
    expect_silent(pa::inject_id(pa::InjectSite::add, n + 1), [&] { c.add(1); });
    EXPECT_EQ(c.value(), 100u);
    report("Counter::add", n, updates, fired, aborted);
}

// CounterGroup<2> commits its pair with one sequence (add2).
TEST(RseqInject, GroupPairAbortsAtEveryPoint) {
    install_handler();
    const std::uint32_t n = add2_points();
    std::uint64_t updates = 0, fired = 0, aborted = 0;
    for (std::uint32_t k = 1; k <= n; ++k) {
        const std::uint32_t id = pa::inject_id(pa::InjectSite::add2, k);
        percore::CounterGroup<2> g;
        std::atomic<std::uint64_t> want0{0}, want1{0};
        Tally t;
        run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned th, std::uint64_t i) {
            const std::uint64_t v = value_of(th, i);
            g.add({v, 1000 * v + th});
            want0.fetch_add(v, std::memory_order_relaxed);
            want1.fetch_add(1000 * v + th, std::memory_order_relaxed);
        });
        EXPECT_EQ(g.value(0), want0.load()) << name(id);
        EXPECT_EQ(g.value(1), want1.load()) << name(id);
        expect_aborts(id, t, kWantFired);
        updates += t.updates;
        fired += t.fired;
        aborted += t.aborted;
    }
    percore::CounterGroup<2> g;
    expect_silent(pa::inject_id(pa::InjectSite::add2, n + 1), [&] { g.add({1, 2}); });
    EXPECT_EQ(g.values(), (percore::CounterGroup<2>::Values{100, 200}));
    report("CounterGroup<2> pair", n, updates, fired, aborted);
}

// CounterGroup<3>: a pair sequence, then a single-word one for the odd
// counter. Each site is injected on its own, the other runs undisturbed.
TEST(RseqInject, GroupOfThreeAbortsAtEveryPointOfBothSequences) {
    install_handler();
    for (pa::InjectSite site : {pa::InjectSite::add2, pa::InjectSite::add}) {
        const std::uint32_t n = site == pa::InjectSite::add2 ? add2_points() : add_points();
        std::uint64_t updates = 0, fired = 0, aborted = 0;
        for (std::uint32_t k = 1; k <= n; ++k) {
            const std::uint32_t id = pa::inject_id(site, k);
            percore::CounterGroup<3> g;
            std::array<std::atomic<std::uint64_t>, 3> want{};
            Tally t;
            run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned th, std::uint64_t i) {
                const std::uint64_t v = value_of(th, i);
                g.add({v, 1000 * v + th, v * v});
                want[0].fetch_add(v, std::memory_order_relaxed);
                want[1].fetch_add(1000 * v + th, std::memory_order_relaxed);
                want[2].fetch_add(v * v, std::memory_order_relaxed);
            });
            for (std::size_t j = 0; j < 3; ++j) EXPECT_EQ(g.value(j), want[j].load()) << name(id) << " word " << j;
            expect_aborts(id, t, kWantFired);
            updates += t.updates;
            fired += t.fired;
            aborted += t.aborted;
        }
        report(site == pa::InjectSite::add2 ? "CounterGroup<3> pair" : "CounterGroup<3> odd word", n, updates,
               fired, aborted);
    }
}

// The seqcount writer: claim (points 1, 2), adds (3, 4, 5), release (6).
// Each update adds (v, 2v, 1), so a whole-group total has word 1 = 2 x
// word 0; a reader runs throughout and checks that.
class SeqcountInject : public ::testing::TestWithParam<How> {};

TEST_P(SeqcountInject, WriterStaysExactAndWholeAtEveryStep) {
    install_handler();
    using A = std::array<std::uint64_t, 3>;
    const auto f0 = percore::field_at<A>(0), f1 = percore::field_at<A>(1), f2 = percore::field_at<A>(2);
    std::uint64_t updates = 0, fired = 0, reads = 0;
    for (std::uint32_t k = 1; k <= pa::kSeqcountPoints; ++k) {
        const std::uint32_t id = pa::inject_id(pa::InjectSite::seqcount, k);
        percore::PerCoreSeqcount<A> st;
        std::atomic<std::uint64_t> want{0}, count{0};
        std::atomic<bool> done{false};
        std::atomic<std::uint64_t> torn{0}, nreads{0};
        std::thread reader([&] {
            while (!done.load()) {
                const A s = st.read();
                if (s[1] != 2 * s[0]) torn.fetch_add(1);
                nreads.fetch_add(1, std::memory_order_relaxed);
            }
        });
        Tally t;
        run_point(id, GetParam(), kMinUpdates, kWantFired, t, [&](unsigned th, std::uint64_t i) {
            const std::uint64_t v = value_of(th, i);
            st.update([&](auto& tx) {
                tx.add(f0, v);
                tx.add(f1, 2 * v);
                tx.add(f2, 1);
            });
            want.fetch_add(v, std::memory_order_relaxed);
            count.fetch_add(1, std::memory_order_relaxed);
        });
        done.store(true);
        reader.join();
        EXPECT_FALSE(t.timed_out) << name(id) << ": deadline passed";
        EXPECT_EQ(st.read(), (A{want.load(), 2 * want.load(), count.load()})) << name(id);
        EXPECT_EQ(torn.load(), 0u) << name(id) << ": a reader saw part of a group";
        // Not a sequence: every backend reaches every step.
        EXPECT_GE(t.fired.load(), kWantFired) << name(id);
        updates += t.updates;
        fired += t.fired;
        reads += nreads;
    }
    std::printf("[          ] seqcount writer (%s): %u points, %llu updates, %llu fired, %llu reads\n",
                GetParam() == How::signal ? "signal" : "sched_yield", pa::kSeqcountPoints,
                static_cast<unsigned long long>(updates), static_cast<unsigned long long>(fired),
                static_cast<unsigned long long>(reads));
}

// ShardedRing's push: lookup, cached-tail check, tail refresh (taken when
// the cached tail says full), slot address, item store, commit. A consumer
// drains throughout; the rings are small (8 slots) so the refresh path runs
// every few pushes. Exactly once: counts and two checksums of the accepted
// items against those of the consumed ones; refusals match the drops.
TEST(RseqInject, RingPushAbortsAtEveryPoint) {
    install_handler();
    const std::uint32_t n = ring_push_points();
    std::uint64_t updates = 0, fired = 0, aborted = 0;
    auto mix = [](std::uint64_t v) {
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdull;
        return v ^ (v >> 29);
    };
    for (std::uint32_t k = 1; k <= n; ++k) {
        const std::uint32_t id = pa::inject_id(pa::InjectSite::ring_push, k);
        percore::ShardedRing<std::uint64_t> ring(8);
        std::atomic<std::uint64_t> ok{0}, refused{0}, sum{0}, hash{0};
        std::atomic<bool> done{false};
        std::uint64_t got = 0, got_sum = 0, got_hash = 0;
        auto take = [&](std::uint64_t v) {
            ++got;
            got_sum += v;
            got_hash += mix(v);
        };
        std::thread consumer([&] {
            while (!done.load()) {
                if (ring.drain(take) == 0) std::this_thread::yield();
            }
        });
        Tally t;
        run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned th, std::uint64_t i) {
            const std::uint64_t v = std::uint64_t{th} << 40 | i;
            if (ring.try_push(v)) {
                ok.fetch_add(1, std::memory_order_relaxed);
                sum.fetch_add(v, std::memory_order_relaxed);
                hash.fetch_add(mix(v), std::memory_order_relaxed);
            } else {
                refused.fetch_add(1, std::memory_order_relaxed);
                std::this_thread::yield();
            }
        });
        done.store(true);
        consumer.join();
        ring.drain(take);
        EXPECT_EQ(got, ok.load()) << name(id);
        EXPECT_EQ(got_sum, sum.load()) << name(id);
        EXPECT_EQ(got_hash, hash.load()) << name(id);
        EXPECT_EQ(ring.drops(), refused.load()) << name(id);
        expect_aborts(id, t, kWantFired);
        updates += t.updates;
        fired += t.fired;
        aborted += t.aborted;
    }
    percore::ShardedRing<std::uint64_t> ring(1024);
    expect_silent(pa::inject_id(pa::InjectSite::ring_push, n + 1), [&] { ring.try_push(1); });
    EXPECT_EQ(ring.drain([](std::uint64_t) {}), 100u);
    report("ShardedRing push", n, updates, fired, aborted);
}

// 16-byte items: the same sequence with a vector store.
TEST(RseqInject, RingPushOfPairsAbortsAtEveryPoint) {
    install_handler();
    struct P {
        std::uint64_t a, b;
    };
    const std::uint32_t n = ring_push_points();
    std::uint64_t updates = 0, fired = 0, aborted = 0;
    for (std::uint32_t k = 1; k <= n; ++k) {
        const std::uint32_t id = pa::inject_id(pa::InjectSite::ring_push, k);
        percore::ShardedRing<P> ring(8);
        std::atomic<std::uint64_t> ok{0}, sum{0};
        std::atomic<bool> done{false};
        std::uint64_t got = 0, got_sum = 0, bad = 0;
        auto take = [&](P p) {
            ++got;
            got_sum += p.a;
            bad += p.b != ~p.a;
        };
        std::thread consumer([&] {
            while (!done.load())
                if (ring.drain(take) == 0) std::this_thread::yield();
        });
        Tally t;
        run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned th, std::uint64_t i) {
            const std::uint64_t v = std::uint64_t{th} << 40 | i;
            if (ring.try_push(P{v, ~v})) {
                ok.fetch_add(1, std::memory_order_relaxed);
                sum.fetch_add(v, std::memory_order_relaxed);
            } else {
                std::this_thread::yield();
            }
        });
        done.store(true);
        consumer.join();
        ring.drain(take);
        EXPECT_EQ(got, ok.load()) << name(id);
        EXPECT_EQ(got_sum, sum.load()) << name(id);
        EXPECT_EQ(bad, 0u) << name(id) << ": a torn item";
        expect_aborts(id, t, kWantFired);
        updates += t.updates;
        fired += t.fired;
        aborted += t.aborted;
    }
    report("ShardedRing<16-byte> push", n, updates, fired, aborted);
}

// SharedMutex's reader count: the lock's add_at and the unlock's add_if,
// each aborted at every point while a writer takes the lock now and then
// (a leaked or doubled count would make it wait forever: the deadline
// catches that). At the end no reader may be counted.
TEST(RseqInject, SharedMutexReaderCountAbortsAtEveryPoint) {
    install_handler();
    for (pa::InjectSite site : {pa::InjectSite::add_at, pa::InjectSite::add_if}) {
        const std::uint32_t n = add_points();  // add_at and add_if have add's points
        std::uint64_t updates = 0, fired = 0, aborted = 0;
        for (std::uint32_t k = 1; k <= n; ++k) {
            const std::uint32_t id = pa::inject_id(site, k);
            percore::SharedMutex mu;
            std::uint64_t data = 0;  // written under the lock, read under the read lock
            std::atomic<bool> done{false};
            std::atomic<std::uint64_t> writes{0}, torn{0};
            std::thread writer([&] {
                while (!done.load()) {
                    {
                        std::lock_guard g(mu);
                        data = data + 1;
                        data = data + 1;
                    }
                    writes.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
                }
            });
            Tally t;
            run_point(id, How::signal, kMinUpdates, rseq_want_fired(), t, [&](unsigned, std::uint64_t) {
                const auto h = mu.lock_shared();
                if (data % 2 != 0) torn.fetch_add(1, std::memory_order_relaxed);
                mu.unlock_shared(h);
            });
            done.store(true);
            writer.join();
            EXPECT_EQ(mu.readers_approx(), 0) << name(id);
            EXPECT_EQ(torn.load(), 0u) << name(id);
            EXPECT_EQ(data, 2 * writes.load()) << name(id);
            EXPECT_TRUE(mu.try_lock()) << name(id);
            mu.unlock();
            expect_aborts(id, t, kWantFired);
            updates += t.updates;
            fired += t.fired;
            aborted += t.aborted;
        }
        percore::SharedMutex mu;
        expect_silent(pa::inject_id(site, n + 1), [&] { mu.unlock_shared(mu.lock_shared()); });
        EXPECT_EQ(mu.readers_approx(), 0);
        report(site == pa::InjectSite::add_at ? "SharedMutex lock_shared" : "SharedMutex unlock_shared", n, updates,
               fired, aborted);
    }
}

INSTANTIATE_TEST_SUITE_P(Mechanisms, SeqcountInject, ::testing::Values(How::signal, How::yield),
                         [](const auto& info) { return info.param == How::signal ? "Signal" : "Yield"; });

}  // namespace
