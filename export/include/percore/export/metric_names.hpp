// SPDX-License-Identifier: MIT
// percore/export/metric_names.hpp - naming rules, checked once at registration.
//
// Two kinds of rule, kept apart:
//
// Errors: what Prometheus or OpenMetrics 1.0 require, so an exposition that
// broke them would be rejected or misread. A registration that breaks one
// throws MetricError.
//   - metric names match [a-zA-Z_][a-zA-Z0-9_]* and label names
//     [a-zA-Z_][a-zA-Z0-9_]* (Prometheus data model, "Metric names and
//     labels"); ':' is reserved for recording rules there and for "the result
//     of a calculation or aggregation" in OpenMetrics ("MetricFamily"), so
//     direct instrumentation may not use it;
//   - names starting with "__" are reserved (label names: data model;
//     MetricFamily names beginning with underscores: OpenMetrics);
//   - a counter's name ends in "_total": OpenMetrics 1.0 ("Counter") requires
//     the suffix on the sample, and percore writes the registered name as the
//     sample name;
//   - a histogram may not have the label "le", which its bucket samples
//     carry, nor "quantile", which summaries carry (a reader converting one
//     to the other would mix them up);
//   - label values and help text are UTF-8 without control characters other
//     than tab and newline.
//
// Lint: percore's conventions, after Prometheus's "Metric and label naming"
// practices and promtool's linter. Each is a warning by default and an error
// in strict mode (RegistryOptions::strict_names):
//   - snake_case, not camelCase (metric and label names);
//   - base units spelt out: no abbreviated units ("ms", "secs", "kb"), no
//     prefixed or non-base units ("milliseconds", "kilobytes", "hours");
//   - no type word in the name ("counter", "gauge", "histogram", ...);
//   - no suffix that OpenMetrics gives other types' samples ("_total" on a
//     non-counter, "_bucket", "_count", "_sum", "_created"; "_info" except on
//     a gauge, where it marks the info pattern);
//   - "le" or "quantile" as a label of a counter or gauge.
// Actual collisions between families (a gauge "x" beside a counter "x_total")
// are checked by the Registry, which knows every name.
//
// Each check reports every problem of its input at once. Checks cost a pass
// over the string.
#pragma once

#include "percore/detail/cxx20.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace percore {

enum class MetricType { counter, gauge, histogram };

// "counter", "gauge", "histogram".
const char* metric_type_name(MetricType t) noexcept;

// Thrown by the Registry for an invalid name, label, help text or a clash
// with an existing metric. what() names the metric and every rule it breaks.
class MetricError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// Every problem with one name, one clause each ("is camelCase (use
// snake_case)"), split by kind as described above.
struct NameCheck {
    std::vector<std::string> errors;
    std::vector<std::string> lint;
    bool clean() const noexcept { return errors.empty() && lint.empty(); }
};

NameCheck check_metric_name(std::string_view name, MetricType type);
NameCheck check_label_name(std::string_view name, MetricType type);

// One sentence naming the input and listing its problems of that kind
// (`metric name "a-b": may only contain ...; ...`), or "" when it has none.
// label_name_error() defaults to histogram rules, the strictest: a label name
// that passes is valid on any metric.
std::string metric_name_error(std::string_view name, MetricType type);
std::string metric_name_lint(std::string_view name, MetricType type);
std::string label_name_error(std::string_view name, MetricType type = MetricType::histogram);
std::string label_name_lint(std::string_view name, MetricType type);
// Label values may hold any valid UTF-8 without control characters other
// than tab and newline (exporters escape quotes, backslashes and newlines).
std::string label_value_error(std::string_view value);
// Help must be non-empty UTF-8, same control-character rule (promtool
// warns about missing help).
std::string help_error(std::string_view help);

bool valid_utf8(std::string_view s) noexcept;

}  // namespace percore
