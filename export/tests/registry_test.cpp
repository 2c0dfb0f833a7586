// SPDX-License-Identifier: MIT
// Registry: validation errors, get-or-create, families, references and
// callbacks, removal racing with readers, histograms.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "exposition_check.hpp"
#include "percore/export/prometheus.hpp"
#include "percore/export/registry.hpp"

namespace {

using percore::HistogramData;
using percore::MetricError;
using percore::MetricType;
using percore::Registry;
using percore::Unit;

// The message of the MetricError that f throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const MetricError& e) {
        return e.what();
    }
    return {};
}

HistogramData histogram_of(const Registry& reg, const std::string& id) {
    return std::get<HistogramData>(reg.find(id).value().series.at(0).value);
}

TEST(Names, PrometheusRulesAndLint) {
    EXPECT_EQ(percore::metric_name_error("http_requests_total", MetricType::counter), "");
    EXPECT_EQ(percore::metric_name_error("queue_depth", MetricType::gauge), "");
    EXPECT_EQ(percore::metric_name_error("rpc_latency_seconds", MetricType::histogram), "");
    EXPECT_TRUE(percore::check_metric_name("rpc_latency_seconds", MetricType::histogram).clean());
    EXPECT_TRUE(percore::check_metric_name("build_info", MetricType::gauge).clean());
    // Prometheus and OpenMetrics rules: errors.
    for (const char* bad : {"", "1abc", "a-b", "a b", "__x", "a:b", "caf\xc3\xa9"})
        EXPECT_NE(percore::metric_name_error(bad, MetricType::gauge), "") << bad;
    EXPECT_NE(percore::metric_name_error("requests", MetricType::counter), "");
    EXPECT_NE(percore::metric_name_error("_total", MetricType::counter), "");
    // percore's conventions: lint, not errors.
    for (const char* lint : {"fooBar", "latency_ms", "uptime_secs", "size_kb", "size_kilobytes", "uptime_hours",
                             "my_gauge_value", "x_count", "x_bucket", "x_sum", "x_created", "depth_total"}) {
        EXPECT_EQ(percore::metric_name_error(lint, MetricType::gauge), "") << lint;
        EXPECT_NE(percore::metric_name_lint(lint, MetricType::gauge), "") << lint;
    }
    EXPECT_NE(percore::metric_name_lint("events_counter_total", MetricType::counter), "");
    EXPECT_NE(percore::metric_name_lint("op_info", MetricType::histogram), "");
    EXPECT_NE(percore::label_name_error("le"), "");  // the default: valid on any metric
    EXPECT_NE(percore::label_name_error("le", MetricType::histogram), "");
    EXPECT_NE(percore::label_name_error("quantile", MetricType::histogram), "");
    EXPECT_EQ(percore::label_name_error("le", MetricType::gauge), "");
    EXPECT_NE(percore::label_name_lint("le", MetricType::gauge), "");
    EXPECT_NE(percore::label_name_error("__name"), "");
    EXPECT_NE(percore::label_name_error("0x"), "");
    EXPECT_NE(percore::label_name_error("a:b"), "");
    EXPECT_EQ(percore::label_name_error("method"), "");
    EXPECT_EQ(percore::label_name_error("httpMethod"), "");
    EXPECT_NE(percore::label_name_lint("httpMethod", MetricType::counter), "");
    EXPECT_EQ(percore::label_value_error("any \"thing\"\n\\ \xc3\xa9"), "");
    EXPECT_NE(percore::label_value_error("\xff\xfe"), "");
    EXPECT_NE(percore::label_value_error("\xc3"), "");          // truncated
    EXPECT_NE(percore::label_value_error("\xed\xa0\x80"), "");  // surrogate
    EXPECT_NE(percore::label_value_error("a\rb"), "");
    EXPECT_NE(percore::label_value_error(std::string("a\0b", 3)), "");
    EXPECT_NE(percore::help_error(""), "");
    EXPECT_NE(percore::help_error("x\ry"), "");
}

