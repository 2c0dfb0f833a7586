// SPDX-License-Identifier: MIT
// Registry: validation at registration (all of it before anything changes),
// shared-lock reads for exporters and for Family::with() lookups.
#include "percore/export/registry.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <type_traits>

#include "format.hpp"

namespace percore {

namespace detail {

struct Series {
    Labels labels;  // in family order, without the registry's constant labels
    std::shared_ptr<MetricSource> src;
    // The registry-owned Counter, Gauge or Histogram that counter(), gauge(),
    // histogram() and Family::with() hand out; null for references and callbacks.
    std::shared_ptr<void> owned;
};

// A histogram family's layout and resolved units, for the series with() creates.
struct HistogramSpec {
    HistogramLayout layout;
    HistogramExport how;
};

// Shared with the Family handles, so that with() finds its series without
// looking the name up. Every field is guarded by the registry's lock.
struct FamilyEntry {
    std::string name;
    std::string help;
    MetricType type;
    std::vector<std::string> label_names;
    std::map<std::vector<std::string>, Series, std::less<>> series;  // by label values in family order
    std::size_t max_series = 0;                                      // 0: no limit
    std::optional<Unit> unit;                                        // exported unit of a histogram family
    std::optional<HistogramSpec> spec;                               // set by histogram_family()
    std::vector<std::string> claims;                                 // its OpenMetrics names
    bool removed = false;
};

}  // namespace detail

namespace {

using detail::FamilyEntry;
using detail::Series;

constexpr std::string_view kRefusedName = "percore_series_refused_total";
constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

// --- Units -----------------------------------------------------------------

enum class UnitKind { plain, time, size };

UnitKind kind_of(Unit u) {
    switch (u) {
        case Unit::nanoseconds:
        case Unit::microseconds:
        case Unit::milliseconds:
        case Unit::seconds: return UnitKind::time;
        case Unit::bytes: return UnitKind::size;
        case Unit::none: break;
    }
    return UnitKind::plain;
}

// Power of ten of the unit relative to its kind's base unit.
int decimal_exponent(Unit u) {
    switch (u) {
        case Unit::nanoseconds: return -9;
        case Unit::microseconds: return -6;
        case Unit::milliseconds: return -3;
        default: return 0;
    }
}

Unit base_unit(Unit u) {
    switch (kind_of(u)) {
        case UnitKind::time: return Unit::seconds;
        case UnitKind::size: return Unit::bytes;
        case UnitKind::plain: break;
    }
    return Unit::none;
}

// Fills in the units left out (see HistogramExport) and checks them against
// the name: errors and lint are added to the request's lists.
void resolve_units(std::string_view name, HistogramExport& how, std::vector<std::string>& errors,
                   std::vector<std::string>& lint) {
    const bool secs = ends_with(name, "_seconds"), bytes = ends_with(name, "_bytes");
    if (!how.records && !how.exports) {
        how.records = secs ? Unit::nanoseconds : bytes ? Unit::bytes : Unit::none;
        how.exports = secs ? Unit::seconds : bytes ? Unit::bytes : Unit::none;
    } else if (!how.exports) {
        how.exports = base_unit(*how.records);
    } else if (!how.records) {
        how.records = kind_of(*how.exports) == UnitKind::time ? Unit::nanoseconds : *how.exports;
    }
    const Unit rec = *how.records, exp = *how.exports;
    if (kind_of(rec) != kind_of(exp))
        errors.push_back(std::string("records ") + unit_name(rec) + " but exports " + unit_name(exp) +
                         ", a different kind of unit");
    if (secs && exp != Unit::seconds)
        errors.push_back(std::string("ends in \"_seconds\" but exports ") + unit_name(exp) +
                         " (export Unit::seconds or rename it)");
    if (bytes && exp != Unit::bytes)
        errors.push_back(std::string("ends in \"_bytes\" but exports ") + unit_name(exp) +
                         " (export Unit::bytes or rename it)");
    if (exp == Unit::seconds && !secs) lint.emplace_back("exports seconds but its name does not end in \"_seconds\"");
    if (exp == Unit::bytes && !bytes) lint.emplace_back("exports bytes but its name does not end in \"_bytes\"");
    if (kind_of(exp) == UnitKind::time && exp != Unit::seconds)
        lint.push_back(std::string("exports ") + unit_name(exp) + ", not the base unit seconds");
}

// --- Sources ----------------------------------------------------------------

// Per-shard rows of a Counter or Gauge (row order, last = shared row).
template <class M>
std::vector<std::int64_t> shard_rows(const M& m) {
    std::vector<std::int64_t> out(m.arena().rows());
    for (std::size_t r = 0; r < out.size(); ++r) out[r] = static_cast<std::int64_t>(m.shard_value(r));
    return out;
}

// Shared by owned and referenced histograms: snapshot, then convert to the
// exported unit. `how` is resolved (both units set).
HistogramData histogram_data(const Histogram& h, const HistogramExport& how) {
    auto s = std::make_shared<const HistogramSnapshot>(h.snapshot());
    const Unit from = *how.records, to = *how.exports;
    auto conv = [&](std::uint64_t v) { return convert_unit(v, from, to); };
    HistogramData d;
    d.count = s->count();
    d.sum = conv(s->sum());
    d.min = conv(s->min());
    d.max = conv(s->max());
    for (const auto& b : s->cumulative(how.bounds)) d.buckets.push_back({conv(b.upper_bound), b.count});
    for (double q : {50.0, 90.0, 99.0, 99.9}) d.percentiles.emplace_back(q / 100, conv(s->percentile(q)));
    d.snapshot = std::move(s);
    d.recorded = from;
    d.exported = to;
    return d;
}

// A percore::Histogram (owned) or Histogram& (referenced) with the units and
// bounds it is exported with.
template <class H>
struct ExportedHistogram {
    template <class... Args>
    explicit ExportedHistogram(HistogramExport h, Args&&... args)
        : how(std::move(h)), histogram(std::forward<Args>(args)...) {}
    HistogramExport how;
    H histogram;
};
// What the registry knows about each kind of metric: the type it exports
// as and how to read it; shards() and reset() where the metric has them.
template <class Metric>
struct MetricTraits;

template <>
struct MetricTraits<Counter> {
    static constexpr MetricType type = MetricType::counter;
    static MetricValue read(const Counter& c) { return c.value(); }
    static std::vector<std::int64_t> shards(const Counter& c) { return shard_rows(c); }
    static std::optional<MetricValue> reset(Counter& c) { return MetricValue{c.reset()}; }
};

template <>
struct MetricTraits<Gauge> {
    static constexpr MetricType type = MetricType::gauge;
    static MetricValue read(const Gauge& g) { return g.value(); }
    static std::vector<std::int64_t> shards(const Gauge& g) { return shard_rows(g); }
    static std::optional<MetricValue> reset(Gauge& g) {
        const std::int64_t v = g.value();
        g.set(0);
        return MetricValue{v};
    }
};

// Max/min trackers export 0 before their first update: a gauge needs a value.
template <class T>
    requires std::same_as<T, MaxGauge> || std::same_as<T, MinGauge>
struct MetricTraits<T> {
    static constexpr MetricType type = MetricType::gauge;
    static MetricValue read(const T& g) { return g.value().value_or(0); }
    static std::optional<MetricValue> reset(T& g) { return MetricValue{g.reset().value_or(0)}; }
};

template <class H>
struct MetricTraits<ExportedHistogram<H>> {
    static constexpr MetricType type = MetricType::histogram;
    static MetricValue read(const ExportedHistogram<H>& e) { return histogram_data(e.histogram, e.how); }
    static std::vector<std::int64_t> shards(const ExportedHistogram<H>& e) {
        const std::vector<std::uint64_t> c = e.histogram.shard_counts();
        return {c.begin(), c.end()};
    }
};

// Callbacks: read at collect time, never reset.
template <class R>
struct MetricTraits<std::function<R()>> {
    static constexpr MetricType type = std::is_same_v<R, std::uint64_t> ? MetricType::counter
                                       : std::is_same_v<R, double>      ? MetricType::gauge
                                                                        : MetricType::histogram;
    static MetricValue read(const std::function<R()>& f) { return f(); }
};

// The one MetricSource the registry creates. Metric is held by value
// (registry-owned) or is a reference type (an object the program owns).
template <class Metric>
class Source final : public MetricSource {
    using Traits = MetricTraits<std::remove_cvref_t<Metric>>;

public:
    static constexpr MetricType metric_type = Traits::type;

