// SPDX-License-Identifier: MIT
// percore-top: a live view of a process's percore metrics over its
// telemetry socket (the DPDK-telemetry-v2 protocol of percore/export/telemetry.hpp).
// On a terminal it redraws a table every interval with values, rates and,
// for histograms, p50/p99/max; keys n/v/r sort by name/value/rate, q quits.
// Otherwise (or with --once) it prints one snapshot as text or JSON, with
// rates taken over one interval.
#include <CLI/CLI.hpp>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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
    json value;           // as the process sent it: u64 counters stay exact
    double rate = 0;
    bool has_rate = false;
    json p50, p99, max;
};

// A number exactly as it was sent: integers in full (never %g), floats in
// their shortest round-trip form.
std::string show(const json& v) {
    char b[40];
    if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
    if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
    if (v.is_number_float()) {
        const auto r = std::to_chars(b, b + sizeof b, v.get<double>());
        return std::string(b, r.ptr);
    }
    return v.is_null() ? "" : v.dump();
}

// The name a process runs under (/proc/PID/comm), for --list.
std::string process_name(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(f, name);
    return name.empty() ? "?" : name;
}

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

json field(const json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k] : json(nullptr); }

// The difference of two counter readings, exact while they are integers.
double delta(const json& now, const json& before) {
    if (now.is_number_unsigned() && before.is_number_unsigned()) {
        const auto a = now.get<std::uint64_t>(), b = before.get<std::uint64_t>();
        return a >= b ? static_cast<double>(a - b) : 0.0;
    }
    return now.is_number() && before.is_number() ? std::max(0.0, now.get<double>() - before.get<double>()) : 0.0;
}