TEST(Names, EveryProblemInOneMessage) {
    const auto c = percore::check_metric_name("1bad-fooBar_ms", MetricType::counter);
    ASSERT_EQ(c.errors.size(), 3u);  // first character, '-', no "_total"
    EXPECT_NE(c.errors[0].find("must start"), std::string::npos);
    EXPECT_NE(c.errors[1].find("'-'"), std::string::npos);
    EXPECT_NE(c.errors[2].find("_total"), std::string::npos);
    ASSERT_EQ(c.lint.size(), 2u);  // camelCase, "ms"
    Registry reg;
    try {
        reg.counter("1bad-fooBar_ms", "Help.", {{"bad label", "v"}, {"le", "1"}});
        FAIL() << "no throw";
    } catch (const MetricError& e) {
        const std::string m = e.what();
        for (const char* part : {"must start", "'-'", "_total", "label \"bad label\"", "camelCase", "\"ms\"",
                                 "label \"le\""})
            EXPECT_NE(m.find(part), std::string::npos) << part << " missing from: " << m;
    }
}

TEST(Names, LintWarnsOnceByDefaultAndFailsInStrictMode) {
    std::vector<std::string> reports;
    Registry reg(percore::RegistryOptions{.on_lint = [&](std::string_view m) { reports.emplace_back(m); }});
    auto free_bytes = reg.gauge("node_memory_MemFree_bytes", "Free memory.");  // registers, with a warning
    free_bytes->set(42);
    reg.gauge("node_memory_MemFree_bytes", "Free memory.", {});
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_NE(reports[0].find("node_memory_MemFree_bytes"), std::string::npos);
    EXPECT_NE(reports[0].find("camelCase"), std::string::npos);
    reg.remove_family("node_memory_MemFree_bytes");
    reg.gauge("node_memory_MemFree_bytes", "Free memory.");
    EXPECT_EQ(reports.size(), 1u);  // once per name
    reg.counter("requests_counter_total", "Type word and camelCase label.", {{"httpMethod", "get"}});
    ASSERT_EQ(reports.size(), 2u);  // both problems, one report
    EXPECT_NE(reports[1].find("counter"), std::string::npos);
    EXPECT_NE(reports[1].find("httpMethod"), std::string::npos);

    // The default reporter: stderr, once per name.
    Registry quiet;
    testing::internal::CaptureStderr();
    quiet.gauge("cpuTemp_celsius", "CPU temperature.");
    quiet.remove_family("cpuTemp_celsius");
    quiet.gauge("cpuTemp_celsius", "CPU temperature.");
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("cpuTemp_celsius"), std::string::npos);
    EXPECT_EQ(err.find("cpuTemp_celsius"), err.rfind("cpuTemp_celsius"));

    Registry strict(percore::RegistryOptions{.strict_names = true});
    try {
        strict.gauge("node_memory_MemFree_bytes", "Free memory.");
        FAIL() << "no throw";
    } catch (const MetricError& e) {
        EXPECT_NE(std::string(e.what()).find("camelCase"), std::string::npos) << e.what();
    }
    EXPECT_THROW(strict.counter("ok_total", "Label lint.", {{"httpMethod", "get"}}), MetricError);
    EXPECT_EQ(strict.series_count(), 0u);
    EXPECT_NO_THROW(strict.gauge("node_memory_free_bytes", "Free memory."));
}

TEST(Registry, InvalidRegistrationsThrowClearErrors) {
    Registry reg;
    try {
        reg.counter("requests", "help");
        FAIL() << "no throw";
    } catch (const MetricError& e) {
        EXPECT_NE(std::string(e.what()).find("_total"), std::string::npos) << e.what();
    }
    EXPECT_THROW(reg.gauge("ok_gauge", ""), MetricError);
    EXPECT_THROW(reg.gauge("ok_depth", "h", {{"bad-label", "x"}}), MetricError);
    EXPECT_THROW(reg.gauge("ok_depth", "h", {{"a", "x"}, {"a", "y"}}), MetricError);
    EXPECT_THROW(reg.gauge("ok_depth", "h", {{"a", "\xff"}}), MetricError);
    EXPECT_EQ(reg.series_count(), 0u);

    reg.counter("jobs_total", "Jobs.", {{"kind", "a"}});
    EXPECT_THROW(reg.gauge("jobs_total", "Jobs."), MetricError);                         // type clash
    EXPECT_THROW(reg.counter("jobs_total", "Other help.", {{"kind", "b"}}), MetricError);  // help clash
    EXPECT_THROW(reg.counter("jobs_total", "Jobs.", {{"queue", "b"}}), MetricError);     // label names clash
    EXPECT_EQ(reg.series_count(), 1u);
}

