// SPDX-License-Identifier: MIT
// The telemetry protocol: request parsing, the built-in commands, JSON
// replies with their size limit. No sockets here, so fuzzers can drive it.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "metrics_json.hpp"
#include "percore/export/telemetry.hpp"

namespace percore {
namespace {

using nlohmann::json;
using detail::dump;
using detail::entry_json;
using detail::value_json;

constexpr std::size_t kMaxCmdLen = 56;  // DPDK's MAX_CMD_LEN

bool valid_command(std::string_view cmd) {
    if (cmd.empty() || cmd.size() > kMaxCmdLen || cmd[0] != '/') return false;
    return std::all_of(cmd.begin(), cmd.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/';
    });
}

std::optional<std::size_t> parse_offset(std::string_view p) {
    if (p.empty()) return 0;
    std::size_t v = 0;
    auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (r.ec != std::errc() || r.ptr != p.data() + p.size()) return std::nullopt;
    return v;
}

// Why `id` is not a series id in the form series_id() writes (`name` or
// `name{label="value",...}`, values escaping only \\, \" and \n), or "" if it
// is one. The registry's lookup is lenient (it takes `name{a="b",}`); checking
// here tells a client what to fix instead of answering null.
std::string series_id_error(std::string_view id) {
    const std::size_t n = id.size();
    auto quoted = [](std::string_view label) {  // label names are [A-Za-z0-9_], safe to echo; long ones cut
        std::string q(1, '"');
        q.append(label.substr(0, 64)).append(label.size() > 64 ? "...\"" : "\"");
        return q;
    };
    auto at = [](std::size_t i, const std::string& what) { return what + " at byte " + std::to_string(i); };
    auto name_char = [](char c, bool first, bool colon) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
               (!first && c >= '0' && c <= '9');
    };
    if (n == 0) return "empty series id";
    std::size_t i = 0;
    for (; i < n && id[i] != '{'; ++i)
        if (!name_char(id[i], i == 0, true)) return at(i, "invalid character in the metric name");
    if (i == 0) return at(0, "no metric name before '{'");
    if (i == n) return "";
    if (++i < n && id[i] == '}') return at(i, "empty label set \"{}\" (write the name alone)");
    std::vector<std::string_view> seen;
    for (;;) {
        const std::size_t key = i;
        while (i < n && name_char(id[i], i == key, false)) ++i;
        const std::string_view label = id.substr(key, i - key);
        if (label.empty()) {
            if (i == n) return "missing '}' at the end";
            if (id[i] == ',') return at(i, "empty label before ','");
            if (id[i] == '=') return at(i, "empty label name before '='");
            return at(i, "invalid character in a label name");
        }
        if (i == n || id[i] != '=') return at(i, "expected '=' after label " + quoted(label));
        if (std::find(seen.begin(), seen.end(), label) != seen.end()) return "label " + quoted(label) + " given twice";
        seen.push_back(label);
        if (++i == n || id[i] != '"') return at(i, "the value of label " + quoted(label) + " must be in double quotes");
        for (++i; i < n && id[i] != '"'; ++i)
            if (id[i] == '\\' && (++i == n || (id[i] != '\\' && id[i] != '"' && id[i] != 'n')))
                return at(i - 1, "invalid escape in the value of label " + quoted(label) + R"( (only \\, \" and \n))");
        if (i == n) return "unterminated quoted value of label " + quoted(label);
        if (++i == n) return "missing '}' at the end";
        if (id[i] == '}') return i + 1 == n ? "" : at(i + 1, "unexpected text after '}'");
        if (id[i] != ',') return at(i, "expected ',' or '}' after the value of label " + quoted(label));
        if (++i < n && id[i] == '}') return at(i - 1, "trailing comma before '}'");
    }
}

// The reply data for a series id series_id_error() refuses.
std::optional<std::string> bad_series_id(const std::string& why) {
    return dump({{"error", "bad series id: " + why + R"(; expected name or name{label="value",...})"}});
}

