// SPDX-License-Identifier: MIT
// percore-bench's bar chart never draws an empty bar silently: a value below
// the log axis' floor (zero or negative, i.e. within noise) gets a labelled
// marker, a missing one "n/a".
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "bench/svg.hpp"

namespace {

TEST(BenchSvg, NoSilentEmptyBars) {
    const std::string path = ::testing::TempDir() + "bars.svg";
    using percore::bench::Series;
    ASSERT_TRUE(percore::bench::write_bars(path, "t", "y", {"a", "b", "c"},
                                           {Series{"s", {3.0, -0.5, NAN}}}));
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string svg = ss.str();
    EXPECT_NE(svg.find(">3<"), std::string::npos) << svg;      // drawn to scale, labelled
    EXPECT_NE(svg.find(">-0.5~<"), std::string::npos) << svg;  // below the floor: a marker and its value
    EXPECT_NE(svg.find(">n/a<"), std::string::npos) << svg;    // not measured
    EXPECT_NE(svg.find("within noise"), std::string::npos);    // the legend says what the markers mean
}

}  // namespace
