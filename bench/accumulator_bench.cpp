// SPDX-License-Identifier: MIT
// Accumulator<T> against what a user would otherwise pick for a stage
// buffer, in one run:
//   percore::Accumulator      per-shard buffers, batches to the sink from
//                             the filling thread, watchdog for partials
//   mutex + std::vector       one buffer behind a std::mutex; a full one is
//                             swapped out under the lock and delivered
//                             outside it; a timer thread flushes partials
//   tbb::concurrent_queue     producers push; one consumer thread pops into
//                             batches and delivers them (full, or partial
//                             and max_delay old), yielding when empty
// Same batch size (1024), max_delay (1 ms) and sink for all three: it sums
// the elements and records the delivery delay of the 1 element in 64 that
// carries its add time.
//
// BM_Accumulate, flat out: one benchmark iteration is one episode in which
// N producer threads (the argument) add 4M elements in all, then everything
// is delivered; the time is the wall clock from the start barrier to the
// last delivery (manual time), so a consumer that falls behind pays for it.
// items_per_second is elements delivered per second; p50_us/p99_us are
// per-element delivery delays (add to sink) of the sampled elements, over
// the whole run.
//
// BM_AccumulatePaced, a trickle: each producer adds 100 elements every
// millisecond for 200 ms (100k elements/s per thread), every element
// stamped, so batches rarely fill and partial ones go out on the timer (or
// the consumer). p50_us/p99_us as above; cpu_ms is the process's CPU time
// per episode (getrusage), producers included: what each design burns to
// deliver the same elements within about max_delay.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <tbb/concurrent_queue.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "percore/accumulator.hpp"
#include "percore/histogram.hpp"