TEST(Registry, GetOrCreateAndFamilies) {
    Registry reg;
    auto a = reg.counter("hits_total", "Hits.", {{"method", "get"}, {"code", "200"}});
    auto b = reg.counter("hits_total", "Hits.", {{"code", "200"}, {"method", "get"}});
    EXPECT_EQ(a.get(), b.get());
    a->add(5);
    auto fam = reg.counter_family("hits_total", "Hits.", {"method", "code"});
    EXPECT_EQ(fam.with({"get", "200"}).get(), a.get());
    fam.with({"put", "500"})->add(2);
    EXPECT_THROW(fam.with({"only_one"}), MetricError);

    const auto snap = reg.collect();
    ASSERT_EQ(snap.size(), 1u);
    EXPECT_EQ(snap[0].type, MetricType::counter);
    ASSERT_EQ(snap[0].series.size(), 2u);
    std::uint64_t total = 0;
    for (const auto& s : snap[0].series) {
        EXPECT_EQ(s.labels[0].first, "method");  // family order, whatever order was passed
        total += std::get<std::uint64_t>(s.value);
    }
    EXPECT_EQ(total, 7u);

    auto one = reg.find(R"(hits_total{method="put",code="500"})");
    ASSERT_TRUE(one);
    EXPECT_EQ(std::get<std::uint64_t>(one->series[0].value), 2u);
    EXPECT_FALSE(reg.find(R"(hits_total{method="put"})"));
    EXPECT_FALSE(reg.find("hits_total{method=\"put"));
    EXPECT_TRUE(reg.remove("hits_total", {{"method", "put"}, {"code", "500"}}));
    EXPECT_EQ(reg.series_count(), 1u);
}

TEST(Registry, ReferencesCallbacksAndReset) {
    Registry reg;
    percore::Counter c;
    percore::Gauge g;
    percore::MaxGauge hi;
    c.add(10);
    g.sub(4);
    hi.update(77);
    reg.add_counter("existing_total", "An existing counter.", {}, c);
    reg.add_gauge("existing_level", "An existing gauge.", {}, g);
    reg.add_gauge("peak_level", "A max tracker.", {}, hi);
    std::atomic<int> calls{0};
    reg.add_gauge("computed_ratio", "A callback.", {}, [&] { ++calls; return 0.5; });
    reg.add_counter("computed_events_total", "A callback counter.", {}, [] { return std::uint64_t{42}; });
    EXPECT_THROW(reg.add_counter("existing_total", "An existing counter.", {}, c), MetricError);  // duplicate

    EXPECT_EQ(reg.collect().size(), 5u);
    auto value = [&](const char* id) { return reg.find(id).value().series.at(0).value; };
    EXPECT_EQ(std::get<double>(value("computed_ratio")), 0.5);
    EXPECT_EQ(std::get<std::uint64_t>(value("computed_events_total")), 42u);
    EXPECT_EQ(std::get<std::uint64_t>(value("existing_total")), 10u);
    EXPECT_EQ(std::get<std::int64_t>(value("existing_level")), -4);
    EXPECT_EQ(std::get<std::int64_t>(value("peak_level")), 77);

    auto cleared = reg.reset("existing_total");
    ASSERT_TRUE(cleared);
    EXPECT_EQ(std::get<std::uint64_t>(*cleared), 10u);
    EXPECT_EQ(c.value(), 0u);
    EXPECT_FALSE(reg.reset("computed_ratio"));  // callbacks cannot be reset
    EXPECT_FALSE(reg.reset("no_such_metric"));

    auto shards = reg.find("existing_level");
    ASSERT_TRUE(shards);
    EXPECT_EQ(shards->series[0].shards.size(), c.arena().rows());
    std::int64_t sum = 0;
    for (auto v : shards->series[0].shards) sum += v;
    EXPECT_EQ(sum, -4);
}

