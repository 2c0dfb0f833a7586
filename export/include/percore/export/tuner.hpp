// SPDX-License-Identifier: MIT
// percore/export/tuner.hpp - a Tuner (percore/tuner.hpp) seen from outside:
// its knob values as Prometheus gauges, and its bandits on the telemetry
// socket as /percore/ace.
//
//   publish(tuner, registry):  percore_ace_knob{group, param} (the value in
//       effect), percore_ace_arm{group} (its index), percore_ace_arm_changes_total
//       and percore_ace_reverts_total{group}, percore_ace_ticks_total. One
//       series per group and parameter registered at the time of the call:
//       publish after tune().
//   publish(tuner, telemetry): /percore/ace, replying with tuner_json().
//
// The Tuner must outlive the registry's and the server's use of it. Each
// read takes the Tuner's lock once (a copy of the groups' state); nothing
// here touches the structures being tuned.
#pragma once

#include <string>

#include "percore/export/registry.hpp"
#include "percore/export/telemetry.hpp"
#include "percore/tuner.hpp"

namespace percore {

// {"ticks", "slow_ticks", "fast_interval_ms", "groups": [{"name", "params",
// "current": {param: value}, "arm", "best", "last_safe", "changes",
// "reverts", "arms": [{"values": {param: value}, "pulls", "mean_reward"}]}],
// "last_tick": {...} or null}
std::string tuner_json(const Tuner& t);

void publish(Tuner& t, Registry& r);
void publish(Tuner& t, TelemetryServer& s);
void publish(Tuner& t, TelemetryProtocol& p);

}  // namespace percore