namespace {

constexpr std::size_t kBatch = 1024;
constexpr auto kMaxDelay = std::chrono::milliseconds(1);
constexpr std::uint64_t kTotal = 4'000'000;

struct Item {
    std::uint64_t seq;
    std::int64_t added_ns;  // 0: not sampled
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The sink of every variant.
struct Sink {
    std::atomic<std::uint64_t> count{0}, sum{0};
    percore::Histogram* delay;
    void operator()(const std::vector<Item>& b) {
        std::uint64_t s = 0;
        std::int64_t t = 0;
        for (const Item& it : b) {
            s += it.seq;
            if (it.added_ns != 0) {
                if (t == 0) t = now_ns();
                delay->record(static_cast<std::uint64_t>(t - it.added_ns));
            }
        }
        sum.fetch_add(s, std::memory_order_relaxed);
        count.fetch_add(b.size(), std::memory_order_relaxed);
    }
};

struct PercoreAcc {
    explicit PercoreAcc(Sink& s)
        : acc([&s](std::vector<Item>&& b) { s(b); }, {.batch_size = kBatch, .max_delay = kMaxDelay}) {}
    void add(const Item& it) { acc.add(it); }
    void drain() { acc.flush(); }
    percore::Accumulator<Item> acc;
};

struct MutexVector {
    explicit MutexVector(Sink& s) : sink(s), timer([this] { run(); }) { buf.reserve(kBatch); }
    ~MutexVector() {
        {
            std::lock_guard lk(mu);
            stop = true;
        }
        cv.notify_one();
        timer.join();
    }
    void add(const Item& it) {
        std::unique_lock lk(mu);
        if (buf.empty()) first_ns = now_ns();
        buf.push_back(it);
        if (buf.size() < kBatch) return;
        std::vector<Item> out;
        out.reserve(kBatch);
        out.swap(buf);
        lk.unlock();
        sink(out);
    }
    void drain() {
        std::unique_lock lk(mu);
        std::vector<Item> out;
        out.swap(buf);
        lk.unlock();
        if (!out.empty()) sink(out);
    }
    void run() {
        std::unique_lock lk(mu);
        while (!stop) {
            cv.wait_for(lk, kMaxDelay / 2, [&] { return stop; });
            if (!buf.empty() && now_ns() - first_ns >= std::chrono::nanoseconds(kMaxDelay).count()) {
                std::vector<Item> out;
                out.swap(buf);
                lk.unlock();
                sink(out);
                lk.lock();
            }
        }
    }
    Sink& sink;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Item> buf;
    std::int64_t first_ns = 0;
    bool stop = false;
    std::thread timer;
};

struct TbbQueue {
    explicit TbbQueue(Sink& s) : sink(s), consumer([this] { run(); }) {}
    ~TbbQueue() {
        if (consumer.joinable()) drain();
    }
    void add(const Item& it) { q.push(it); }
    void drain() {
        done.store(true, std::memory_order_release);
        consumer.join();
    }
    void run() {
        std::vector<Item> batch;
        batch.reserve(kBatch);
        std::int64_t first = 0;
        Item it;
        for (;;) {
            if (q.try_pop(it)) {
                if (batch.empty()) first = now_ns();
                batch.push_back(it);
                if (batch.size() == kBatch) {
                    sink(batch);
                    batch.clear();
                }
                continue;
            }
            // Empty: deliver a partial batch that is due (or everything, at
            // the end), then wait a little.
            const bool finishing = done.load(std::memory_order_acquire);
            if (!batch.empty() && (finishing || now_ns() - first >= std::chrono::nanoseconds(kMaxDelay).count())) {
                sink(batch);
                batch.clear();
            }
            if (finishing && q.empty()) return;
            std::this_thread::yield();
        }
    }
    Sink& sink;
    tbb::concurrent_queue<Item> q;
    std::atomic<bool> done{false};
    std::thread consumer;
};

template <class Impl>
void BM_Accumulate(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    const std::uint64_t per = kTotal / threads;
    percore::Histogram delay(2, 10'000'000'000);
    std::uint64_t delivered = 0;
    for (auto _ : state) {
        Sink sink;
        sink.delay = &delay;
        auto impl = std::make_unique<Impl>(sink);
        std::barrier start(threads + 1);
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                start.arrive_and_wait();
                const std::uint64_t base = std::uint64_t(t) * per;
                for (std::uint64_t i = 0; i < per; ++i) impl->add(Item{base + i, (i & 63) == 0 ? now_ns() : 0});
            });
        start.arrive_and_wait();
        const auto t0 = std::chrono::steady_clock::now();
        for (auto& t : ts) t.join();
        impl->drain();
        const auto t1 = std::chrono::steady_clock::now();
        state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
        const std::uint64_t n = per * threads;
        if (sink.count.load() != n || sink.sum.load() != n * (n - 1) / 2) {
            state.SkipWithError("not every element was delivered exactly once");
            return;
        }
        delivered += n;
        impl.reset();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
    const auto s = delay.snapshot();
    state.counters["p50_us"] = static_cast<double>(s.percentile(50)) / 1e3;
    state.counters["p99_us"] = static_cast<double>(s.percentile(99)) / 1e3;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

template <class Impl>
void BM_AccumulatePaced(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    constexpr int kBursts = 200, kPerBurst = 100;
    const std::uint64_t per = std::uint64_t{kBursts} * kPerBurst;
    percore::Histogram delay(2, 10'000'000'000);
    double cpu = 0;
    std::uint64_t episodes = 0, delivered = 0;
    for (auto _ : state) {
        Sink sink;
        sink.delay = &delay;
        auto impl = std::make_unique<Impl>(sink);
        std::barrier start(threads + 1);
        const auto t0 = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                start.arrive_and_wait();
                std::uint64_t seq = std::uint64_t(t) * per;
                for (int b = 0; b < kBursts; ++b) {
                    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(b));
                    for (int i = 0; i < kPerBurst; ++i) impl->add(Item{seq++, now_ns()});
                }
            });
        start.arrive_and_wait();
        const double c0 = cpu_seconds();
        for (auto& t : ts) t.join();
        // Let the last partial batches go out on the timer, as they would
        // in a running pipeline, before the final drain.
        std::this_thread::sleep_for(2 * kMaxDelay + std::chrono::milliseconds(1));
        impl->drain();
        cpu += cpu_seconds() - c0;
        const auto t1 = std::chrono::steady_clock::now();
        state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
        const std::uint64_t n = per * threads;
        if (sink.count.load() != n || sink.sum.load() != n * (n - 1) / 2) {
            state.SkipWithError("not every element was delivered exactly once");
            return;
        }
        delivered += n;
        ++episodes;
        impl.reset();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
    const auto s = delay.snapshot();
    state.counters["p50_us"] = static_cast<double>(s.percentile(50)) / 1e3;
    state.counters["p99_us"] = static_cast<double>(s.percentile(99)) / 1e3;
    state.counters["cpu_ms"] = episodes ? cpu * 1e3 / static_cast<double>(episodes) : 0;
}

#define ACC_BENCH(impl) \
    BENCHMARK(BM_Accumulate<impl>)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->UseManualTime()->Unit(benchmark::kMillisecond)

ACC_BENCH(PercoreAcc);
ACC_BENCH(MutexVector);
ACC_BENCH(TbbQueue);

#define ACC_PACED(impl) \
    BENCHMARK(BM_AccumulatePaced<impl>)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->UseManualTime()->Unit(benchmark::kMillisecond)

ACC_PACED(PercoreAcc);
ACC_PACED(MutexVector);
ACC_PACED(TbbQueue);

}  // namespace

BENCHMARK_MAIN();