TEST(Registry, EachKindOfSourceReadsResetsAndReportsShards) {
    Registry reg;
    percore::MinGauge lo;
    lo.update(-5);
    percore::Histogram h(percore::HistogramLayout(2, 1'000'000));
    h.record(100);
    reg.add_gauge("low_level", "A min tracker.", {}, lo);
    reg.add_histogram("ref_duration_seconds", "A referenced histogram.", {}, h);  // ns, as seconds
    reg.gauge("owned_level", "An owned gauge.")->set(9);
    reg.add_histogram("cb_duration_seconds", "A callback histogram.", {}, [] {
        percore::HistogramData d;
        d.count = 2;
        return d;
    });
    auto series = [&](const char* id) { return reg.find(id).value().series.at(0); };

    EXPECT_EQ(std::get<std::int64_t>(series("low_level").value), -5);
    EXPECT_TRUE(series("low_level").shards.empty());  // a tracker has no per-shard counts
    EXPECT_EQ(std::get<std::int64_t>(reg.reset("low_level").value()), -5);
    EXPECT_EQ(std::get<std::int64_t>(series("low_level").value), 0);  // no value yet: exported as 0

    const auto d = std::get<percore::HistogramData>(series("ref_duration_seconds").value);
    EXPECT_EQ(d.count, 1u);
    EXPECT_EQ(d.sum, 1e-7);  // 100 / 1e9, exactly the nearest double
    ASSERT_TRUE(d.snapshot);  // the core snapshot statsd subtracts
    EXPECT_EQ(d.snapshot->sum(), 100u);
    EXPECT_EQ(d.recorded, percore::Unit::nanoseconds);
    EXPECT_EQ(d.exported, percore::Unit::seconds);
    EXPECT_FALSE(reg.reset("ref_duration_seconds"));
    EXPECT_FALSE(std::get<percore::HistogramData>(series("cb_duration_seconds").value).snapshot);
    EXPECT_EQ(reg.find("cb_duration_seconds")->type, MetricType::histogram);

    EXPECT_EQ(std::get<std::int64_t>(reg.reset("owned_level").value()), 9);
    EXPECT_EQ(std::get<std::int64_t>(series("owned_level").value), 0);
    // Only registry-owned series can be handed out again.
    EXPECT_THROW(reg.histogram("ref_duration_seconds", "A referenced histogram."), MetricError);
    EXPECT_THROW(reg.gauge("low_level", "A min tracker."), MetricError);
    EXPECT_THROW(reg.histogram("bad_duration_seconds", "Bounds.", {}, percore::HistogramLayout(), {.bounds = {10, 5}}),
                 MetricError);
}

TEST(Registry, CreateRemoveWhileCollectingAndCounting) {
    Registry reg;
    auto hot = reg.counter("hot_total", "Updated on the fast path.");
    std::atomic<bool> stop{false};
    constexpr std::uint64_t kAdds = 200'000;
    std::thread writer([&] {
        for (std::uint64_t i = 0; i < kAdds; ++i) hot->inc();
    });
    std::thread churn([&] {
        for (int i = 0; !stop.load(); i = (i + 1) % 50) {
            const percore::Labels l{{"id", std::to_string(i)}};
            reg.gauge("churn_level", "Created and removed.", l)->set(i);
            reg.remove("churn_level", l);
        }
    });
    std::thread reader([&] {
        while (!stop.load()) {
            for (const auto& f : reg.collect())
                for (const auto& s : f.series)
                    if (f.name == "churn_level") {
                        ASSERT_EQ(s.labels.size(), 1u);
                        ASSERT_EQ(s.labels[0].first, "id");
                    }
        }
    });
    writer.join();
    stop = true;
    churn.join();
    reader.join();
    EXPECT_EQ(hot->value(), kAdds);
}

