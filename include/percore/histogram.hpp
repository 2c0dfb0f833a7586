// SPDX-License-Identifier: MIT
// percore/histogram.hpp - per-CPU latency histograms with log-linear buckets.
//
// A Histogram counts values (nanoseconds, bytes, queue depths: any u64) in
// buckets that are linear within each power of two: values below 2^(p+1)
// each get their own bucket, and every octave above is split into 2^p
// buckets, so any recorded value is known to within a relative error of
// 2^-p <= 10^-digits. percentile(q) reports the upper edge of the bucket
// holding the exact answer, hence never below it and at most that fraction
// above it. Values above the configured highest value are clamped to it and
// counted (out_of_range), never undefined.
//
// Cost: record() is one per-shard update that adds 1 to the value's bucket
// and the value to that bucket's running sum: each bucket is a {count, sum}
// pair, so with rseq both commit together in one restartable sequence (one
// 16-byte store), and with thread slots it is two plain adds to the thread's
// own row. Then a load of the shard's min and max, which only turns into a
// compare-and-swap when the value is a new extreme for that shard. No lock,
// no allocation. Keeping a sum per bucket rather than one per histogram is
// what lets one sequence do both; it costs 8 bytes per bucket, and snapshots
// add the sums up. snapshot() reads every bucket of every shard and
// allocates; it is for control threads.
//
// Memory per histogram per shard (8 bytes x (6 + 2 x (b + 2) x 2^p), where
// b = max(0, floor(log2(highest)) - p), 2^p >= 10^digits), with the default
// highest value of one hour in ns (3.6e12):
//   digits 1:  10,032 B  (624 buckets)
//   digits 2:  73,776 B  (4,608 buckets, the default)
//   digits 3: 540,720 B  (33,792 buckets)
// It is reserved in every row of the Arena (shards + 1) and becomes resident
// only on pages a shard writes: a latency distribution touches a few pages.
//
//   percore::Histogram rpc_ns;                        // 2 digits, up to 1 h
//   { percore::ScopedTimer t(rpc_ns); handle(req); }  // records elapsed ns
//   auto s = rpc_ns.snapshot();
//   s.percentile(99.9); s.mean(); s.cumulative();     // for an exporter
#pragma once

#include "percore/detail/cxx20.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "percore/arena.hpp"
#include "percore/detail/update.hpp"

namespace percore {

// Where bucket boundaries fall. A value type shared by Histogram and its
// snapshots; two layouts are equal when they bucket values identically.
class HistogramLayout {
public:
    static constexpr std::uint64_t kOneHourNs = 3'600'000'000'000;

    // digits: significant decimal digits kept (1..4). highest: the largest
    // value stored as is (>= 1); larger ones are clamped to it.
    explicit HistogramLayout(unsigned digits = 2, std::uint64_t highest = kOneHourNs)
        : digits_(digits), highest_(highest) {
        if (digits < 1 || digits > 4) throw std::invalid_argument("percore::Histogram: digits must be 1..4");
        if (highest < 1) throw std::invalid_argument("percore::Histogram: highest must be >= 1");
        std::uint64_t pow10 = 1;
        for (unsigned i = 0; i < digits; ++i) pow10 *= 10;
        while ((std::uint64_t{1} << p_) < pow10) ++p_;
        const unsigned e = static_cast<unsigned>(std::bit_width(highest)) - 1;
        const unsigned b = e > p_ ? e - p_ : 0;
        buckets_ = std::size_t{b + 2} << p_;
    }

    unsigned digits() const noexcept { return digits_; }
    std::uint64_t highest() const noexcept { return highest_; }
    std::size_t buckets() const noexcept { return buckets_; }
    // Bound on (reported - exact) / exact for any percentile: 2^-p.
    double relative_error() const noexcept { return std::ldexp(1.0, -static_cast<int>(p_)); }

    // The bucket of v (v <= highest()). Branch-free: the octave above the
    // linear range is the shift, the top p + 1 bits are the sub-bucket.
    std::size_t index(std::uint64_t v) const noexcept {
        const unsigned b = static_cast<unsigned>(std::bit_width(v | low_mask())) - p_ - 1;
        return (std::size_t{b} << p_) + static_cast<std::size_t>(v >> b);
    }
    // Smallest and largest value that land in bucket i.
    std::uint64_t lower(std::size_t i) const noexcept {
        const std::size_t g = i >> p_;
        const unsigned b = g == 0 ? 0 : static_cast<unsigned>(g - 1);
        return static_cast<std::uint64_t>(i - (std::size_t{b} << p_)) << b;
    }
    std::uint64_t upper(std::size_t i) const noexcept {
        const std::size_t g = i >> p_;
        const unsigned b = g == 0 ? 0 : static_cast<unsigned>(g - 1);
        return lower(i) + ((std::uint64_t{1} << b) - 1);
    }

