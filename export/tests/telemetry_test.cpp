// SPDX-License-Identifier: MIT
// Telemetry protocol (malformed, unknown, oversized, too-large replies,
// user commands, malformed series ids) and the socket (greeting, mode 0600,
// clients that hang up, go idle or come past max_clients; its directory).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "percore/export/telemetry.hpp"

namespace {

using nlohmann::json;

struct Fixture {
    percore::Registry reg;
    percore::TelemetryProtocol proto{reg, {}};
    Fixture() {
        reg.counter("pkts_total", "Packets.", {{"port", "0"}})->add(12);
        reg.gauge("queue_depth", "Queue.")->set(-2);
    }
    json ask(std::string_view req) { return json::parse(proto.reply(req)); }
};

TEST(TelemetryProtocol, StandardCommands) {
    Fixture f;
    auto list = f.ask("/");
    ASSERT_TRUE(list["/"].is_array());
    auto cmds = list["/"].get<std::vector<std::string>>();
    EXPECT_TRUE(std::is_sorted(cmds.begin(), cmds.end()));
    for (const char* c : {"/", "/info", "/help", "/percore/list", "/percore/get", "/percore/all", "/percore/reset"})
        EXPECT_NE(std::find(cmds.begin(), cmds.end(), c), cmds.end()) << c;
    auto info = f.ask("/info");
    EXPECT_EQ(info["/info"]["pid"], getpid());
    EXPECT_EQ(info["/info"]["max_output_len"], 16384);
    EXPECT_TRUE(f.ask("/help,/percore/get")["/help"]["/percore/get"].is_string());
    EXPECT_EQ(f.ask("/help"), json({{"/help", nullptr}}));
    EXPECT_EQ(f.ask("/help,/nope"), json({{"/help", nullptr}}));
    auto g = json::parse(f.proto.greeting());
    EXPECT_EQ(g["pid"], getpid());
    EXPECT_TRUE(g["version"].is_string());
}

TEST(TelemetryProtocol, MetricsCommands) {
    Fixture f;
    EXPECT_EQ(f.ask("/percore/list")["/percore/list"]["series"],
              json({"pkts_total{port=\"0\"}", "queue_depth"}));
    auto one = f.ask("/percore/get,pkts_total{port=\"0\"}")["/percore/get"];
    EXPECT_EQ(one["value"], 12);
    EXPECT_EQ(one["type"], "counter");
    EXPECT_EQ(one["labels"]["port"], "0");
    std::int64_t shard_sum = 0;
    for (auto& [k, v] : one["shards"].items()) shard_sum += v.get<std::int64_t>();
    EXPECT_EQ(shard_sum, 12);
    auto all = f.ask("/percore/all")["/percore/all"];
    EXPECT_EQ(all["metrics"]["queue_depth"]["value"], -2);
    EXPECT_TRUE(all["next"].is_null());
    EXPECT_EQ(f.ask("/percore/reset,pkts_total{port=\"0\"}")["/percore/reset"]["cleared"], 12);
    EXPECT_EQ(f.ask("/percore/get,pkts_total{port=\"0\"}")["/percore/get"]["value"], 0);
    EXPECT_EQ(f.ask("/percore/get,missing"), json({{"/percore/get", nullptr}}));
    EXPECT_EQ(f.ask("/percore/all,abc"), json({{"/percore/all", nullptr}}));
}

TEST(TelemetryProtocol, MalformedUnknownOversized) {
    Fixture f;
    EXPECT_EQ(f.ask("/no/such"), json({{"/no/such", nullptr}}));
    EXPECT_EQ(f.ask("info"), json({{"info", nullptr}}));
    EXPECT_EQ(f.ask(""), json({{"", nullptr}}));
    EXPECT_EQ(f.ask("/in fo"), json({{"/in fo", nullptr}}));
    EXPECT_EQ(f.ask("/" + std::string(60, 'a')), json({{"/" + std::string(60, 'a'), nullptr}}));
    auto bin = f.ask(std::string("/\xff\xfe\x00x", 5));  // invalid UTF-8 still gives valid JSON
    EXPECT_TRUE(bin.is_object());
    auto big = f.ask(std::string(2000, '/'));
    EXPECT_TRUE(big["error"].get<std::string>().find("max_input_len") != std::string::npos);
    EXPECT_EQ(f.ask("/info\n")["/info"]["pid"], getpid());  // trailing newline tolerated
}

TEST(TelemetryProtocol, UserCommandsAndReplyLimit) {
    Fixture f;
    f.proto.add_command("/app/echo", "Echoes its parameter.",
                        [](std::string_view p) { return std::optional<std::string>(json(std::string(p)).dump()); });
    f.proto.add_command("/app/huge", "Too big.", [](std::string_view) {
        return std::optional<std::string>(json(std::string(20000, 'x')).dump());
    });
    f.proto.add_command("/app/broken", "Returns bad JSON.", [](std::string_view) { return std::optional<std::string>("{"); });
    f.proto.add_command("/app/throws", "Throws.", [](std::string_view) -> std::optional<std::string> {
        throw std::runtime_error("x");
    });
    EXPECT_THROW(f.proto.add_command("/app/echo", "again", [](std::string_view) { return std::nullopt; }),
                 std::invalid_argument);
    EXPECT_THROW(f.proto.add_command("bad name", "x", [](std::string_view) { return std::nullopt; }),
                 std::invalid_argument);
    EXPECT_EQ(f.ask("/app/echo,a,b")["/app/echo"], "a,b");
    const std::string huge = f.proto.reply("/app/huge");
    EXPECT_LE(huge.size(), 16384u);
    EXPECT_TRUE(json::parse(huge)["/app/huge"]["error"].get<std::string>().find("max_output_len") !=
                std::string::npos);
    EXPECT_EQ(f.ask("/app/broken"), json({{"/app/broken", nullptr}}));
    EXPECT_EQ(f.ask("/app/throws"), json({{"/app/throws", nullptr}}));
}

TEST(TelemetryProtocol, MalformedSeriesIdsAreErrors) {
    Fixture f;
    // {"/percore/get": {"error": "bad series id: ..."}} naming the problem.
    auto error_of = [&](const std::string& id, const char* cmd = "/percore/get") {
        const json r = f.ask(std::string(cmd) + "," + id)[cmd];
        if (!r.is_object() || !r.contains("error")) return "no error: " + r.dump();
        return r["error"].get<std::string>();
    };
    auto says = [](const std::string& error, const char* what) {
        return error.find("bad series id") != std::string::npos && error.find(what) != std::string::npos;
    };
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0"},)"), "after '}'");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0",})"), "trailing comma");
    EXPECT_PRED2(says, error_of(R"(pkts_total{,port="0"})"), "empty label");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0",,a="1"})"), "empty label");
    EXPECT_PRED2(says, error_of(R"(pkts_total{="0"})"), "empty label name");
    EXPECT_PRED2(says, error_of(R"(pkts_total{})"), "empty label set");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0})"), "unterminated");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0\"})"), "unterminated");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0")"), "missing '}'");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port=0})"), "double quotes");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port})"), "expected '='");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0" a="1"})"), "expected ',' or '}'");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="\x"})"), "invalid escape");
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0",port="1"})"), "given twice");
    EXPECT_PRED2(says, error_of(R"({port="0"})"), "no metric name");
    EXPECT_PRED2(says, error_of("pkts total"), "invalid character");
    EXPECT_PRED2(says, error_of(""), "empty series id");
    // A malformed id resets nothing.
    EXPECT_PRED2(says, error_of(R"(pkts_total{port="0",})", "/percore/reset"), "trailing comma");
    EXPECT_EQ(f.ask(R"(/percore/get,pkts_total{port="0"})")["/percore/get"]["value"], 12);
    // Well-formed ids: found, or null when no such series.
    EXPECT_EQ(f.ask(R"(/percore/get,pkts_total{port="1"})"), json({{"/percore/get", nullptr}}));
    EXPECT_EQ(f.ask("/percore/get,queue_depth")["/percore/get"]["value"], -2);
    f.reg.counter("odd_total", "Escaped label values.", {{"path", "a\"b\\c\nd"}, {"x", ""}})->add(3);
    const std::string odd = f.ask("/percore/list")["/percore/list"]["series"][0];
    EXPECT_EQ(odd, R"(odd_total{path="a\"b\\c\nd",x=""})");
    EXPECT_EQ(f.ask("/percore/get," + odd)["/percore/get"]["value"], 3);
}

