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
    nlohmann::json series = nlohmann::json::array();
    for (const auto& f : reg.collect({.shards = true}))
        for (const auto& s : f.series) {
            nlohmann::json e = series_json(f, s);
            e["id"] = series_id(f.name, s.labels);
            series.push_back(std::move(e));
        }
    return dump({{"time", now}, {"pid", getpid()}, {"series", std::move(series)}});
}

}  // namespace percore::detail