    template <class... Args>
    explicit Source(Args&&... args) : metric(std::forward<Args>(args)...) {}

    MetricType type() const override { return Traits::type; }
    MetricValue read() const override { return Traits::read(metric); }
    std::vector<std::int64_t> shards() const override {
        if constexpr (requires { Traits::shards(metric); }) return Traits::shards(metric);
        else return {};
    }
    std::optional<MetricValue> reset() override {
        if constexpr (requires { Traits::reset(metric); }) return Traits::reset(metric);
        else return std::nullopt;
    }

    Metric metric;
};

template <class R>
std::shared_ptr<MetricSource> callback(std::string_view name, std::function<R()> read) {
    if (!read) throw MetricError("metric \"" + std::string(name) + "\": empty callback");
    return std::make_shared<Source<std::function<R()>>>(std::move(read));
}

std::vector<std::uint64_t> default_bounds(std::uint64_t highest) {
    std::vector<std::uint64_t> b;
    for (std::uint64_t decade = 1;; decade *= 10) {
        for (std::uint64_t m : {1, 2, 5}) {
            if (decade * m > highest) return b;
            b.push_back(decade * m);
        }
        if (decade > highest / 10) return b;
    }
}


// Parses `name` or `name{a="x",...}` (the inverse of series_id).
bool parse_series_id(std::string_view id, std::string& name, Labels& labels) {
    const auto brace = id.find('{');
    name = std::string(id.substr(0, brace));
    if (brace == std::string_view::npos) return true;
    if (id.back() != '}') return false;
    std::size_t i = brace + 1;
    const std::size_t end = id.size() - 1;
    while (i < end) {
        const auto eq = id.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= end || id[eq + 1] != '"') return false;
        std::string key(id.substr(i, eq - i)), val;
        std::size_t j = eq + 2;
        for (; j < end && id[j] != '"'; ++j) {
            if (id[j] == '\\') {
                if (++j >= end) return false;
                val += id[j] == 'n' ? '\n' : id[j];
            } else {
                val += id[j];
            }
        }
        if (j >= end) return false;
        labels.emplace_back(std::move(key), std::move(val));
        i = j + 1;
        if (i < end) {
            if (id[i] != ',') return false;
            ++i;
        }
    }
    return true;
}


// --- Registration -------------------------------------------------------------

// What a registration asks for, besides its labels. `errors` and `lint` carry
// what the caller found already (units, bounds, label values), so that one
// message reports every problem.
struct Request {
    std::string_view name;
    std::string_view help;
    MetricType type;
    std::optional<Unit> unit;  // exported unit of a percore::Histogram source
    std::vector<std::string> errors;
    std::vector<std::string> lint;
    std::size_t max_series = 0;  // a family registration's limit; 0: leave as is
};

// A histogram registration: units resolved, default bounds filled in.
Request histogram_request(std::string_view name, std::string_view help, HistogramExport& how,
                          const HistogramLayout& layout) {
    Request rq{name, help, MetricType::histogram, std::nullopt, {}, {}, 0};
    resolve_units(name, how, rq.errors, rq.lint);
    if (how.bounds.empty()) how.bounds = default_bounds(layout.highest());
    if (!std::is_sorted(how.bounds.begin(), how.bounds.end())) rq.errors.emplace_back("bucket bounds must ascend");
    rq.unit = how.exports;
    return rq;
}

// The names a family occupies in an OpenMetrics exposition: its family name
// and the sample names its type writes. OpenMetrics 1.0 ("MetricFamily")
// forbids a family name that could clash with another family's sample
// names, e.g. a gauge "x_created" beside a counter "x_total" (family "x",
// samples "x_total" and "x_created").
std::vector<std::string> claims_of(std::string_view name, MetricType type) {
    const std::string n(name);
    switch (type) {
        case MetricType::counter:
            if (ends_with(n, "_total") && n.size() > 6) {
                const std::string stem = n.substr(0, n.size() - 6);
                return {stem, n, stem + "_created"};
            }
            break;
        case MetricType::gauge:
            // "x_info" is how text 0.0.4 writes the OpenMetrics info family "x".
            if (ends_with(n, "_info") && n.size() > 5) return {n, n.substr(0, n.size() - 5)};
            break;
        case MetricType::histogram: return {n, n + "_bucket", n + "_count", n + "_sum", n + "_created"};
    }
    return {n};
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "; " : "") + v[i];
    return out;
}

