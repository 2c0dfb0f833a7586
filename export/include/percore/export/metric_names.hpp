// percore/export/metric_names.hpp - Prometheus naming rules, checked once at registration.
//
// A name that Prometheus would reject, or that `promtool check metrics` would
// warn about, is refused when the metric is registered, so nothing invalid
// ever reaches an exporter. Each check returns an empty string when the input
// is fine and otherwise one sentence saying which rule it breaks; the
// Registry turns that into a MetricError. Checks cost a pass over the string.
//
// Rules beyond the Prometheus grammar ([a-zA-Z_][a-zA-Z0-9_]* here: colons are
// reserved for recording rules) are promtool's lint rules: snake_case, no type
// word in the name, base units only and no abbreviated units, counters end in
// `_total` and nothing else does, `_bucket`/`_count`/`_sum` and the labels
// `le`/`quantile` are reserved for histograms and summaries, and names starting
// with `__` are reserved by Prometheus.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace percore {

enum class MetricType { counter, gauge, histogram };

// "counter", "gauge", "histogram".
const char* metric_type_name(MetricType t) noexcept;

// Thrown by the Registry for an invalid name, label, help text or a clash
// with an existing metric. what() names the metric and the rule.
class MetricError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

std::string metric_name_error(std::string_view name, MetricType type);
std::string label_name_error(std::string_view name);
// Label values may hold any valid UTF-8 without control characters other
// than tab and newline (exporters escape quotes, backslashes and newlines).
std::string label_value_error(std::string_view value);
// Help must be non-empty UTF-8, same control-character rule (promtool
// warns about missing help).
std::string help_error(std::string_view help);

bool valid_utf8(std::string_view s) noexcept;

}  // namespace percore