TEST(Registry, HistogramExportedWithFixedBounds) {
    Registry reg;
    auto h = reg.histogram("rpc_duration_seconds", "RPC time.", {}, percore::HistogramLayout(2, 1'000'000),
                           {.records = percore::Unit::microseconds, .bounds = {10, 100, 1000}});
    for (std::uint64_t v : {5, 50, 50, 500, 5000}) h->record(v);
    auto f = reg.find("rpc_duration_seconds");
    ASSERT_TRUE(f);
    const auto& d = std::get<percore::HistogramData>(f->series[0].value);
    EXPECT_EQ(d.count, 5u);
    EXPECT_DOUBLE_EQ(d.sum, 5605e-6);
    ASSERT_EQ(d.buckets.size(), 3u);
    EXPECT_EQ(d.buckets[0].cumulative_count, 1u);
    EXPECT_EQ(d.buckets[1].cumulative_count, 3u);
    EXPECT_EQ(d.buckets[2].cumulative_count, 4u);
    EXPECT_DOUBLE_EQ(d.buckets[2].upper_bound, 1000e-6);
    EXPECT_DOUBLE_EQ(d.max, 5000e-6);
}

TEST(Registry, QuantileFromBuckets) {
    std::vector<percore::HistogramData::Bucket> b{{1, 10}, {2, 90}, {4, 100}};
    EXPECT_EQ(percore::quantile_from_buckets(b, 0.05, 0.5, 3.5), 1);
    EXPECT_EQ(percore::quantile_from_buckets(b, 0.5, 0.5, 3.5), 2);
    EXPECT_EQ(percore::quantile_from_buckets(b, 0.99, 0.5, 3.5), 3.5);  // clamped to max
    EXPECT_EQ(percore::quantile_from_buckets({}, 0.5, 0, 0), 0);
}

TEST(Units, SecondsNamesRecordNanosecondsAndExportSeconds) {
    Registry reg;
    auto latency = reg.histogram("http_request_duration_seconds", "Time to serve a request.");
    latency->record(std::chrono::milliseconds(5));  // what ScopedTimer records: nanoseconds
    const auto d = histogram_of(reg, "http_request_duration_seconds");
    EXPECT_EQ(d.count, 1u);
    EXPECT_EQ(d.sum, 0.005);
    EXPECT_EQ(d.max, 0.005);
    EXPECT_EQ(d.recorded, Unit::nanoseconds);
    EXPECT_EQ(d.exported, Unit::seconds);
    const std::string text = percore::render(reg);
    EXPECT_NE(text.find("http_request_duration_seconds_sum 0.005\n"), std::string::npos) << text;

    auto size = reg.histogram("response_size_bytes", "Response size.");
    size->record(std::uint64_t{1500});
    EXPECT_EQ(histogram_of(reg, "response_size_bytes").sum, 1500);
    auto depth = reg.histogram("batch_depth", "Items per batch.");
    depth->record(std::uint64_t{7});
    EXPECT_EQ(histogram_of(reg, "batch_depth").exported, Unit::none);
    EXPECT_EQ(histogram_of(reg, "batch_depth").sum, 7);
}

TEST(Units, ExplicitUnitsConvertExactly) {
    EXPECT_EQ(percore::convert_unit(1895306531, Unit::nanoseconds, Unit::seconds), 1.895306531);
    EXPECT_EQ(percore::convert_unit(5605, Unit::microseconds, Unit::seconds), 0.005605);
    EXPECT_EQ(percore::convert_unit(3, Unit::seconds, Unit::milliseconds), 3000);
    EXPECT_EQ(percore::convert_unit(7, Unit::bytes, Unit::bytes), 7);
    EXPECT_THROW(percore::convert_unit(1, Unit::bytes, Unit::seconds), std::invalid_argument);

    Registry reg;
    auto us = reg.histogram("io_duration_seconds", "IO time.", {}, percore::HistogramLayout(),
                            {.records = Unit::microseconds});  // exports the base unit, seconds
    us->record(std::uint64_t{250});
    EXPECT_EQ(histogram_of(reg, "io_duration_seconds").sum, 0.00025);
    auto ms = reg.histogram("gc_pause_seconds", "GC pauses.", {}, percore::HistogramLayout(),
                            {.records = Unit::milliseconds, .exports = Unit::seconds, .bounds = {1, 10}});
    ms->record(std::uint64_t{4});
    const auto d = histogram_of(reg, "gc_pause_seconds");
    EXPECT_EQ(d.sum, 0.004);
    ASSERT_EQ(d.buckets.size(), 2u);
    EXPECT_EQ(d.buckets[0].upper_bound, 0.001);  // bounds are given in recorded units
    EXPECT_EQ(d.buckets[1].upper_bound, 0.01);
}