std::string label_list(const std::vector<std::string>& names) {
    std::string out = "{";
    for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    return out + "}";
}

// A registration checked against the registry, nothing changed yet.
struct Plan {
    std::shared_ptr<FamilyEntry> fam;  // existing, or new and not yet inserted
    bool fresh = false;
    std::vector<std::string> values;  // label values in family order (series registrations)
    Series* existing = nullptr;       // that series, when it is registered already
    std::string lint;                 // to report once the lock is released
};

}  // namespace

namespace detail {

struct RegistryState {
    RegistryOptions opt;
    mutable std::shared_mutex mu;
    std::map<std::string, std::shared_ptr<FamilyEntry>, std::less<>> families;
    std::map<std::string, std::string, std::less<>> claims;  // OpenMetrics name -> the family holding it
    std::set<std::string, std::less<>> linted;               // names whose lint was reported
    // Refusals per family name, read by the percore_series_refused_total series.
    std::map<std::string, std::shared_ptr<std::atomic<std::uint64_t>>, std::less<>> refused;
    std::size_t series = 0;
};

}  // namespace detail

namespace {

using detail::RegistryState;

bool has_const_label(const RegistryState& st, std::string_view name) {
    for (const auto& [k, v] : st.opt.const_labels)
        if (k == name) return true;
    return false;
}

// Checks a family registration. A new family is built but not inserted;
// every problem with it goes into one MetricError.
Plan plan_family(const RegistryState& st, const Request& rq, const std::vector<std::string>& label_names) {
    const std::string who = "metric " + quoted(rq.name);
    Plan p;
    if (auto it = st.families.find(rq.name); it != st.families.end()) {
        const FamilyEntry& f = *it->second;
        if (f.type != rq.type)
            throw MetricError(who + " is already registered as a " + metric_type_name(f.type) + ", not a " +
                              metric_type_name(rq.type));
        if (!rq.help.empty() && rq.help != f.help)
            throw MetricError(who + " is already registered with different help text");
        auto a = f.label_names, b = label_names;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b)
            throw MetricError(who + " is already registered with the label names " + label_list(f.label_names) +
                              ", not " + label_list(label_names));
        if (rq.unit && f.unit && *rq.unit != *f.unit)
            throw MetricError(who + " is already registered exporting " + unit_name(*f.unit) + ", not " +
                              unit_name(*rq.unit));
        if (!rq.errors.empty()) throw MetricError(who + ": " + joined(rq.errors));
        p.fam = it->second;
        return p;
    }