std::vector<Row> rows_of(const std::map<std::string, json>& now, const std::map<std::string, json>* before,
                         double seconds) {
    std::vector<Row> rows;
    for (const auto& [id, m] : now) {
        Row r;
        r.id = id;
        r.type = m.value("type", "");
        const bool hist = r.type == "histogram";
        const char* key = hist ? "count" : "value";
        r.value = field(m, key);
        if (hist) {
            r.p50 = field(m, "p50");
            r.p99 = field(m, "p99");
            r.max = field(m, "max");
        }
        if (before && seconds > 0 && r.type != "gauge") {
            auto it = before->find(id);
            if (it != before->end()) {
                r.rate = delta(r.value, field(it->second, key)) / seconds;
                r.has_rate = true;
            }
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

void sort_rows(std::vector<Row>& rows, char key) {
    auto as_double = [](const json& v) { return v.is_number() ? v.get<double>() : 0.0; };
    std::stable_sort(rows.begin(), rows.end(), [key, as_double](const Row& a, const Row& b) {
        if (a.value.is_number_unsigned() && b.value.is_number_unsigned() && key == 'v')
            return a.value.get<std::uint64_t>() > b.value.get<std::uint64_t>();
        if (key == 'v') return as_double(a.value) > as_double(b.value);
        if (key == 'r') return a.rate > b.rate;
        return a.id < b.id;
    });
}

// Shortens a name to w columns by cutting its middle, where label sets are
// long and least telling: "http_requests_total{method=\"get\",...=\"200\"}".
std::string fit(const std::string& s, std::size_t w) {
    if (s.size() <= w) return s;
    if (w <= 3) return s.substr(0, w);
    const std::size_t head = (w - 1) * 2 / 3, tail = w - 1 - head;  // the name matters most
    return s.substr(0, head) + "~" + s.substr(s.size() - tail);
}

// The table, fitted to `width` columns: the metric column takes what the
// fixed columns leave, values are never cut (the column widens instead).
std::string table(const std::vector<Row>& rows, std::size_t width) {
    struct Cells {
        std::string id, type, value, rate, p50, p99, max;
    };
    std::vector<Cells> cells;
    std::size_t vw = 5, rw = 6, pw = 3;
    for (const auto& r : rows) {
        Cells c{r.id, r.type, show(r.value), "-", "", "", ""};
        if (r.has_rate) {
            char b[32];
            std::snprintf(b, sizeof b, "%.1f", r.rate);
            c.rate = b;
        }
        if (r.type == "histogram") {
            c.p50 = show(r.p50);
            c.p99 = show(r.p99);
            c.max = show(r.max);
        }
        vw = std::max(vw, c.value.size());
        rw = std::max(rw, c.rate.size());
        pw = std::max({pw, c.p50.size(), c.p99.size(), c.max.size()});
        cells.push_back(std::move(c));
    }
    // The metric column gets what the others leave, at least 24 columns;
    // on a narrow terminal the percentile columns go first (MAX, P99, P50),
    // and only then is the name cut shorter.
    std::size_t shown = 3;
    auto fixed = [&] { return 10 + vw + 1 + rw + shown * (1 + pw); };
    while (shown > 0 && fixed() + 1 + 24 > width) --shown;
    const std::size_t idw = width > fixed() + 1 + 8 ? width - fixed() - 1 : 8;
    std::string out;
    auto line = [&](const std::string& id, const std::string& type, const std::string& v, const std::string& rate,
                    const std::string& a, const std::string& b, const std::string& c) {
        char buf[1024];
        std::snprintf(buf, sizeof buf, "%-*s %-9s %*s %*s", static_cast<int>(idw), fit(id, idw).c_str(), type.c_str(),
                      static_cast<int>(vw), v.c_str(), static_cast<int>(rw), rate.c_str());
        std::string l = buf;
        for (std::size_t i = 0; i < shown; ++i) {
            std::snprintf(buf, sizeof buf, " %*s", static_cast<int>(pw), (i == 0 ? a : i == 1 ? b : c).c_str());
            l += buf;
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        out += l + "\n";
    };
    line("METRIC", "TYPE", "VALUE", "RATE/s", "P50", "P99", "MAX");
    for (const auto& c : cells) line(c.id, c.type, c.value, c.rate, c.p50, c.p99, c.max);
    return out;
}

// The terminal's width, or `fallback` when stdout is not one.
std::size_t terminal_width(std::size_t fallback) {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    if (const char* c = std::getenv("COLUMNS")) {
        const long n = std::strtol(c, nullptr, 10);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    return fallback;
}

// The live view puts the terminal in raw mode; every way out puts it back:
// normal exit, q, Ctrl-C, SIGTERM, SIGHUP, SIGQUIT.
termios g_saved_termios{};
volatile sig_atomic_t g_raw = 0;

void restore_terminal() {
    if (g_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);  // async-signal-safe
        g_raw = 0;
        const char show_cursor[] = "\x1b[?25h";
        (void)!write(STDOUT_FILENO, show_cursor, sizeof show_cursor - 1);
    }
}

void on_fatal_signal(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);  // then die of the same signal, as the shell expects
    raise(sig);
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
        if (c.empty()) {
            std::printf("no telemetry sockets under %s/dpdk\n", percore::telemetry_runtime_dir().c_str());
            return 0;
        }
        std::printf("%-8s %-16s %-24s %s\n", "PID", "PROCESS", "VERSION", "SOCKET");
        for (const auto& [p, g] : c)
            std::printf("%-8d %-16s %-24s %s\n", g.value("pid", 0), process_name(g.value("pid", 0)).c_str(),
                        g.value("version", "?").c_str(), p.c_str());
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
    if (conn.greeting().contains("error")) {  // e.g. every client slot is taken
        std::fprintf(stderr, "percore-top: %s: %s\n", path.c_str(), conn.greeting()["error"].dump().c_str());
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
        else std::fputs(table(rows, terminal_width(160)).c_str(), stdout);
        return 0;
    }

    tcgetattr(STDIN_FILENO, &g_saved_termios);
    termios raw = g_saved_termios;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaction(sig, &sa, nullptr);
    std::atexit(restore_terminal);
    g_raw = 1;
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
        screen += table(rows, terminal_width(120));
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
    restore_terminal();
    return rc;
}
