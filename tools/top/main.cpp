// percore-top: a live view of a process's percore metrics over its
// telemetry socket (the DPDK-telemetry-v2 protocol of percore/export/telemetry.hpp).
// On a terminal it redraws a table every interval with values, rates and,
// for histograms, p50/p99/max; keys n/v/r sort by name/value/rate, q quits.
// Otherwise (or with --once) it prints one snapshot as text or JSON, with
// rates taken over one interval.
#include <CLI/CLI.hpp>
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "percore/export/telemetry.hpp"

namespace {

using nlohmann::json;

class Connection {
public:
    explicit Connection(const std::string& path) {
        fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (path.size() >= sizeof a.sun_path) return;
        path.copy(a.sun_path, path.size());
        if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
        if (auto g = receive()) greeting_ = json::parse(*g, nullptr, false);
    }
    ~Connection() {
        if (fd_ >= 0) close(fd_);
    }
    bool ok() const { return greeting_.is_object(); }
    const json& greeting() const { return greeting_; }

    std::optional<json> ask(const std::string& cmd) {
        if (send(fd_, cmd.data(), cmd.size(), MSG_NOSIGNAL) < 0) return std::nullopt;
        auto r = receive();
        if (!r) return std::nullopt;
        json j = json::parse(*r, nullptr, false);
        if (!j.is_object()) return std::nullopt;
        const auto comma = cmd.find(',');
        const std::string key = cmd.substr(0, comma);
        if (!j.contains(key)) return std::nullopt;
        return j[key];
    }

private:
    std::optional<std::string> receive() {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0) return std::nullopt;
        std::string buf(1 << 20, '\0');
        const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }
    int fd_ = -1;
    json greeting_;
};

struct Row {
    std::string id, type;
    double value = 0, rate = 0;
    bool has_rate = false;
    double p50 = 0, p99 = 0, max = 0;
};

// Every socket under <rundir>/dpdk/*/ with its greeting.
std::vector<std::pair<std::string, json>> candidates() {
    std::vector<std::pair<std::string, json>> out;
    const std::string base = percore::telemetry_runtime_dir() + "/dpdk";
    DIR* d = opendir(base.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        const std::string path = base + "/" + name + "/dpdk_telemetry.v2";
        Connection c(path);
        if (c.ok()) out.emplace_back(path, c.greeting());
    }
    closedir(d);
    return out;
}

// Reads every series, following /percore/all's pages.
std::optional<std::map<std::string, json>> fetch(Connection& c) {
    std::map<std::string, json> out;
    std::size_t from = 0;
    for (int page = 0; page < 100000; ++page) {
        auto r = c.ask("/percore/all," + std::to_string(from));
        if (!r || !r->is_object() || !r->contains("metrics")) return std::nullopt;
        for (auto& [k, v] : (*r)["metrics"].items()) out[k] = v;
        if ((*r)["next"].is_null()) break;
        from = (*r)["next"].get<std::size_t>();
    }
    return out;
}

double num(const json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0; }