// A duration as people write it: "60 s", "250 ms".
std::string duration_text(std::chrono::milliseconds d) {
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

// Why a client past max_clients is not served, and when to retry.
std::string busy_message(const TelemetryOptions& o) {
    std::string s =
        "percore telemetry: too many clients, all " + std::to_string(o.max_clients) + " connections are in use";
    if (o.idle_timeout.count() > 0) s += " (an idle one is closed after " + duration_text(o.idle_timeout) + ")";
    return s + "; try again later";
}

// One page of series for /percore/list and /percore/all, starting at index
// `from`. take(id, family, series, room) adds the entry and returns the bytes
// it adds if that is at most `room` (the first entry is always taken, so a
// page is never empty), else 0. Returns the index the next page starts at,
// if the reply would otherwise pass max_len.
template <class Take>
std::optional<std::size_t> page_series(const Registry& reg, std::size_t from, std::size_t max_len, Take take) {
    std::size_t i = 0, size = 64, taken = 0;
    for (const auto& f : reg.collect())
        for (const auto& s : f.series) {
            if (i++ < from) continue;
            const std::size_t room = taken == 0 ? SIZE_MAX : (max_len > size ? max_len - size : 0);
            const std::size_t used = take(series_id(f.name, s.labels), f, s, room);
            if (used == 0) return i - 1;
            size += used;
            ++taken;
        }
    return std::nullopt;
}

}  // namespace

std::string telemetry_runtime_dir() {
    if (const char* d = std::getenv("RUNTIME_DIRECTORY"); d && *d) return d;
    if (geteuid() == 0) return "/var/run";
    if (const char* d = std::getenv("XDG_RUNTIME_DIR"); d && *d) return d;
    return "/tmp";
}

std::string telemetry_socket_path(std::string_view prefix) {
    return telemetry_runtime_dir() + "/dpdk/" + std::string(prefix) + "/dpdk_telemetry.v2";
}

TelemetryProtocol::TelemetryProtocol(Registry& reg, TelemetryOptions opt) : reg_(reg), opt_(std::move(opt)) {
    // Built-ins are handlers like any other, so /help and / cover them.
    auto self = this;
    commands_["/"] = {"Returns the list of available commands.", nullptr};
    commands_["/info"] = {"Returns the server version, pid and max_output_len.", [self](std::string_view) {
                              return std::optional<std::string>(dump(
                                  {{"version", self->opt_.version}, {"pid", getpid()},
                                   {"max_output_len", self->opt_.max_output_len}}));
                          }};
    commands_["/help"] = {"Returns help text for a command. Parameter: command name.", nullptr};
    commands_["/percore/list"] = {
        "Lists metric series. Parameter: first index (optional); 'next' pages on.", [self](std::string_view p) {
            auto from = parse_offset(p);
            if (!from) return std::optional<std::string>();
            json names = json::array();
            auto next = page_series(self->reg_, *from, self->opt_.max_output_len,
                                    [&](std::string id, const auto&, const auto&, std::size_t room) -> std::size_t {
                                        const std::size_t cost = id.size() + 8;
                                        if (cost > room) return 0;
                                        names.push_back(std::move(id));
                                        return cost;
                                    });
            return std::optional<std::string>(dump({{"series", names}, {"next", next ? json(*next) : json(nullptr)}}));
        }};
    commands_["/percore/all"] = {
        "Every series with its value. Parameter: first index (optional); 'next' pages on.",
        [self](std::string_view p) {
            auto from = parse_offset(p);
            if (!from) return std::optional<std::string>();
            json metrics = json::object();
            auto next = page_series(self->reg_, *from, self->opt_.max_output_len,
                                    [&](std::string id, const auto& f, const auto& s, std::size_t room) -> std::size_t {
                                        json e = entry_json(f, s);
                                        // ids may grow when escaped
                                        const std::size_t cost = id.size() * 2 + dump(e).size() + 8;
                                        if (cost > room) return 0;
                                        metrics[id] = std::move(e);
                                        return cost;
                                    });
            return std::optional<std::string>(dump({{"metrics", metrics}, {"next", next ? json(*next) : json(nullptr)}}));
        }};
    commands_["/percore/get"] = {
        "One series with help, labels and per-shard values. Parameter: series, e.g. name{label=\"v\"}.",
        [self](std::string_view p) {
            if (auto e = series_id_error(p); !e.empty()) return bad_series_id(e);
            auto fs = self->reg_.find(p);
            if (!fs) return std::optional<std::string>();
            json e = detail::series_json(*fs, fs->series.front());
            return std::optional<std::string>(dump(e));
        }};
    commands_["/percore/reset"] = {"Resets one series and returns what it cleared. Parameter: series.",
                                   [self](std::string_view p) {
                                       if (auto e = series_id_error(p); !e.empty()) return bad_series_id(e);
                                       auto v = self->reg_.reset(p);
                                       if (!v) return std::optional<std::string>();
                                       return std::optional<std::string>(
                                           dump({{"series", p}, {"cleared", value_json(*v)}}));
                                   }};
}