TEST(TelemetryProtocol, BusyGreetingAndReplies) {
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.max_clients = 3;
    o.idle_timeout = std::chrono::seconds(45);
    percore::TelemetryProtocol proto(reg, o);
    // Greeting-shaped, so dpdk-telemetry.py reads it like any greeting.
    const json g = json::parse(proto.busy_greeting());
    EXPECT_EQ(g["pid"], getpid());
    EXPECT_EQ(g["max_output_len"], 16384);
    EXPECT_TRUE(g["version"].is_string());
    const std::string why = g["error"];
    EXPECT_NE(why.find("too many clients"), std::string::npos) << why;
    EXPECT_NE(why.find("3 connections"), std::string::npos) << why;
    EXPECT_NE(why.find("45 s"), std::string::npos) << why;
    EXPECT_EQ(json::parse(proto.busy_reply("/")), json({{"/", {{"error", why}}}}));
    EXPECT_EQ(json::parse(proto.busy_reply("/percore/get,x{a=\"b\"}\n")), json({{"/percore/get", {{"error", why}}}}));
    EXPECT_TRUE(json::parse(proto.busy_reply(std::string("\xff\0", 2))).is_object());
}

TEST(TelemetryProtocol, AllIsPagedWithinMaxOutputLen) {
    percore::Registry reg;
    for (int i = 0; i < 2000; ++i) reg.counter("many_total", "Many.", {{"id", std::to_string(i)}})->add(i);
    percore::TelemetryProtocol proto(reg, {});
    std::size_t seen = 0, from = 0;
    for (int page = 0; page < 100; ++page) {
        const std::string r = proto.reply("/percore/all," + std::to_string(from));
        ASSERT_LE(r.size(), 16384u);
        auto j = json::parse(r)["/percore/all"];
        ASSERT_TRUE(j.contains("metrics")) << r.substr(0, 200);
        seen += j["metrics"].size();
        if (j["next"].is_null()) break;
        from = j["next"];
    }
    EXPECT_EQ(seen, 2000u);
}