    std::vector<std::string> errors, lint;
    const NameCheck nc = check_metric_name(rq.name, rq.type);
    for (const auto& e : nc.errors) errors.push_back("name " + e);
    for (const auto& l : nc.lint) lint.push_back("name " + l);
    if (auto e = help_error(rq.help); !e.empty()) errors.push_back(std::move(e));
    for (std::size_t i = 0; i < label_names.size(); ++i) {
        const std::string& ln = label_names[i];
        const NameCheck lc = check_label_name(ln, rq.type);
        for (const auto& e : lc.errors) errors.push_back("label " + quoted(ln) + " " + e);
        for (const auto& l : lc.lint) lint.push_back("label " + quoted(ln) + " " + l);
        if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i), ln) !=
            label_names.begin() + static_cast<std::ptrdiff_t>(i))
            errors.push_back("label " + quoted(ln) + " given twice");
        else if (has_const_label(st, ln))
            errors.push_back("label " + quoted(ln) + " is one of the registry's constant labels");
    }
    errors.insert(errors.end(), rq.errors.begin(), rq.errors.end());
    lint.insert(lint.end(), rq.lint.begin(), rq.lint.end());
    if (nc.errors.empty()) {
        std::set<std::string> seen;
        for (const auto& c : claims_of(rq.name, rq.type)) {
            const auto o = st.claims.find(c);
            if (o == st.claims.end() || !seen.insert(o->second).second) continue;
            const FamilyEntry& other = *st.families.find(o->second)->second;
            errors.push_back(std::string("collides with the ") + metric_type_name(other.type) + " " +
                             quoted(other.name) + " at " + quoted(c) +
                             " (OpenMetrics family and sample names must not clash)");
        }
    }
    if (!errors.empty() || (st.opt.strict_names && !lint.empty())) {
        std::string msg = who + ": " + joined(errors);
        if (!lint.empty())
            msg += std::string(errors.empty() ? "" : "; ") + "naming conventions" +
                   (st.opt.strict_names ? " (RegistryOptions::strict_names)" : "") + ": " + joined(lint);
        throw MetricError(msg);
    }
    if (!lint.empty())
        p.lint = who + " breaks naming conventions: " + joined(lint) +
                 " (a warning; RegistryOptions::strict_names makes it an error)";
    auto f = std::make_shared<FamilyEntry>();
    f->name = std::string(rq.name);
    f->help = std::string(rq.help);
    f->type = rq.type;
    f->label_names = label_names;
    f->max_series = st.opt.max_series_per_family;
    f->claims = claims_of(rq.name, rq.type);
    p.fam = std::move(f);
    p.fresh = true;
    return p;
}

[[noreturn]] void refuse_locked(RegistryState& st, const FamilyEntry& f, const Labels& labels);

// Checks a series registration (its family, label values, the family's
// limit) without changing anything, except that a refusal is counted.
Plan plan_series(RegistryState& st, Request rq, const Labels& labels, bool limited = true) {
    std::vector<std::string> names;
    for (const auto& [k, v] : labels) {
        names.push_back(k);
        if (auto e = label_value_error(v); !e.empty()) rq.errors.push_back("label " + quoted(k) + ": " + e);
    }
    Plan p = plan_family(st, rq, names);
    FamilyEntry& f = *p.fam;
    for (const auto& ln : f.label_names) {
        const auto it = std::find_if(labels.begin(), labels.end(), [&](const auto& l) { return l.first == ln; });
        p.values.push_back(it->second);
    }
    if (auto it = f.series.find(p.values); it != f.series.end()) {
        p.existing = &it->second;
        return p;
    }
    if (limited && !p.fresh && f.max_series != 0 && f.series.size() >= f.max_series) {
        Labels ordered;
        for (std::size_t i = 0; i < p.values.size(); ++i) ordered.emplace_back(f.label_names[i], p.values[i]);
        refuse_locked(st, f, ordered);
    }
    return p;
}

// Applies a checked plan: inserts a new family with its OpenMetrics names.
void commit_family(RegistryState& st, Plan& p, const Request& rq) {
    FamilyEntry& f = *p.fam;
    if (p.fresh) {
        for (const auto& c : f.claims) st.claims.emplace(c, f.name);
        st.families.emplace(f.name, p.fam);
        if (!p.lint.empty() && !st.linted.insert(f.name).second) p.lint.clear();  // reported before
    }
    if (rq.max_series != 0) f.max_series = rq.max_series;
    if (rq.unit && !f.unit) f.unit = rq.unit;
}

