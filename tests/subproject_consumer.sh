#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# percore pulled into another project's build, with add_subdirectory and with
# FetchContent: the consumer gets the header-only core and nothing else. The
# exporters' dependencies are made unfindable (pkg-config sees no packages,
# nlohmann-json is disabled), so a configure that reached for them fails.
# Then an install with PERCORE_BUILD_EXPORT=OFF must hold no export headers.
# Usage: subproject_consumer.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
mkdir -p "$work/app"
cat > "$work/app/main.cpp" <<'CPP'
#include <percore/percore.hpp>
int main() {
    percore::Counter c;
    c.add(5);
    return c.value() == 5 ? 0 : 1;
}
CPP
for how in add_subdirectory FetchContent; do
  if [ "$how" = add_subdirectory ]; then
    pull="add_subdirectory(\"$src\" percore)"
  else
    pull="include(FetchContent)
FetchContent_Declare(percore SOURCE_DIR \"$src\")
FetchContent_MakeAvailable(percore)"
  fi
  cat > "$work/app/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(app CXX)
$pull
if(TARGET percore_export OR TARGET percore-demo OR TARGET counter_test)
  message(FATAL_ERROR "a subproject consumer got more than the core")
endif()
add_executable(app main.cpp)
target_link_libraries(app PRIVATE percore::percore)
CM
  PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= \
    cmake -S "$work/app" -B "$work/build-$how" -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON >/dev/null
  cmake --build "$work/build-$how" >/dev/null
  "$work/build-$how/app"
  echo "subproject_consumer: $how OK (core only, no exporter dependencies)"
done

cmake -S "$src" -B "$work/core-only" -DPERCORE_BUILD_EXPORT=OFF -DPERCORE_BUILD_TESTS=OFF \
      -DPERCORE_BUILD_BENCH=OFF -DPERCORE_BUILD_TOOLS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/core-only" >/dev/null
[ -f "$work/prefix/include/percore/counter.hpp" ]
if [ -e "$work/prefix/include/percore/export" ]; then
  echo "core-only install holds export headers" >&2
  exit 1
fi
echo "subproject_consumer: core-only install has no export headers"