std::string scratch_dir() {
    auto d = std::filesystem::temp_directory_path() / ("percore-tel-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
}

int connect_to(const std::string& path) {
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Generous deadlines: they only bound a failing test, never time a passing one.
constexpr int kDeadlineMs = 30000;

std::string recv_msg(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kDeadlineMs) <= 0) return {};
    std::string buf(65536, '\0');
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
}

TEST(TelemetryServer, SocketGreetingPermissionsAndClients) {
    const std::string dir = scratch_dir();
    percore::Registry reg;
    auto c = reg.counter("live_total", "Live.");
    percore::TelemetryOptions o;
    o.path = dir + "/dpdk/test/dpdk_telemetry.v2";
    std::filesystem::create_directories(dir + "/dpdk/test");
    {
        percore::TelemetryServer srv(reg, o);
        struct stat st{};
        ASSERT_EQ(stat(srv.path().c_str(), &st), 0);
        EXPECT_TRUE(S_ISSOCK(st.st_mode));
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        EXPECT_THROW(percore::TelemetryServer(reg, o), std::system_error);  // path in use

        std::atomic<bool> stop{false};
        std::thread writer([&] {
            while (!stop) c->inc();
        });
        std::vector<std::thread> clients;
        std::atomic<int> good{0};
        for (int t = 0; t < 4; ++t)
            clients.emplace_back([&] {
                for (int i = 0; i < 20; ++i) {
                    const int fd = connect_to(srv.path());
                    if (fd < 0) continue;
                    auto hello = json::parse(recv_msg(fd), nullptr, false);
                    const std::string req = i % 3 == 0 ? std::string(5000, 'z') : "/percore/get,live_total";
                    send(fd, req.data(), req.size(), 0);
                    if (i % 2 == 0) {  // hang up before reading the reply
                        close(fd);
                        continue;
                    }
                    auto r = json::parse(recv_msg(fd), nullptr, false);
                    if (hello.is_object() && hello["pid"] == getpid() && r.is_object()) ++good;
                    close(fd);
                }
            });
        for (auto& t : clients) t.join();
        stop = true;
        writer.join();
        EXPECT_EQ(good.load(), 4 * 10);
        const std::uint64_t before = c->value();
        const int fd = connect_to(srv.path());
        ASSERT_GE(fd, 0);
        recv_msg(fd);
        send(fd, "/percore/get,live_total", 23, 0);
        auto r = json::parse(recv_msg(fd));
        EXPECT_EQ(r["/percore/get"]["value"], before);  // nothing lost or disturbed
        close(fd);
    }
    EXPECT_FALSE(std::filesystem::exists(o.path));             // removed at stop
    EXPECT_TRUE(std::filesystem::exists(dir + "/dpdk/test"));  // not the server's to remove
    std::filesystem::remove_all(dir);
}

