// SPDX-License-Identifier: MIT
// The live dashboard (internal): the page PrometheusServer serves at / and
// /dashboard, and the JSON it polls at /api/metrics.
#pragma once

#include <string>

#include "percore/export/registry.hpp"

namespace percore::detail {

// The page, self-contained (dashboard.html compiled in, see CMakeLists.txt).
extern const char dashboard_html[];

// {"time": <Unix seconds when read>, "pid": <pid>, "series": [...]}: every
// series of `reg` as telemetry's /percore/get reports it (series_json()),
// plus its series id, with per-shard rows.
std::string dashboard_json(const Registry& reg);

}  // namespace percore::detail
