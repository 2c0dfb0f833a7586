// SPDX-License-Identifier: MIT
// The exporters' shared text module: shortest round-trip numbers, exact
// integers, decimal scaling, and the Prometheus and statsd escaping rules.
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "../src/format.hpp"
#include "percore/export/metric_names.hpp"

namespace {

namespace text = percore::text;

template <class T>
std::string number(T v) {
    std::string out;
    text::append_number(out, v);
    return out;
}

std::string fixed(double v) {
    std::string out;
    text::append_fixed(out, v);
    return out;
}

std::string as_float(double v) {
    std::string out;
    text::append_float(out, v);
    return out;
}

double parse(const std::string& s) {
    double v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    EXPECT_EQ(r.ec, std::errc()) << s;
    EXPECT_EQ(r.ptr, s.data() + s.size()) << s;
    return v;
}

TEST(Format, ShortestRoundTrip) {
    EXPECT_EQ(number(0.1), "0.1");
    EXPECT_EQ(number(0.1 + 0.2), "0.30000000000000004");
    EXPECT_EQ(number(1.895306531), "1.895306531");
    EXPECT_EQ(number(1e21), "1e+21");
    EXPECT_EQ(number(5e-324), "5e-324");
    EXPECT_EQ(number(-0.0), "-0");
    EXPECT_EQ(number(0.0), "0");
    EXPECT_EQ(number(100.0), "100");
    EXPECT_EQ(number(2.007e-06), "2.007e-06");
    EXPECT_EQ(number(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
    EXPECT_EQ(number(std::numeric_limits<double>::min()), "2.2250738585072014e-308");
    EXPECT_EQ(number(9007199254740992.0), "9007199254740992");  // 2^53
    for (double v : {0.1, 1.895306531, 1e21, 5e-324, 1e-300, 123456789.012345678, 0.995, 1.0 / 3})
        EXPECT_EQ(parse(number(v)), v);
    EXPECT_TRUE(std::signbit(parse(number(-0.0))));
    // Any bit pattern that is a finite double reads back to itself.
    std::mt19937_64 rng(42);
    for (int i = 0; i < 100'000; ++i) {
        const double v = std::bit_cast<double>(rng());
        if (!std::isfinite(v)) continue;
        ASSERT_EQ(std::bit_cast<std::uint64_t>(parse(number(v))), std::bit_cast<std::uint64_t>(v)) << number(v);
    }
}

TEST(Format, PrometheusSpecialValues) {
    EXPECT_EQ(number(std::numeric_limits<double>::quiet_NaN()), "NaN");
    EXPECT_EQ(number(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(number(-std::numeric_limits<double>::infinity()), "-Inf");
    // OpenMetrics `le` values keep a fraction; non-finite ones stay as they are.
    EXPECT_EQ(as_float(1), "1.0");
    EXPECT_EQ(as_float(100), "100.0");
    EXPECT_EQ(as_float(0.5), "0.5");
    EXPECT_EQ(as_float(5e-09), "5e-09");
    EXPECT_EQ(as_float(1e21), "1e+21");
    EXPECT_EQ(as_float(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(as_float(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Format, IntegersExact) {
    EXPECT_EQ(number(std::uint64_t{0}), "0");
    EXPECT_EQ(number(std::uint64_t{9007199254740993}), "9007199254740993");  // 2^53 + 1: no double holds it
    EXPECT_EQ(number(std::numeric_limits<std::uint64_t>::max()), "18446744073709551615");
    EXPECT_EQ(number(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
    EXPECT_EQ(number(-17), "-17");
}

TEST(Format, FixedNotationForSampleRates) {
    EXPECT_EQ(fixed(0.0001), "0.0001");
    EXPECT_EQ(fixed(1e-5), "0.00001");
    EXPECT_EQ(fixed(0.999999), "0.999999");
    EXPECT_EQ(fixed(0.5), "0.5");
    EXPECT_EQ(fixed(1e21), "1000000000000000000000");
    const std::string tiny = fixed(5e-324);
    EXPECT_EQ(tiny.find('e'), std::string::npos);
    EXPECT_EQ(parse(tiny), 5e-324);
    EXPECT_EQ(parse(fixed(-std::numeric_limits<double>::max())), -std::numeric_limits<double>::max());
}

TEST(Format, DecimalScalesStayExact) {
    EXPECT_EQ(number(1895306531 * 1e-9), "1.8953065310000001");  // what a plain multiplication gives
    EXPECT_EQ(number(text::scaled(1895306531, 1e-9)), "1.895306531");
    EXPECT_EQ(number(text::scaled(995, 1e-3)), "0.995");
    EXPECT_EQ(number(text::scaled(2007, 1e-9)), "2.007e-06");
    EXPECT_EQ(number(text::scaled(3180000, 1e-9)), "0.00318");
    EXPECT_EQ(number(text::scaled(5, 0.1)), "0.5");
    EXPECT_EQ(number(text::scaled(3, 2.5)), "7.5");
    EXPECT_EQ(number(text::scaled(7, 1)), "7");
    EXPECT_EQ(text::scaled(0, 1e-9), 0.0);
}

TEST(Format, PrometheusEscaping) {
    std::string out;
    text::append_label_value(out, "a\"b\\c\nd\te");
    EXPECT_EQ(out, "a\\\"b\\\\c\\nd\te");
    out.clear();
    text::append_help(out, "say \"hi\"\\\n", false);  // text 0.0.4 leaves the quote alone
    EXPECT_EQ(out, "say \"hi\"\\\\\\n");
    out.clear();
    text::append_help(out, "say \"hi\"\\\n", true);
    EXPECT_EQ(out, "say \\\"hi\\\"\\\\\\n");
    // Bytes pass through unchanged: registration refuses invalid UTF-8, so
    // escaping never has to repair it.
    const std::string invalid = "\xff\xfe \xc3";
    EXPECT_NE(percore::label_value_error(invalid), "");
    out.clear();
    text::append_label_value(out, invalid);
    EXPECT_EQ(out, invalid);
    out.clear();
    text::append_label_value(out, "\xc3\xa9");
    EXPECT_EQ(out, "\xc3\xa9");
}

TEST(Format, StatsdEscaping) {
    std::string out;
    text::append_statsd_name(out, "a:b|c@d#e f\n.x-y_Z9");
    EXPECT_EQ(out, "a_b_c_d_e_f_.x-y_Z9");
    out.clear();
    text::append_statsd_name(out, "v1.2", false);  // a label value stays one segment
    EXPECT_EQ(out, "v1_2");
    out.clear();
    text::append_statsd_tag(out, "a:b,c|d@e#f g\r\n.\xc3\xa9");
    EXPECT_EQ(out, "a_b_c_d_e_f_g__.\xc3\xa9");
}

}  // namespace
