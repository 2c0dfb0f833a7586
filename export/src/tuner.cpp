// SPDX-License-Identifier: MIT
#include "percore/export/tuner.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

namespace percore {

using nlohmann::json;

namespace {

std::optional<TunerGroupState> find_group(const Tuner& t, const std::string& name) {
    for (auto& g : t.groups())
        if (g.name == name) return g;
    return std::nullopt;
}

json values(const TunerGroupState& g, const TunerArm& arm) {
    json v = json::object();
    for (std::size_t i = 0; i < g.params.size(); ++i) v[g.params[i]] = arm[i];
    return v;
}

constexpr std::string_view kHelp =
    "The adaptive tuner: per knob group its arms (pulls, mean reward), the values in effect and the last tick";

TelemetryHandler ace_command(Tuner& t) {
    return [&t](std::string_view) { return std::optional<std::string>(tuner_json(t)); };
}

}  // namespace

std::string tuner_json(const Tuner& t) {
    json j;
    // The groups first: a tick counts itself after crediting its pull, so
    // the ticks read afterwards are at least the pulls in the groups.
    const std::vector<TunerGroupState> states = t.groups();
    j["ticks"] = t.fast_ticks();
    j["slow_ticks"] = t.slow_ticks();
    j["fast_interval_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(t.fast_interval()).count();
    j["exploration"] = t.options().exploration;
    json groups = json::array();
    for (const auto& g : states) {
        json arms = json::array();
        for (std::size_t i = 0; i < g.arms.size(); ++i)
            arms.push_back({{"values", values(g, g.arms[i])}, {"pulls", g.pulls[i]}, {"mean_reward", g.mean_reward[i]}});
        groups.push_back({{"name", g.name},
                          {"params", g.params},
                          {"current", values(g, g.arms[g.current])},
                          {"arm", g.current},
                          {"best", g.best},
                          {"last_safe", g.last_safe},
                          {"changes", g.changes},
                          {"reverts", g.reverts},
                          {"arms", std::move(arms)}});
    }
    j["groups"] = std::move(groups);
    if (const auto last = t.last_tick()) {
        j["last_tick"] = {{"index", last->index},
                          {"interval_ns", last->interval_ns},
                          {"throughput", last->throughput},
                          {"flushes", last->flushes},
                          {"lock_wait_share", last->lock_wait_share},
                          {"propagation_ns", last->propagation_ns},
                          {"delivery_p99_ns", last->delivery_p99_ns},
                          {"latency_p99_ns", last->latency_p99_ns},
                          {"rss_bytes", last->rss_bytes},
                          {"reward", last->reward},
                          {"guard", last->guard.empty() ? json(nullptr) : json(last->guard)},
                          {"group", last->group},
                          {"arm", last->arm}};
    } else {
        j["last_tick"] = nullptr;
    }
    return j.dump();
}

void publish(Tuner& t, Registry& r) {
    for (const auto& g : t.groups()) {
        for (std::size_t p = 0; p < g.params.size(); ++p)
            r.add_gauge("percore_ace_knob", "Knob values the adaptive tuner has in effect.",
                        {{"group", g.name}, {"param", g.params[p]}}, [&t, name = g.name, p]() -> double {
                            const auto s = find_group(t, name);
                            return s ? static_cast<double>(s->arms[s->current][p]) : std::nan("");
                        });
        r.add_gauge("percore_ace_arm", "Index of the arm the adaptive tuner has in effect.", {{"group", g.name}},
                    [&t, name = g.name]() -> double {
                        const auto s = find_group(t, name);
                        return s ? static_cast<double>(s->current) : std::nan("");
                    });
        r.add_counter("percore_ace_arm_changes_total", "Arm changes the adaptive tuner made.", {{"group", g.name}},
                      [&t, name = g.name]() -> std::uint64_t {
                          const auto s = find_group(t, name);
                          return s ? s->changes : 0;
                      });
        r.add_counter("percore_ace_reverts_total", "Guard reverts of the adaptive tuner.", {{"group", g.name}},
                      [&t, name = g.name]() -> std::uint64_t {
                          const auto s = find_group(t, name);
                          return s ? s->reverts : 0;
                      });
    }
    r.add_counter("percore_ace_ticks_total", "Fast-loop ticks of the adaptive tuner.", {},
                  [&t]() -> std::uint64_t { return t.fast_ticks(); });
}

void publish(Tuner& t, TelemetryProtocol& p) { p.add_command("/percore/ace", kHelp, ace_command(t)); }
void publish(Tuner& t, TelemetryServer& s) { s.add_command("/percore/ace", kHelp, ace_command(t)); }

}  // namespace percore