void insert_series(RegistryState& st, FamilyEntry& f, std::vector<std::string> values,
                   std::shared_ptr<MetricSource> src, std::shared_ptr<void> owned) {
    Labels ordered;
    for (std::size_t i = 0; i < values.size(); ++i) ordered.emplace_back(f.label_names[i], values[i]);
    f.series.emplace(std::move(values), Series{std::move(ordered), std::move(src), std::move(owned)});
    ++st.series;
}

// Counts a refusal, and registers its series the first time a family refuses
// one. The series reads an atomic (refusals are rare) rather than being a
// percore::Counter, so the registry needs no per-CPU update path. If the name
// or the label cannot be had (the program uses the name differently, or
// "family" is a constant label) the count is kept but not exported.
void count_refusal_locked(RegistryState& st, const std::string& family) {
    auto& n = st.refused[family];
    if (!n) n = std::make_shared<std::atomic<std::uint64_t>>(0);
    n->fetch_add(1, std::memory_order_relaxed);
    try {
        const Request rq{kRefusedName, "Series refused because their family reached its limit.", MetricType::counter,
                         std::nullopt, {}, {}, kUnlimited};
        Plan p = plan_series(st, rq, {{"family", family}}, false);
        if (p.existing) return;
        std::function<std::uint64_t()> read = [n] { return n->load(std::memory_order_relaxed); };
        commit_family(st, p, rq);
        insert_series(st, *p.fam, std::move(p.values), callback(kRefusedName, std::move(read)), nullptr);
    } catch (const MetricError&) {
    }
}

[[noreturn]] void refuse_locked(RegistryState& st, const FamilyEntry& f, const Labels& labels) {
    count_refusal_locked(st, f.name);
    throw MetricError(series_id(f.name, labels) + " refused: metric " + quoted(f.name) + " has " +
                      std::to_string(f.series.size()) + " series, its limit (FamilyOptions::max_series, "
                      "RegistryOptions::max_series_per_family); refusals are counted in " +
                      series_id(kRefusedName, {{"family", f.name}}));
}

void report_lint(const RegistryState& st, const std::string& msg) {
    if (msg.empty()) return;
    if (st.opt.on_lint) st.opt.on_lint(msg);
    else std::fprintf(stderr, "percore: %s\n", msg.c_str());
}

[[noreturn]] void removed_error(const std::string& name) {
    throw MetricError("metric family " + quoted(name) +
                      " was removed from the registry (remove_family); register it again for a new handle");
}

template <class T>
std::shared_ptr<T> owned_of(const Series& s, std::string_view name) {
    if (!s.owned)
        throw MetricError(series_id(name, s.labels) +
                          " is registered to a callback or an existing metric, not owned by the registry");
    return std::static_pointer_cast<T>(s.owned);
}

// The registry-owned source behind each handed-out type, and the metric in it.
template <class T>
struct Owned;
template <>
struct Owned<Counter> {
    using Src = Source<Counter>;
    static Counter& metric(Src& s) { return s.metric; }
};
template <>
struct Owned<Gauge> {
    using Src = Source<Gauge>;
    static Gauge& metric(Src& s) { return s.metric; }
};
template <>
struct Owned<Histogram> {
    using Src = Source<ExportedHistogram<Histogram>>;
    static Histogram& metric(Src& s) { return s.metric.histogram; }
};

// Get-or-create of a registry-owned metric; `make` builds its source.
template <class T, class Make>
std::shared_ptr<T> obtain(RegistryState& st, const Request& rq, const Labels& labels, Make make) {
    std::shared_ptr<T> out;
    std::string lint;
    {
        std::unique_lock lk(st.mu);
        Plan p = plan_series(st, rq, labels);
        if (p.existing) {
            out = owned_of<T>(*p.existing, rq.name);
        } else {
            std::shared_ptr<typename Owned<T>::Src> src = make();
            out = std::shared_ptr<T>(src, &Owned<T>::metric(*src));
            commit_family(st, p, rq);
            insert_series(st, *p.fam, std::move(p.values), std::move(src), out);
        }
        lint = std::move(p.lint);
    }
    report_lint(st, lint);
    return out;
}

void add_source(RegistryState& st, const Request& rq, const Labels& labels, std::shared_ptr<MetricSource> src) {
    std::string lint;
    {
        std::unique_lock lk(st.mu);
        Plan p = plan_series(st, rq, labels);
        if (p.existing) throw MetricError(series_id(rq.name, p.existing->labels) + " is already registered");
        commit_family(st, p, rq);
        insert_series(st, *p.fam, std::move(p.values), std::move(src), nullptr);
        lint = std::move(p.lint);
    }
    report_lint(st, lint);
}

