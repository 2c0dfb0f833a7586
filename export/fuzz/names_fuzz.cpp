// libFuzzer target: any bytes as metric name, label name/value and help.
// Registration must either succeed or throw MetricError, and what is
// accepted must render to an exposition whose names stay inside the
// Prometheus grammar.
#include <cstdint>
#include <cstdlib>
#include <string>

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
    percore::Registry reg;
    try {
        const auto type = f[0].ends_with("_total") ? percore::MetricType::counter : percore::MetricType::gauge;
        if (type == percore::MetricType::counter) reg.counter(f[0], f[3], {{f[1], f[2]}});
        else reg.gauge(f[0], f[3], {{f[1], f[2]}});
    } catch (const percore::MetricError&) {
        return 0;
    }
    for (char c : f[0] + f[1])
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) std::abort();
    const std::string text = percore::render(reg, percore::ExpositionFormat::text);
    // One HELP, one TYPE, one sample: escaping must keep it to three lines.
    std::size_t lines = 0;
    for (char c : text) lines += c == '\n';
    if (lines != 3 || text.find('\r') != std::string::npos) std::abort();
    return 0;
}
