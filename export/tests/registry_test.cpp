// Registry: validation errors, get-or-create, families, references and
// callbacks, removal racing with readers, histograms.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "percore/export/registry.hpp"

namespace {

using percore::MetricError;
using percore::MetricType;
using percore::Registry;

TEST(Names, PrometheusRulesAndLint) {
    EXPECT_EQ(percore::metric_name_error("http_requests_total", MetricType::counter), "");
    EXPECT_EQ(percore::metric_name_error("queue_depth", MetricType::gauge), "");
    EXPECT_EQ(percore::metric_name_error("rpc_latency_seconds", MetricType::histogram), "");
    for (const char* bad : {"", "1abc", "a-b", "a b", "__x", "fooBar", "a:b", "latency_ms", "size_kilobytes",
                            "uptime_hours", "my_gauge_value", "x_count", "x_bucket", "x_sum"})
        EXPECT_NE(percore::metric_name_error(bad, MetricType::gauge), "") << bad;
    EXPECT_NE(percore::metric_name_error("requests", MetricType::counter), "");
    EXPECT_NE(percore::metric_name_error("depth_total", MetricType::gauge), "");
    EXPECT_NE(percore::label_name_error("le"), "");
    EXPECT_NE(percore::label_name_error("quantile"), "");
    EXPECT_NE(percore::label_name_error("__name"), "");
    EXPECT_NE(percore::label_name_error("0x"), "");
    EXPECT_EQ(percore::label_name_error("method"), "");
    EXPECT_EQ(percore::label_value_error("any \"thing\"\n\\ \xc3\xa9"), "");
    EXPECT_NE(percore::label_value_error("\xff\xfe"), "");
    EXPECT_NE(percore::label_value_error("\xc3"), "");          // truncated
    EXPECT_NE(percore::label_value_error("\xed\xa0\x80"), "");  // surrogate
    EXPECT_NE(percore::label_value_error("a\rb"), "");
    EXPECT_NE(percore::label_value_error(std::string("a\0b", 3)), "");
    EXPECT_NE(percore::help_error(""), "");
    EXPECT_NE(percore::help_error("x\ry"), "");
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
                           {1e-6, {10, 100, 1000}});
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

}  // namespace