std::vector<Row> rows_of(const std::map<std::string, json>& now, const std::map<std::string, json>* before,
                         double seconds) {
    std::vector<Row> rows;
    for (const auto& [id, m] : now) {
        Row r;
        r.id = id;
        r.type = m.value("type", "");
        const bool hist = r.type == "histogram";
        r.value = hist ? num(m, "count") : num(m, "value");
        if (hist) {
            r.p50 = num(m, "p50");
            r.p99 = num(m, "p99");
            r.max = num(m, "max");
        }
        if (before && seconds > 0 && r.type != "gauge") {
            auto it = before->find(id);
            if (it != before->end()) {
                const double prev = hist ? num(it->second, "count") : num(it->second, "value");
                r.rate = std::max(0.0, (r.value - prev) / seconds);
                r.has_rate = true;
            }
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

void sort_rows(std::vector<Row>& rows, char key) {
    std::stable_sort(rows.begin(), rows.end(), [key](const Row& a, const Row& b) {
        if (key == 'v') return a.value > b.value;
        if (key == 'r') return a.rate > b.rate;
        return a.id < b.id;
    });
}

std::string table(const std::vector<Row>& rows, std::size_t width) {
    std::string out;
    char line[512];
    const int idw = static_cast<int>(std::clamp<std::size_t>(width > 80 ? width - 80 : 30, 20, 120));
    std::snprintf(line, sizeof line, "%-*s %-9s %16s %12s %11s %11s %11s\n", idw, "METRIC", "TYPE", "VALUE", "RATE/s",
                  "P50", "P99", "MAX");
    out += line;
    for (const auto& r : rows) {
        std::string id = r.id.size() > static_cast<std::size_t>(idw) ? r.id.substr(0, idw - 1) + "~" : r.id;
        char rate[32] = "-", p50[32] = "", p99[32] = "", mx[32] = "";
        if (r.has_rate) std::snprintf(rate, sizeof rate, "%.1f", r.rate);
        if (r.type == "histogram") {
            std::snprintf(p50, sizeof p50, "%.4g", r.p50);
            std::snprintf(p99, sizeof p99, "%.4g", r.p99);
            std::snprintf(mx, sizeof mx, "%.4g", r.max);
        }
        std::snprintf(line, sizeof line, "%-*s %-9s %16.10g %12s %11s %11s %11s\n", idw, id.c_str(), r.type.c_str(),
                      r.value, rate, p50, p99, mx);
        out += line;
    }
    return out;
}

json rows_json(const std::vector<Row>& rows) {
    json out = json::array();
    for (const auto& r : rows) {
        json j = {{"metric", r.id}, {"type", r.type}, {"value", r.value}};
        j["rate"] = r.has_rate ? json(r.rate) : json(nullptr);
        if (r.type == "histogram") {
            j["p50"] = r.p50;
            j["p99"] = r.p99;
            j["max"] = r.max;
        }
        out.push_back(j);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"percore-top: live metrics of a process using percore, over its telemetry socket"};
    int pid = 0;
    std::string path, sort = "name";
    bool list = false, once = false, as_json = false;
    double interval = 1.0;
    int iterations = 0;
    app.add_option("-p,--pid", pid, "attach to the percore process with this pid");
    app.add_option("-s,--socket", path, "attach to this telemetry socket");
    app.add_flag("-l,--list", list, "list processes with a telemetry socket and exit");
    app.add_option("--sort", sort, "sort by name, value or rate")->check(CLI::IsMember({"name", "value", "rate"}));
    app.add_flag("-1,--once", once, "print one snapshot and exit (default when stdout is not a terminal)");
    app.add_flag("-j,--json", as_json, "with --once: print JSON");
    app.add_option("-i,--interval", interval, "seconds between refreshes, and the rate window")
        ->check(CLI::Range(0.05, 3600.0));
    app.add_option("-n,--iterations", iterations, "stop after this many refreshes (0: until q)");
    CLI11_PARSE(app, argc, argv);

    if (list) {
        const auto c = candidates();
        if (c.empty()) std::printf("no telemetry sockets under %s/dpdk\n", percore::telemetry_runtime_dir().c_str());
        for (const auto& [p, g] : c)
            std::printf("%-8d %-24s %s\n", g.value("pid", 0), g.value("version", "?").c_str(), p.c_str());
        return 0;
    }
    if (path.empty() && pid == 0) {
        const auto c = candidates();
        if (c.size() != 1) {
            std::fprintf(stderr, "percore-top: %s; use --pid, --socket or --list\n",
                         c.empty() ? "no telemetry socket found" : "several processes found");
            return 2;
        }
        path = c.front().first;
    } else if (path.empty()) {
        path = percore::telemetry_socket_path("percore-" + std::to_string(pid));
        for (const auto& [p, g] : candidates())  // a custom prefix: match the greeting's pid
            if (g.value("pid", 0) == pid) path = p;
    }
    Connection conn(path);
    if (!conn.ok()) {
        std::fprintf(stderr, "percore-top: cannot connect to %s\n", path.c_str());
        return 1;
    }
    const auto wait = std::chrono::duration<double>(interval);
    char key = sort[0];
    const bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) && !once;

    if (!tty) {
        auto a = fetch(conn);
        const auto t0 = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(wait);
        auto b = fetch(conn);
        if (!a || !b) {
            std::fprintf(stderr, "percore-top: the process stopped answering\n");
            return 1;
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        auto rows = rows_of(*b, &*a, secs);
        sort_rows(rows, key);
        if (as_json) std::printf("%s\n", rows_json(rows).dump(2).c_str());
        else std::fputs(table(rows, 160).c_str(), stdout);
        return 0;
    }

    termios saved{};
    tcgetattr(STDIN_FILENO, &saved);
    termios raw = saved;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    std::optional<std::map<std::string, json>> prev;
    auto prev_t = std::chrono::steady_clock::now();
    int rc = 0;
    for (int it = 0; iterations == 0 || it < iterations; ++it) {
        auto now = fetch(conn);
        const auto t = std::chrono::steady_clock::now();
        if (!now) {
            rc = 1;
            std::fprintf(stderr, "percore-top: the process stopped answering\n");
            break;
        }
        auto rows = rows_of(*now, prev ? &*prev : nullptr, std::chrono::duration<double>(t - prev_t).count());
        sort_rows(rows, key);
        std::string screen = "\x1b[H\x1b[2J";
        char head[256];
        std::snprintf(head, sizeof head, "percore-top  pid %d  %zu series  sort: %s  (n/v/r sort, q quit)\n\n",
                      conn.greeting().value("pid", 0), rows.size(), key == 'v' ? "value" : key == 'r' ? "rate" : "name");
        screen += head;
        screen += table(rows, 160);
        std::fputs(screen.c_str(), stdout);
        std::fflush(stdout);
        prev = std::move(now);
        prev_t = t;
        pollfd p{STDIN_FILENO, POLLIN, 0};
        const auto deadline = t + wait;
        bool quit = false;
        while (!quit && std::chrono::steady_clock::now() < deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) > 0) {
                char c = 0;
                if (read(STDIN_FILENO, &c, 1) != 1 || c == 'q') quit = true;
                else if (c == 'n' || c == 'v' || c == 'r') { key = c; break; }
            }
        }
        if (quit) break;
    }
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    return rc;
}