    friend bool operator==(const HistogramLayout& a, const HistogramLayout& b) noexcept {
        return a.p_ == b.p_ && a.buckets_ == b.buckets_ && a.highest_ == b.highest_;
    }

private:
    std::uint64_t low_mask() const noexcept { return (std::uint64_t{2} << p_) - 1; }

    unsigned digits_;
    unsigned p_ = 0;
    std::uint64_t highest_;
    std::size_t buckets_ = 0;
};

// A non-empty bucket: every value in [lower, upper] recorded `count` times.
// Not for statsd timer lines (`upper|ms|@(1/count)`): statsd counts such a
// line 1/rate times but puts its value into the percentiles once, and
// percore's StatsdClient treats a rate as a sampling probability. Push
// aggregates of since() instead (see percore/export/statsd.hpp).
struct HistogramBucket {
    std::uint64_t lower;
    std::uint64_t upper;
    std::uint64_t count;
};

// Prometheus `le` bucket: `count` values were <= upper_bound.
struct CumulativeBucket {
    std::uint64_t upper_bound;
    std::uint64_t count;
};

// Counts of a Histogram at one moment, summed over shards. A plain value:
// copy it, merge several, subtract an earlier one for interval figures.
class HistogramSnapshot {
public:
    explicit HistogramSnapshot(const HistogramLayout& layout = HistogramLayout())
        : layout_(layout), counts_(layout.buckets(), 0) {}

    const HistogramLayout& layout() const noexcept { return layout_; }
    std::uint64_t count() const noexcept { return count_; }
    // Sum of the values as recorded (after clamping), mod 2^64.
    std::uint64_t sum() const noexcept { return sum_; }
    // Exact smallest / largest recorded value; 0 when empty.
    std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    std::uint64_t max() const noexcept { return count_ ? max_ : 0; }
    double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
    // Values above layout().highest() (recorded as highest()) and negative
    // durations (recorded as 0).
    std::uint64_t out_of_range() const noexcept { return above_ + below_; }
    std::uint64_t above_range() const noexcept { return above_; }

    // The value at or below which q percent of the values fall (q in
    // [0, 100], clamped), e.g. percentile(99.9). Reports the upper edge of
    // the bucket holding the rank-th smallest value (rank = ceil(q% of
    // count), at least 1), kept within [min, max]; the smallest and largest
    // ranks give min() and max() exactly. 0 when empty.
    std::uint64_t percentile(double q) const noexcept {
        if (count_ == 0) return 0;
        if (!(q > 0)) q = 0;  // also NaN
        if (q > 100) q = 100;
        auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
        rank = std::clamp<std::uint64_t>(rank, 1, count_);
        // The extremes are known exactly; a bucket edge would only blur them.
        if (rank == 1) return min();
        if (rank == count_) return max();
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return within_extremes(layout_.upper(i));
        }
        return max();
    }

    // Calls fn(const HistogramBucket&) for each non-empty bucket, ascending.
    template <class F>
    void for_each_bucket(F&& fn) const {
        for (std::size_t i = 0; i < counts_.size(); ++i)
            if (counts_[i] != 0) fn(HistogramBucket{layout_.lower(i), layout_.upper(i), counts_[i]});
    }

