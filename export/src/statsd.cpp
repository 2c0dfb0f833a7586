// SPDX-License-Identifier: MIT
// statsd client: line formatting, datagram packing, UDP with counted errors.
#include "percore/export/statsd.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "format.hpp"

namespace percore {
namespace {

// statsd parses neither NaN nor Inf, and reads "-0" as a change of 0 (a
// leading sign makes a gauge value relative): both go out as 0.
double plain(double v) { return std::isfinite(v) && v != 0 ? v : 0.0; }

// What was recorded since the previous push: `cur` minus `prev`, or all of
// `cur` when there was no previous push or `prev` is not an earlier
// snapshot of the same histogram (the series was removed and registered again).
HistogramSnapshot interval(const HistogramSnapshot& cur, const HistogramSnapshot* prev) {
    if (prev != nullptr) {
        try {
            return cur.since(*prev);
        } catch (const std::invalid_argument&) {
        }
    }
    return cur;
}

// A snapshot figure in the histogram's exported unit. A callback may pair
// units of different kinds; then its figures go out as recorded.
double exported(std::uint64_t v, const HistogramData& h) {
    try {
        return convert_unit(v, h.recorded, h.exported);
    } catch (const std::invalid_argument&) {
        return static_cast<double>(v);
    }
}

}  // namespace

std::string statsd_name(std::string_view name) {
    std::string out;
    text::append_statsd_name(out, name);
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
    // push() state per series: the previous counter value; the previous
    // histogram snapshot, or count and sum for sources without one.
    struct LastHistogram {
        std::shared_ptr<const HistogramSnapshot> snapshot;
        std::uint64_t count = 0;
        double sum = 0;
    };
    std::map<std::string, std::uint64_t, std::less<>> last_counts;
    std::map<std::string, LastHistogram, std::less<>> last_hist;

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

    std::string key(std::string_view name, const Labels& labels) const {
        std::string k;
        if (!opt.prefix.empty()) {
            text::append_statsd_name(k, opt.prefix);
            k += '.';
        }
        text::append_statsd_name(k, name);
        if (!opt.tags)
            for (const auto& [ln, lv] : labels) {
                k += '.';
                if (lv.empty()) k += '_';
                else text::append_statsd_name(k, lv, false);
            }
        return k;
    }

    // "<key>:<value>|<type>[|@rate][|#tags]".
    template <class T>
    std::string line(std::string_view k, T v, std::string_view type, const Labels& labels, double rate = 1.0) const {
        std::string out(k);
        out += ':';
        if constexpr (std::is_floating_point_v<T>) text::append_number(out, plain(v));
        else text::append_number(out, v);
        out += '|';
        out += type;
        if (rate < 1.0) {
            out += "|@";
            text::append_fixed(out, rate);
        }
        if (opt.tags && !labels.empty()) {
            out += "|#";
            for (std::size_t i = 0; i < labels.size(); ++i) {
                if (i) out += ',';
                text::append_statsd_name(out, labels[i].first);
                out += ':';
                text::append_statsd_tag(out, labels[i].second);
            }
        }
        return out;
    }

    template <class T>
    void gauge_line(const std::string& k, T v, const Labels& labels) {
        bool negative = false;
        if constexpr (std::is_signed_v<T>) negative = plain(static_cast<double>(v)) < 0;
        // statsd reads a signed value as a change: set 0, then apply it, in one datagram.
        if (negative) add(line(k, 0, "g", labels) + '\n' + line(k, v, "g", labels), 2);
        else add(line(k, v, "g", labels), 1);
    }

    // Interval figures from the core histogram model: this push's snapshot
    // minus the previous one. A source without a core snapshot (a callback
    // that does not set it) sends count and sum only.
    void histogram_lines(const std::string& base, const HistogramData& h, const Labels& labels) {
        std::string id = base;
        for (const auto& [k, v] : labels) id += "|" + k + "=" + v;  // tags mode shares `base`
        LastHistogram& prev = last_hist[id];
        if (h.snapshot) {
            const HistogramSnapshot d = interval(*h.snapshot, prev.snapshot.get());
            prev.snapshot = h.snapshot;
            if (d.count() == 0) return;
            auto scaled = [&](std::uint64_t v) { return exported(v, h); };
            add(line(base + ".count", d.count(), "c", labels), 1);
            add(line(base + ".sum", scaled(d.sum()), "c", labels), 1);
            add(line(base + ".p50", scaled(d.percentile(50)), "g", labels), 1);
            add(line(base + ".p99", scaled(d.percentile(99)), "g", labels), 1);
            add(line(base + ".max", scaled(d.max()), "g", labels), 1);
            return;
        }
        const bool restarted = h.count < prev.count;  // reset since the last push
        const std::uint64_t n = restarted ? h.count : h.count - prev.count;
        const double sum = restarted ? h.sum : h.sum - prev.sum;
        prev.count = h.count;
        prev.sum = h.sum;
        if (n == 0) return;
        add(line(base + ".count", n, "c", labels), 1);
        add(line(base + ".sum", sum, "c", labels), 1);
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
                    if (delta != 0 || fresh) add(line(k, delta, "c", s.labels), 1);
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

namespace {

// Mistakes that would otherwise surface only as errors counted at every push.
StatsdOptions checked(StatsdOptions opt, const char* who, bool reporter) {
    if (opt.host.empty())
        throw std::invalid_argument(std::string(who) + ": StatsdOptions::host is empty; give the statsd daemon's "
                                    "host name or address, e.g. \"127.0.0.1\"");
    if (reporter && opt.interval <= std::chrono::milliseconds::zero())
        throw std::invalid_argument(std::string(who) + ": StatsdOptions::interval is " +
                                    std::to_string(opt.interval.count()) +
                                    " ms; it must be positive (it is the time between two pushes)");
    return opt;
}

}  // namespace

StatsdClient::StatsdClient(StatsdOptions opt)
    : impl_(std::make_unique<Impl>(checked(std::move(opt), "percore::StatsdClient", false))) {}
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
    impl_->add(impl_->line(impl_->key(name, labels), delta, "c", labels, rate), 1);
}

void StatsdClient::gauge(std::string_view name, double value, const Labels& labels) {
    std::lock_guard lk(impl_->mu);
    impl_->gauge_line(impl_->key(name, labels), value, labels);
}

void StatsdClient::timing(std::string_view name, double ms, double rate, const Labels& labels) {
    if (!keep_sample(rate)) return;
    std::lock_guard lk(impl_->mu);
    impl_->add(impl_->line(impl_->key(name, labels), ms, "ms", labels, rate), 1);
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
    : impl_(std::make_unique<Impl>(reg, checked(std::move(opt), "percore::StatsdReporter", true))) {
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
