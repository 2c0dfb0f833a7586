// SPDX-License-Identifier: MIT
// Text escaping and number formatting for every exporter (Prometheus,
// statsd, the telemetry series identifiers). Private to percore::export.
//
// Header-only: the fuzz targets compile a fixed list of sources, and the
// registry (in that list) needs the label escaping.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

namespace percore::text {

// Integers exactly, whatever their size.
template <std::integral T>
void append_number(std::string& out, T v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// The shortest text that reads back as the same double (std::to_chars picks
// fixed or exponent form, whichever is shorter): 0.1, 1.895306531, 1e+21.
// NaN, +Inf and -Inf are spelt as the Prometheus formats want them.
inline void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];  // the longest shortest form, -2.2250738585072014e-308, is 24
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// As append_number, but integral values keep a fraction ("1.0"): OpenMetrics
// compares `le` label values as text and wants them in float form.
inline void append_float(std::string& out, double v) {
    const std::size_t start = out.size();
    append_number(out, v);
    if (out.find_first_of(".eIN", start) == std::string::npos) out += ".0";
}

// Shortest round trip in fixed notation (0.0001, never 1e-04): statsd reads a
// sample rate as `@[0-9.]+` and would stop at the exponent.
inline void append_fixed(std::string& out, double v) {
    if (!std::isfinite(v)) return append_number(out, v);
    char buf[400];  // any finite double: at most 309 integral digits, or "0." and 343 fraction digits
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.append(buf, r.ptr);
}

// v x scale, computed so that decimal scales stay exact: multiplying by
// 1e-9 (itself inexact) leaves binary noise, 1895306531 x 1e-9 =
// 1.8953065310000001, where dividing by 1e9, one correctly rounded
// operation on exact operands, gives 1.895306531. So a scale that is the
// double nearest 1/n for an integer n divides by n.
inline double scaled(std::uint64_t v, double scale) {
    const double x = static_cast<double>(v);
    if (scale > 0 && scale < 1) {
        const double n = std::round(1 / scale);
        if (1 / n == scale) return x / n;
    }
    return x * scale;
}

// Prometheus label values (and series identifiers): backslash, double quote
// and newline escaped; every other byte as is. Registration refuses invalid
// UTF-8 and other control characters, so none reach here.
inline void append_label_value(std::string& out, std::string_view s) {
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

// HELP text: text format 0.0.4 escapes backslash and newline only;
// OpenMetrics escapes the double quote too.
inline void append_help(std::string& out, std::string_view s, bool openmetrics) {
    if (openmetrics) {
        append_label_value(out, s);
        return;
    }
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

// statsd names: every byte outside [A-Za-z0-9_.-] becomes '_' (statsd would
// drop or misparse ':', '|', '@', '#' and whitespace); with `dots` false,
// '.' too, for a label value that must stay one name segment.
inline void append_statsd_name(std::string& out, std::string_view s, bool dots = true) {
    for (char c : s) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                          c == '-' || (dots && c == '.');
        out += keep ? c : '_';
    }
}

// DogStatsD tag values: the bytes that end a tag, a tag list or a line become '_'.
inline void append_statsd_tag(std::string& out, std::string_view s) {
    for (char c : s) {
        const bool end = c == ',' || c == '|' || c == '#' || c == ':' || c == '@' || c == '\n' || c == '\r' || c == ' ';
        out += end ? '_' : c;
    }
}

}  // namespace percore::text