TEST(Units, NameAndUnitMustAgree) {
    std::vector<std::string> lint;
    Registry reg(percore::RegistryOptions{.on_lint = [&](std::string_view m) { lint.emplace_back(m); }});
    const auto wrong = error_of([&] {
        reg.histogram("rpc_duration_seconds", "RPC time.", {}, percore::HistogramLayout(),
                      {.exports = Unit::milliseconds});
    });
    EXPECT_NE(wrong.find("\"_seconds\" but exports milliseconds"), std::string::npos) << wrong;
    const auto bytes = error_of([&] {
        reg.histogram("payload_bytes", "Payload.", {}, percore::HistogramLayout(), {.records = Unit::nanoseconds});
    });
    EXPECT_NE(bytes.find("\"_bytes\" but exports seconds"), std::string::npos) << bytes;
    const auto kinds = error_of([&] {
        reg.histogram("odd_thing", "Odd.", {}, percore::HistogramLayout(),
                      {.records = Unit::bytes, .exports = Unit::seconds});
    });
    EXPECT_NE(kinds.find("records bytes but exports seconds"), std::string::npos) << kinds;
    EXPECT_EQ(reg.series_count(), 0u);

    // Exporting a unit the name does not carry registers, with a warning.
    reg.histogram("io_wait", "IO wait.", {}, percore::HistogramLayout(), {.exports = Unit::seconds});
    ASSERT_EQ(lint.size(), 1u);
    EXPECT_NE(lint[0].find("_seconds"), std::string::npos) << lint[0];
    // One family, one unit.
    const auto mixed = error_of([&] {
        reg.histogram("io_wait", "IO wait.", {{"dev", "sda"}}, percore::HistogramLayout(),
                      {.exports = Unit::milliseconds});
    });
    EXPECT_NE(mixed.find("already registered"), std::string::npos) << mixed;
}

TEST(Registry, FailedRegistrationLeavesNoTrace) {
    Registry reg;
    EXPECT_THROW(reg.counter("hw1_total", "Help A.", {{"k", "\xff"}}), MetricError);
    EXPECT_NO_THROW(reg.counter("hw1_total", "Help B.", {{"j", "v"}}));
    EXPECT_THROW(reg.gauge("hw2_level", "Help A.", {{"k", "\xff"}}), MetricError);
    EXPECT_NO_THROW(reg.gauge("hw2_level", "Help B.", {{"j", "v"}}));
    EXPECT_THROW(reg.histogram("hw3_duration_seconds", "Help A.", {{"k", "\xff"}}), MetricError);
    EXPECT_NO_THROW(reg.histogram("hw3_duration_seconds", "Help B.", {{"j", "v"}}));
    percore::Counter c;
    EXPECT_THROW(reg.add_counter("hw4_total", "Help A.", {{"k", "a\rb"}}, c), MetricError);
    EXPECT_NO_THROW(reg.add_counter("hw4_total", "Help B.", {}, c));
    // A histogram refused for its bounds leaves its name free, even for another type.
    EXPECT_THROW(reg.histogram("hw5_duration_seconds", "H.", {}, percore::HistogramLayout(), {.bounds = {5, 1}}),
                 MetricError);
    EXPECT_NO_THROW(reg.gauge_family("hw5_duration_seconds", "Now a gauge.", {}));
    EXPECT_EQ(reg.series_count(), 4u);
}

TEST(Registry, WithAfterRemoveFamilySaysSo) {
    Registry reg;
    auto fam = reg.counter_family("jobs_total", "Jobs.", {"kind"});
    fam.with({"a"})->inc();
    ASSERT_TRUE(reg.remove_family("jobs_total"));
    for (const char* v : {"a", "b"}) {
        const auto m = error_of([&] { fam.with({v}); });
        EXPECT_NE(m.find("\"jobs_total\" was removed"), std::string::npos) << m;
    }
    auto again = reg.counter_family("jobs_total", "Jobs.", {"kind"});
    EXPECT_EQ(again.with({"a"})->value(), 0u);
}

