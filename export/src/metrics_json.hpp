// SPDX-License-Identifier: MIT
// The JSON form of a metric series (internal), one definition shared by the
// telemetry socket (/percore/all, /percore/get) and the dashboard's
// /api/metrics, so both report the same figures under the same keys.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "percore/export/registry.hpp"

namespace percore::detail {

// A counter or gauge as its number (a non-finite double as null); a
// histogram as {count, sum, min, max, mean, median, p50, p90, p99, p999}
// in its exported unit.
nlohmann::json value_json(const MetricValue& v);

// {"type": ..., "value": ...} for counters and gauges, the histogram's
// fields inline for histograms.
nlohmann::json entry_json(const FamilySnapshot& f, const SeriesSnapshot& s);

// entry_json() plus name, help, labels and, when the snapshot has shard
// rows, "shards": {"<row>": value, ..., "shared": value} without zero rows
// (for a histogram: how many values each row recorded).
nlohmann::json series_json(const FamilySnapshot& f, const SeriesSnapshot& s);

// Compact, invalid UTF-8 replaced rather than thrown on.
std::string dump(const nlohmann::json& j);

}  // namespace percore::detail
