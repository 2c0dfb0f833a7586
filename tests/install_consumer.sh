#!/usr/bin/env bash
# Installs percore from SRC into a scratch prefix, then builds a tiny
# consumer against the installed copy twice: with find_package(percore
# CONFIG) and with pkg-config. Nothing from the source tree is visible to
# the consumer.
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DPERCORE_BUILD_TESTS=OFF -DPERCORE_BUILD_BENCH=OFF \
      -DPERCORE_BUILD_TOOLS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
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
CM
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer"

export PKG_CONFIG_PATH="$work/prefix/share/pkgconfig"
# shellcheck disable=SC2046
c++ "$work/consumer/main.cpp" -o "$work/consumer/pc" $(pkg-config --cflags --libs percore)
"$work/consumer/pc"
echo "install_consumer: find_package and pkg-config consumers OK"
