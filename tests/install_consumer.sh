#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and installs percore from SRC into a non-default prefix, then builds
# consumers against the installed copy only: the header-only core and
# percore::export, each with find_package(percore CONFIG) and with
# pkg-config. Then moves the whole prefix elsewhere and builds them all again
# (the CMake package and the .pc files are relocatable). Finally, a consumer
# compiled as C++17 must stop with percore's one-line "needs C++20" error.
# Usage: install_consumer.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix="$work/opt/percore"
cmake -S "$src" -B "$work/build" -G Ninja -DPERCORE_BUILD_TESTS=OFF -DPERCORE_BUILD_BENCH=OFF \
      -DPERCORE_BUILD_TOOLS=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
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
cat > "$work/consumer/exporter.cpp" <<'CPP'
#include <percore/export/prometheus.hpp>
#include <percore/export/registry.hpp>
#include <cstdio>
int main() {
    percore::Registry reg;
    reg.counter("requests_total", "Requests served.")->add(3);
    std::string text = percore::render(reg, percore::ExpositionFormat::text);
    return text.find("requests_total 3") != std::string::npos ? 0 : 1;
}
CPP
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(percore 0.1 CONFIG REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE percore::percore)
add_executable(exporter exporter.cpp)
target_link_libraries(exporter PRIVATE percore::export)
CM

consume() {  # consume PREFIX TAG: every consumer against the install at PREFIX
  local p=$1 tag=$2 out="$work/consumer/$2"
  rm -rf "$out"
  cmake -S "$work/consumer" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$p" >/dev/null
  cmake --build "$out/cmake" >/dev/null
  "$out/cmake/consumer" >/dev/null
  "$out/cmake/exporter"
  local pcpath
  pcpath="$p/share/pkgconfig:$(dirname "$(find "$p" -name percore-export.pc)")"
  # The .pc files must not force a language standard on the consumer.
  if PKG_CONFIG_PATH="$pcpath" pkg-config --cflags percore-export | grep -q -- '-std='; then
    echo "percore .pc files force -std" >&2
    return 1
  fi
  # shellcheck disable=SC2046
  c++ -std=c++20 "$work/consumer/main.cpp" -o "$out/pc" $(PKG_CONFIG_PATH="$pcpath" pkg-config --cflags --libs percore)
  "$out/pc" >/dev/null
  # shellcheck disable=SC2046
  c++ -std=c++20 "$work/consumer/exporter.cpp" -o "$out/pc-export" \
    $(PKG_CONFIG_PATH="$pcpath" pkg-config --cflags --libs percore-export)
  "$out/pc-export"
  echo "install_consumer: $tag: find_package and pkg-config consumers (core and export) OK"
}
consume "$prefix" "installed at $prefix"
moved="$work/moved/somewhere/else"
mkdir -p "$(dirname "$moved")"
mv "$prefix" "$moved"
consume "$moved" "prefix moved to $moved"

# Built as C++17: one clear error from percore, then the compiler stops.
if c++ -std=c++17 -I"$moved/include" "$work/consumer/main.cpp" -o "$work/c17" 2>"$work/c17.err"; then
  echo "a C++17 build of percore did not fail" >&2
  exit 1
fi
grep -q "percore needs C++20" "$work/c17.err"
errors=$(grep -c "error" "$work/c17.err")
[ "$errors" -le 3 ] || { cat "$work/c17.err" >&2; echo "C++17 build: $errors error lines, want one clear message" >&2; exit 1; }
echo "install_consumer: C++17 consumer stops with: $(grep -m1 -o 'percore needs C++20[^"]*' "$work/c17.err")"
