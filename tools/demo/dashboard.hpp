// SPDX-License-Identifier: MIT
// percore-demo's live view. On a terminal: one frame, redrawn in place
// (cursor up over the previous frame, each line rewritten and cleared to its
// end, one write per frame, so nothing flickers). Elsewhere (a pipe, a log,
// CI): one compact line per interval.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "demo/stats.hpp"

namespace percore::demo {

// 1234567 -> "1,234,567".
inline std::string grouped(std::uint64_t v) {
    const std::string d = std::to_string(v);
    std::string s;
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (i > 0 && (d.size() - i) % 3 == 0) s += ',';
        s += d[i];
    }
    return s;
}

// 12345678 -> "12.35 M" (SI, 4 significant digits at most).
inline std::string si(double v, const char* unit = "") {
    static const char* const kPrefix[] = {"", "k", "M", "G", "T", "P"};
    int k = 0;
    while (std::fabs(v) >= 1000 && k < 5) v /= 1000, ++k;
    char b[32];
    std::snprintf(b, sizeof b, v < 10 && k > 0 ? "%.2f %s%s" : v < 100 && k > 0 ? "%.1f %s%s" : "%.0f %s%s", v,
                  kPrefix[k], unit);
    return b;
}

inline std::string bytes_text(std::uint64_t v) {
    static const char* const kUnit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = static_cast<double>(v);
    int k = 0;
    while (d >= 1024 && k < 5) d /= 1024, ++k;
    char b[32];
    std::snprintf(b, sizeof b, k == 0 ? "%.0f %s" : "%.1f %s", d, kUnit[k]);
    return b;
}

inline std::string ns_text(std::uint64_t ns) {
    char b[32];
    if (ns < 1000)
        std::snprintf(b, sizeof b, "%llu ns", static_cast<unsigned long long>(ns));
    else if (ns < 1'000'000)
        std::snprintf(b, sizeof b, "%.1f us", static_cast<double>(ns) / 1e3);
    else if (ns < 1'000'000'000)
        std::snprintf(b, sizeof b, "%.1f ms", static_cast<double>(ns) / 1e6);
    else
        std::snprintf(b, sizeof b, "%.2f s", static_cast<double>(ns) / 1e9);
    return b;
}

inline std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string printf_string(const char* fmt, ...) {
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    return b;
}

inline std::string bar(double fraction, int width) {
    const int full = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * width));
    return std::string(static_cast<std::size_t>(full), '#') + std::string(static_cast<std::size_t>(width - full), '.');
}

// One interval's worth of what the dashboard shows.
struct Frame {
    std::string title, subtitle;  // first lines
    double elapsed = 0;      // s
    double duration = 0;     // s; 0 = until stopped
    double interval = 0;     // s since the previous frame
    View now, before;        // statistics now and at the previous frame
    std::vector<std::uint64_t> worker_packets, worker_packets_before;
    std::uint64_t timed_every = 0;  // 1 in N packets timed
    bool stats = true;              // false with --stats none
};

class Dashboard {
public:
    explicit Dashboard(bool tty) : tty_(tty) {
        if (tty_) write_all("\x1b[?25l");  // hide the cursor while frames redraw
    }
    ~Dashboard() { finish(); }
    Dashboard(const Dashboard&) = delete;
    Dashboard& operator=(const Dashboard&) = delete;

    bool tty() const noexcept { return tty_; }

    void show(const Frame& f) {
        if (tty_)
            draw(f);
        else
            line(f);
    }

    // Leaves the last frame on screen and gives the cursor back.
    void finish() {
        if (tty_ && !finished_) write_all("\x1b[?25h");
        finished_ = true;
    }

