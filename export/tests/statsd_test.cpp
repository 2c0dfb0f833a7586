// SPDX-License-Identifier: MIT
// statsd client against a UDP socket in the test: line format, packing
// limits, deltas, negative gauges, tags, and errors that must not be fatal.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "percore/export/statsd.hpp"

namespace {

struct Receiver {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    std::uint16_t port = 0;
    Receiver() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int big = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~Receiver() { close(fd); }
    // Every datagram that arrives within 200 ms of the previous one.
    std::vector<std::string> drain() {
        std::vector<std::string> out;
        char buf[65536];
        pollfd p{fd, POLLIN, 0};
        while (poll(&p, 1, 200) > 0) {
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n < 0) break;
            out.emplace_back(buf, static_cast<std::size_t>(n));
        }
        return out;
    }
};

std::vector<std::string> lines_of(const std::vector<std::string>& dgrams) {
    std::vector<std::string> out;
    for (const auto& d : dgrams) {
        std::size_t pos = 0;
        while (pos <= d.size()) {
            auto nl = d.find('\n', pos);
            if (nl == std::string::npos) nl = d.size();
            out.push_back(d.substr(pos, nl - pos));
            pos = nl + 1;
        }
    }
    return out;
}

percore::StatsdOptions opts(std::uint16_t port, std::vector<std::string>* errors = nullptr) {
    percore::StatsdOptions o;
    o.port = port;
    o.prefix = "app";
    if (errors) o.on_error = [errors](std::string_view m) { errors->emplace_back(m); };
    else o.on_error = [](std::string_view) {};
    return o;
}

TEST(Statsd, NameRule) {
    EXPECT_EQ(percore::statsd_name("a.b-c_D9"), "a.b-c_D9");
    EXPECT_EQ(percore::statsd_name("a:b|c@d#e f\n"), "a_b_c_d_e_f_");
}

TEST(Statsd, RegistryPushSendsDeltasGaugesAndLabels) {
    Receiver rx;
    percore::Registry reg;
    auto get = reg.counter("requests_total", "R.", {{"method", "get"}});
    auto depth = reg.gauge("queue_depth", "Q.");
    get->add(5);
    depth->set(-3);
    percore::StatsdClient c(opts(rx.port));
    c.push(reg);
    auto l = lines_of(rx.drain());
    EXPECT_EQ(l, (std::vector<std::string>{"app.queue_depth:0|g", "app.queue_depth:-3|g", "app.requests_total.get:5|c"}));
    get->add(2);
    depth->set(4);
    c.push(reg);
    l = lines_of(rx.drain());
    EXPECT_EQ(l, (std::vector<std::string>{"app.queue_depth:4|g", "app.requests_total.get:2|c"}));
    c.push(reg);  // no change: counter skipped, gauge repeated
    EXPECT_EQ(lines_of(rx.drain()), std::vector<std::string>{"app.queue_depth:4|g"});
    get->reset();
    get->add(1);
    c.push(reg);  // after a reset: the value since the reset
    EXPECT_EQ(lines_of(rx.drain()), (std::vector<std::string>{"app.queue_depth:4|g", "app.requests_total.get:1|c"}));
    EXPECT_EQ(c.stats().send_errors, 0u);
}

TEST(Statsd, TagsSampleRateAndTimers) {
    Receiver rx;
    auto o = opts(rx.port);
    o.tags = true;
    percore::StatsdClient c(o);
    c.count("hits", 3, 1.0, {{"route", "a:b,c"}});
    c.timing("lat", 1.5, 1.0, {{"x", "y"}});
    c.count("sampled", 1, 0.999999);  // kept with near certainty; carries its rate
    c.flush();
    auto l = lines_of(rx.drain());
    ASSERT_GE(l.size(), 2u);
    EXPECT_EQ(l[0], "app.hits:3|c|#route:a_b_c");
    EXPECT_EQ(l[1], "app.lat:1.5|ms|#x:y");
    if (l.size() == 3) {
        EXPECT_EQ(l[2], "app.sampled:1|c|@0.999999");
    }
}

TEST(Statsd, PacksWithinLimitNeverSplitsAndReportsOversize) {
    Receiver rx;
    std::vector<std::string> errors;
    auto o = opts(rx.port, &errors);
    o.max_datagram = 100;
    percore::StatsdClient c(o);
    for (int i = 0; i < 50; ++i) c.count("metric_" + std::to_string(i), i + 1);
    c.count(std::string(200, 'x'), 1);  // can never fit
    c.flush();
    const auto d = rx.drain();
    std::size_t lines = 0;
    for (const auto& g : d) EXPECT_LE(g.size(), 100u);
    for (const auto& line : lines_of(d)) {
        EXPECT_EQ(line.rfind("app.metric_", 0), 0u) << line;
        EXPECT_TRUE(line.ends_with("|c")) << line;
        ++lines;
    }
    EXPECT_EQ(lines, 50u);
    const auto st = c.stats();
    EXPECT_EQ(st.lines, 50u);
    EXPECT_EQ(st.datagrams, d.size());
    EXPECT_EQ(st.oversize_lines, 1u);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("exceeds max_datagram"), std::string::npos);
}

