#!/usr/bin/env bash
# Builds and installs percore from SRC into a scratch prefix, then builds
# tiny consumers against the installed copy: the header-only core with
# find_package(percore CONFIG) and with pkg-config, and percore::export with
# find_package. Nothing from the source tree is visible to the consumers.
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DPERCORE_BUILD_TESTS=OFF -DPERCORE_BUILD_BENCH=OFF \
      -DPERCORE_BUILD_TOOLS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/build" -j "$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null

mkdir -p "$work/consumer"
cat > "$work/consumer/main.cpp" <<'CPP'
#include <percore/percore.hpp>
#include <cstdio>
#include <thread>
int main() {
    percore::Counter hits;
    std::thread a([&] { for (int i = 0; i < 1000; ++i) hits.inc(); });
    std::thread b([&] { for (int i = 0; i < 1000; ++i) hits.inc(); });
    a.join();
    b.join();
    std::printf("%s %llu\n", percore::backend_name(), (unsigned long long)hits.value());
    return hits.value() == 2000 ? 0 : 1;
}
CPP
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
find_package(percore 0.1 CONFIG REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE percore::percore)
add_executable(exporter exporter.cpp)
target_link_libraries(exporter PRIVATE percore::export)
CM
cat > "$work/consumer/exporter.cpp" <<'CPP'
#include <percore/export/prometheus.hpp>
#include <percore/export/registry.hpp>
#include <cstdio>
int main() {
    percore::Registry reg;
    reg.counter("requests_total", "Requests served.")->add(3);
    std::string text = percore::render(reg, percore::ExpositionFormat::text);
    std::fputs(text.c_str(), stdout);
    return text.find("requests_total 3") != std::string::npos ? 0 : 1;
}
CPP
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer"
"$work/consumer/build/exporter" >/dev/null

export PKG_CONFIG_PATH="$work/prefix/share/pkgconfig"
# shellcheck disable=SC2046
c++ "$work/consumer/main.cpp" -o "$work/consumer/pc" $(pkg-config --cflags --libs percore)
"$work/consumer/pc"
echo "install_consumer: find_package and pkg-config consumers OK"
