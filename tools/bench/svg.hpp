// SPDX-License-Identifier: MIT
// Small SVG charts for percore-bench, so plots need no plotting package:
// grouped bars (log scale) and lines.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace percore::bench {

struct Series {
    std::string name;
    std::vector<double> values;  // one per category / x point; NaN = missing
};

inline const char* color(std::size_t i) {
    static const char* c[] = {"#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"};
    return c[i % 7];
}

inline std::string esc(const std::string& s) {
    std::string o;
    for (char ch : s) o += ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : std::string(1, ch);
    return o;
}

// Bars per category, one bar per series, on a log10 y axis from `floor`.
// A value below the floor (zero, negative: within noise) cannot be drawn to
// scale, so it gets a dashed marker at the floor labelled with its real
// value; a missing value gets "n/a". No bar is ever silently empty.
inline bool write_bars(const std::string& path, const std::string& title, const std::string& ylabel,
                       const std::vector<std::string>& cats, const std::vector<Series>& series, double floor = 0.1) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    const double W = 120.0 + 70.0 * static_cast<double>(cats.size()), H = 460, L = 70, T = 50, B = 120;
    double top = floor * 10;
    for (const auto& s : series)
        for (double v : s.values)
            if (std::isfinite(v)) top = std::max(top, v);
    const double lo = std::log10(floor), hi = std::ceil(std::log10(top));
    auto y = [&](double v) { return T + (H - T - B) * (1 - (std::log10(std::max(v, floor)) - lo) / (hi - lo)); };
    std::fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' font-family='sans-serif' font-size='11'>\n", W, H);
    std::fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    std::fprintf(f, "<text x='%.0f' y='22' font-size='14' text-anchor='middle'>%s</text>\n", W / 2, esc(title).c_str());
    for (double e = lo; e <= hi + 1e-9; e += 1) {
        const double v = std::pow(10, e);
        std::fprintf(f, "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' stroke='#ddd'/>", L, W - 20, y(v), y(v));
        std::fprintf(f, "<text x='%.0f' y='%.1f' text-anchor='end'>%g</text>\n", L - 5, y(v) + 4, v);
    }
    std::fprintf(f, "<text transform='translate(16,%.0f) rotate(-90)' text-anchor='middle'>%s</text>\n", (H - B + T) / 2,
                 esc(ylabel).c_str());
    const double cw = (W - L - 20) / static_cast<double>(cats.size());
    const double bw = std::min(22.0, (cw - 10) / static_cast<double>(std::max<std::size_t>(1, series.size())));
    for (std::size_t c = 0; c < cats.size(); ++c) {
        const double x0 = L + cw * static_cast<double>(c) + (cw - bw * static_cast<double>(series.size())) / 2;
        for (std::size_t s = 0; s < series.size(); ++s) {
            const double v = c < series[s].values.size() ? series[s].values[c] : NAN;
            const double x = x0 + bw * static_cast<double>(s);
            if (!std::isfinite(v) || v < floor) {
                std::fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='6' fill='none' stroke='%s' "
                                "stroke-dasharray='2,2'/>", x, y(floor) - 6, bw - 2, color(s));
                char label[32] = "n/a";
                if (std::isfinite(v)) std::snprintf(label, sizeof label, "%.2g~", v);
                std::fprintf(f, "<text x='%.1f' y='%.1f' font-size='9' text-anchor='middle'>%s</text>\n", x + bw / 2 - 1,
                             y(floor) - 9, label);
                continue;
            }
            std::fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>", x, y(v), bw - 2,
                         y(floor) - y(v), color(s));
            std::fprintf(f, "<text x='%.1f' y='%.1f' font-size='9' text-anchor='middle'>%.3g</text>\n", x + bw / 2 - 1,
                         y(v) - 3, v);
        }
        const double xc = L + cw * (static_cast<double>(c) + 0.5);
        std::fprintf(f, "<text transform='translate(%.1f,%.0f) rotate(-35)' text-anchor='end'>%s</text>\n", xc,
                     H - B + 16, esc(cats[c]).c_str());
    }
    std::fprintf(f, "<text x='%.0f' y='%.0f' font-size='10' fill='#555'>dashed marker, value~: below %g "
                    "(zero or negative: within noise); n/a: not measured</text>\n", L, H - 8, floor);
    for (std::size_t s = 0; s < series.size(); ++s) {
        const double lx = L + 10 + 150.0 * static_cast<double>(s), ly = 36;
        std::fprintf(f, "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/><text x='%.0f' y='%.0f'>%s</text>\n", lx,
                     ly - 9, color(s), lx + 14, ly, esc(series[s].name).c_str());
    }
    std::fprintf(f, "</svg>\n");
    std::fclose(f);
    return true;
}

// Lines over numeric x (log2 axis), linear y from 0.
inline bool write_lines(const std::string& path, const std::string& title, const std::string& xlabel,
                        const std::string& ylabel, const std::vector<double>& xs, const std::vector<Series>& series) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f || xs.empty()) {
        if (f) std::fclose(f);
        return false;
    }
    const double W = 640, H = 400, L = 80, R = 20, T = 50, B = 60;
    double top = 0;
    for (const auto& s : series)
        for (double v : s.values)
            if (std::isfinite(v)) top = std::max(top, v);
    top = top > 0 ? top * 1.1 : 1;
    const double x0 = std::log2(xs.front()), x1 = std::max(x0 + 1, std::log2(xs.back()));
    auto px = [&](double x) { return L + (W - L - R) * (std::log2(x) - x0) / (x1 - x0); };
    auto py = [&](double v) { return T + (H - T - B) * (1 - v / top); };
    std::fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' font-family='sans-serif' font-size='11'>\n", W, H);
    std::fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    std::fprintf(f, "<text x='%.0f' y='22' font-size='14' text-anchor='middle'>%s</text>\n", W / 2, esc(title).c_str());
    for (int i = 0; i <= 5; ++i) {
        const double v = top * i / 5;
        std::fprintf(f, "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' stroke='#ddd'/><text x='%.0f' y='%.1f' text-anchor='end'>%.3g</text>\n",
                     L, W - R, py(v), py(v), L - 5, py(v) + 4, v);
    }
    for (double x : xs)
        std::fprintf(f, "<text x='%.1f' y='%.0f' text-anchor='middle'>%g</text>\n", px(x), H - B + 16, x);
    std::fprintf(f, "<text x='%.0f' y='%.0f' text-anchor='middle'>%s</text>\n", (L + W - R) / 2, H - 20, esc(xlabel).c_str());
    std::fprintf(f, "<text transform='translate(16,%.0f) rotate(-90)' text-anchor='middle'>%s</text>\n", (H - B + T) / 2,
                 esc(ylabel).c_str());
    for (std::size_t s = 0; s < series.size(); ++s) {
        std::string pts;
        char buf[64];
        for (std::size_t i = 0; i < xs.size() && i < series[s].values.size(); ++i) {
            std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(xs[i]), py(series[s].values[i]));
            pts += buf;
            std::fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>", px(xs[i]), py(series[s].values[i]), color(s));
        }
        std::fprintf(f, "<polyline points='%s' fill='none' stroke='%s' stroke-width='2'/>\n", pts.c_str(), color(s));
        const double lx = L + 10 + 200.0 * static_cast<double>(s);
        std::fprintf(f, "<rect x='%.0f' y='32' width='10' height='10' fill='%s'/><text x='%.0f' y='41'>%s</text>\n", lx,
                     color(s), lx + 14, esc(series[s].name).c_str());
    }
    std::fprintf(f, "</svg>\n");
    std::fclose(f);
    return true;
}

}  // namespace percore::bench
