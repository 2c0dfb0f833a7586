// SPDX-License-Identifier: MIT
// Prometheus rendering (both formats, strict checks, escaping) and the HTTP
// endpoint: concurrent scrapes, clients that hang up mid-reply, idle and
// slow clients, the connection limit, the deadlines, errors that say why.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <system_error>
#include <thread>
#include <vector>

#include "exposition_check.hpp"
#include "percore/export/prometheus.hpp"
#include "percore/export/telemetry.hpp"

namespace {

using percore::ExpositionFormat;

void fill(percore::Registry& reg) {
    reg.counter("http_requests_total", "Requests served.", {{"method", "get"}})->add(3);
    reg.counter("http_requests_total", "Requests served.", {{"method", "post"}})->add(1);
    reg.gauge("queue_depth", "Items waiting.\nSecond line with \\ backslash.")->set(-7);
    reg.gauge("tricky_level", "Label escaping.", {{"path", "a\"b\\c\nd"}})->set(1);
    reg.add_gauge("ratio", "A double.", {}, [] { return 0.25; });
    reg.add_histogram("io_duration_seconds", "IO time.", {{"dev", "sda"}}, [] {
        percore::HistogramData h;
        h.count = 4;
        h.sum = 2.5;
        h.min = 0.1;
        h.max = 2;
        h.buckets = {{0.5, 2}, {1, 3}};
        return h;
    });
}

TEST(Prometheus, TextFormat) {
    percore::Registry reg;
    fill(reg);
    const std::string text = percore::render(reg, ExpositionFormat::text);
    const auto problems = percore::test::check_exposition(text, false);
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << text;
    EXPECT_NE(text.find("# TYPE http_requests_total counter\n"), std::string::npos);
    EXPECT_NE(text.find("http_requests_total{method=\"get\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("queue_depth -7\n"), std::string::npos);
    EXPECT_NE(text.find("# HELP queue_depth Items waiting.\\nSecond line with \\\\ backslash.\n"), std::string::npos);
    EXPECT_NE(text.find("tricky_level{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("io_duration_seconds_bucket{dev=\"sda\",le=\"0.5\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("io_duration_seconds_bucket{dev=\"sda\",le=\"+Inf\"} 4\n"), std::string::npos);
    EXPECT_NE(text.find("io_duration_seconds_count{dev=\"sda\"} 4\n"), std::string::npos);
    EXPECT_NE(text.find("ratio 0.25\n"), std::string::npos);
    EXPECT_EQ(text.find("# EOF"), std::string::npos);
}

TEST(Prometheus, OpenMetrics) {
    percore::Registry reg;
    fill(reg);
    const std::string om = percore::render(reg, ExpositionFormat::openmetrics);
    const auto problems = percore::test::check_exposition(om, true);
    EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << om;
    EXPECT_NE(om.find("# TYPE http_requests counter\n"), std::string::npos);
    EXPECT_NE(om.find("http_requests_total{method=\"get\"} 3\n"), std::string::npos);
    EXPECT_NE(om.find("le=\"1.0\"} 3\n"), std::string::npos);
    EXPECT_TRUE(om.ends_with("# EOF\n"));
}

TEST(Prometheus, CheckerCatchesWhatPromtoolMisses) {
    using percore::test::check_exposition;
    EXPECT_FALSE(check_exposition("# TYPE a gauge\na 1\na 2\n", false).empty());                  // duplicate
    EXPECT_FALSE(check_exposition("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n", false).empty());
    EXPECT_FALSE(check_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", false).empty());
    EXPECT_FALSE(check_exposition("# TYPE a gauge\r\na 1\r\n", false).empty());
    EXPECT_FALSE(check_exposition("# TYPE a gauge\na{x=\"\\q\"} 1\n", false).empty());
    EXPECT_FALSE(check_exposition("# TYPE a gauge\na 1\n", true).empty());  // no # EOF
    EXPECT_TRUE(check_exposition("# TYPE a gauge\na 1\n# EOF\n", true).empty());
}

TEST(Prometheus, Negotiation) {
    EXPECT_EQ(percore::negotiate("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                                 "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
              ExpositionFormat::openmetrics);
    EXPECT_EQ(percore::negotiate("text/plain"), ExpositionFormat::text);
    EXPECT_EQ(percore::negotiate(""), ExpositionFormat::text);
    EXPECT_EQ(percore::negotiate("application/openmetrics-text;q=0"), ExpositionFormat::text);
}

TEST(Prometheus, ServerUnderConcurrentScrapesAndHangups) {
    percore::Registry reg;
    fill(reg);
    auto hot = reg.counter("hot_total", "Incremented during scrapes.");
    percore::PrometheusServer srv(reg, {.port = 0});
    ASSERT_GT(srv.port(), 0);

    std::atomic<bool> stop{false};
    constexpr std::uint64_t kAdds = 300'000;
    std::thread writer([&] {
        for (std::uint64_t i = 0; i < kAdds; ++i) hot->inc();
    });
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> scrapers;
    for (int t = 0; t < 8; ++t)
        scrapers.emplace_back([&, t] {
            httplib::Client cli("127.0.0.1", srv.port());
            cli.set_keep_alive(true);
            cli.set_tcp_nodelay(true);
            for (int i = 0; i < 15; ++i) {
                httplib::Headers h;
                if (t % 2) h.emplace("Accept", "application/openmetrics-text;version=1.0.0");
                auto res = cli.Get("/metrics", h);
                if (res && res->status == 200 &&
                    percore::test::check_exposition(res->body, t % 2 == 1).empty())
                    ++ok;
                else
                    ++bad;
            }
        });
    // Clients that send a request and hang up before reading the reply.
    std::thread hangups([&] {
        for (int i = 0; i < 10; ++i) {
            const int fd = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(srv.port());
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
                const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
                (void)!write(fd, req, sizeof req - 1);
            }
            close(fd);
        }
    });
    for (auto& s : scrapers) s.join();
    hangups.join();
    writer.join();
    EXPECT_EQ(ok.load(), 8 * 15);
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(hot->value(), kAdds);
    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_NE(res->body.find("hot_total " + std::to_string(kAdds) + "\n"), std::string::npos);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_GE(srv.scrapes(), 8u * 15u);
    auto missing = cli.Get("/nope");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
}

TEST(Prometheus, BindFailureSaysWhy) {
    percore::Registry reg;
    percore::PrometheusServer a(reg, {.port = 0});
    try {
        percore::PrometheusServer b(reg, {.port = a.port()});
        FAIL() << "a second server bound port " << a.port();
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("percore::PrometheusServer: cannot bind 127.0.0.1:" + std::to_string(a.port()) + ": "),
                  std::string::npos)
            << msg;
        EXPECT_NE(msg.find(std::generic_category().message(EADDRINUSE)), std::string::npos) << msg;
    }
}

TEST(Prometheus, PathWithoutLeadingSlashIsRejected) {
    percore::Registry reg;
    for (const char* path : {"metrics", ""}) {
        try {
            percore::PrometheusServer srv(reg, {.port = 0, .path = path});
            ADD_FAILURE() << "accepted path \"" << path << "\"";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("must start with '/'"), std::string::npos) << e.what();
        }
    }
}

// ---- clients that hold connections ---------------------------------------

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
// Generous: the deadlines below are conditions to wait for on a loaded
// machine, never timing assertions.
constexpr auto kPatience = std::chrono::seconds(30);

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Socket {
    int fd = -1;
    explicit Socket(std::uint16_t port) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    }
    Socket(Socket&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Socket& operator=(Socket&&) = delete;
    ~Socket() {
        if (fd >= 0) close(fd);
    }
    bool send_all(std::string_view s) const {
        while (!s.empty()) {
            const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // True once the server closed or reset the connection (no data pending).
    bool closed_now() const {
        char c;
        const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    // Reads until the server closes the connection or `patience` passes;
    // true if it closed. What was read is appended to `got`.
    bool wait_closed(std::string& got, Clock::duration patience = kPatience) const {
        const auto end = Clock::now() + patience;
        for (;;) {
            const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now()).count();
            if (left <= 0) return false;
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char buf[4096];
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return true;
            got.append(buf, static_cast<std::size_t>(n));
        }
    }
    // One HTTP/1.1 request on this connection; the reply's status line and
    // body (read by Content-Length), or empty on failure.
    std::string request(std::string_view path) const {
        if (!send_all("GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) return {};
        std::string got;
        const auto end = Clock::now() + kPatience;
        while (Clock::now() < end) {
            const auto head_end = got.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto cl = got.find("Content-Length: ");
                if (cl != std::string::npos && cl < head_end &&
                    got.size() >= head_end + 4 + std::stoul(got.substr(cl + 16)))
                    return got;
            }
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return {};
            got.append(buf, static_cast<std::size_t>(n));
        }
        return {};
    }
};

// Sends one more header byte on each socket every `interval`, never ending
// the headers (each has sent its first byte already).
class Trickle {
public:
    Trickle(const std::vector<Socket>& socks, milliseconds interval)
        : thread_([&socks, interval, this] {
              const std::string head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
              for (std::size_t i = 1; !stop_.load(std::memory_order_relaxed); ++i) {
                  std::this_thread::sleep_for(interval);
                  const char byte = i < head.size() ? head[i] : 'a';
                  for (const auto& s : socks) (void)!::send(s.fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
              }
          }) {}
    ~Trickle() {
        stop_.store(true, std::memory_order_relaxed);
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};  // relaxed: it publishes nothing, and join() orders the rest
    std::thread thread_;
};

// A scrape is answered while 200 idle and 50 slow clients hold connections
// (the old 8-worker server never answered it: each slow client held a
// worker). Long deadlines here, so that nothing is dropped and the server
// has to serve around the held connections.
TEST(Prometheus, ScrapeAnsweredWhileIdleAndSlowClientsHoldConnections) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusOptions opt;
    opt.port = 0;
    opt.header_timeout = std::chrono::minutes(10);
    opt.idle_timeout = std::chrono::minutes(10);
    percore::PrometheusServer srv(reg, opt);
    std::vector<Socket> slow, idle;
    for (int i = 0; i < 50; ++i) {
        slow.emplace_back(srv.port());
        ASSERT_GE(slow.back().fd, 0);
        ASSERT_TRUE(slow.back().send_all("G"));
    }
    for (int i = 0; i < 200; ++i) {
        idle.emplace_back(srv.port());
        ASSERT_GE(idle.back().fd, 0);
    }
    Trickle trickle(slow, milliseconds(200));
    std::this_thread::sleep_for(milliseconds(500));  // the slow clients are mid-header

    httplib::Client cli("127.0.0.1", srv.port());
    cli.set_connection_timeout(kPatience);
    cli.set_read_timeout(kPatience);
    const auto t0 = Clock::now();
    auto res = cli.Get("/metrics");
    const double took = ms_since(t0);
    std::printf("[ measured ] scrape with 200 idle + 50 slow connections open: %.1f ms\n", took);
    RecordProperty("scrape_ms", std::to_string(took));
    ASSERT_TRUE(res) << "no reply within " << kPatience.count() << " s: " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_NE(res->body.find("http_requests_total{method=\"get\"} 3\n"), std::string::npos) << res->body;
    EXPECT_TRUE(percore::test::check_exposition(res->body, false).empty());
    int still_open = 0;
    for (const auto& s : slow) still_open += !s.closed_now();
    for (const auto& s : idle) still_open += !s.closed_now();
    EXPECT_EQ(still_open, 250);
}

// Beyond max_connections a client is accepted and closed at once, not left
// waiting; the connections already open keep working, and a freed slot is
// used again.
TEST(Prometheus, ConnectionLimitRefusesCleanly) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusOptions opt;
    opt.port = 0;
    opt.max_connections = 4;
    opt.header_timeout = std::chrono::minutes(10);
    opt.idle_timeout = std::chrono::minutes(10);
    percore::PrometheusServer srv(reg, opt);
    std::vector<Socket> held;
    for (int i = 0; i < 4; ++i) {
        held.emplace_back(srv.port());
        ASSERT_GE(held.back().fd, 0);
    }
    // The server accepts in arrival order, so this one is the fifth.
    Socket extra(srv.port());
    ASSERT_GE(extra.fd, 0);
    (void)extra.send_all("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto t0 = Clock::now();
    std::string got;
    EXPECT_TRUE(extra.wait_closed(got)) << "the connection over the limit was left open";
    std::printf("[ measured ] connection over the limit closed after %.1f ms\n", ms_since(t0));
    EXPECT_EQ(got, "");  // closed, not answered

    for (const auto& s : held) {
        const std::string reply = s.request("/metrics");
        EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply.substr(0, 80);
        EXPECT_NE(reply.find("queue_depth -7\n"), std::string::npos);
    }
    held.pop_back();  // frees a slot, once the server has seen the close
    bool served = false;
    for (const auto end = Clock::now() + kPatience; !served && Clock::now() < end;) {
        Socket s(srv.port());
        served = s.request("/metrics").starts_with("HTTP/1.1 200");
        if (!served) std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_TRUE(served);
}

// A client that never finishes its headers is dropped after header_timeout,
// whether it trickles bytes or sends nothing; a scrape still works.
TEST(Prometheus, HeaderDeadlineDropsSlowAndSilentClients) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusOptions opt;
    opt.port = 0;
    opt.header_timeout = milliseconds(300);
    opt.idle_timeout = std::chrono::minutes(10);
    percore::PrometheusServer srv(reg, opt);
    std::vector<Socket> slow;
    slow.emplace_back(srv.port());
    ASSERT_GE(slow.back().fd, 0);
    ASSERT_TRUE(slow.back().send_all("G"));
    Socket silent(srv.port());
    ASSERT_GE(silent.fd, 0);
    const auto t0 = Clock::now();
    {
        Trickle trickle(slow, milliseconds(50));
        std::string got;
        EXPECT_TRUE(slow.front().wait_closed(got)) << "a trickling client outlived the header deadline";
        std::printf("[ measured ] trickling client dropped after %.1f ms (header_timeout 300 ms)\n", ms_since(t0));
        EXPECT_EQ(got, "");
    }
    std::string got;
    EXPECT_TRUE(silent.wait_closed(got)) << "a silent client outlived the header deadline";
    std::printf("[ measured ] silent client seen closed after %.1f ms\n", ms_since(t0));
    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
}

// A kept-alive connection is served again, then closed once it has been
// idle for idle_timeout.
TEST(Prometheus, IdleDeadlineClosesKeptAliveConnection) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusOptions opt;
    opt.port = 0;
    opt.header_timeout = std::chrono::minutes(10);
    opt.idle_timeout = milliseconds(300);
    percore::PrometheusServer srv(reg, opt);
    Socket s(srv.port());
    ASSERT_GE(s.fd, 0);
    EXPECT_TRUE(s.request("/metrics").starts_with("HTTP/1.1 200"));
    EXPECT_TRUE(s.request("/metrics").starts_with("HTTP/1.1 200"));  // same connection
    const auto t0 = Clock::now();
    std::string got;
    EXPECT_TRUE(s.wait_closed(got)) << "an idle kept-alive connection was never closed";
    std::printf("[ measured ] idle kept-alive connection closed after %.1f ms (idle_timeout 300 ms)\n", ms_since(t0));
    EXPECT_EQ(got, "");
}

TEST(Prometheus, RoutesOnlyItsPathForGetAndHead) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusServer srv(reg, {.port = 0, .path = "/probe"});
    httplib::Client cli("127.0.0.1", srv.port());
    auto get = cli.Get("/probe?debug=1");  // the query string is not part of the path
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    auto head = cli.Head("/probe");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->body, "");
    auto post = cli.Post("/probe", "x", "text/plain");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405);
    EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
    auto other = cli.Get("/metrics");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    EXPECT_EQ(srv.scrapes(), 2u);
}

// The dashboard: the page at / and /dashboard, self-contained, and the JSON
// it polls at /api/metrics: every series with the figures the telemetry
// socket's /percore/get gives for it, and per-shard rows that add up.
TEST(Prometheus, DashboardServesPageAndMetricsJson) {
    percore::Registry reg;
    auto get = reg.counter("http_requests_total", "Requests served.", {{"method", "get"}});
    get->add(40);
    reg.gauge("queue_depth", "Items waiting.")->add(-7);
    reg.add_gauge("ratio", "A double.", {}, [] { return 0.25; });
    auto lat = reg.histogram("rpc_duration_seconds", "RPC time.");
    for (std::uint64_t i = 1; i <= 1000; ++i) lat->record(i * 1000);
    std::thread([&] {  // some values from another thread, maybe another shard
        for (std::uint64_t i = 0; i < 500; ++i) lat->record(std::uint64_t{2'000'000});
        get->add(2);
    }).join();
    percore::PrometheusServer srv(reg, {.port = 0});
    httplib::Client cli("127.0.0.1", srv.port());

    for (const char* path : {"/", "/dashboard"}) {
        auto page = cli.Get(path);
        ASSERT_TRUE(page) << path;
        EXPECT_EQ(page->status, 200) << path;
        EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
        EXPECT_NE(page->body.find("<canvas"), std::string::npos);
        EXPECT_NE(page->body.find("fetch('api/metrics'"), std::string::npos);
        // Nothing loaded from elsewhere: no absolute URLs at all.
        EXPECT_EQ(page->body.find("http://"), std::string::npos);
        EXPECT_EQ(page->body.find("https://"), std::string::npos);
        EXPECT_EQ(page->body.find("src="), std::string::npos);
    }

    const double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto res = cli.Get("/api/metrics");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    const auto j = nlohmann::json::parse(res->body);
    EXPECT_NEAR(j["time"].get<double>(), before, 5.0);
    EXPECT_EQ(j["pid"], getpid());
    ASSERT_EQ(j["series"].size(), reg.series_count());

    percore::TelemetryProtocol tel(reg, {});
    for (const auto& s : j["series"]) {
        const std::string id = s["id"];
        auto reply = nlohmann::json::parse(tel.reply("/percore/get," + id))["/percore/get"];
        reply["id"] = id;
        EXPECT_EQ(s, reply) << id;  // the same figures under the same keys
    }
    auto by_id = [&](std::string_view id) {
        for (const auto& s : j["series"])
            if (s["id"] == id) return s;
        ADD_FAILURE() << id << " missing";
        return nlohmann::json{};
    };
    auto shard_sum = [](const nlohmann::json& s) {
        std::int64_t sum = 0;
        for (auto& [row, v] : s["shards"].items()) sum += v.get<std::int64_t>();
        return sum;
    };
    const auto c = by_id("http_requests_total{method=\"get\"}");
    EXPECT_EQ(c["type"], "counter");
    EXPECT_EQ(c["value"], 42);
    EXPECT_EQ(shard_sum(c), 42);
    EXPECT_EQ(by_id("queue_depth")["value"], -7);
    EXPECT_EQ(by_id("ratio")["value"], 0.25);
    const auto h = by_id("rpc_duration_seconds");
    EXPECT_EQ(h["type"], "histogram");
    EXPECT_EQ(h["count"], 1500);
    EXPECT_EQ(shard_sum(h), 1500);  // per-shard rows of a histogram count its values
    for (const char* k : {"count", "sum", "min", "max", "mean", "median", "p50", "p90", "p99", "p999"})
        EXPECT_TRUE(h.contains(k)) << k;
    EXPECT_DOUBLE_EQ(h["min"].get<double>(), 1e-6);
    EXPECT_DOUBLE_EQ(h["max"].get<double>(), 2e-3);
    EXPECT_EQ(h["median"], h["p50"]);
    // 1000 values 1..1000 us and 500 of 2 ms: the median is near 750 us
    // (within the histogram's 1% bucket error), p90 at 2 ms.
    EXPECT_NEAR(h["p50"].get<double>(), 750e-6, 750e-6 * 0.01 + 1e-6);
    EXPECT_NEAR(h["p90"].get<double>(), 2e-3, 2e-3 * 0.01);
    EXPECT_NEAR(h["mean"].get<double>(), (500.5e-3 + 1.0) / 1500, 1e-9);
}

TEST(Prometheus, DashboardCanBeTurnedOff) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusServer srv(reg, {.port = 0, .dashboard = false});
    httplib::Client cli("127.0.0.1", srv.port());
    for (const char* path : {"/", "/dashboard", "/api/metrics"}) {
        auto res = cli.Get(path);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 404) << path;
    }
    auto m = cli.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
}

// A metrics path of "/" keeps "/" for the exposition; the page stays at
// /dashboard.
TEST(Prometheus, MetricsAtRootKeepsRoot) {
    percore::Registry reg;
    fill(reg);
    percore::PrometheusServer srv(reg, {.port = 0, .path = "/"});
    httplib::Client cli("127.0.0.1", srv.port());
    auto root = cli.Get("/");
    ASSERT_TRUE(root);
    EXPECT_NE(root->body.find("# TYPE http_requests_total counter"), std::string::npos);
    auto page = cli.Get("/dashboard");
    ASSERT_TRUE(page);
    EXPECT_NE(page->body.find("<canvas"), std::string::npos);
}

}  // namespace
