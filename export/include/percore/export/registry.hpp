// SPDX-License-Identifier: MIT
// percore/export/registry.hpp - named metrics for exporters.
//
// A Registry maps Prometheus-style names and label sets to the counters a
// program updates. It owns Counters, Gauges and Histograms it creates, and
// can also point at ones the program already has, and at callbacks evaluated
// at read time. Exporters (Prometheus, statsd, the telemetry socket) call
// collect() and get a plain snapshot of values.
//
// Cost: the fast path never touches the Registry: counter() hands back the
// percore::Counter itself, and updates stay one per-CPU add. Registration
// validates names (see metric_names.hpp) and takes an exclusive lock;
// Family::with() finds an existing series under the shared lock; collect()
// takes the shared lock and reads each series across shards, so readers never
// block writers of counter values, only registrations, and only for the
// duration of one read. Errors are exceptions (MetricError); call the
// *_error() checks of metric_names.hpp first to avoid them. A registration
// that throws leaves the Registry as it was.
//
//   percore::Registry reg;
//   auto get = reg.counter("http_requests_total", "Requests served.", {{"method", "get"}});
//   get->inc();                                   // fast path
//   reg.add_gauge("queue_depth", "Items waiting.", {}, [&] { return double(q.size()); });
//   auto lat = reg.histogram("rpc_duration_seconds", "RPC time.");  // records ns, exports seconds
//   { percore::ScopedTimer t(*lat); handle(); }
//
// Callbacks and referenced counters are read under the Registry's shared
// lock: a callback must not register or remove metrics, and a referenced
// counter must outlive its registration (remove() returns only once no
// reader can still be using it).
#pragma once

#include "percore/detail/cxx20.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

// Label name/value pairs, in any order when passed in; snapshots list the
// registry's constant labels first, then the family's in its order (the
// order of first registration).
using Labels = std::vector<std::pair<std::string, std::string>>;

// What the integers a histogram records stand for, and what its exported
// figures are in. Durations convert among each other and bytes stay bytes;
// `none` is a plain count (queue depths, batch sizes) exported as recorded.
enum class Unit { none, nanoseconds, microseconds, milliseconds, seconds, bytes };

// "none", "nanoseconds", ..., "bytes".
const char* unit_name(Unit u) noexcept;

// v recorded in `from`, expressed in `to` (same kind; see Unit). Exact to
// the last bit where it can be: the factor between two units is a power of
// ten, applied as one division or multiplication by that exact integer, so
// 1895306531 ns is 1.895306531 s, not 1.8953065310000001. Throws
// std::invalid_argument for units of different kinds.
double convert_unit(std::uint64_t v, Unit from, Unit to);

// A histogram as exporters see it. Buckets are cumulative with ascending
// upper bounds; exporters add the +Inf bucket (== count) when the last
// bound is finite. Percentiles are (q, value) pairs, q in [0, 1]. All
// figures are in the `exported` unit.
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
    // The core snapshot these figures come from, in `recorded` units. Set
    // for percore::Histogram sources (a callback may set it too): statsd
    // subtracts successive snapshots (HistogramSnapshot::since) for its
    // interval figures and converts them with convert_unit().
    std::shared_ptr<const HistogramSnapshot> snapshot;
    Unit recorded = Unit::none;
    Unit exported = Unit::none;
};

// Estimate of quantile q from cumulative buckets (upper bound of the bucket
// holding the q-th observation, clamped to [min, max]); 0 when empty.
double quantile_from_buckets(const std::vector<HistogramData::Bucket>& buckets, double q, double min, double max);

