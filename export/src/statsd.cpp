// statsd client: line formatting, datagram packing, UDP with counted errors.
#include "percore/export/statsd.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace percore {
namespace {

bool statsd_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

void put_number(std::string& out, double v) {
    if (!std::isfinite(v)) v = 0;  // statsd cannot parse NaN/Inf
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

template <class T>
void put_int(std::string& out, T v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

std::string tag_text(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c == ',' || c == '|' || c == '#' || c == ':' || c == '@' || c == '\n' || c == '\r' || c == ' ') c = '_';
    return out;
}

}  // namespace

std::string statsd_name(std::string_view name) {
    std::string out(name);
    for (char& c : out)
        if (!statsd_char(c)) c = '_';
    return out;
}

struct StatsdClient::Impl {
    StatsdOptions opt;
    mutable std::mutex mu;
    std::string buf;          // the datagram being filled
    std::size_t buf_lines = 0;
    std::size_t burst_sent = 0;
    int fd = -1;
    StatsdStats st;
    std::string last_reported;
    // push() state: previous counter values and histogram buckets per key.
    std::map<std::string, std::uint64_t, std::less<>> last_counts;
    std::map<std::string, HistogramData, std::less<>> last_hist;

    explicit Impl(StatsdOptions o) : opt(std::move(o)) {
        if (opt.max_datagram == 0) opt.max_datagram = 1;
    }
    ~Impl() {
        if (fd >= 0) close(fd);
    }

    void error(std::string msg) {
        st.last_error = msg;
        if (msg == last_reported) return;
        last_reported = msg;
        if (opt.on_error) opt.on_error(msg);
        else std::fprintf(stderr, "percore statsd: %s\n", msg.c_str());
    }

    // Resolves and connects lazily, again after any failure, so a daemon or
    // DNS entry that appears later is picked up.
    bool connect_socket() {
        if (fd >= 0) return true;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        addrinfo* res = nullptr;
        const std::string port = std::to_string(opt.port);
        const int rc = getaddrinfo(opt.host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0 || res == nullptr) {
            ++st.resolve_errors;
            error("cannot resolve " + opt.host + ": " + gai_strerror(rc));
            return false;
        }
        for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
            const int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (s < 0) continue;
            // Connected UDP: the kernel reports ICMP port-unreachable as
            // ECONNREFUSED on a later send, so a missing daemon gets counted.
            if (connect(s, a->ai_addr, a->ai_addrlen) == 0) fd = s;
            else close(s);
        }
        freeaddrinfo(res);
        if (fd < 0) {
            ++st.send_errors;
            error("cannot connect UDP socket to " + opt.host + ":" + port + ": " + std::strerror(errno));
            return false;
        }
        return true;
    }