std::shared_ptr<FamilyEntry> add_family(RegistryState& st, const Request& rq,
                                        const std::vector<std::string>& label_names,
                                        std::optional<detail::HistogramSpec> spec = std::nullopt) {
    std::shared_ptr<FamilyEntry> f;
    std::string lint;
    {
        std::unique_lock lk(st.mu);
        Plan p = plan_family(st, rq, label_names);
        if (spec && p.fam->spec &&
            !(p.fam->spec->layout == spec->layout && p.fam->spec->how.records == spec->how.records &&
              p.fam->spec->how.bounds == spec->how.bounds))
            throw MetricError("metric " + quoted(rq.name) +
                              " is already a histogram family with a different layout, unit or bounds");
        commit_family(st, p, rq);
        if (spec && !p.fam->spec) p.fam->spec = std::move(spec);
        f = p.fam;
        lint = std::move(p.lint);
    }
    report_lint(st, lint);
    return f;
}

// Labels as exporters see them: the constant labels first.
Labels with_const(const RegistryState& st, const Labels& l) {
    if (st.opt.const_labels.empty()) return l;
    Labels out;
    out.reserve(st.opt.const_labels.size() + l.size());
    out.insert(out.end(), st.opt.const_labels.begin(), st.opt.const_labels.end());
    out.insert(out.end(), l.begin(), l.end());
    return out;
}

// Drops the constant labels from `labels`; false if one is there with another value.
bool strip_const(const RegistryState& st, Labels& labels) {
    for (const auto& c : st.opt.const_labels) {
        const auto it = std::find_if(labels.begin(), labels.end(), [&](const auto& l) { return l.first == c.first; });
        if (it == labels.end()) continue;
        if (it->second != c.second) return false;
        labels.erase(it);
    }
    return true;
}

// Label values of `labels` in the family's order; false if the names differ.
bool values_in_order(const FamilyEntry& f, const Labels& labels, std::vector<std::string>& values) {
    if (labels.size() != f.label_names.size()) return false;
    for (const auto& ln : f.label_names) {
        const auto l = std::find_if(labels.begin(), labels.end(), [&](const auto& p) { return p.first == ln; });
        if (l == labels.end()) return false;
        values.push_back(l->second);
    }
    return true;
}

}  // namespace

const char* unit_name(Unit u) noexcept {
    switch (u) {
        case Unit::none: return "none";
        case Unit::nanoseconds: return "nanoseconds";
        case Unit::microseconds: return "microseconds";
        case Unit::milliseconds: return "milliseconds";
        case Unit::seconds: return "seconds";
        case Unit::bytes: return "bytes";
    }
    return "none";
}

double convert_unit(std::uint64_t v, Unit from, Unit to) {
    if (kind_of(from) != kind_of(to))
        throw std::invalid_argument(std::string("percore::convert_unit: cannot convert ") + unit_name(from) + " to " +
                                    unit_name(to));
    static constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    const int k = decimal_exponent(from) - decimal_exponent(to);
    const double x = static_cast<double>(v);
    // One correctly rounded operation on exact operands (powers of ten up to
    // 1e22 are exact doubles): dividing by 1e9 is exact to the last bit where
    // multiplying by the inexact 1e-9 is not.
    if (k == 0) return x;
    return k > 0 ? x * kPow10[k] : x / kPow10[-k];
}

double quantile_from_buckets(const std::vector<HistogramData::Bucket>& buckets, double q, double min, double max) {
    if (buckets.empty()) return 0;
    const std::uint64_t total = buckets.back().cumulative_count;
    if (total == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    for (const auto& b : buckets)
        if (b.cumulative_count >= std::max<std::uint64_t>(rank, 1)) return std::clamp(b.upper_bound, min, max);
    return max;
}

std::string series_id(std::string_view name, const Labels& labels) {
    std::string out(name);
    if (labels.empty()) return out;
    out += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) out += ',';
        out += labels[i].first;
        out += "=\"";
        text::append_label_value(out, labels[i].second);
        out += '"';
    }
    out += '}';
    return out;
}

// --- Family -------------------------------------------------------------------