// How a percore::Histogram is exported: the unit record() is given, the
// unit exporters publish, and the fixed `le` bucket bounds in recorded
// units, ascending (empty: 1-2-5 steps from 1 up to the layout's highest
// value).
//
// Units left out follow the name, so the common cases need none:
//   name ends in "_seconds"  records nanoseconds (what ScopedTimer and
//                            record(duration) give), exports seconds
//   name ends in "_bytes"    records and exports bytes
//   any other name           records and exports plain numbers (none)
// Only `records` given: exports the base unit of its kind (seconds for any
// duration). Only `exports` given: records nanoseconds for a duration,
// otherwise the same unit.
//
// Registration fails when the kinds differ (records bytes, exports seconds),
// when a name ending in "_seconds" would export anything but seconds, or one
// ending in "_bytes" anything but bytes: Prometheus names carry their unit as
// a suffix and that suffix must be true. Exporting seconds or bytes under a
// name without the suffix, or a non-base unit such as milliseconds, is lint.
//
//   reg.histogram("io_duration_seconds", "IO time.", {}, percore::HistogramLayout(),
//                 {.records = percore::Unit::microseconds});  // exports seconds
struct HistogramExport {
    std::optional<Unit> records{};
    std::optional<Unit> exports{};
    std::vector<std::uint64_t> bounds{};
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
    // reset moves an offset, not the rows. Histograms report how many
    // values each row recorded (Histogram::shard_counts()).
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

struct RegistryOptions {
    // Added to every series in every exporter (collect(), find()), before
    // the series' own labels, e.g. {{"instance_role", "edge"}}. Validated
    // like any label (at construction); a series label of the same name is
    // a registration error.
    Labels const_labels{};
    // Series per family at most (0: no limit), unless the family sets its
    // own (FamilyOptions). Past it, registering one more series throws and
    // counts the refusal in percore_series_refused_total{family="<name>"}.
    std::size_t max_series_per_family = 0;
    // Naming lint (see metric_names.hpp): false reports each problem once
    // per name through on_lint; true makes lint problems MetricErrors.
    bool strict_names = false;
    // Receives each lint report, one line naming the metric and every
    // problem; called after the registration, outside the Registry's lock.
    // Empty: written to stderr.
    std::function<void(std::string_view)> on_lint{};
};

struct FamilyOptions {
    std::size_t max_series = 0;  // 0: RegistryOptions::max_series_per_family
};

namespace detail {
struct FamilyEntry;
struct RegistryState;
}  // namespace detail

class Registry;

// A family with fixed label names, e.g. requests_total by {method, code}.
// with() gets or creates the series for one set of label values and hands
// back the metric itself: keep that handle for the fast path rather than
// calling with() per update. A repeated with() for an existing series is a
// lookup under the Registry's shared lock (no validation, no exclusive
// lock); only a new series takes the exclusive lock. The Registry must
// outlive its Family handles. After remove_family(), with() throws.
template <class T>
class Family {
public:
    std::shared_ptr<T> with(const std::vector<std::string>& values) const;
    bool remove(const std::vector<std::string>& values) const;
    const std::string& name() const noexcept { return name_; }
    const std::vector<std::string>& label_names() const noexcept { return label_names_; }

private:
    friend class Registry;
    Family(Registry& r, std::shared_ptr<detail::FamilyEntry> f, std::string name,
           std::vector<std::string> label_names)
        : reg_(&r), fam_(std::move(f)), name_(std::move(name)), label_names_(std::move(label_names)) {}
    Registry* reg_;
    std::shared_ptr<detail::FamilyEntry> fam_;
    std::string name_;
    std::vector<std::string> label_names_;
};

class Registry {
public:
    Registry();
    // Throws MetricError for invalid constant labels.
    explicit Registry(RegistryOptions opt);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Get-or-create. Asking again for the same name and labels returns the
    // same object; a different type, help text, set of label names or
    // exported unit for an existing name is a MetricError, and so is a name
    // whose OpenMetrics family or samples would collide with another's (a
    // gauge "x" beside a counter "x_total", both the family "x"). The
    // returned pointer stays valid after remove() (the registry just stops
    // exporting it).
    std::shared_ptr<Counter> counter(std::string_view name, std::string_view help, const Labels& labels = {});
    std::shared_ptr<Gauge> gauge(std::string_view name, std::string_view help, const Labels& labels = {});

    std::shared_ptr<Histogram> histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                                         const HistogramLayout& layout = HistogramLayout(),
                                         HistogramExport how = {});

    Family<Counter> counter_family(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                                   FamilyOptions opt = {});
    Family<Gauge> gauge_family(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                               FamilyOptions opt = {});
    // Every series with() creates gets this layout and these units.
    Family<Histogram> histogram_family(std::string_view name, std::string_view help,
                                       std::vector<std::string> label_names,
                                       const HistogramLayout& layout = HistogramLayout(), HistogramExport how = {},
                                       FamilyOptions opt = {});

    // Existing counters, by reference: they must outlive their registration.
    void add_counter(std::string_view name, std::string_view help, const Labels& labels, Counter& c);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, Gauge& g);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, MaxGauge& g);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, MinGauge& g);
    void add_histogram(std::string_view name, std::string_view help, const Labels& labels, Histogram& h,
                       HistogramExport how = {});
    // Values computed at read time (must be cheap, non-blocking, and must not
    // touch the Registry). A callback counter must never decrease. A
    // callback histogram reports its own units in HistogramData.
    void add_counter(std::string_view name, std::string_view help, const Labels& labels,
                     std::function<std::uint64_t()> read);
    void add_gauge(std::string_view name, std::string_view help, const Labels& labels, std::function<double()> read);
    void add_histogram(std::string_view name, std::string_view help, const Labels& labels,
                       std::function<HistogramData()> read);
    // Any source; registering a series that already exists is a MetricError.
    void add(std::string_view name, std::string_view help, const Labels& labels, std::shared_ptr<MetricSource> src);

    // Stops exporting one series / a whole family. Returns whether it existed.
    bool remove(std::string_view name, const Labels& labels);
    bool remove_family(std::string_view name);

    Snapshot collect(const CollectOptions& opt = {}) const;
    // One series by series_id() (with or without the constant labels), with
    // its shard breakdown.
    std::optional<FamilySnapshot> find(std::string_view id) const;
    // Resets one series by series_id(). nullopt: no such series, or it
    // cannot be reset.
    std::optional<MetricValue> reset(std::string_view id);

    std::size_t series_count() const;
    const RegistryOptions& options() const noexcept;

private:
    template <class>
    friend class Family;
    std::unique_ptr<detail::RegistryState> st_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

}  // namespace percore
