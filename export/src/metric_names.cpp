// The checks behind percore/export/metric_names.hpp. The unit and type-word lists
// follow promtool's linter, so a name accepted here lints clean.
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

// Grammar plus the rules shared by metric and label names.
std::string identifier_error(std::string_view kind, std::string_view s) {
    if (s.empty()) return std::string(kind) + " is empty";
    if (!(is_alpha(s[0]) || s[0] == '_'))
        return std::string(kind) + " " + quoted(s) + " must start with a letter or '_'";
    for (char c : s)
        if (!(is_alpha(c) || is_digit(c) || c == '_'))
            return std::string(kind) + " " + quoted(s) + " may only contain [a-zA-Z0-9_]";
    if (s.size() >= 2 && s[0] == '_' && s[1] == '_')
        return std::string(kind) + " " + quoted(s) + " starts with \"__\", which Prometheus reserves";
    for (std::size_t i = 1; i < s.size(); ++i)
        if (is_lower(s[i - 1]) && is_upper(s[i]))
            return std::string(kind) + " " + quoted(s) + " is camelCase; use snake_case";
    return {};
}

bool ends_with(std::string_view s, std::string_view suf) {
    return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
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
constexpr std::array<std::string_view, 14> kAbbrev{"s",  "ms", "us", "ns", "sec", "b", "kb",
                                                   "mb", "gb", "tb", "pb", "m",   "h", "d"};
constexpr std::array<std::string_view, 5> kTypeWords{"counter", "gauge", "histogram", "summary", "untyped"};

std::string part_error(std::string_view name, std::string_view part) {
    for (auto a : kAbbrev)
        if (part == a) return "metric name " + quoted(name) + " contains the abbreviated unit \"" + std::string(a) + "\"";
    for (auto t : kTypeWords)
        if (part == t) return "metric name " + quoted(name) + " names its type (\"" + std::string(t) + "\")";
    for (const auto& r : kNonBase)
        if (part == r.unit)
            return "metric name " + quoted(name) + " uses \"" + std::string(r.unit) + "\"; use the base unit \"" +
                   std::string(r.base) + "\"";
    for (auto p : kPrefixes)
        for (auto b : kBase)
            if (part.size() == p.size() + b.size() && part.substr(0, p.size()) == p && part.substr(p.size()) == b)
                return "metric name " + quoted(name) + " uses \"" + std::string(part) + "\"; use the base unit \"" +
                       std::string(b) + "\"";
    return {};
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

std::string metric_name_error(std::string_view name, MetricType type) {
    if (auto e = identifier_error("metric name", name); !e.empty()) return e;
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t end = name.find('_', start);
        if (end == std::string_view::npos) end = name.size();
        std::string lower;
        for (char c : name.substr(start, end - start)) lower += static_cast<char>(is_upper(c) ? c - 'A' + 'a' : c);
        if (!lower.empty())
            if (auto e = part_error(name, lower); !e.empty()) return e;
        start = end + 1;
    }
    const bool total = ends_with(name, "_total");
    if (type == MetricType::counter && !total)
        return "counter name " + quoted(name) + " must end in \"_total\"";
    if (type == MetricType::counter && name == "_total") return "counter name \"_total\" has no stem";
    if (type != MetricType::counter && total)
        return std::string(metric_type_name(type)) + " name " + quoted(name) + " must not end in \"_total\" (counters only)";
    for (std::string_view suf : {"_bucket", "_count", "_sum", "_created", "_info"})
        if (ends_with(name, suf))
            return "metric name " + quoted(name) + " ends in the reserved suffix \"" + std::string(suf) + "\"";
    return {};
}

std::string label_name_error(std::string_view name) {
    if (auto e = identifier_error("label name", name); !e.empty()) return e;
    if (name == "le" || name == "quantile")
        return "label name \"" + std::string(name) + "\" is reserved for histograms and summaries";
    return {};
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
