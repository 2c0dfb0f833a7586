// percore/export/registry.hpp - named metrics for exporters.
//
// A Registry maps Prometheus-style names and label sets to the counters a
// program updates. It owns Counters and Gauges it creates, and can also
// point at counters the program already has, at callbacks evaluated at read
// time, and at histograms. Exporters (Prometheus, statsd, the telemetry
// socket) call collect() and get a plain snapshot of values.
//
// Cost: the fast path never touches the Registry: counter() hands back the
// percore::Counter itself, and updates stay one per-CPU add. Registration
// validates names (see metric_names.hpp) and takes an exclusive lock;
// collect() takes a shared lock and reads each series across shards, so
// readers never block writers of counter values, only registrations, and
// only for the duration of one read. Errors are exceptions (MetricError);
// call the *_error() checks of metric_names.hpp first to avoid them.
//
//   percore::Registry reg;
//   auto get = reg.counter("http_requests_total", "Requests served.", {{"method", "get"}});
//   get->inc();                                   // fast path
//   reg.add_gauge("queue_depth", "Items waiting.", {}, [&] { return double(q.size()); });
//
// Callbacks and referenced counters are read under the Registry's shared
// lock: a callback must not register or remove metrics, and a referenced
// counter must outlive its registration (remove() returns only once no
// reader can still be using it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "percore/counter.hpp"
#include "percore/histogram.hpp"
#include "percore/export/metric_names.hpp"
#include "percore/minmax.hpp"

namespace percore {

// Label name/value pairs, in any order when passed in; snapshots list them
// in the family's order (the order of first registration).
using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram as exporters see it. Buckets are cumulative with ascending
// upper bounds; exporters add the +Inf bucket (== count) when the last
// bound is finite. Percentiles are (q, value) pairs, q in [0, 1].
struct HistogramData {
    struct Bucket {
        double upper_bound;
        std::uint64_t cumulative_count;
    };
    std::uint64_t count = 0;
    double sum = 0;
    double min = 0;  // min and max are meaningful only when count > 0
    double max = 0;
    std::vector<Bucket> buckets;
    std::vector<std::pair<double, double>> percentiles;
    // Optional: every non-empty bucket at the source's own resolution,
    // cumulative. statsd derives interval percentiles from it.
    std::vector<Bucket> fine;
};

// Estimate of quantile q from cumulative buckets (upper bound of the bucket
// holding the q-th observation, clamped to [min, max]); 0 when empty.
double quantile_from_buckets(const std::vector<HistogramData::Bucket>& buckets, double q, double min, double max);

// How a percore::Histogram is exported. Values are multiplied by `scale`
// (1e-9 turns recorded nanoseconds into the seconds Prometheus expects);
// `bounds` are the fixed `le` bucket bounds in recorded units, ascending
// (empty: 1-2-5 steps from 1 up to the layout's highest value).
struct HistogramExport {
    double scale = 1.0;
    std::vector<std::uint64_t> bounds;
};

// Counter: uint64_t; gauge: int64_t (percore::Gauge and friends) or double
// (callbacks); histogram: HistogramData.
using MetricValue = std::variant<std::uint64_t, std::int64_t, double, HistogramData>;

// Anything the Registry can read. Implement it to export your own kind of
// metric; read() is called under the Registry's shared lock.
class MetricSource {
public:
    virtual ~MetricSource() = default;
    virtual MetricType type() const = 0;
    virtual MetricValue read() const = 0;
    // Per-shard values (row order, last = shared row); empty when the
    // source has no shards. Counters report raw rows since creation: a
    // reset moves an offset, not the rows.
    virtual std::vector<std::int64_t> shards() const { return {}; }
    // Clears the metric and returns what it cleared; nullopt when the
    // source cannot be reset (callbacks).
    virtual std::optional<MetricValue> reset() { return std::nullopt; }
};

struct SeriesSnapshot {
    Labels labels;
    MetricValue value;
    std::vector<std::int64_t> shards;  // filled when collect() is asked for them
};

struct FamilySnapshot {
    std::string name;
    std::string help;
    MetricType type;
    std::vector<SeriesSnapshot> series;
};

using Snapshot = std::vector<FamilySnapshot>;  // families sorted by name

struct CollectOptions {
    bool shards = false;          // include per-shard breakdowns
    std::string_view name = {};   // only this family (empty: all)
};

// `name{a="x",b="y"}` with Prometheus escaping; just `name` without labels.
// Telemetry commands and percore-top use this as the series identifier.
std::string series_id(std::string_view name, const Labels& labels);

class Registry;

// A family with fixed label names, e.g. requests_total by {method, code}.
// with() gets or creates the series for one set of label values.
template <class T>
class Family {
public:
    std::shared_ptr<T> with(const std::vector<std::string>& values) const;
    void remove(const std::vector<std::string>& values) const;
    const std::string& name() const noexcept { return name_; }

private:
    friend class Registry;
    Family(Registry& r, std::string name, std::vector<std::string> label_names)
        : reg_(&r), name_(std::move(name)), label_names_(std::move(label_names)) {}
    Labels zip(const std::vector<std::string>& values) const;
    Registry* reg_;
    std::string name_;
    std::vector<std::string> label_names_;
};

class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Get-or-create. Asking again for the same name and labels returns the
    // same object; a different type, help text or set of label names for an
    // existing name is a MetricError. The returned pointer stays valid after
    // remove() (the registry just stops exporting it).
    std::shared_ptr<Counter> counter(std::string_view name, std::string_view help, const Labels& labels = {});
    std::shared_ptr<Gauge> gauge(std::string_view name, std::string_view help, const Labels& labels = {});

