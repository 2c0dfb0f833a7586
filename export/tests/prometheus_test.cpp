// Prometheus rendering (both formats, strict checks, escaping) and the HTTP
// endpoint under concurrent scrapes and clients that hang up mid-reply.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "exposition_check.hpp"
#include "percore/export/prometheus.hpp"

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

TEST(Prometheus, BindFailureIsAnError) {
    percore::Registry reg;
    percore::PrometheusServer a(reg, {.port = 0});
    EXPECT_THROW(percore::PrometheusServer(reg, {.port = a.port()}), std::runtime_error);
}

}  // namespace