TEST(Registry, OpenMetricsNameCollisionsAreRefused) {
    struct Case {
        MetricType first_type;
        const char* first;
        MetricType second_type;
        const char* second;
    };
    const Case cases[] = {
        {MetricType::gauge, "x", MetricType::counter, "x_total"},
        {MetricType::counter, "x_total", MetricType::gauge, "x"},
        {MetricType::counter, "x_total", MetricType::gauge, "x_created"},
        {MetricType::counter, "x_total", MetricType::counter, "x_total_total"},
        {MetricType::histogram, "y", MetricType::gauge, "y_bucket"},
        {MetricType::histogram, "y", MetricType::gauge, "y_count"},
        {MetricType::histogram, "y", MetricType::gauge, "y_sum"},
        {MetricType::histogram, "y", MetricType::gauge, "y_created"},
        {MetricType::gauge, "y_sum", MetricType::histogram, "y"},
        {MetricType::histogram, "y", MetricType::counter, "y_count_total"},
        {MetricType::gauge, "z", MetricType::gauge, "z_info"},
    };
    auto add = [](Registry& reg, MetricType t, const char* name) {
        switch (t) {
            case MetricType::counter: reg.counter(name, "Help.")->inc(); break;
            case MetricType::gauge: reg.gauge(name, "Help.")->set(1); break;
            case MetricType::histogram: reg.histogram(name, "Help.")->record(std::uint64_t{1}); break;
        }
    };
    for (const auto& c : cases) {
        Registry reg(percore::RegistryOptions{.on_lint = [](std::string_view) {}});
        add(reg, c.first_type, c.first);
        const auto m = error_of([&] { add(reg, c.second_type, c.second); });
        EXPECT_NE(m.find(std::string("\"") + c.first + "\""), std::string::npos)
            << c.second << " should name " << c.first << ": " << m;
        const std::string om = percore::render(reg, percore::ExpositionFormat::openmetrics);
        const auto problems = percore::test::check_exposition(om, true);
        EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << om;
        // Removing the first frees its names.
        reg.remove_family(c.first);
        EXPECT_NO_THROW(add(reg, c.second_type, c.second)) << c.second;
    }
    Registry fine;
    fine.gauge("x", "Help.");
    fine.gauge("x_ratio", "Help.");
    fine.counter("x_ratio_events_total", "Help.");
    EXPECT_EQ(fine.series_count(), 3u);
}

