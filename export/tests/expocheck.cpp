// SPDX-License-Identifier: MIT
// expocheck [--openmetrics] < exposition: runs the strict checks; exit 1 on problems.
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>
#include <algorithm>

#include "exposition_check.hpp"

int main(int argc, char** argv) {
    const bool om = argc > 1 && std::strcmp(argv[1], "--openmetrics") == 0;
    const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    const auto problems = percore::test::check_exposition(text, om);
    for (const auto& p : problems) std::cerr << p << '\n';
    return problems.empty() ? 0 : 1;
}
