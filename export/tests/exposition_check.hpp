// SPDX-License-Identifier: MIT
// Strict checks of a Prometheus text 0.0.4 / OpenMetrics 1.0 exposition,
// covering what `promtool check metrics` lets through: duplicate series,
// families split into several blocks, histograms without a +Inf bucket or
// _sum/_count (or with decreasing buckets, or +Inf != _count), a missing or
// misplaced "# EOF" (OpenMetrics), CR or missing final LF, and bad escapes
// in label values. Returns one message per problem; empty means clean.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace percore::test {

struct Sample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    std::string value;
};

// Parses `name{a="x",...} value`; returns false with `why` on bad syntax or escaping.
inline bool parse_sample(std::string_view line, Sample& s, std::string& why) {
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    if (s.name.empty()) { why = "empty metric name"; return false; }
    if (i < line.size() && line[i] == '{') {
        ++i;
        while (i < line.size() && line[i] != '}') {
            const auto eq = line.find('=', i);
            if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
                why = "label without =\"";
                return false;
            }
            std::string key(line.substr(i, eq - i)), val;
            std::size_t j = eq + 2;
            for (; j < line.size() && line[j] != '"'; ++j) {
                if (line[j] == '\\') {
                    if (j + 1 >= line.size()) { why = "dangling backslash"; return false; }
                    const char e = line[++j];
                    if (e != '\\' && e != '"' && e != 'n') {
                        why = std::string("invalid escape \\") + e;
                        return false;
                    }
                    val += e == 'n' ? '\n' : e;
                } else {
                    val += line[j];
                }
            }
            if (j >= line.size()) { why = "unterminated label value"; return false; }
            for (const auto& [k, v] : s.labels)
                if (k == key) { why = "label " + key + " repeated"; return false; }
            s.labels.emplace_back(std::move(key), std::move(val));
            i = j + 1;
            if (i < line.size() && line[i] == ',') ++i;
        }
        if (i >= line.size()) { why = "unterminated label set"; return false; }
        ++i;
    }
    if (i >= line.size() || line[i] != ' ') { why = "no space before value"; return false; }
    s.value = std::string(line.substr(i + 1));
    if (s.value.empty() || s.value.find(' ') != std::string::npos) {
        why = "value missing or followed by a timestamp";  // percore never writes timestamps
        return false;
    }
    return true;
}

inline std::vector<std::string> check_exposition(std::string_view text, bool openmetrics) {
    std::vector<std::string> problems;
    auto bad = [&](std::size_t lineno, const std::string& m) {
        problems.push_back("line " + std::to_string(lineno) + ": " + m);
    };
    if (text.find('\r') != std::string_view::npos) problems.push_back("CR in output (LF line endings required)");
    if (!text.empty() && text.back() != '\n') problems.push_back("output does not end with LF");

    std::map<std::string, std::string> type_of;  // family -> type
    std::set<std::string> closed;                // families whose block has ended
    std::set<std::string> series;
    std::string current;
    struct Hist {
        bool inf = false, sum = false, count = false;
        double last = -1, inf_count = -1, count_value = -2;
    };
    std::map<std::string, Hist> hists;  // family + labels (without le)
    bool eof = false;
    std::size_t lineno = 0, pos = 0;
    auto family_of = [&](const std::string& name) {
        for (std::string_view suf : {"_bucket", "_sum", "_count", "_total", "_created"}) {
            if (name.size() > suf.size() && name.ends_with(suf)) {
                std::string base = name.substr(0, name.size() - suf.size());
                if (type_of.count(base)) return base;
            }
        }
        return name;
    };
    auto enter = [&](const std::string& fam, std::size_t ln) {
        if (fam == current) return;
        if (closed.count(fam)) bad(ln, "family " + fam + " is not contiguous");
        if (!current.empty()) closed.insert(current);
        current = fam;
    };
    while (pos < text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++lineno;
        if (eof) { bad(lineno, "content after # EOF"); break; }
        if (line == "# EOF") {
            if (!openmetrics) bad(lineno, "# EOF in text format");
            eof = true;
            continue;
        }
        if (line.empty()) { bad(lineno, "empty line"); continue; }
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            std::string_view rest = line.substr(7);
            const auto sp = rest.find(' ');
            const std::string fam(rest.substr(0, sp));
            enter(fam, lineno);
            if (line.starts_with("# TYPE ")) {
                if (type_of.count(fam)) bad(lineno, "second TYPE for " + fam);
                type_of[fam] = sp == std::string_view::npos ? "" : std::string(rest.substr(sp + 1));
            }
            continue;
        }
        if (line[0] == '#') continue;
        Sample s;
        std::string why;
        if (!parse_sample(line, s, why)) { bad(lineno, why); continue; }
        const std::string fam = family_of(s.name);
        enter(fam, lineno);
        auto labels = s.labels;
        std::sort(labels.begin(), labels.end());
        std::string key = s.name + "{";
        for (const auto& [k, v] : labels) key += k + "=" + v + ",";
        if (!series.insert(key).second) bad(lineno, "duplicate series " + key + "}");
        if (type_of[fam] == "counter" && openmetrics && !s.name.ends_with("_total"))
            bad(lineno, "OpenMetrics counter sample without _total");
        if (type_of[fam] == "histogram") {
            std::string hk = fam + "{";
            std::string le;
            for (const auto& [k, v] : labels)
                if (k == "le") le = v;
                else hk += k + "=" + v + ",";
            Hist& h = hists[hk];
            const double v = std::stod(s.value);
            if (s.name == fam + "_bucket") {
                if (le.empty()) bad(lineno, "bucket without le");
                if (h.inf) bad(lineno, "bucket after +Inf");
                if (v < h.last) bad(lineno, "bucket counts decrease");
                h.last = v;
                if (le == "+Inf") { h.inf = true; h.inf_count = v; }
            } else if (s.name == fam + "_sum") {
                h.sum = true;
            } else if (s.name == fam + "_count") {
                h.count = true;
                h.count_value = v;
            } else {
                bad(lineno, "unexpected sample " + s.name + " in histogram " + fam);
            }
        }
    }
    for (const auto& [k, h] : hists) {
        if (!h.inf) problems.push_back("histogram " + k + "} has no +Inf bucket");
        if (!h.sum) problems.push_back("histogram " + k + "} has no _sum");
        if (!h.count) problems.push_back("histogram " + k + "} has no _count");
        if (h.inf && h.count && h.inf_count != h.count_value)
            problems.push_back("histogram " + k + "} +Inf bucket != _count");
    }
    if (openmetrics && !eof) problems.push_back("OpenMetrics output without # EOF");
    return problems;
}

}  // namespace percore::test