template <class T>
std::shared_ptr<T> Family<T>::with(const std::vector<std::string>& values) const {
    RegistryState& st = *reg_->st_;
    FamilyEntry& f = *fam_;
    {
        // The fast path: an existing series, found without validating anything.
        std::shared_lock lk(st.mu);
        if (f.removed) removed_error(name_);
        if (auto it = f.series.find(values); it != f.series.end()) return owned_of<T>(it->second, name_);
    }
    if (values.size() != label_names_.size())
        throw MetricError("metric " + quoted(name_) + ": expected " + std::to_string(label_names_.size()) +
                          " label values " + label_list(label_names_) + ", got " + std::to_string(values.size()));
    std::vector<std::string> errors;
    for (std::size_t i = 0; i < values.size(); ++i)
        if (auto e = label_value_error(values[i]); !e.empty())
            errors.push_back("label " + quoted(label_names_[i]) + ": " + e);
    if (!errors.empty()) throw MetricError("metric " + quoted(name_) + ": " + joined(errors));

    std::unique_lock lk(st.mu);
    if (f.removed) removed_error(name_);
    if (auto it = f.series.find(values); it != f.series.end()) return owned_of<T>(it->second, name_);  // just made
    if (f.max_series != 0 && f.series.size() >= f.max_series) {
        Labels l;
        for (std::size_t i = 0; i < values.size(); ++i) l.emplace_back(label_names_[i], values[i]);
        refuse_locked(st, f, l);
    }
    std::shared_ptr<typename Owned<T>::Src> src;
    if constexpr (std::is_same_v<T, Histogram>)
        src = std::make_shared<typename Owned<T>::Src>(f.spec->how, f.spec->layout);
    else src = std::make_shared<typename Owned<T>::Src>();
    std::shared_ptr<T> out(src, &Owned<T>::metric(*src));
    insert_series(st, f, values, std::move(src), out);
    return out;
}

template <class T>
bool Family<T>::remove(const std::vector<std::string>& values) const {
    if (values.size() != label_names_.size()) return false;
    Labels l;
    for (std::size_t i = 0; i < values.size(); ++i) l.emplace_back(label_names_[i], values[i]);
    return reg_->remove(name_, l);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Registry -----------------------------------------------------------------

Registry::Registry() : Registry(RegistryOptions{}) {}

Registry::Registry(RegistryOptions opt) : st_(std::make_unique<RegistryState>()) {
    std::vector<std::string> errors, lint;
    const auto& cl = opt.const_labels;
    for (std::size_t i = 0; i < cl.size(); ++i) {
        const auto& [k, v] = cl[i];
        // Constant labels go on histograms too, so histogram rules apply.
        const NameCheck c = check_label_name(k, MetricType::histogram);
        for (const auto& e : c.errors) errors.push_back("label " + quoted(k) + " " + e);
        for (const auto& l : c.lint) lint.push_back("label " + quoted(k) + " " + l);
        for (std::size_t j = 0; j < i; ++j)
            if (cl[j].first == k) errors.push_back("label " + quoted(k) + " given twice");
        if (auto e = label_value_error(v); !e.empty()) errors.push_back("label " + quoted(k) + ": " + e);
    }
    if (!errors.empty() || (opt.strict_names && !lint.empty())) {
        errors.insert(errors.end(), lint.begin(), lint.end());
        throw MetricError("RegistryOptions::const_labels: " + joined(errors));
    }
    st_->opt = std::move(opt);
    if (!lint.empty())
        report_lint(*st_, "RegistryOptions::const_labels break naming conventions: " + joined(lint));
}

Registry::~Registry() = default;

const RegistryOptions& Registry::options() const noexcept { return st_->opt; }

std::shared_ptr<Counter> Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
    const Request rq{name, help, MetricType::counter, std::nullopt, {}, {}, 0};
    return obtain<Counter>(*st_, rq, labels, [] { return std::make_shared<Source<Counter>>(); });
}

std::shared_ptr<Gauge> Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
    const Request rq{name, help, MetricType::gauge, std::nullopt, {}, {}, 0};
    return obtain<Gauge>(*st_, rq, labels, [] { return std::make_shared<Source<Gauge>>(); });
}

std::shared_ptr<Histogram> Registry::histogram(std::string_view name, std::string_view help, const Labels& labels,
                                               const HistogramLayout& layout, HistogramExport how) {
    const Request rq = histogram_request(name, help, how, layout);
    return obtain<Histogram>(*st_, rq, labels, [&] {
        return std::make_shared<Source<ExportedHistogram<Histogram>>>(std::move(how), layout);
    });
}

Family<Counter> Registry::counter_family(std::string_view name, std::string_view help,
                                         std::vector<std::string> label_names, FamilyOptions opt) {
    const Request rq{name, help, MetricType::counter, std::nullopt, {}, {}, opt.max_series};
    auto f = add_family(*st_, rq, label_names);
    return Family<Counter>(*this, f, f->name, f->label_names);
}

Family<Gauge> Registry::gauge_family(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names, FamilyOptions opt) {
    const Request rq{name, help, MetricType::gauge, std::nullopt, {}, {}, opt.max_series};
    auto f = add_family(*st_, rq, label_names);
    return Family<Gauge>(*this, f, f->name, f->label_names);
}

Family<Histogram> Registry::histogram_family(std::string_view name, std::string_view help,
                                             std::vector<std::string> label_names, const HistogramLayout& layout,
                                             HistogramExport how, FamilyOptions opt) {
    Request rq = histogram_request(name, help, how, layout);
    rq.max_series = opt.max_series;
    auto f = add_family(*st_, rq, label_names, detail::HistogramSpec{layout, std::move(how)});
    return Family<Histogram>(*this, f, f->name, f->label_names);
}

