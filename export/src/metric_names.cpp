// SPDX-License-Identifier: MIT
// The checks behind percore/export/metric_names.hpp. The unit and type-word
// lists follow promtool's linter, so a name with no lint problem lints clean.
#include "percore/export/metric_names.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace percore {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 80)) out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
    if (s.size() > 80) out += "...";
    return out + "\"";
}

// One offending byte, readable whatever it is: '-' or \xff.
std::string shown(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
    constexpr char hex[] = "0123456789abcdef";
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
}

bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

// The grammar and the reserved prefix, shared by metric and label names:
// every violation, each once. Metric names admit ':' in the grammar but
// reserve it; label names never admit it.
void identifier_errors(std::string_view s, bool metric, std::vector<std::string>& errors) {
    if (s.empty()) {
        errors.emplace_back("is empty");
        return;
    }
    if (!(is_alpha(s[0]) || s[0] == '_' || (metric && s[0] == ':')))
        errors.emplace_back("must start with a letter or '_'");
    std::string bad;
    bool colon = false;
    for (char c : s) {
        if (is_alpha(c) || is_digit(c) || c == '_') continue;
        if (metric && c == ':') {
            colon = true;
            continue;
        }
        const std::string b = shown(c);
        if (bad.find(b) == std::string::npos && bad.size() < 60) bad += (bad.empty() ? "" : ", ") + b;
    }
    if (!bad.empty()) errors.push_back("may only contain [a-zA-Z0-9_], not " + bad);
    if (colon) errors.emplace_back("contains ':', which Prometheus reserves for recording rules");
    if (s.size() >= 2 && s[0] == '_' && s[1] == '_')
        errors.emplace_back("starts with \"__\", which Prometheus reserves");
}

bool camel_case(std::string_view s) {
    for (std::size_t i = 1; i < s.size(); ++i)
        if (is_lower(s[i - 1]) && is_upper(s[i])) return true;
    return false;
}

struct UnitRule {
    std::string_view unit, base;
};
constexpr std::array<UnitRule, 15> kNonBase{{{"minutes", "seconds"},
                                             {"hours", "seconds"},
                                             {"days", "seconds"},
                                             {"weeks", "seconds"},
                                             {"kelvins", "kelvin"},
                                             {"fahrenheit", "celsius"},
                                             {"rankine", "celsius"},
                                             {"inches", "meters"},
                                             {"yards", "meters"},
                                             {"miles", "meters"},
                                             {"bits", "bytes"},
                                             {"calories", "joules"},
                                             {"pounds", "grams"},
                                             {"ounces", "grams"},
                                             {"millis", "seconds"}}};
constexpr std::array<std::string_view, 10> kBase{"amperes", "bytes",   "celsius", "grams",   "joules",
                                                 "kelvin",  "meters",  "metres",  "seconds", "volts"};
constexpr std::array<std::string_view, 18> kPrefixes{"pico", "nano", "micro", "milli", "centi", "deci",
                                                     "deca", "hecto", "kilo", "kibi", "mega", "mebi",
                                                     "giga", "gibi", "tera", "tebi", "peta", "pebi"};
constexpr std::array<std::string_view, 23> kAbbrev{"s",    "ms",   "us",   "ns",   "sec", "secs", "msec", "usec",
                                                   "nsec", "mins", "hrs",  "b",    "kb",  "mb",   "gb",   "tb",
                                                   "pb",   "kib",  "mib",  "gib",  "m",   "h",    "d"};
constexpr std::array<std::string_view, 5> kTypeWords{"counter", "gauge", "histogram", "summary", "untyped"};

// The convention a `_`-separated part of a name breaks, if any.
std::string part_lint(std::string_view part) {
    for (auto a : kAbbrev)
        if (part == a) return "contains the abbreviated unit \"" + std::string(a) + "\" (spell out the base unit)";
    for (auto t : kTypeWords)
        if (part == t) return "names its type (\"" + std::string(t) + "\"), which the TYPE line already says";
    for (const auto& r : kNonBase)
        if (part == r.unit)
            return "uses \"" + std::string(r.unit) + "\" (use the base unit \"" + std::string(r.base) + "\")";
    for (auto p : kPrefixes)
        for (auto b : kBase)
            if (part.size() == p.size() + b.size() && part.substr(0, p.size()) == p && part.substr(p.size()) == b)
                return "uses \"" + std::string(part) + "\" (use the base unit \"" + std::string(b) + "\")";
    return {};
}