void TelemetryProtocol::add_command(std::string_view cmd, std::string_view help, TelemetryHandler fn) {
    if (!valid_command(cmd))
        throw std::invalid_argument("telemetry command \"" + std::string(cmd.substr(0, 80)) +
                                    "\" must be '/' then [A-Za-z0-9_/], at most 56 bytes");
    if (!fn) throw std::invalid_argument("telemetry command \"" + std::string(cmd) + "\" has no handler");
    std::lock_guard lk(mu_);
    if (!commands_.emplace(std::string(cmd), Command{std::string(help), std::move(fn)}).second)
        throw std::invalid_argument("telemetry command \"" + std::string(cmd) + "\" is already registered");
}

std::string TelemetryProtocol::greeting() const {
    return dump({{"version", opt_.version}, {"pid", getpid()}, {"max_output_len", opt_.max_output_len}});
}

std::string TelemetryProtocol::reject(std::size_t bytes) const {
    return dump({{"error", "request of " + std::to_string(bytes) + " bytes exceeds max_input_len " +
                               std::to_string(opt_.max_input_len)}});
}

std::string TelemetryProtocol::busy_greeting() const {
    return dump({{"version", opt_.version},
                 {"pid", getpid()},
                 {"max_output_len", opt_.max_output_len},
                 {"error", busy_message(opt_)}});
}

std::string TelemetryProtocol::busy_reply(std::string_view request) const {
    while (!request.empty() && (request.back() == '\n' || request.back() == '\r')) request.remove_suffix(1);
    const std::string_view cmd = request.substr(0, request.find(','));
    return dump({{std::string(cmd.substr(0, kMaxCmdLen + 8)), {{"error", busy_message(opt_)}}}});
}

std::string TelemetryProtocol::reply(std::string_view request) const {
    if (request.size() > opt_.max_input_len) return reject(request.size());
    // DPDK clients may send a trailing newline; it is not part of the command.
    while (!request.empty() && (request.back() == '\n' || request.back() == '\r')) request.remove_suffix(1);
    const auto comma = request.find(',');
    const std::string_view cmd = request.substr(0, comma);
    const std::string_view param = comma == std::string_view::npos ? std::string_view{} : request.substr(comma + 1);
    // A malformed command is echoed cut to a valid command's length, so the
    // reply stays small whatever was sent (escaping can grow bytes 6x).
    const json null_reply = {{std::string(cmd.substr(0, kMaxCmdLen + 8)), nullptr}};
    if (!valid_command(cmd)) return dump(null_reply);

    json data;
    {
        std::unique_lock lk(mu_);
        auto it = commands_.find(cmd);
        if (it == commands_.end()) return dump(null_reply);
        if (cmd == "/") {
            json names = json::array();
            for (const auto& [name, c] : commands_) names.push_back(name);
            data = names;  // std::map keeps them sorted
        } else if (cmd == "/help") {
            auto h = commands_.find(param);
            if (param.empty() || h == commands_.end()) return dump(null_reply);
            data = {{std::string(param), h->second.help}};
        } else {
            TelemetryHandler fn = it->second.fn;
            lk.unlock();  // handlers may be slow or re-enter add_command
            std::optional<std::string> text;
            try {
                text = fn(param);
            } catch (...) {
                return dump(null_reply);
            }
            if (!text) return dump(null_reply);
            data = json::parse(*text, nullptr, false);
            if (data.is_discarded()) return dump(null_reply);
        }
    }
    std::string out = dump(json{{std::string(cmd), std::move(data)}});
    if (out.size() > opt_.max_output_len)
        return dump({{std::string(cmd),
                      {{"error", "reply of " + std::to_string(out.size()) + " bytes exceeds max_output_len " +
                                     std::to_string(opt_.max_output_len)}}}});
    return out;
}

}  // namespace percore
