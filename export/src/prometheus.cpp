// Prometheus text 0.0.4 / OpenMetrics 1.0 rendering and the HTTP endpoint.
#include "percore/export/prometheus.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace percore {
namespace {

void put_u64(std::string& out, std::uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void put_i64(std::string& out, std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Shortest round-trip form; `force_point` makes integral values look like
// floats ("1.0"), which OpenMetrics wants for `le` label values.
void put_double(std::string& out, double v, bool force_point = false) {
    if (std::isnan(v)) { out += "NaN"; return; }
    if (std::isinf(v)) { out += v > 0 ? "+Inf" : "-Inf"; return; }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    const std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
    out += s;
    if (force_point && s.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void put_value(std::string& out, const MetricValue& v) {
    if (auto u = std::get_if<std::uint64_t>(&v)) put_u64(out, *u);
    else if (auto i = std::get_if<std::int64_t>(&v)) put_i64(out, *i);
    else if (auto d = std::get_if<double>(&v)) put_double(out, *d);
    else out += "NaN";
}

void put_escaped(std::string& out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (quote && c == '"') out += "\\\"";
        else out += c;
    }
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
        put_escaped(out, v, true);
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
        put_double(le, b.upper_bound, true);
        put_labels(out, labels, "le", le);
        out += ' ';
        put_u64(out, b.cumulative_count);
        out += '\n';
    }
    out += name;
    out += "_bucket";
    put_labels(out, labels, "le", "+Inf");
    out += ' ';
    put_u64(out, h.count);
    out += '\n';
    put_sample(out, name, "_sum", labels);
    put_double(out, h.sum);
    out += '\n';
    put_sample(out, name, "_count", labels);
    put_u64(out, h.count);
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
        // Text 0.0.4 escapes only backslash and newline in HELP; OpenMetrics also the quote.
        put_escaped(out, f.help, om);
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

struct PrometheusServer::Impl {
    const Registry& reg;
    httplib::Server http;
    std::thread thread;
    int port = -1;
    std::atomic<std::uint64_t> scrapes{0};
    explicit Impl(const Registry& r) : reg(r) {}
};

PrometheusServer::PrometheusServer(const Registry& reg, PrometheusOptions opt) : impl_(std::make_unique<Impl>(reg)) {
    Impl* im = impl_.get();
    // httplib's default adds SO_REUSEPORT, which would let a second server
    // share the port and split scrapes between processes; keep only REUSEADDR.
    im->http.set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Headers and body go out in separate writes: without NODELAY each
    // keep-alive reply waits ~40 ms for the scraper's delayed ACK.
    im->http.set_tcp_nodelay(true);
    // An idle keep-alive connection holds a worker thread and delays stop().
    im->http.set_keep_alive_timeout(1);
    im->http.Get(opt.path, [im](const httplib::Request& req, httplib::Response& res) {
        const ExpositionFormat fmt = negotiate(req.get_header_value("Accept"));
        res.set_content(render(im->reg, fmt), content_type(fmt));
        im->scrapes.fetch_add(1, std::memory_order_relaxed);
    });
    if (opt.port == 0) {
        im->port = im->http.bind_to_any_port(opt.host);
    } else if (im->http.bind_to_port(opt.host, opt.port)) {
        im->port = opt.port;
    }
    if (im->port <= 0)
        throw std::runtime_error("percore::PrometheusServer: cannot bind " + opt.host + ":" + std::to_string(opt.port));
    im->thread = std::thread([im] { im->http.listen_after_bind(); });
    // stop() is a no-op until the server runs, so wait for it (bounded).
    for (int i = 0; i < 5000 && !im->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

PrometheusServer::~PrometheusServer() { stop(); }

void PrometheusServer::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    impl_->http.stop();
    impl_->thread.join();
}

std::uint16_t PrometheusServer::port() const noexcept { return static_cast<std::uint16_t>(impl_->port); }
std::uint64_t PrometheusServer::scrapes() const noexcept { return impl_->scrapes.load(std::memory_order_relaxed); }

}  // namespace percore