// Sends `req` and returns the parsed reply (discarded JSON if none came).
json ask(int fd, std::string_view req) {
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) return json::value_t::discarded;
    return json::parse(recv_msg(fd), nullptr, false);
}

// Whether the server closed `fd`, waiting for it up to the deadline.
bool closed_by_server(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kDeadlineMs) <= 0) return false;
    char b;
    return recv(fd, &b, 1, 0) == 0;
}

// Connects until a client is served (a greeting without "error" and an
// answered /info), up to the deadline; each refused attempt is closed.
bool served_eventually(const std::string& path) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
    while (std::chrono::steady_clock::now() < deadline) {
        const int fd = connect_to(path);
        if (fd >= 0) {
            const json g = json::parse(recv_msg(fd), nullptr, false);
            const bool ok = g.is_object() && !g.contains("error") && ask(fd, "/info")["/info"]["pid"] == getpid();
            close(fd);
            if (ok) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

TEST(TelemetryServer, ClientPastMaxClientsIsToldWhy) {
    const std::string dir = scratch_dir();
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.path = dir + "/busy.sock";
    o.max_clients = 3;
    o.idle_timeout = std::chrono::hours(1);  // the idle clients must keep their slots here
    percore::TelemetryServer srv(reg, o);
    std::vector<int> idle;
    for (std::size_t i = 0; i < o.max_clients; ++i) {
        idle.push_back(connect_to(srv.path()));
        ASSERT_GE(idle.back(), 0);
        const json g = json::parse(recv_msg(idle.back()), nullptr, false);
        ASSERT_TRUE(g.is_object() && g["pid"] == getpid() && !g.contains("error")) << g;
    }
    // One more: a greeting that says why, then that error for each request
    // while it stays; the idle ones keep their slots.
    const int extra = connect_to(srv.path());
    ASSERT_GE(extra, 0);
    const json g = json::parse(recv_msg(extra), nullptr, false);
    ASSERT_TRUE(g.is_object()) << g;
    EXPECT_EQ(g["pid"], getpid());
    EXPECT_TRUE(g["max_output_len"].is_number());
    ASSERT_TRUE(g["error"].is_string()) << g;
    const std::string why = g["error"];
    EXPECT_NE(why.find("too many clients"), std::string::npos) << why;
    EXPECT_EQ(ask(extra, "/"), json({{"/", {{"error", why}}}}));
    EXPECT_EQ(ask(extra, "/info"), json({{"/info", {{"error", why}}}}));
    EXPECT_EQ(ask(idle[0], "/info")["/info"]["pid"], getpid());
    close(extra);
    // A slot frees when its client leaves.
    close(idle.back());
    idle.pop_back();
    EXPECT_TRUE(served_eventually(srv.path()));
    // stop() returns with clients connected, served and refused.
    const int refused = connect_to(srv.path());
    srv.stop();
    EXPECT_TRUE(closed_by_server(idle[0]));
    if (refused >= 0) close(refused);
    for (int fd : idle) close(fd);
    std::filesystem::remove_all(dir);
}

TEST(TelemetryServer, IdleClientsAreDisconnected) {
    const std::string dir = scratch_dir();
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.path = dir + "/idle.sock";
    o.max_clients = 2;
    o.idle_timeout = std::chrono::milliseconds(300);
    percore::TelemetryServer srv(reg, o);
    std::vector<int> idle;
    for (std::size_t i = 0; i < o.max_clients; ++i) {
        idle.push_back(connect_to(srv.path()));
        ASSERT_GE(idle.back(), 0);
        EXPECT_FALSE(recv_msg(idle.back()).empty());
    }
    for (int fd : idle) {
        EXPECT_TRUE(closed_by_server(fd));
        close(fd);
    }
    EXPECT_TRUE(served_eventually(srv.path()));
    std::filesystem::remove_all(dir);
}

TEST(TelemetryServer, StopDoesNotWaitForAClientThatReadsNothing) {
    const std::string dir = scratch_dir();
    percore::Registry reg;
    for (int i = 0; i < 200; ++i) reg.counter("many_total", "Many.", {{"id", std::to_string(i)}})->add(i);
    percore::TelemetryOptions o;
    o.path = dir + "/slow.sock";
    o.idle_timeout = std::chrono::milliseconds(0);  // never: only stop() may end this client
    percore::TelemetryServer srv(reg, o);
    const int fd = connect_to(srv.path());
    ASSERT_GE(fd, 0);
    // Requests until the server, its send buffer full of replies nobody
    // reads, takes no more for a while. (Should it only be slow, the test
    // still passes, it just checks less.)
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
    int stalls = 0;
    while (stalls < 5 && std::chrono::steady_clock::now() < deadline) {
        if (send(fd, "/percore/all", 12, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            stalls = 0;
            continue;
        }
        ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, 100) == 0) ++stalls;
    }
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
        srv.stop();
        stopped = true;
    });
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
    while (!stopped && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(stopped) << "stop() waits for a client that reads nothing";
    close(fd);  // lets a server stuck in send() go, so the test ends either way
    stopper.join();
    std::filesystem::remove_all(dir);
}