void add_once(std::vector<std::string>& v, std::string s) {
    for (const auto& x : v)
        if (x == s) return;
    v.push_back(std::move(s));
}

std::string joined(std::string_view what, std::string_view name, const std::vector<std::string>& problems) {
    if (problems.empty()) return {};
    std::string out = std::string(what) + " " + quoted(name) + ": ";
    for (std::size_t i = 0; i < problems.size(); ++i) out += (i ? "; " : "") + problems[i];
    return out;
}

}  // namespace

const char* metric_type_name(MetricType t) noexcept {
    switch (t) {
        case MetricType::counter: return "counter";
        case MetricType::gauge: return "gauge";
        case MetricType::histogram: return "histogram";
    }
    return "untyped";
}

bool valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n;
        std::uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= s.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are invalid.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

NameCheck check_metric_name(std::string_view name, MetricType type) {
    NameCheck r;
    identifier_errors(name, true, r.errors);
    if (camel_case(name)) r.lint.emplace_back("is camelCase (use snake_case)");
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t end = name.find('_', start);
        if (end == std::string_view::npos) end = name.size();
        std::string lower;
        for (char c : name.substr(start, end - start)) lower += static_cast<char>(is_upper(c) ? c - 'A' + 'a' : c);
        if (!lower.empty())
            if (auto e = part_lint(lower); !e.empty()) add_once(r.lint, std::move(e));
        start = end + 1;
    }
    const bool total = ends_with(name, "_total");
    if (type == MetricType::counter && !total)
        r.errors.emplace_back("is a counter and must end in \"_total\" (OpenMetrics requires it on counter samples)");
    if (type == MetricType::counter && name == "_total") r.errors.emplace_back("has no stem before \"_total\"");
    if (type != MetricType::counter && total)
        r.lint.push_back("ends in \"_total\", which marks counters, but is a " + std::string(metric_type_name(type)));
    for (std::string_view suf : {"_bucket", "_count", "_sum", "_created"})
        if (ends_with(name, suf))
            r.lint.push_back("ends in \"" + std::string(suf) + "\", a suffix OpenMetrics gives other types' samples");
    if (type != MetricType::gauge && ends_with(name, "_info"))
        r.lint.emplace_back("ends in \"_info\", which marks info gauges");
    return r;
}

NameCheck check_label_name(std::string_view name, MetricType type) {
    NameCheck r;
    identifier_errors(name, false, r.errors);
    if (camel_case(name)) r.lint.emplace_back("is camelCase (use snake_case)");
    if (name == "le" || name == "quantile") {
        const std::string why = name == "le" ? "histogram buckets" : "summary quantiles";
        if (type == MetricType::histogram) r.errors.push_back("is reserved for " + why);
        else r.lint.push_back("is reserved for " + why + ", misleading on a " + metric_type_name(type));
    }
    return r;
}

std::string metric_name_error(std::string_view name, MetricType type) {
    return joined("metric name", name, check_metric_name(name, type).errors);
}
std::string metric_name_lint(std::string_view name, MetricType type) {
    return joined("metric name", name, check_metric_name(name, type).lint);
}
std::string label_name_error(std::string_view name, MetricType type) {
    return joined("label name", name, check_label_name(name, type).errors);
}
std::string label_name_lint(std::string_view name, MetricType type) {
    return joined("label name", name, check_label_name(name, type).lint);
}

// Control characters other than tab and newline (which exporters escape)
// would put a CR or NUL into an exposition whose lines must end in LF alone.
bool has_control(std::string_view s) {
    for (char c : s)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return true;
    return false;
}

std::string label_value_error(std::string_view value) {
    if (!valid_utf8(value)) return "label value " + quoted(value) + " is not valid UTF-8";
    if (has_control(value)) return "label value " + quoted(value) + " contains a control character";
    return {};
}

std::string help_error(std::string_view help) {
    if (help.empty()) return "help text is empty (promtool requires one)";
    if (!valid_utf8(help)) return "help text is not valid UTF-8";
    if (has_control(help)) return "help text contains a control character other than tab or newline";
    return {};
}

}  // namespace percore
