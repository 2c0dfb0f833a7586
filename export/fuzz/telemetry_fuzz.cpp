// SPDX-License-Identifier: MIT
// libFuzzer target: any bytes as a telemetry request. The reply must be one
// JSON object no longer than max_output_len, and the counters untouched
// unless the request was a reset.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "percore/export/telemetry.hpp"

namespace {
struct World {
    percore::Registry reg;
    std::shared_ptr<percore::Counter> c = reg.counter("fuzz_events_total", "Events.", {{"kind", "a\"b"}});
    percore::TelemetryProtocol proto{reg, [] {
                                         percore::TelemetryOptions o;
                                         o.max_output_len = 2048;
                                         return o;
                                     }()};
    World() {
        c->add(7);
        reg.gauge("fuzz_level", "Level.")->set(-3);
        proto.add_command("/fuzz/echo", "Echo.", [](std::string_view p) {
            return std::optional<std::string>(nlohmann::json(std::string(p)).dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace));
        });
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static World w;
    const std::string_view req(reinterpret_cast<const char*>(data), size);
    const std::string out = w.proto.reply(req);
    const auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_object() || j.size() != 1) std::abort();
    if (out.size() > w.proto.options().max_output_len) std::abort();
    if (!req.starts_with("/percore/reset") && w.c->value() != 7) std::abort();
    if (req.starts_with("/percore/reset")) w.c->add(7 - w.c->value());
    return 0;
}