TEST(Statsd, HistogramsPushedAggregated) {
    Receiver rx;
    percore::Registry reg;
    auto h = reg.histogram("op_duration_seconds", "Op time.", {}, percore::HistogramLayout(2, 1'000'000),
                           {.records = percore::Unit::milliseconds, .bounds = {1, 10, 100, 1000}});
    for (int i = 0; i < 99; ++i) h->record(5);
    h->record(500);
    percore::StatsdClient c(opts(rx.port));
    c.push(reg);
    auto l = lines_of(rx.drain());
    EXPECT_EQ(l, (std::vector<std::string>{"app.op_duration_seconds.count:100|c", "app.op_duration_seconds.sum:0.995|c",
                                           "app.op_duration_seconds.p50:0.005|g", "app.op_duration_seconds.p99:0.005|g",
                                           "app.op_duration_seconds.max:0.5|g"}));
    h->record(50);
    c.push(reg);  // only the interval's observation
    l = lines_of(rx.drain());
    ASSERT_EQ(l.size(), 5u);
    EXPECT_EQ(l[0], "app.op_duration_seconds.count:1|c");
    EXPECT_EQ(l[2], "app.op_duration_seconds.p50:0.05|g");  // the interval alone, at full resolution
}

TEST(Statsd, HistogramIntervalsComeFromCoreSnapshots) {
    Receiver rx;
    percore::Registry reg;
    auto h = reg.histogram("job_duration_seconds", "Job time.", {}, percore::HistogramLayout());
    h->record(std::uint64_t{1895306531});
    percore::StatsdClient c(opts(rx.port));
    c.push(reg);  // shortest round-trip figures of exactly scaled integers
    EXPECT_EQ(lines_of(rx.drain()),
              (std::vector<std::string>{"app.job_duration_seconds.count:1|c",
                                        "app.job_duration_seconds.sum:1.895306531|c",
                                        "app.job_duration_seconds.p50:1.895306531|g",
                                        "app.job_duration_seconds.p99:1.895306531|g",
                                        "app.job_duration_seconds.max:1.895306531|g"}));
    c.push(reg);  // nothing recorded since
    EXPECT_TRUE(rx.drain().empty());
    h->record(std::uint64_t{1000});
    h->record(std::uint64_t{1000});
    c.push(reg);  // the interval alone; its max is its top bucket's upper edge (1000..1003)
    EXPECT_EQ(lines_of(rx.drain()),
              (std::vector<std::string>{"app.job_duration_seconds.count:2|c", "app.job_duration_seconds.sum:2e-06|c",
                                        "app.job_duration_seconds.p50:1e-06|g",
                                        "app.job_duration_seconds.p99:1.003e-06|g",
                                        "app.job_duration_seconds.max:1.003e-06|g"}));
    // Registered again: a new histogram, pushed whole.
    reg.remove("job_duration_seconds", {});
    reg.histogram("job_duration_seconds", "Job time.", {}, percore::HistogramLayout())
        ->record(std::uint64_t{5});
    c.push(reg);
    const auto l = lines_of(rx.drain());
    ASSERT_EQ(l.size(), 5u);
    EXPECT_EQ(l[0], "app.job_duration_seconds.count:1|c");
    EXPECT_EQ(l[1], "app.job_duration_seconds.sum:5e-09|c");
}

TEST(Statsd, CallbackHistogramsSendCountAndSum) {
    Receiver rx;
    percore::Registry reg;
    std::uint64_t n = 3;
    reg.add_histogram("cb_duration_seconds", "From a callback.", {}, [&] {
        percore::HistogramData d;
        d.count = n;
        d.sum = 0.75 * static_cast<double>(n);
        return d;
    });
    percore::StatsdClient c(opts(rx.port));
    c.push(reg);
    EXPECT_EQ(lines_of(rx.drain()),
              (std::vector<std::string>{"app.cb_duration_seconds.count:3|c", "app.cb_duration_seconds.sum:2.25|c"}));
    n = 5;
    c.push(reg);
    EXPECT_EQ(lines_of(rx.drain()),
              (std::vector<std::string>{"app.cb_duration_seconds.count:2|c", "app.cb_duration_seconds.sum:1.5|c"}));
}

