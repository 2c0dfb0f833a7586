// Registry: validation at registration, shared-lock reads for exporters.
#include "percore/export/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace percore {
namespace {

class OwnedCounter final : public MetricSource {
public:
    Counter c;
    MetricType type() const override { return MetricType::counter; }
    MetricValue read() const override { return c.value(); }
    std::vector<std::int64_t> shards() const override {
        std::vector<std::int64_t> out(c.arena().rows());
        for (std::size_t r = 0; r < out.size(); ++r) out[r] = static_cast<std::int64_t>(c.shard_value(r));
        return out;
    }
    std::optional<MetricValue> reset() override { return MetricValue{c.reset()}; }
};

class OwnedGauge final : public MetricSource {
public:
    Gauge g;
    MetricType type() const override { return MetricType::gauge; }
    MetricValue read() const override { return g.value(); }
    std::vector<std::int64_t> shards() const override {
        std::vector<std::int64_t> out(g.arena().rows());
        for (std::size_t r = 0; r < out.size(); ++r) out[r] = g.shard_value(r);
        return out;
    }
    std::optional<MetricValue> reset() override {
        const std::int64_t v = g.value();
        g.set(0);
        return MetricValue{v};
    }
};

class CounterRef final : public MetricSource {
public:
    explicit CounterRef(Counter& c) : c_(c) {}
    MetricType type() const override { return MetricType::counter; }
    MetricValue read() const override { return c_.value(); }
    std::vector<std::int64_t> shards() const override {
        std::vector<std::int64_t> out(c_.arena().rows());
        for (std::size_t r = 0; r < out.size(); ++r) out[r] = static_cast<std::int64_t>(c_.shard_value(r));
        return out;
    }
    std::optional<MetricValue> reset() override { return MetricValue{c_.reset()}; }

private:
    Counter& c_;
};

class GaugeRef final : public MetricSource {
public:
    explicit GaugeRef(Gauge& g) : g_(g) {}
    MetricType type() const override { return MetricType::gauge; }
    MetricValue read() const override { return g_.value(); }
    std::vector<std::int64_t> shards() const override {
        std::vector<std::int64_t> out(g_.arena().rows());
        for (std::size_t r = 0; r < out.size(); ++r) out[r] = g_.shard_value(r);
        return out;
    }
    std::optional<MetricValue> reset() override {
        const std::int64_t v = g_.value();
        g_.set(0);
        return MetricValue{v};
    }

private:
    Gauge& g_;
};

// Max/min trackers export 0 before their first update: a gauge needs a value.
template <class T>
class ExtremeRef final : public MetricSource {
public:
    explicit ExtremeRef(T& g) : g_(g) {}
    MetricType type() const override { return MetricType::gauge; }
    MetricValue read() const override { return g_.value().value_or(0); }
    std::optional<MetricValue> reset() override { return MetricValue{g_.reset().value_or(0)}; }

private:
    T& g_;
};

class CounterFn final : public MetricSource {
public:
    explicit CounterFn(std::function<std::uint64_t()> f) : f_(std::move(f)) {}
    MetricType type() const override { return MetricType::counter; }
    MetricValue read() const override { return f_(); }

private:
    std::function<std::uint64_t()> f_;
};

class GaugeFn final : public MetricSource {
public:
    explicit GaugeFn(std::function<double()> f) : f_(std::move(f)) {}
    MetricType type() const override { return MetricType::gauge; }
    MetricValue read() const override { return f_(); }

private:
    std::function<double()> f_;
};

class HistogramFn final : public MetricSource {
public:
    explicit HistogramFn(std::function<HistogramData()> f) : f_(std::move(f)) {}
    MetricType type() const override { return MetricType::histogram; }
    MetricValue read() const override { return f_(); }

private:
    std::function<HistogramData()> f_;
};

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

// Scaling integer bounds by 1e-9 leaves binary noise (5.0000000000000004e-08);
// 15 significant digits is exact for every value a u64 histogram can hold.
double tidy(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return std::strtod(buf, nullptr);
}

// Shared by owned and referenced histograms: snapshot, then scale.
HistogramData histogram_data(const Histogram& h, const HistogramExport& how) {
    const HistogramSnapshot s = h.snapshot();
    HistogramData d;
    d.count = s.count();
    d.sum = tidy(static_cast<double>(s.sum()) * how.scale);
    d.min = tidy(static_cast<double>(s.min()) * how.scale);
    d.max = tidy(static_cast<double>(s.max()) * how.scale);
    for (const auto& b : s.cumulative(how.bounds))
        d.buckets.push_back({tidy(static_cast<double>(b.upper_bound) * how.scale), b.count});
    for (const auto& b : s.cumulative()) d.fine.push_back({tidy(static_cast<double>(b.upper_bound) * how.scale), b.count});
    for (double q : {50.0, 90.0, 99.0, 99.9})
        d.percentiles.emplace_back(q / 100, tidy(static_cast<double>(s.percentile(q)) * how.scale));
    return d;
}

class OwnedHistogram final : public MetricSource {
public:
    OwnedHistogram(const HistogramLayout& layout, HistogramExport how) : h(layout), how_(std::move(how)) {}
    Histogram h;
    MetricType type() const override { return MetricType::histogram; }
    MetricValue read() const override { return histogram_data(h, how_); }

private:
    HistogramExport how_;
};

class HistogramRef final : public MetricSource {
public:
    HistogramRef(Histogram& h, HistogramExport how) : h_(h), how_(std::move(how)) {}
    MetricType type() const override { return MetricType::histogram; }
    MetricValue read() const override { return histogram_data(h_, how_); }

private:
    Histogram& h_;
    HistogramExport how_;
};

void append_escaped(std::string& out, std::string_view v) {
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
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

}  // namespace

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
        append_escaped(out, labels[i].second);
        out += '"';
    }
    out += '}';
    return out;
}