    void send_buf() {
        if (buf.empty()) return;
        if (opt.burst > 0 && burst_sent >= opt.burst) {
            std::this_thread::sleep_for(opt.burst_pause);
            burst_sent = 0;
        }
        bool ok = false;
        if (connect_socket()) {
            // One retry: an ECONNREFUSED left over from an earlier datagram
            // is reported on this send even if the daemon is now up.
            for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
                const ssize_t n = ::send(fd, buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n == static_cast<ssize_t>(buf.size())) {
                    ok = true;
                } else {
                    const int e = errno;
                    ++st.send_errors;
                    error("send to " + opt.host + ":" + std::to_string(opt.port) + " failed: " + std::strerror(e));
                    if (e != ECONNREFUSED) break;
                }
            }
        }
        if (ok) {
            ++st.datagrams;
            st.lines += buf_lines;
            st.bytes += buf.size();
            ++burst_sent;
        } else {
            st.lost_lines += buf_lines;
        }
        buf.clear();
        buf_lines = 0;
    }

    // `unit` is one line, or two that must share a datagram (negative gauge).
    void add(std::string_view unit, std::size_t lines) {
        if (unit.size() > opt.max_datagram) {
            st.oversize_lines += lines;
            error("line of " + std::to_string(unit.size()) + " bytes exceeds max_datagram " +
                  std::to_string(opt.max_datagram) + ": " + std::string(unit.substr(0, 64)) + "...");
            return;
        }
        if (!buf.empty() && buf.size() + 1 + unit.size() > opt.max_datagram) send_buf();
        if (!buf.empty()) buf += '\n';
        buf += unit;
        buf_lines += lines;
    }

    std::string key(std::string_view name, const Labels& labels, std::string_view suffix = {}) const {
        std::string k;
        if (!opt.prefix.empty()) {
            k = statsd_name(opt.prefix);
            k += '.';
        }
        k += statsd_name(name);
        if (!opt.tags)
            for (const auto& [ln, lv] : labels) {
                k += '.';
                std::string seg = statsd_name(lv);
                for (char& c : seg)
                    if (c == '.') c = '_';
                k += seg.empty() ? "_" : seg;
            }
        k += suffix;
        return k;
    }

    // Finishes "<key>:<value>" with its type, sample rate and tags, and
    // queues it.
    void sampled_line(std::string& line, std::string_view type, double rate, const Labels& labels) {
        line += type;
        tail(line, std::min(rate, 1.0), labels);
        add(line, 1);
    }
    void tail(std::string& line, double rate, const Labels& labels) const {
        if (rate < 1.0) {
            line += "|@";
            put_number(line, rate);
        }
        if (opt.tags && !labels.empty()) {
            line += "|#";
            for (std::size_t i = 0; i < labels.size(); ++i) {
                if (i) line += ',';
                line += statsd_name(labels[i].first);
                line += ':';
                line += tag_text(labels[i].second);
            }
        }
    }

    void counter_line(const std::string& k, std::uint64_t delta, const Labels& labels) {
        std::string line = k;
        line += ':';
        put_int(line, delta);
        line += "|c";
        tail(line, 1.0, labels);
        add(line, 1);
    }
    void double_line(const std::string& k, double v, std::string_view type, const Labels& labels) {
        std::string line = k;
        line += ':';
        put_number(line, v);
        line += '|';
        line += type;
        tail(line, 1.0, labels);
        add(line, 1);
    }
    template <class T>
    void gauge_line(const std::string& k, T v, const Labels& labels) {
        std::string line;
        std::size_t lines = 1;
        bool negative = false;
        if constexpr (std::is_signed_v<T> || std::is_floating_point_v<T>) negative = v < 0;
        if (negative) {
            line = k + ":0|g";
            tail(line, 1.0, labels);
            line += '\n';
            lines = 2;
        }
        line += k;
        line += ':';
        if constexpr (std::is_same_v<T, double>) put_number(line, v);
        else put_int(line, v);
        line += "|g";
        tail(line, 1.0, labels);
        add(line, lines);
    }

    void histogram_lines(const std::string& base, const HistogramData& h, const Labels& labels) {
        std::string id = base;
        for (const auto& [k, v] : labels) id += "|" + k + "=" + v;  // tags mode shares `base`
        HistogramData& prev = last_hist[id];
        const bool restarted = h.count < prev.count;  // reset since the last push
        const std::uint64_t dn = restarted ? h.count : h.count - prev.count;
        const double dsum = restarted ? h.sum : h.sum - prev.sum;
        if (dn > 0) {
            counter_line(base + ".count", dn, labels);
            std::string line = base + ".sum:";
            put_number(line, dsum);
            line += "|c";
            tail(line, 1.0, labels);
            add(line, 1);
            // The interval's own distribution: current minus previous
            // cumulative counts, at the finest resolution available.
            const bool fine = !h.fine.empty();
            const auto& cur = fine ? h.fine : h.buckets;
            const auto& old = fine ? prev.fine : prev.buckets;
            std::vector<HistogramData::Bucket> delta;
            std::size_t j = 0;
            std::uint64_t before = 0;  // previous cumulative count at or below this bound
            for (const auto& b : cur) {
                while (!restarted && j < old.size() && old[j].upper_bound <= b.upper_bound) before = old[j++].cumulative_count;
                delta.push_back({b.upper_bound, b.cumulative_count - std::min(b.cumulative_count, before)});
            }
            if (delta.empty() || delta.back().cumulative_count < dn)
                delta.push_back({std::numeric_limits<double>::infinity(), dn});
            double top = h.max;
            for (const auto& b : delta)
                if (b.cumulative_count >= dn) { top = std::min(b.upper_bound, h.max); break; }
            double_line(base + ".p50", quantile_from_buckets(delta, 0.5, h.min, h.max), "g", labels);
            double_line(base + ".p99", quantile_from_buckets(delta, 0.99, h.min, h.max), "g", labels);
            double_line(base + ".max", top, "g", labels);
        }
        prev = h;
    }

    void push(const Snapshot& snap) {
        for (const auto& f : snap)
            for (const auto& s : f.series) {
                const std::string k = key(f.name, s.labels);
                if (f.type == MetricType::histogram) {
                    if (auto h = std::get_if<HistogramData>(&s.value)) histogram_lines(k, *h, s.labels);
                    continue;
                }
                if (f.type == MetricType::counter) {
                    std::uint64_t cur = 0;
                    if (auto u = std::get_if<std::uint64_t>(&s.value)) cur = *u;
                    else if (auto i = std::get_if<std::int64_t>(&s.value)) cur = static_cast<std::uint64_t>(*i);
                    else if (auto d = std::get_if<double>(&s.value)) cur = static_cast<std::uint64_t>(*d);
                    std::string id = k;
                    if (opt.tags)
                        for (const auto& [ln, lv] : s.labels) id += "|" + ln + "=" + lv;
                    auto [it, fresh] = last_counts.try_emplace(id, 0);
                    const std::uint64_t delta = cur >= it->second ? cur - it->second : cur;
                    it->second = cur;
                    if (delta != 0 || fresh) counter_line(k, delta, s.labels);
                    continue;
                }
                if (auto i = std::get_if<std::int64_t>(&s.value)) gauge_line(k, *i, s.labels);
                else if (auto u = std::get_if<std::uint64_t>(&s.value)) gauge_line(k, *u, s.labels);
                else if (auto d = std::get_if<double>(&s.value)) gauge_line(k, *d, s.labels);
            }
        send_buf();
        burst_sent = 0;
    }
};