TEST(Statsd, GaugesStatsdCannotParseAreSentAsZero) {
    Receiver rx;
    percore::StatsdClient c(opts(rx.port));
    c.gauge("neg_zero", -0.0);  // "-0" would be read as a change of 0
    c.gauge("nan", std::numeric_limits<double>::quiet_NaN());
    c.gauge("small", -2.5e-7);
    c.flush();
    EXPECT_EQ(lines_of(rx.drain()), (std::vector<std::string>{"app.neg_zero:0|g", "app.nan:0|g", "app.small:0|g",
                                                              "app.small:-2.5e-07|g"}));
}

TEST(Statsd, UnreachableAndUnresolvableAreCountedNotFatal) {
    std::uint16_t closed;
    {
        Receiver gone;  // take a free port, then close it
        closed = gone.port;
    }
    std::vector<std::string> errors;
    percore::Registry reg;
    reg.counter("x_total", "X.")->inc();
    reg.gauge("y_level", "Y.")->set(1);  // gauges are sent on every push
    {
        percore::StatsdClient c(opts(closed, &errors));
        for (int i = 0; i < 5; ++i) {
            c.count("a", 1);
            c.flush();
        }
        EXPECT_GT(c.stats().send_errors, 0u);  // ICMP refusals of earlier datagrams
    }
    EXPECT_FALSE(errors.empty());
    errors.clear();
    auto o = opts(8125, &errors);
    o.host = "no-such-host.invalid";
    o.interval = std::chrono::milliseconds(10);
    percore::StatsdReporter rep(reg, o);
    // Wait for two interval pushes (each a failed lookup), however slow the
    // resolver or the machine; the deadline only turns a hang into a failure.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (rep.pushes() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rep.stop();
    EXPECT_GE(rep.pushes(), 3u);  // >= 2 on the interval, plus the one at stop
    EXPECT_GE(rep.stats().resolve_errors, 2u);
    EXPECT_EQ(rep.stats().lines, 0u);
    ASSERT_FALSE(errors.empty());
    EXPECT_NE(errors[0].find("no-such-host.invalid"), std::string::npos);
}

TEST(Statsd, ReporterPushesOnceMoreAtShutdown) {
    Receiver rx;
    percore::Registry reg;
    auto c = reg.counter("final_total", "F.");
    auto o = opts(rx.port);
    o.interval = std::chrono::hours(1);
    {
        percore::StatsdReporter rep(reg, o);
        c->add(9);
    }
    EXPECT_EQ(lines_of(rx.drain()), std::vector<std::string>{"app.final_total:9|c"});
}

TEST(Statsd, ConstructionRejectsOptionsThatCannotWork) {
    percore::Registry reg;
    auto message = [](auto&& make) -> std::string {
        try {
            make();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(no exception)";
    };
    auto o = opts(8125);
    o.host = "";
    const auto client = message([&] { percore::StatsdClient c(o); });
    EXPECT_NE(client.find("host is empty"), std::string::npos) << client;
    const auto reporter = message([&] { percore::StatsdReporter r(reg, o); });
    EXPECT_NE(reporter.find("host is empty"), std::string::npos) << reporter;
    EXPECT_NE(reporter.find("StatsdReporter"), std::string::npos) << reporter;
    for (auto interval : {std::chrono::milliseconds(0), std::chrono::milliseconds(-5)}) {
        auto p = opts(8125);
        p.interval = interval;
        const auto m = message([&] { percore::StatsdReporter r(reg, p); });
        EXPECT_NE(m.find("interval is " + std::to_string(interval.count()) + " ms"), std::string::npos) << m;
        EXPECT_NE(m.find("must be positive"), std::string::npos) << m;
        EXPECT_NO_THROW(percore::StatsdClient c(p));  // the client has no interval
    }
}

TEST(Statsd, ConstantLabelsAreTagsOrSegments) {
    Receiver rx;
    percore::Registry reg(percore::RegistryOptions{.const_labels = {{"instance_role", "edge"}}});
    reg.counter("hits_total", "H.", {{"route", "a"}})->add(2);
    auto o = opts(rx.port);
    o.tags = true;
    percore::StatsdClient tagged(o);
    tagged.push(reg);
    EXPECT_EQ(lines_of(rx.drain()), std::vector<std::string>{"app.hits_total:2|c|#instance_role:edge,route:a"});
    percore::StatsdClient plain(opts(rx.port));
    plain.push(reg);
    EXPECT_EQ(lines_of(rx.drain()), std::vector<std::string>{"app.hits_total.edge.a:2|c"});
}

}  // namespace