Registry::FamilyEntry& Registry::family_locked(std::string_view name, std::string_view help, MetricType type,
                                               const std::vector<std::string>& label_names) {
    auto it = families_.find(name);
    if (it != families_.end()) {
        FamilyEntry& f = it->second;
        if (f.type != type)
            throw MetricError("metric \"" + std::string(name) + "\" is already registered as a " +
                              metric_type_name(f.type) + ", not a " + metric_type_name(type));
        if (!help.empty() && help != f.help)
            throw MetricError("metric \"" + std::string(name) + "\" is already registered with different help text");
        auto a = f.label_names, b = label_names;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b)
            throw MetricError("metric \"" + std::string(name) +
                              "\" is already registered with a different set of label names");
        return f;
    }
    if (auto e = metric_name_error(name, type); !e.empty()) throw MetricError(e);
    if (auto e = help_error(help); !e.empty()) throw MetricError("metric \"" + std::string(name) + "\": " + e);
    for (std::size_t i = 0; i < label_names.size(); ++i) {
        if (auto e = label_name_error(label_names[i]); !e.empty())
            throw MetricError("metric \"" + std::string(name) + "\": " + e);
        for (std::size_t j = 0; j < i; ++j)
            if (label_names[i] == label_names[j])
                throw MetricError("metric \"" + std::string(name) + "\": label \"" + label_names[i] + "\" given twice");
    }
    FamilyEntry f{std::string(help), type, label_names, {}};
    return families_.emplace(std::string(name), std::move(f)).first->second;
}

std::pair<Registry::FamilyEntry*, std::vector<std::string>> Registry::prepare(std::string_view name,
                                                                             std::string_view help, MetricType type,
                                                                             const Labels& labels) {
    std::vector<std::string> names;
    for (const auto& [k, v] : labels) names.push_back(k);
    FamilyEntry& f = family_locked(name, help, type, names);
    std::vector<std::string> values;
    for (const auto& ln : f.label_names) {
        const auto it = std::find_if(labels.begin(), labels.end(), [&](const auto& p) { return p.first == ln; });
        if (auto e = label_value_error(it->second); !e.empty())
            throw MetricError("metric \"" + std::string(name) + "\": " + e);
        values.push_back(it->second);
    }
    return {&f, std::move(values)};
}