void Registry::add(std::string_view name, std::string_view help, const Labels& labels,
                   std::shared_ptr<MetricSource> src) {
    if (!src) throw MetricError("metric " + quoted(name) + ": null source");
    const Request rq{name, help, src->type(), std::nullopt, {}, {}, 0};
    add_source(*st_, rq, labels, std::move(src));
}

void Registry::add_counter(std::string_view name, std::string_view help, const Labels& labels, Counter& c) {
    add(name, help, labels, std::make_shared<Source<Counter&>>(c));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, Gauge& g) {
    add(name, help, labels, std::make_shared<Source<Gauge&>>(g));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, MaxGauge& g) {
    add(name, help, labels, std::make_shared<Source<MaxGauge&>>(g));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, MinGauge& g) {
    add(name, help, labels, std::make_shared<Source<MinGauge&>>(g));
}
void Registry::add_histogram(std::string_view name, std::string_view help, const Labels& labels, Histogram& h,
                             HistogramExport how) {
    const Request rq = histogram_request(name, help, how, h.layout());
    add_source(*st_, rq, labels, std::make_shared<Source<ExportedHistogram<Histogram&>>>(std::move(how), h));
}

void Registry::add_counter(std::string_view name, std::string_view help, const Labels& labels,
                           std::function<std::uint64_t()> read) {
    add(name, help, labels, callback(name, std::move(read)));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels,
                         std::function<double()> read) {
    add(name, help, labels, callback(name, std::move(read)));
}
void Registry::add_histogram(std::string_view name, std::string_view help, const Labels& labels,
                             std::function<HistogramData()> read) {
    add(name, help, labels, callback(name, std::move(read)));
}

bool Registry::remove(std::string_view name, const Labels& labels) {
    std::unique_lock lk(st_->mu);
    auto it = st_->families.find(name);
    if (it == st_->families.end()) return false;
    Labels own = labels;
    std::vector<std::string> values;
    if (!strip_const(*st_, own) || !values_in_order(*it->second, own, values)) return false;
    const bool erased = it->second->series.erase(values) > 0;
    st_->series -= erased ? 1 : 0;
    return erased;
}

bool Registry::remove_family(std::string_view name) {
    std::unique_lock lk(st_->mu);
    auto it = st_->families.find(name);
    if (it == st_->families.end()) return false;
    FamilyEntry& f = *it->second;
    f.removed = true;  // Family handles see it under the lock and stop
    for (const auto& c : f.claims)
        if (auto o = st_->claims.find(c); o != st_->claims.end() && o->second == f.name) st_->claims.erase(o);
    st_->series -= f.series.size();
    f.series.clear();
    st_->families.erase(it);
    return true;
}

Snapshot Registry::collect(const CollectOptions& opt) const {
    std::shared_lock lk(st_->mu);
    Snapshot out;
    auto emit = [&](const FamilyEntry& f) {
        if (f.series.empty()) return;
        FamilySnapshot fs{f.name, f.help, f.type, {}};
        fs.series.reserve(f.series.size());
        for (const auto& [values, s] : f.series)
            fs.series.push_back(SeriesSnapshot{with_const(*st_, s.labels), s.src->read(),
                                               opt.shards ? s.src->shards() : std::vector<std::int64_t>{}});
        out.push_back(std::move(fs));
    };
    if (!opt.name.empty()) {
        if (auto it = st_->families.find(opt.name); it != st_->families.end()) emit(*it->second);
        return out;
    }
    out.reserve(st_->families.size());
    for (const auto& [name, f] : st_->families) emit(*f);
    return out;
}

namespace {

// The series of a series_id(), with or without the constant labels. Caller
// holds the lock.
std::pair<const FamilyEntry*, const Series*> find_locked(const RegistryState& st, std::string_view id) {
    std::string name;
    Labels labels;
    if (!parse_series_id(id, name, labels) || !strip_const(st, labels)) return {};
    auto it = st.families.find(name);
    if (it == st.families.end()) return {};
    std::vector<std::string> values;
    if (!values_in_order(*it->second, labels, values)) return {};
    auto s = it->second->series.find(values);
    if (s == it->second->series.end()) return {};
    return {it->second.get(), &s->second};
}

}  // namespace

std::optional<FamilySnapshot> Registry::find(std::string_view id) const {
    std::shared_lock lk(st_->mu);
    const auto [f, s] = find_locked(*st_, id);
    if (!s) return std::nullopt;
    FamilySnapshot fs{f->name, f->help, f->type, {}};
    fs.series.push_back(SeriesSnapshot{with_const(*st_, s->labels), s->src->read(), s->src->shards()});
    return fs;
}

std::optional<MetricValue> Registry::reset(std::string_view id) {
    // Shared: resetting changes counter values, not the registry's shape.
    std::shared_lock lk(st_->mu);
    const auto [f, s] = find_locked(*st_, id);
    if (!s) return std::nullopt;
    return s->src->reset();
}

std::size_t Registry::series_count() const {
    std::shared_lock lk(st_->mu);
    return st_->series;
}

}  // namespace percore
