// SPDX-License-Identifier: MIT
// percore/export/statsd.hpp - push metrics to a statsd daemon over UDP.
//
// StatsdClient formats statsd lines and packs them into datagrams of at most
// max_datagram bytes (default 1432: a 1500-byte MTU less IPv6 and UDP
// headers, with room to spare), never splitting a line. push(registry) sends
// what changed since the previous push; StatsdReporter does that from its
// own thread every interval (default 1 s) and once more when it stops.
//
// What is sent:
//   counter     `name:<delta>|c`   delta since the last push (after a reset of
//               the counter: its value since the reset); zero deltas are skipped
//   gauge       `name:<value>|g`   every push; a negative value is sent as
//               `name:0|g` then `name:-v|g` in the same datagram, because statsd
//               reads a signed gauge value as a change, not a value
//   histogram   aggregated, not per-sample `|ms` lines: a per-CPU histogram
//               keeps bucket counts, not samples, so replaying samples would
//               cost one line per observation. Nor one line per bucket with
//               `|@1/count`: statsd scales its timer count by 1/rate but puts
//               each line's value into its percentiles once, whatever the
//               rate, so every bucket would weigh the same. When the interval
//               saw observations, each push sends `name.count:<n>|c`,
//               `name.sum:<s>|c`, `name.p50|g`, `name.p99|g` and `name.max|g`,
//               all from the histogram's snapshot minus the previous push's
//               (HistogramSnapshot::since), at the histogram's full
//               resolution, in the unit the histogram exports (see
//               HistogramExport), like the Prometheus figures. A callback
//               histogram without HistogramData::snapshot sends count and
//               sum only.
//   timing()    `name:<ms>|ms[|@rate]` for callers that do have samples.
//
// Numbers: integers exactly, floats in their shortest round-trip form
// (`sum:1.895306531|c`); NaN, infinities and -0, which statsd cannot parse
// or reads as a change, are sent as 0.
//
// Names: prefix + "." + name, with every byte outside [A-Za-z0-9_.-]
// replaced by '_' (statsd would drop or misparse ':', '|', '@', '#' and
// whitespace). Labels become DogStatsD tags `|#k:v,...` when `tags` is set,
// otherwise one name segment per label value, in the family's label order
// (`http_requests_total.get.200`), with '.' in values also replaced by '_'.
//
// Options that can never work are refused at construction with a
// std::invalid_argument saying which and why: an empty host, and for
// StatsdReporter an interval that is not positive. After that, errors never
// throw and never stop the program: a line longer than max_datagram, a host
// that does not resolve, a refused or failed send are counted in stats() and
// reported through on_error (default: stderr, repeated identical messages
// once).
#pragma once

#include "percore/detail/cxx20.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "percore/export/registry.hpp"

namespace percore {

struct StatsdOptions {
    std::string host = "127.0.0.1";     // must not be empty
    std::uint16_t port = 8125;
    std::string prefix;                 // "" or e.g. "myapp" -> "myapp.<name>"
    std::size_t max_datagram = 1432;
    bool tags = false;                  // labels as DogStatsD tags
    std::chrono::milliseconds interval{1000};  // StatsdReporter only; must be positive
    // UDP has no flow control: a burst of thousands of datagrams overflows a
    // local daemon's receive buffer. After `burst` datagrams in one flush the
    // client pauses for `burst_pause`. burst = 0 disables pacing.
    std::size_t burst = 8;
    std::chrono::microseconds burst_pause{2000};
    std::function<void(std::string_view)> on_error;  // empty: stderr
};

struct StatsdStats {
    std::uint64_t lines = 0;           // lines handed to the socket
    std::uint64_t datagrams = 0;
    std::uint64_t bytes = 0;
    std::uint64_t oversize_lines = 0;  // longer than max_datagram: not sent
    std::uint64_t resolve_errors = 0;
    std::uint64_t send_errors = 0;
    std::uint64_t lost_lines = 0;      // lines in datagrams that could not be sent
    std::string last_error;
};

// The statsd name rule described above (no prefix).
std::string statsd_name(std::string_view name);

class StatsdClient {
public:
    explicit StatsdClient(StatsdOptions opt = {});
    ~StatsdClient();  // flushes what is queued
    StatsdClient(const StatsdClient&) = delete;
    StatsdClient& operator=(const StatsdClient&) = delete;

    // Queue one line; lines leave when a datagram fills or on flush().
    // sample_rate is client-side sampling: below 1 the call is kept with that
    // probability and the line tagged `|@rate` (fixed notation: statsd stops
    // reading a rate at an exponent), so the daemon scales it back up; 1 or
    // more always sends, untagged; 0, negative or NaN sends nothing.
    void count(std::string_view name, std::int64_t delta, double sample_rate = 1.0, const Labels& labels = {});
    void gauge(std::string_view name, double value, const Labels& labels = {});
    void timing(std::string_view name, double ms, double sample_rate = 1.0, const Labels& labels = {});
    void flush();

    // Queues the registry's changes since the last push and flushes.
    void push(const Registry& reg);

    StatsdStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Pushes a Registry every interval from its own thread, and once more on stop().
class StatsdReporter {
public:
    explicit StatsdReporter(const Registry& reg, StatsdOptions opt = {});
    ~StatsdReporter();
    StatsdReporter(const StatsdReporter&) = delete;
    StatsdReporter& operator=(const StatsdReporter&) = delete;

    void stop();
    std::uint64_t pushes() const noexcept;
    StatsdStats stats() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace percore