template <class T, class Src>
std::shared_ptr<T> Registry::get_or_create(std::string_view name, std::string_view help, const Labels& labels,
                                           MetricType type) {
    std::unique_lock lk(mu_);
    auto [fam, values] = prepare(name, help, type, labels);
    auto it = fam->series.find(values);
    if (it != fam->series.end()) {
        auto owned = std::dynamic_pointer_cast<Src>(it->second.src);
        if (!owned)
            throw MetricError(series_id(name, it->second.labels) +
                              " is registered to a callback or an existing counter, not owned by the registry");
        if constexpr (std::is_same_v<Src, OwnedCounter>) return std::shared_ptr<T>(owned, &owned->c);
        else return std::shared_ptr<T>(owned, &owned->g);
    }
    auto src = std::make_shared<Src>();
    Labels ordered;
    for (std::size_t i = 0; i < values.size(); ++i) ordered.emplace_back(fam->label_names[i], values[i]);
    fam->series.emplace(std::move(values), Series{std::move(ordered), src});
    ++series_;
    if constexpr (std::is_same_v<Src, OwnedCounter>) return std::shared_ptr<T>(src, &src->c);
    else return std::shared_ptr<T>(src, &src->g);
}

std::shared_ptr<Counter> Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
    return get_or_create<Counter, OwnedCounter>(name, help, labels, MetricType::counter);
}

std::shared_ptr<Gauge> Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
    return get_or_create<Gauge, OwnedGauge>(name, help, labels, MetricType::gauge);
}

std::shared_ptr<Histogram> Registry::histogram(std::string_view name, std::string_view help, const Labels& labels,
                                               const HistogramLayout& layout, HistogramExport how) {
    if (how.bounds.empty()) how.bounds = default_bounds(layout.highest());
    if (!std::is_sorted(how.bounds.begin(), how.bounds.end()))
        throw MetricError("histogram \"" + std::string(name) + "\": bucket bounds must ascend");
    std::unique_lock lk(mu_);
    auto [fam, values] = prepare(name, help, MetricType::histogram, labels);
    auto it = fam->series.find(values);
    if (it != fam->series.end()) {
        auto owned = std::dynamic_pointer_cast<OwnedHistogram>(it->second.src);
        if (!owned) throw MetricError(series_id(name, it->second.labels) + " is not a registry-owned histogram");
        return std::shared_ptr<Histogram>(owned, &owned->h);
    }
    auto src = std::make_shared<OwnedHistogram>(layout, std::move(how));
    Labels ordered;
    for (std::size_t i = 0; i < values.size(); ++i) ordered.emplace_back(fam->label_names[i], values[i]);
    fam->series.emplace(std::move(values), Series{std::move(ordered), src});
    ++series_;
    return std::shared_ptr<Histogram>(src, &src->h);
}

void Registry::add_histogram(std::string_view name, std::string_view help, const Labels& labels, Histogram& h,
                             HistogramExport how) {
    if (how.bounds.empty()) how.bounds = default_bounds(h.layout().highest());
    if (!std::is_sorted(how.bounds.begin(), how.bounds.end()))
        throw MetricError("histogram \"" + std::string(name) + "\": bucket bounds must ascend");
    add(name, help, labels, std::make_shared<HistogramRef>(h, std::move(how)));
}

Family<Counter> Registry::counter_family(std::string_view name, std::string_view help,
                                         std::vector<std::string> label_names) {
    std::unique_lock lk(mu_);
    family_locked(name, help, MetricType::counter, label_names);
    return Family<Counter>(*this, std::string(name), families_.find(name)->second.label_names);
}

Family<Gauge> Registry::gauge_family(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names) {
    std::unique_lock lk(mu_);
    family_locked(name, help, MetricType::gauge, label_names);
    return Family<Gauge>(*this, std::string(name), families_.find(name)->second.label_names);
}

void Registry::add(std::string_view name, std::string_view help, const Labels& labels,
                   std::shared_ptr<MetricSource> src) {
    if (!src) throw MetricError("metric \"" + std::string(name) + "\": null source");
    std::unique_lock lk(mu_);
    auto [fam, values] = prepare(name, help, src->type(), labels);
    if (fam->series.count(values)) throw MetricError(series_id(name, labels) + " is already registered");
    Labels ordered;
    for (std::size_t i = 0; i < values.size(); ++i) ordered.emplace_back(fam->label_names[i], values[i]);
    fam->series.emplace(std::move(values), Series{std::move(ordered), std::move(src)});
    ++series_;
}

