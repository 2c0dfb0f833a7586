// SPDX-License-Identifier: MIT
// percore/export/telemetry.hpp - a DPDK-telemetry-v2 compatible control socket.
//
// TelemetryServer listens on an AF_UNIX SOCK_SEQPACKET socket (mode 0600)
// where DPDK's `dpdk-telemetry.py` and `percore-top` look for it:
// <rundir>/dpdk/<prefix>/dpdk_telemetry.v2, with <rundir> = $RUNTIME_DIRECTORY,
// else /var/run for root, else $XDG_RUNTIME_DIR, else /tmp, and prefix
// "percore-<pid>" unless given. Each client gets a greeting
// {"version", "pid", "max_output_len"}, then one JSON reply per request
// "/command[,parameter]":
//
//   /                          sorted list of commands
//   /info                      version, pid, max_output_len
//   /help,<command>            that command's help text
//   /percore/list[,<from>]     series identifiers (`name{label="v"}`), paged:
//                              {"series": [...], "next": <from> or null}
//   /percore/get,<series>      type, help, labels, value (histograms: count,
//                              sum, min, max, mean, p50/p90/p99/p999) and the
//                              non-zero per-shard rows
//   /percore/all[,<from>]      every series with its value, paged like list
//   /percore/reset,<series>    resets it; returns the value it cleared
//
// As in DPDK, an unknown or malformed command, a bad parameter or a failing
// handler answers {"<command>": null}. A request longer than max_input_len
// gets {"error": ...}; a reply longer than max_output_len is replaced by
// {"<command>": {"error": ...}}, never cut into invalid JSON. A series id that
// is not `name` or `name{label="v",...}` (trailing comma, empty label,
// unterminated quote, text after '}') gets {"<command>": {"error": ...}}
// saying what is wrong; a well-formed id of no series gets null.
//
// A client that sends nothing (or reads no reply) for idle_timeout is
// disconnected. Past max_clients a client is not served: it gets a greeting
// with an "error" member, and {"<command>": {"error": ...}} for each request,
// until it hangs up (or at most 30 s), so dpdk-telemetry.py prints the reason
// rather than failing on a closed socket. Up to 16 such clients are kept;
// any more are closed at once, as DPDK does.
//
// Cost: one accept thread plus one thread per connected client (at most
// max_clients); requests read the Registry like any exporter.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "percore/export/registry.hpp"

namespace percore {

// Returns the JSON text of the reply's data (any JSON value), or nullopt
// for "no answer" (sent as null). Text that is not valid JSON counts as a
// failure and is sent as null.
using TelemetryHandler = std::function<std::optional<std::string>(std::string_view param)>;

struct TelemetryOptions {
    std::string path;    // full socket path; empty: computed from prefix
    std::string prefix;  // empty: "percore-<pid>"
    std::size_t max_output_len = 16384;
    std::size_t max_input_len = 1024;
    std::size_t max_clients = 16;
    // Frees the slot of a client that went quiet (dpdk-telemetry.py left
    // open at its prompt, a hung tool). Zero: never.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
    std::string version = "percore 0.1.0";
};

// DPDK's runtime directory rule, described above.
std::string telemetry_runtime_dir();
std::string telemetry_socket_path(std::string_view prefix);

// The request/reply logic, without sockets (tests and fuzzers use it directly).
class TelemetryProtocol {
public:
    TelemetryProtocol(Registry& reg, TelemetryOptions opt);

    // Command names: '/' then [A-Za-z0-9_/], at most 56 bytes (DPDK's
    // limit). Throws std::invalid_argument for a bad or taken name.
    void add_command(std::string_view cmd, std::string_view help, TelemetryHandler fn);

    std::string greeting() const;
    std::string reply(std::string_view request) const;
    // The reply to a request of `bytes` bytes that exceeds max_input_len.
    std::string reject(std::size_t bytes) const;
    // For a client past max_clients: a greeting with an "error" member, and
    // the {"<command>": {"error": ...}} reply to any request.
    std::string busy_greeting() const;
    std::string busy_reply(std::string_view request) const;

    const TelemetryOptions& options() const noexcept { return opt_; }

private:
    struct Command {
        std::string help;
        TelemetryHandler fn;
    };
    Registry& reg_;
    TelemetryOptions opt_;
    mutable std::mutex mu_;
    std::map<std::string, Command, std::less<>> commands_;
};

class TelemetryServer {
public:
    // Creates the socket (0600). With the default path it also creates
    // <rundir>/dpdk/<prefix> (0700), removed again by stop() if still empty;
    // an explicit path's directory must exist. Throws std::system_error (what()
    // names the path and the errno text) when the directory is missing, the
    // path is taken by a live server, or the socket cannot be created. A stale
    // socket file left by a dead process is replaced.
    explicit TelemetryServer(Registry& reg, TelemetryOptions opt = {});
    ~TelemetryServer();  // stop()
    TelemetryServer(const TelemetryServer&) = delete;
    TelemetryServer& operator=(const TelemetryServer&) = delete;

    void add_command(std::string_view cmd, std::string_view help, TelemetryHandler fn) {
        protocol_.add_command(cmd, help, std::move(fn));
    }
    const std::string& path() const noexcept { return path_; }
    // Closes the socket, disconnects clients, removes the socket file (and
    // the directory the constructor created, if empty).
    void stop();

private:
    struct Impl;
    TelemetryProtocol protocol_;
    std::string path_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace percore
