// Telemetry protocol (malformed, unknown, oversized, too-large replies,
// user commands) and the socket (greeting, mode 0600, clients that hang up).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
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

std::string recv_msg(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return {};
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
    EXPECT_FALSE(std::filesystem::exists(o.path));  // removed at stop
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
    unsetenv("RUNTIME_DIRECTORY");
    std::filesystem::remove_all(dir);
}

}  // namespace
