// SPDX-License-Identifier: MIT
#include "metrics_json.hpp"

#include <cmath>
#include <limits>

namespace percore::detail {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json value_json(const MetricValue& v) {
    if (auto u = std::get_if<std::uint64_t>(&v)) return *u;
    if (auto i = std::get_if<std::int64_t>(&v)) return *i;
    if (auto d = std::get_if<double>(&v)) return std::isfinite(*d) ? json(*d) : json(nullptr);
    const auto& h = std::get<HistogramData>(v);
    json o = {{"count", h.count}, {"sum", h.sum}};
    o["min"] = h.count ? h.min : 0.0;
    o["max"] = h.count ? h.max : 0.0;
    o["mean"] = h.count ? h.sum / static_cast<double>(h.count) : 0.0;
    auto pct = [&](double q) {
        for (const auto& [pq, pv] : h.percentiles)
            if (pq == q) return pv;
        std::vector<HistogramData::Bucket> b = h.buckets;
        if (b.empty() || b.back().cumulative_count < h.count)
            b.push_back({std::numeric_limits<double>::infinity(), h.count});
        return quantile_from_buckets(b, q, h.min, h.max);
    };
    o["p50"] = pct(0.5);
    o["median"] = o["p50"];  // named as well: statsd users look for "median"
    o["p90"] = pct(0.9);
    o["p99"] = pct(0.99);
    o["p999"] = pct(0.999);
    return o;
}

json entry_json(const FamilySnapshot& f, const SeriesSnapshot& s) {
    json e = {{"type", metric_type_name(f.type)}};
    if (f.type == MetricType::histogram) {
        const json summary = value_json(s.value);
        for (auto& [k, v] : summary.items()) e[k] = v;
    } else {
        e["value"] = value_json(s.value);
    }
    return e;
}

json series_json(const FamilySnapshot& f, const SeriesSnapshot& s) {
    json e = entry_json(f, s);
    e["name"] = f.name;
    e["help"] = f.help;
    json labels = json::object();
    for (const auto& [k, v] : s.labels) labels[k] = v;
    e["labels"] = labels;
    if (!s.shards.empty()) {
        json shards = json::object();
        for (std::size_t r = 0; r < s.shards.size(); ++r)
            if (s.shards[r] != 0) shards[r + 1 == s.shards.size() ? "shared" : std::to_string(r)] = s.shards[r];
        e["shards"] = shards;
    }
    return e;
}

}  // namespace percore::detail