    // The lines of a frame, without terminal control codes (also used for
    // the README's captured frame).
    static std::vector<std::string> lines(const Frame& f, int width) {
        std::vector<std::string> out;
        out.push_back(f.title);
        out.push_back(f.subtitle);
        if (f.duration > 0)
            out.push_back(printf_string("[%s] %5.1f / %.0f s", bar(f.elapsed / f.duration, std::max(10, width - 20)).c_str(),
                                        f.elapsed, f.duration));
        else
            out.push_back(printf_string("running %.1f s (Ctrl-C stops)", f.elapsed));
        const double dt = f.interval > 0 ? f.interval : 1;
        std::uint64_t tp = 0, tb = 0, tp0 = 0;
        if (f.stats) {
            out.push_back(printf_string("%-10s %16s %13s %12s", "protocol", "packets", "rate", "bytes"));
            for (std::size_t p = 0; p < kProtos; ++p) {
                const std::uint64_t d = f.now.packets[p] - f.before.packets[p];
                out.push_back(printf_string("%-10s %16s %13s %12s", kProtoNames[p], grouped(f.now.packets[p]).c_str(),
                                            si(static_cast<double>(d) / dt, "/s").c_str(),
                                            bytes_text(f.now.bytes[p]).c_str()));
                tp += f.now.packets[p], tb += f.now.bytes[p], tp0 += f.before.packets[p];
            }
            out.push_back(printf_string("%-10s %16s %13s %12s", "total", grouped(tp).c_str(),
                                        si(static_cast<double>(tp - tp0) / dt, "/s").c_str(), bytes_text(tb).c_str()));
            std::string drops = "drops     ";
            for (std::size_t d = 0; d < kDropReasons; ++d)
                drops += printf_string(" %s %s", kDropNames[d], grouped(f.now.drops[d]).c_str());
            drops += "   errors bad_checksum " + grouped(f.now.bad_checksum);
            out.push_back(drops);
            out.push_back(printf_string("latency    p50 %s  p99 %s  p99.9 %s  max %s  (1 in %llu packets timed)",
                                        ns_text(f.now.latency.p50).c_str(), ns_text(f.now.latency.p99).c_str(),
                                        ns_text(f.now.latency.p999).c_str(), ns_text(f.now.latency.max).c_str(),
                                        static_cast<unsigned long long>(f.timed_every)));
        }
        // Who did what: the CPU shards' rows with percore, else the workers.
        const bool shards = !f.now.shard_packets.empty();
        const std::vector<std::uint64_t>& rows = shards ? f.now.shard_packets : f.worker_packets;
        const std::vector<std::uint64_t>& rows0 = shards ? f.before.shard_packets : f.worker_packets_before;
        std::uint64_t all = 0;
        for (std::uint64_t v : rows) all += v;
        int shown = 0;
        for (std::size_t r = 0; r < rows.size() && shown < 16; ++r) {
            if (rows[r] == 0) continue;
            const std::uint64_t d = rows[r] - (r < rows0.size() ? rows0[r] : 0);
            std::string name = shards ? (r + 1 == rows.size() ? "shared row" : "cpu shard " + std::to_string(r))
                                      : "worker " + std::to_string(r);
            out.push_back(printf_string("%-12s %5.1f%% [%s] %13s", name.c_str(),
                                        all ? 100.0 * static_cast<double>(rows[r]) / static_cast<double>(all) : 0.0,
                                        bar(all ? static_cast<double>(rows[r]) / static_cast<double>(all) : 0, 24).c_str(),
                                        si(static_cast<double>(d) / dt, "pkt/s").c_str()));
            ++shown;
        }
        if (f.stats) {
            out.push_back(printf_string("flows      %s active, %s expired, largest packet %lld B",
                                        grouped(f.now.active_flows).c_str(), grouped(f.now.expired).c_str(),
                                        static_cast<long long>(f.now.max_size)));
            out.push_back("top flows by bytes");
            for (std::size_t i = 0; i < f.now.top.size(); ++i)
                out.push_back(printf_string("  %zu  %-42s %10s %12s pkts", i + 1, format_key(f.now.top[i].key).c_str(),
                                            bytes_text(f.now.top[i].bytes).c_str(),
                                            grouped(f.now.top[i].packets).c_str()));
        }
        for (std::string& l : out)
            if (static_cast<int>(l.size()) > width) l.resize(static_cast<std::size_t>(width));
        return out;
    }

    // The compact form: one line per interval.
    static std::string compact(const Frame& f) {
        const double dt = f.interval > 0 ? f.interval : 1;
        std::uint64_t p = 0, p0 = 0, drops = 0;
        if (f.stats) {
            for (std::size_t i = 0; i < kProtos; ++i) p += f.now.packets[i], p0 += f.before.packets[i];
            for (std::uint64_t d : f.now.drops) drops += d;
        } else {
            for (std::uint64_t v : f.worker_packets) p += v;
            for (std::uint64_t v : f.worker_packets_before) p0 += v;
        }
        std::string s = printf_string("t=%.1fs packets=%llu rate=%s", f.elapsed, static_cast<unsigned long long>(p),
                                      si(static_cast<double>(p - p0) / dt, "pkt/s").c_str());
        if (f.stats)
            s += printf_string(" drops=%llu errors=%llu p50=%s p99=%s max=%s flows=%zu",
                               static_cast<unsigned long long>(drops),
                               static_cast<unsigned long long>(f.now.bad_checksum), ns_text(f.now.latency.p50).c_str(),
                               ns_text(f.now.latency.p99).c_str(), ns_text(f.now.latency.max).c_str(),
                               f.now.active_flows);
        return s;
    }

private:
    static int width() {
        winsize ws{};
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col - 1;
        return 100;
    }
    static void write_all(const std::string& s) {
        std::fflush(stdout);
        std::size_t off = 0;
        while (off < s.size()) {
            const ssize_t n = ::write(STDOUT_FILENO, s.data() + off, s.size() - off);
            if (n <= 0) return;
            off += static_cast<std::size_t>(n);
        }
    }
    void draw(const Frame& f) {
        std::string out;
        if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A\r";  // back to the frame's top
        const std::vector<std::string> ls = lines(f, width());
        for (const std::string& l : ls) out += l + "\x1b[K\n";
        out += "\x1b[J";  // a shorter frame leaves no old lines below
        drawn_ = static_cast<int>(ls.size());
        write_all(out);
    }
    void line(const Frame& f) {
        std::printf("%s\n", compact(f).c_str());
        std::fflush(stdout);
    }

    bool tty_;
    bool finished_ = false;
    int drawn_ = 0;
};

}  // namespace percore::demo