    // Cumulative counts at every non-empty bucket's upper edge. Values
    // clamped from above are left out of every finite bound: an exporter
    // reports them only in `le="+Inf"` (= count()).
    std::vector<CumulativeBucket> cumulative() const {
        std::vector<CumulativeBucket> out;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            if (counts_[i] == 0) continue;
            seen += counts_[i];
            const std::uint64_t c = finite(i, seen);
            if (c != 0) out.push_back({layout_.upper(i), c});
        }
        return out;
    }

    // Cumulative counts at fixed bounds (ascending), the shape Prometheus
    // expects. A bucket counts toward a bound when its upper edge is <= the
    // bound, so a bound that falls inside a bucket undercounts by at most
    // the values in that bucket, which lie within relative_error() of it.
    std::vector<CumulativeBucket> cumulative(std::span<const std::uint64_t> bounds) const {
        std::vector<CumulativeBucket> out;
        out.reserve(bounds.size());
        std::uint64_t seen = 0;
        std::size_t i = 0, last = 0;
        for (std::uint64_t bound : bounds) {
            for (; i < counts_.size() && layout_.upper(i) <= bound; ++i) {
                seen += counts_[i];
                last = i;
            }
            out.push_back({bound, i == 0 ? 0 : finite(last, seen)});
        }
        return out;
    }

    // Adds another snapshot's counts (another histogram, process, or
    // interval). Throws std::invalid_argument if the layouts differ.
    HistogramSnapshot& merge(const HistogramSnapshot& o) {
        if (!(layout_ == o.layout_)) throw std::invalid_argument("percore::HistogramSnapshot::merge: layouts differ");
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
        if (o.count_ != 0) {
            min_ = count_ ? std::min(min_, o.min_) : o.min_;
            max_ = count_ ? std::max(max_, o.max_) : o.max_;
        }
        count_ += o.count_;
        sum_ += o.sum_;
        above_ += o.above_;
        below_ += o.below_;
        return *this;
    }

    // What was recorded between `earlier` (a snapshot of the same histogram)
    // and this one: the per-interval view a statsd exporter pushes. min and
    // max of an interval are not tracked; they are estimated from its
    // lowest and highest non-empty buckets (within relative_error()).
    // Throws std::invalid_argument if `earlier` is not an earlier snapshot.
    HistogramSnapshot since(const HistogramSnapshot& earlier) const {
        if (!(layout_ == earlier.layout_))
            throw std::invalid_argument("percore::HistogramSnapshot::since: layouts differ");
        HistogramSnapshot d(layout_);
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            if (earlier.counts_[i] > counts_[i])
                throw std::invalid_argument("percore::HistogramSnapshot::since: not an earlier snapshot");
            d.counts_[i] = counts_[i] - earlier.counts_[i];
            if (d.counts_[i] != 0) {
                if (d.count_ == 0) d.min_ = std::max(layout_.lower(i), min());
                d.max_ = std::min(layout_.upper(i), max());
                d.count_ += d.counts_[i];
            }
        }
        d.sum_ = sum_ - earlier.sum_;
        d.above_ = above_ - earlier.above_;
        d.below_ = below_ - earlier.below_;
        return d;
    }

private:
    friend class Histogram;

    std::uint64_t within_extremes(std::uint64_t v) const noexcept {
        // A snapshot taken during a record() may see the bucket before the
        // extremes (see Histogram::snapshot); then min_ > max_ or v > max_
        // only by that in-flight value, and clamping would not be sound.
        return min_ <= max_ ? std::clamp(v, min_, max_) : v;
    }
    // Cumulative count `seen` up to bucket i, without the clamped-from-above
    // values, which all sit in the bucket of highest().
    std::uint64_t finite(std::size_t i, std::uint64_t seen) const noexcept {
        return i >= layout_.index(layout_.highest()) ? seen - std::min(seen, above_) : seen;
    }

    HistogramLayout layout_;
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0, sum_ = 0, min_ = 0, max_ = 0, above_ = 0, below_ = 0;
};

class Histogram {
public:
    explicit Histogram(const HistogramLayout& layout = HistogramLayout(), Arena& arena = default_arena())
        : layout_(layout), slots_(arena, kHeader + 2 * layout.buckets(), 0, 16) {}
    explicit Histogram(unsigned digits, std::uint64_t highest = HistogramLayout::kOneHourNs,
                       Arena& arena = default_arena())
        : Histogram(HistogramLayout(digits, highest), arena) {}
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    void record(std::uint64_t v) noexcept {
        if (v > layout_.highest()) [[unlikely]] {
            v = layout_.highest();
            detail::add(slots_.word0(kAbove), slots_.shards(), 1);
        }
        const std::size_t row = detail::add_pair_row(slots_.word0(kHeader + 2 * layout_.index(v)), slots_.shards(), 1, v);
        note_extremes(v, row);
    }
    // Records a duration in nanoseconds; a negative one (a clock that went
    // backwards) is recorded as 0 and counted as out of range.
    template <class Rep, class Period>
    void record(std::chrono::duration<Rep, Period> d) noexcept {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        if (ns < 0) [[unlikely]] {
            detail::add(slots_.word0(kBelow), slots_.shards(), 1);
            record(std::uint64_t{0});
            return;
        }
        record(static_cast<std::uint64_t>(ns));
    }