TEST(TelemetryServer, ExplicitPathNeedsItsDirectory) {
    const std::string dir = scratch_dir();
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.path = dir + "/not/there/dpdk_telemetry.v2";
    try {
        percore::TelemetryServer srv(reg, o);
        ADD_FAILURE() << "created " << o.path;
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(o.path), std::string::npos) << what;
        EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
    }
    EXPECT_FALSE(std::filesystem::exists(dir + "/not"));
    std::ofstream(dir + "/file") << "x";
    o.path = dir + "/file/dpdk_telemetry.v2";  // its "directory" is a file
    EXPECT_THROW(percore::TelemetryServer(reg, o), std::runtime_error);
    std::filesystem::remove_all(dir);
}

TEST(TelemetryServer, DefaultDirectoryRemovedAtStopIfEmpty) {
    const std::string dir = scratch_dir();
    setenv("RUNTIME_DIRECTORY", dir.c_str(), 1);
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.prefix = "gone";
    {
        percore::TelemetryServer srv(reg, o);
        EXPECT_EQ(srv.path(), dir + "/dpdk/gone/dpdk_telemetry.v2");
        struct stat st{};
        ASSERT_EQ(stat((dir + "/dpdk/gone").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0700u);
    }
    EXPECT_FALSE(std::filesystem::exists(dir + "/dpdk/gone"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/dpdk"));  // may hold other processes' directories
    // Something else was put in it meanwhile: the directory stays.
    o.prefix = "kept";
    {
        percore::TelemetryServer srv(reg, o);
        std::ofstream(dir + "/dpdk/kept/other") << "x";
    }
    EXPECT_TRUE(std::filesystem::exists(dir + "/dpdk/kept/other"));
    EXPECT_FALSE(std::filesystem::exists(dir + "/dpdk/kept/dpdk_telemetry.v2"));
    unsetenv("RUNTIME_DIRECTORY");
    std::filesystem::remove_all(dir);
}

TEST(TelemetryServer, StaleSocketReplacedAndRuntimeDirRule) {
    const std::string dir = scratch_dir();
    setenv("RUNTIME_DIRECTORY", dir.c_str(), 1);
    EXPECT_EQ(percore::telemetry_socket_path("p"), dir + "/dpdk/p/dpdk_telemetry.v2");
    percore::Registry reg;
    percore::TelemetryOptions o;
    o.prefix = "stale";
    std::filesystem::create_directories(dir + "/dpdk/stale");
    {
        // A socket file nobody listens on, as a crashed process leaves it.
        const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        const std::string p = dir + "/dpdk/stale/dpdk_telemetry.v2";
        p.copy(a.sun_path, p.size());
        ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        close(fd);
    }
    percore::TelemetryServer srv(reg, o);
    EXPECT_EQ(srv.path(), dir + "/dpdk/stale/dpdk_telemetry.v2");
    const int fd = connect_to(srv.path());
    EXPECT_GE(fd, 0);
    close(fd);
    srv.stop();
    EXPECT_TRUE(std::filesystem::exists(dir + "/dpdk/stale"));  // it was there before the server
    unsetenv("RUNTIME_DIRECTORY");
    std::filesystem::remove_all(dir);
}

}  // namespace