StatsdClient::StatsdClient(StatsdOptions opt) : impl_(std::make_unique<Impl>(std::move(opt))) {}
StatsdClient::~StatsdClient() { flush(); }

namespace {

// Client-side sampling: keep a call with probability `rate` (the server
// scales by 1/rate, announced in the line's |@rate).
bool keep_sample(double rate) {
    if (rate <= 0) return false;
    if (rate >= 1.0) return true;
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
}

}  // namespace

void StatsdClient::count(std::string_view name, std::int64_t delta, double rate, const Labels& labels) {
    if (!keep_sample(rate)) return;
    std::lock_guard lk(impl_->mu);
    std::string line = impl_->key(name, labels);
    line += ':';
    put_int(line, delta);
    impl_->sampled_line(line, "|c", rate, labels);
}

void StatsdClient::gauge(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lk(impl_->mu);
    impl_->gauge_line(impl_->key(name, labels), value, labels);
}

void StatsdClient::timing(std::string_view name, double ms, double rate, const Labels& labels) {
    if (!keep_sample(rate)) return;
    std::lock_guard lk(impl_->mu);
    std::string line = impl_->key(name, labels);
    line += ':';
    put_number(line, ms);
    impl_->sampled_line(line, "|ms", rate, labels);
}

void StatsdClient::flush() {
    std::lock_guard lk(impl_->mu);
    impl_->send_buf();
    impl_->burst_sent = 0;
}

void StatsdClient::push(const Registry& reg) {
    const Snapshot snap = reg.collect();  // outside our lock: collect may take a while
    std::lock_guard lk(impl_->mu);
    impl_->push(snap);
}

StatsdStats StatsdClient::stats() const {
    std::lock_guard lk(impl_->mu);
    return impl_->st;
}

struct StatsdReporter::Impl {
    const Registry& reg;
    StatsdClient client;
    std::chrono::milliseconds interval;
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    std::atomic<std::uint64_t> pushes{0};
    std::thread thread;

    Impl(const Registry& r, StatsdOptions opt) : reg(r), client(opt), interval(opt.interval) {}
    void run() {
        std::unique_lock lk(mu);
        for (;;) {
            const bool stop = cv.wait_for(lk, interval, [&] { return stopping; });
            lk.unlock();
            client.push(reg);  // the last round runs after stop was asked: the shutdown push
            pushes.fetch_add(1, std::memory_order_relaxed);
            lk.lock();
            if (stop) return;
        }
    }
};

StatsdReporter::StatsdReporter(const Registry& reg, StatsdOptions opt)
    : impl_(std::make_unique<Impl>(reg, std::move(opt))) {
    impl_->thread = std::thread([im = impl_.get()] { im->run(); });
}
StatsdReporter::~StatsdReporter() { stop(); }

void StatsdReporter::stop() {
    if (!impl_->thread.joinable()) return;
    {
        std::lock_guard lk(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    impl_->thread.join();
}

std::uint64_t StatsdReporter::pushes() const noexcept { return impl_->pushes.load(std::memory_order_relaxed); }
StatsdStats StatsdReporter::stats() const { return impl_->client.stats(); }

}  // namespace percore