    // Sums every shard. Each word is read with a relaxed load, so each
    // count is exact for the records that finished before the call (that
    // happen-before it) and never torn. Fields are read one after another
    // while writers continue, so a record() racing with the snapshot may be
    // seen in its bucket but not yet in sum, min or max (or the reverse):
    // the snapshot is then off by that in-flight value. count() and the
    // percentiles come from the same bucket array and always agree.
    HistogramSnapshot snapshot() const {
        HistogramSnapshot s(layout_);
        std::uint64_t max = 0, min_inv = 0;
        const std::size_t rows = std::size_t{slots_.shards()} + 1;
        for (std::size_t r = 0; r < rows; ++r) {
            const std::uint64_t* row = slots_.word0() + r * detail::kRowWords;
            for (std::size_t i = 0; i < s.counts_.size(); ++i) {
                s.counts_[i] += load(row, kHeader + 2 * i);
                s.sum_ += load(row, kHeader + 2 * i + 1);
            }
            s.above_ += load(row, kAbove);
            s.below_ += load(row, kBelow);
            max = std::max(max, load(row, kMax));
            min_inv = std::max(min_inv, load(row, kMinInv));
        }
        for (std::uint64_t c : s.counts_) s.count_ += c;
        s.max_ = max;
        s.min_ = ~min_inv;
        return s;
    }

    // How many values each row holds (row order, the last is the shared
    // row): the per-CPU breakdown of count(). Read like snapshot() (relaxed,
    // never torn); costs one pass over every bucket, for control threads.
    std::vector<std::uint64_t> shard_counts() const {
        std::vector<std::uint64_t> out(std::size_t{slots_.shards()} + 1);
        for (std::size_t r = 0; r < out.size(); ++r) {
            const std::uint64_t* row = slots_.word0() + r * detail::kRowWords;
            for (std::size_t i = 0; i < layout_.buckets(); ++i) out[r] += load(row, kHeader + 2 * i);
        }
        return out;
    }

    const HistogramLayout& layout() const noexcept { return layout_; }
    const Arena& arena() const noexcept { return slots_.arena(); }
    // Bytes this histogram reserves in each row of its Arena.
    std::size_t bytes_per_shard() const noexcept { return (kHeader + 2 * layout_.buckets()) * 8; }

private:
    // Words of the block, in every row: a header, then one {count, sum}
    // pair per bucket at kHeader + 2i (16-byte aligned, as add_pair needs).
    // kMax and kMinInv only ever take atomic read-modify-writes, so any row
    // may hold them; the others take detail::add. The minimum is stored
    // complemented so that the block starts all zero and both extremes are
    // a "raise to at least" (0 = none).
    enum : std::size_t { kAbove, kBelow, kMax, kMinInv, kPad0, kPad1, kHeader };
    static_assert(kHeader % 2 == 0, "bucket pairs must be 16-byte aligned");

    static std::uint64_t load(const std::uint64_t* row, std::size_t w) noexcept {
        return std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(row[w])).load(std::memory_order_relaxed);
    }
    static void raise(std::atomic_ref<std::uint64_t> w, std::uint64_t v) noexcept {
        std::uint64_t cur = w.load(std::memory_order_relaxed);
        while (cur < v && !w.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
        }
    }
    // In the row the bucket update used (any row is correct for words that
    // only take atomic RMWs; this one is local). Relaxed: the extremes are
    // statistics and publish nothing; a CAS keeps each shard's extreme exact
    // even when several threads share that row.
    void note_extremes(std::uint64_t v, std::size_t row) noexcept {
        auto mx = detail::row_word(slots_.word0(kMax), row);
        auto mn = detail::row_word(slots_.word0(kMinInv), row);
        if (v > mx.load(std::memory_order_relaxed)) [[unlikely]] raise(mx, v);
        if (~v > mn.load(std::memory_order_relaxed)) [[unlikely]] raise(mn, ~v);
    }

    HistogramLayout layout_;
    detail::Slots slots_;
};

// Records the nanoseconds between its construction and its destruction (or
// stop()) into a Histogram. Costs two steady_clock reads (vDSO, ~20 ns each
// on x86-64) on top of record().
class ScopedTimer {
public:
    using Clock = std::chrono::steady_clock;

    explicit ScopedTimer(Histogram& h) noexcept : h_(&h), start_(Clock::now()) {}
    ~ScopedTimer() { stop(); }
    ScopedTimer(const ScopedTimer&) = delete;
    ScopedTimer& operator=(const ScopedTimer&) = delete;

    // Nanoseconds since construction, without recording.
    std::chrono::nanoseconds elapsed() const noexcept { return Clock::now() - start_; }
    // Records now and returns what it recorded; later calls and the
    // destructor record nothing.
    std::chrono::nanoseconds stop() noexcept {
        const auto d = elapsed();
        if (h_ != nullptr) h_->record(d);
        h_ = nullptr;
        return d;
    }
    // Drops the measurement (e.g. the operation failed and is timed elsewhere).
    void cancel() noexcept { h_ = nullptr; }

private:
    Histogram* h_;
    Clock::time_point start_;
};

}  // namespace percore
