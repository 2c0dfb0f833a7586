// SPDX-License-Identifier: MIT
#include "dashboard.hpp"

#include <unistd.h>

#include <chrono>

#include "metrics_json.hpp"

namespace percore::detail {

std::string dashboard_json(const Registry& reg) {
    // Read before the snapshot: the page divides counter deltas by deltas of
    // this time, and the snapshot follows it by about the same amount each poll.
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Each series is dumped as soon as it is built, not gathered into one
    // tree first: 14% and 32% less CPU in two side-by-side runs of
    // export_bench's BM_DashboardJson10k (the tree's allocations and frees).
    std::string out = dump({{"time", now}, {"pid", getpid()}});
    out.pop_back();  // the closing brace: the series follow
    out += ",\"series\":[";
    bool first = true;
    for (const auto& f : reg.collect({.shards = true}))
        for (const auto& s : f.series) {
            nlohmann::json e = series_json(f, s);
            e["id"] = series_id(f.name, s.labels);
            if (!first) out += ',';
            first = false;
            out += dump(e);
        }
    out += "]}";
    return out;
}

}  // namespace percore::detail