void Registry::add_counter(std::string_view name, std::string_view help, const Labels& labels, Counter& c) {
    add(name, help, labels, std::make_shared<CounterRef>(c));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, Gauge& g) {
    add(name, help, labels, std::make_shared<GaugeRef>(g));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, MaxGauge& g) {
    add(name, help, labels, std::make_shared<ExtremeRef<MaxGauge>>(g));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels, MinGauge& g) {
    add(name, help, labels, std::make_shared<ExtremeRef<MinGauge>>(g));
}
void Registry::add_counter(std::string_view name, std::string_view help, const Labels& labels,
                           std::function<std::uint64_t()> read) {
    if (!read) throw MetricError("metric \"" + std::string(name) + "\": empty callback");
    add(name, help, labels, std::make_shared<CounterFn>(std::move(read)));
}
void Registry::add_gauge(std::string_view name, std::string_view help, const Labels& labels,
                         std::function<double()> read) {
    if (!read) throw MetricError("metric \"" + std::string(name) + "\": empty callback");
    add(name, help, labels, std::make_shared<GaugeFn>(std::move(read)));
}
void Registry::add_histogram(std::string_view name, std::string_view help, const Labels& labels,
                             std::function<HistogramData()> read) {
    if (!read) throw MetricError("metric \"" + std::string(name) + "\": empty callback");
    add(name, help, labels, std::make_shared<HistogramFn>(std::move(read)));
}

bool Registry::remove(std::string_view name, const Labels& labels) {
    std::unique_lock lk(mu_);
    auto it = families_.find(name);
    if (it == families_.end()) return false;
    std::vector<std::string> values;
    for (const auto& ln : it->second.label_names) {
        const auto l = std::find_if(labels.begin(), labels.end(), [&](const auto& p) { return p.first == ln; });
        if (l == labels.end()) return false;
        values.push_back(l->second);
    }
    if (values.size() != labels.size()) return false;
    const bool erased = it->second.series.erase(values) > 0;
    series_ -= erased ? 1 : 0;
    return erased;
}

bool Registry::remove_family(std::string_view name) {
    std::unique_lock lk(mu_);
    auto it = families_.find(name);
    if (it == families_.end()) return false;
    series_ -= it->second.series.size();
    families_.erase(it);
    return true;
}

Snapshot Registry::collect(const CollectOptions& opt) const {
    std::shared_lock lk(mu_);
    Snapshot out;
    auto emit = [&](const std::string& name, const FamilyEntry& f) {
        if (f.series.empty()) return;
        FamilySnapshot fs{name, f.help, f.type, {}};
        fs.series.reserve(f.series.size());
        for (const auto& [values, s] : f.series)
            fs.series.push_back(SeriesSnapshot{s.labels, s.src->read(), opt.shards ? s.src->shards() : std::vector<std::int64_t>{}});
        out.push_back(std::move(fs));
    };
    if (!opt.name.empty()) {
        if (auto it = families_.find(opt.name); it != families_.end()) emit(it->first, it->second);
        return out;
    }
    out.reserve(families_.size());
    for (const auto& [name, f] : families_) emit(name, f);
    return out;
}

const Registry::Series* Registry::find_locked(std::string_view id, const FamilyEntry** fam,
                                              std::string* fam_name) const {
    std::string name;
    Labels labels;
    if (!parse_series_id(id, name, labels)) return nullptr;
    auto it = families_.find(name);
    if (it == families_.end() || labels.size() != it->second.label_names.size()) return nullptr;
    std::vector<std::string> values;
    for (const auto& ln : it->second.label_names) {
        const auto l = std::find_if(labels.begin(), labels.end(), [&](const auto& p) { return p.first == ln; });
        if (l == labels.end()) return nullptr;
        values.push_back(l->second);
    }
    auto s = it->second.series.find(values);
    if (s == it->second.series.end()) return nullptr;
    *fam = &it->second;
    *fam_name = it->first;
    return &s->second;
}

std::optional<FamilySnapshot> Registry::find(std::string_view id) const {
    std::shared_lock lk(mu_);
    const FamilyEntry* f = nullptr;
    std::string name;
    const Series* s = find_locked(id, &f, &name);
    if (!s) return std::nullopt;
    FamilySnapshot fs{name, f->help, f->type, {}};
    fs.series.push_back(SeriesSnapshot{s->labels, s->src->read(), s->src->shards()});
    return fs;
}

std::optional<MetricValue> Registry::reset(std::string_view id) {
    // Shared: resetting changes counter values, not the registry's shape.
    std::shared_lock lk(mu_);
    const FamilyEntry* f = nullptr;
    std::string name;
    const Series* s = find_locked(id, &f, &name);
    if (!s) return std::nullopt;
    return s->src->reset();
}

std::size_t Registry::series_count() const {
    std::shared_lock lk(mu_);
    return series_;
}

}  // namespace percore