TEST(Family, HistogramFamilyAndConstantLabels) {
    Registry reg(percore::RegistryOptions{.const_labels = {{"instance_role", "edge"}}});
    auto ops = reg.histogram_family("op_duration_seconds", "Op time.", {"op"},
                                    percore::HistogramLayout(2, 1'000'000'000), {.bounds = {1'000, 1'000'000}});
    auto read = ops.with({"read"});
    EXPECT_EQ(ops.with({"read"}).get(), read.get());
    EXPECT_EQ(read->layout().highest(), 1'000'000'000u);
    read->record(std::chrono::microseconds(20));
    reg.counter("requests_total", "Requests.", {{"method", "get"}})->add(3);

    const auto snap = reg.collect();
    ASSERT_EQ(snap.size(), 2u);
    for (const auto& f : snap) {
        ASSERT_FALSE(f.series.empty());
        EXPECT_EQ(f.series[0].labels.at(0), (std::pair<std::string, std::string>{"instance_role", "edge"})) << f.name;
    }
    const std::string text = percore::render(reg);
    EXPECT_NE(text.find("requests_total{instance_role=\"edge\",method=\"get\"} 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("op_duration_seconds_bucket{instance_role=\"edge\",op=\"read\",le=\"0.001\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("op_duration_seconds_sum{instance_role=\"edge\",op=\"read\"} 2e-05\n"), std::string::npos)
        << text;
    EXPECT_TRUE(percore::test::check_exposition(text, false).empty());
    // Found by the id exporters print, or without the constant labels.
    EXPECT_TRUE(reg.find(R"(requests_total{instance_role="edge",method="get"})"));
    EXPECT_TRUE(reg.find(R"(requests_total{method="get"})"));
    EXPECT_FALSE(reg.find(R"(requests_total{instance_role="core",method="get"})"));
    EXPECT_TRUE(reg.reset(R"(requests_total{instance_role="edge",method="get"})"));

    const auto clash = error_of([&] { reg.gauge("temp_celsius", "T.", {{"instance_role", "core"}}); });
    EXPECT_NE(clash.find("constant label"), std::string::npos) << clash;
    EXPECT_THROW(Registry(percore::RegistryOptions{.const_labels = {{"le", "1"}}}), MetricError);
    EXPECT_THROW(Registry(percore::RegistryOptions{.const_labels = {{"a", "1"}, {"a", "2"}}}), MetricError);
    EXPECT_THROW(Registry(percore::RegistryOptions{.const_labels = {{"a", "\xff"}}}), MetricError);
    EXPECT_THROW(Registry(percore::RegistryOptions{.const_labels = {{"bad-name", "x"}}}), MetricError);
}

TEST(Family, CardinalityLimitRefusesAndCounts) {
    Registry reg;
    auto fam = reg.counter_family("hits_total", "Hits.", {"path"}, {.max_series = 2});
    auto a = fam.with({"/a"});
    fam.with({"/b"});
    const auto m = error_of([&] { fam.with({"/c"}); });
    EXPECT_NE(m.find("limit"), std::string::npos) << m;
    EXPECT_NE(m.find("percore_series_refused_total"), std::string::npos) << m;
    EXPECT_EQ(fam.with({"/a"}).get(), a.get());  // existing series still served
    EXPECT_THROW(reg.counter("hits_total", "Hits.", {{"path", "/d"}}), MetricError);  // same limit by name
    const auto refused = reg.find(R"(percore_series_refused_total{family="hits_total"})");
    ASSERT_TRUE(refused);
    EXPECT_EQ(std::get<std::uint64_t>(refused->series[0].value), 2u);
    EXPECT_TRUE(fam.remove({"/b"}));
    EXPECT_NO_THROW(fam.with({"/c"}));  // room again

    Registry capped(percore::RegistryOptions{.max_series_per_family = 1});
    capped.gauge("depth_level", "D.", {{"q", "1"}});
    EXPECT_THROW(capped.gauge("depth_level", "D.", {{"q", "2"}}), MetricError);
    auto wide = capped.gauge_family("wide_level", "W.", {"q"}, {.max_series = 3});
    for (const char* q : {"1", "2", "3"}) EXPECT_NO_THROW(wide.with({q}));
    const std::string text = percore::render(capped);
    EXPECT_NE(text.find("percore_series_refused_total{family=\"depth_level\"} 1\n"), std::string::npos) << text;
}

// with() on the shared-lock path racing new series, remove_family and a new
// registration of the same name: every call either returns a live series or
// says the family was removed.
TEST(Family, WithRacesRemoveFamily) {
    Registry reg;
    constexpr int kRounds = 200;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> served{0}, refused{0};
    auto fam = std::make_shared<percore::Family<percore::Counter>>(reg.counter_family("race_total", "Race.", {"k"}));
    std::shared_ptr<percore::Family<percore::Counter>> current = fam;
    std::mutex handle_mu;
    auto worker = [&](int id) {
        for (int i = 0; !stop.load(); i = (i + 1) % 8) {
            std::shared_ptr<percore::Family<percore::Counter>> f;
            {
                std::lock_guard lk(handle_mu);
                f = current;
            }
            try {
                f->with({std::to_string((i + id) % 8)})->inc();
                served.fetch_add(1);
            } catch (const MetricError& e) {
                ASSERT_NE(std::string(e.what()).find("was removed"), std::string::npos) << e.what();
                refused.fetch_add(1);
            }
        }
    };
    std::thread w1(worker, 0), w2(worker, 3);
    std::thread reader([&] {
        while (!stop.load())
            for (const auto& f : reg.collect())
                for (const auto& s : f.series) ASSERT_EQ(s.labels.size(), 1u);
    });
    for (int r = 0; r < kRounds; ++r) {
        reg.remove_family("race_total");
        auto next = std::make_shared<percore::Family<percore::Counter>>(
            reg.counter_family("race_total", "Race.", {"k"}));
        std::lock_guard lk(handle_mu);
        current = next;
    }
    // Let the workers use the last handle before stopping.
    while (served.load() == 0) std::this_thread::yield();
    stop = true;
    w1.join();
    w2.join();
    reader.join();
    EXPECT_GT(served.load(), 0u);
    EXPECT_LE(reg.series_count(), 8u);
}

}  // namespace
