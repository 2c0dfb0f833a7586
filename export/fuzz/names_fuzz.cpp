// SPDX-License-Identifier: MIT
// libFuzzer target: any bytes as metric name, label name/value and help.
// Registration must either succeed or throw MetricError, and what is
// accepted must render to an exposition whose names stay inside the
// Prometheus grammar. A help text starting with '!' turns on strict naming,
// under which nothing with a lint problem may register; otherwise lint
// reports go to a callback that checks they are one.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "percore/export/prometheus.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    // Split the input into four fields at NUL bytes.
    std::string f[4];
    std::size_t k = 0;
    for (char c : in) {
        if (c == '\0' && k < 3) ++k;
        else f[k] += c;
    }
    const bool strict = !f[3].empty() && f[3][0] == '!';
    percore::RegistryOptions opt;
    opt.strict_names = strict;
    opt.on_lint = [](std::string_view m) {
        if (m.find("naming conventions") == std::string_view::npos) std::abort();
    };
    percore::Registry reg(std::move(opt));
    const auto type = f[0].ends_with("_total") ? percore::MetricType::counter : percore::MetricType::gauge;
    try {
        if (type == percore::MetricType::counter) reg.counter(f[0], f[3], {{f[1], f[2]}});
        else reg.gauge(f[0], f[3], {{f[1], f[2]}});
    } catch (const percore::MetricError&) {
        return 0;
    }
    if (strict && !(percore::check_metric_name(f[0], type).clean() && percore::check_label_name(f[1], type).clean()))
        std::abort();
    for (char c : f[0] + f[1])
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) std::abort();
    const std::string text = percore::render(reg, percore::ExpositionFormat::text);
    // One HELP, one TYPE, one sample: escaping must keep it to three lines.
    std::size_t lines = 0;
    for (char c : text) lines += c == '\n';
    if (lines != 3 || text.find('\r') != std::string::npos) std::abort();
    return 0;
}