    std::shared_ptr<Histogram> histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                                         const HistogramLayout& layout = HistogramLayout(),
                                         HistogramExport how = {});

    Family<Counter> counter_family(std::string_view name, std::string_view help, std::vector<std::string> label_names);
    Family<Gauge> gauge_family(std::string_view name, std::string_view help, std::vector<std::string> label_names);

    // Existing counters, by reference: they must outlive their registration.
    void add_counter(std::string_view name, std::string_view help, const Labels& labels, Counter& c);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, Gauge& g);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, MaxGauge& g);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, MinGauge& g);
    void add_histogram(std::string_view name, std::string_view help, const Labels& labels, Histogram& h,
                       HistogramExport how = {});
    // Values computed at read time (must be cheap, non-blocking, and must not
    // touch the Registry). A callback counter must never decrease.
    void add_counter(std::string_view name, std::string_view help, const Labels& labels,
                     std::function<std::uint64_t()> read);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, std::function<double()> read);
    void add_histogram(std::string_view name, std::string_view help, const Labels& labels,
                       std::function<HistogramData()> read);
    // Histograms of your own kind, read as HistogramData.
    // Any source; registering a series that already exists is a MetricError.
    void add(std::string_view name, std::string_view help, const Labels& labels, std::shared_ptr<MetricSource> src);

    // Stops exporting one series / a whole family. Returns whether it existed.
    bool remove(std::string_view name, const Labels& labels);
    bool remove_family(std::string_view name);

    Snapshot collect(const CollectOptions& opt = {}) const;
    // One series by series_id(), with its shard breakdown.
    std::optional<FamilySnapshot> find(std::string_view id) const;
    // Resets one series by series_id(). nullopt: no such series, or it
    // cannot be reset.
    std::optional<MetricValue> reset(std::string_view id);

    std::size_t series_count() const;

private:
    struct Series {
        Labels labels;  // in family order
        std::shared_ptr<MetricSource> src;
    };
    struct FamilyEntry {
        std::string help;
        MetricType type;
        std::vector<std::string> label_names;
        std::map<std::vector<std::string>, Series> series;  // by label values in family order
    };
    // Validates and returns the family (creating it), with the label values
    // in family order. Caller holds mu_ exclusively.
    std::pair<FamilyEntry*, std::vector<std::string>> prepare(std::string_view name, std::string_view help,
                                                              MetricType type, const Labels& labels);
    FamilyEntry& family_locked(std::string_view name, std::string_view help, MetricType type,
                               const std::vector<std::string>& label_names);
    template <class T, class Src>
    std::shared_ptr<T> get_or_create(std::string_view name, std::string_view help, const Labels& labels,
                                     MetricType type);
    const Series* find_locked(std::string_view id, const FamilyEntry** fam, std::string* fam_name) const;

    mutable std::shared_mutex mu_;
    std::map<std::string, FamilyEntry, std::less<>> families_;
    std::size_t series_ = 0;
};

template <class T>
Labels Family<T>::zip(const std::vector<std::string>& values) const {
    if (values.size() != label_names_.size())
        throw MetricError("metric \"" + name_ + "\": expected " + std::to_string(label_names_.size()) +
                          " label values, got " + std::to_string(values.size()));
    Labels l;
    for (std::size_t i = 0; i < values.size(); ++i) l.emplace_back(label_names_[i], values[i]);
    return l;
}

template <>
inline std::shared_ptr<Counter> Family<Counter>::with(const std::vector<std::string>& values) const {
    return reg_->counter(name_, {}, zip(values));
}
template <>
inline std::shared_ptr<Gauge> Family<Gauge>::with(const std::vector<std::string>& values) const {
    return reg_->gauge(name_, {}, zip(values));
}
template <class T>
void Family<T>::remove(const std::vector<std::string>& values) const {
    reg_->remove(name_, zip(values));
}

}  // namespace percore
