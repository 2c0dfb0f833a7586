// SPDX-License-Identifier: MIT
// Prometheus text 0.0.4 / OpenMetrics 1.0 rendering and content
// negotiation; the HTTP endpoint is in prometheus_server.cpp.
#include "percore/export/prometheus.hpp"

#include <charconv>
#include <cmath>

#include "format.hpp"

namespace percore {
namespace {

void put_value(std::string& out, const MetricValue& v) {
    if (auto u = std::get_if<std::uint64_t>(&v)) text::append_number(out, *u);
    else if (auto i = std::get_if<std::int64_t>(&v)) text::append_number(out, *i);
    else if (auto d = std::get_if<double>(&v)) text::append_number(out, *d);
    else out += "NaN";
}

// `{a="x",b="y"` without the closing brace, or nothing when there are no labels and no extra.
void put_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                std::string_view extra_value = {}) {
    if (labels.empty() && extra_name.empty()) return;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        text::append_label_value(out, v);
        out += '"';
    }
    if (!extra_name.empty()) {
        if (!first) out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value;
        out += '"';
    }
    out += '}';
}

void put_sample(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels) {
    out += name;
    out += suffix;
    put_labels(out, labels);
    out += ' ';
}

void put_histogram(std::string& out, std::string_view name, const Labels& labels, const HistogramData& h) {
    std::string le;
    for (const auto& b : h.buckets) {
        if (std::isinf(b.upper_bound)) continue;  // +Inf is written once below, from count
        out += name;
        out += "_bucket";
        le.clear();
        text::append_float(le, b.upper_bound);
        put_labels(out, labels, "le", le);
        out += ' ';
        text::append_number(out, b.cumulative_count);
        out += '\n';
    }
    out += name;
    out += "_bucket";
    put_labels(out, labels, "le", "+Inf");
    out += ' ';
    text::append_number(out, h.count);
    out += '\n';
    put_sample(out, name, "_sum", labels);
    text::append_number(out, h.sum);
    out += '\n';
    put_sample(out, name, "_count", labels);
    text::append_number(out, h.count);
    out += '\n';
}

}  // namespace

void render(const Snapshot& snap, ExpositionFormat fmt, std::string& out) {
    const bool om = fmt == ExpositionFormat::openmetrics;
    for (const auto& f : snap) {
        if (f.series.empty()) continue;
        std::string_view family = f.name;
        std::string_view suffix;
        if (om && f.type == MetricType::counter && family.ends_with("_total")) {
            family.remove_suffix(6);
            suffix = "_total";
        }
        out += "# HELP ";
        out += family;
        out += ' ';
        text::append_help(out, f.help, om);
        out += "\n# TYPE ";
        out += family;
        out += ' ';
        out += metric_type_name(f.type);
        out += '\n';
        for (const auto& s : f.series) {
            if (f.type == MetricType::histogram) {
                if (auto h = std::get_if<HistogramData>(&s.value)) put_histogram(out, family, s.labels, *h);
                continue;
            }
            put_sample(out, family, suffix, s.labels);
            put_value(out, s.value);
            out += '\n';
        }
    }
    if (om) out += "# EOF\n";
}

std::string render(const Registry& reg, ExpositionFormat fmt) {
    std::string out;
    const Snapshot snap = reg.collect();
    out.reserve(snap.size() * 96);
    render(snap, fmt, out);
    return out;
}

const char* content_type(ExpositionFormat fmt) noexcept {
    return fmt == ExpositionFormat::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                : "text/plain; version=0.0.4; charset=utf-8";
}

ExpositionFormat negotiate(std::string_view accept) noexcept {
    std::size_t pos = 0;
    while (pos < accept.size()) {
        std::size_t end = accept.find(',', pos);
        if (end == std::string_view::npos) end = accept.size();
        std::string_view item = accept.substr(pos, end - pos);
        pos = end + 1;
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        if (!item.starts_with("application/openmetrics-text")) continue;
        // A q of zero means "not acceptable".
        const auto q = item.find("q=");
        if (q != std::string_view::npos) {
            std::string_view qv = item.substr(q + 2);
            double d = 1;
            std::from_chars(qv.data(), qv.data() + qv.size(), d);
            if (d <= 0) continue;
        }
        return ExpositionFormat::openmetrics;
    }
    return ExpositionFormat::text;
}

}  // namespace percore
