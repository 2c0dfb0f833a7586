#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang and runs each for a few seconds.
# Without clang or its libFuzzer runtime (scripts/deps --peers installs
# clang-14 and libclang-rt-14-dev) it exits 77, the test's SKIP_RETURN_CODE.
# Usage: export/fuzz/run.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src=$1 out=$2 secs=${3:-10}
skip() {
  echo "SKIP: $* (scripts/deps --peers installs it)"
  exit 77
}
cxx=$(command -v clang++-14 || command -v clang++) || skip "clang++ not found on PATH"
[ -f "$("$cxx" --print-runtime-dir)/libclang_rt.fuzzer-$(uname -m).a" ] || skip "libFuzzer runtime of $cxx not found"
mkdir -p "$out/corpus"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src/include" -I"$src/export/include")
core=("$src/export/src/metric_names.cpp" "$src/export/src/registry.cpp")
build() {  # target extra-sources...
  local t=$1; shift
  [ "$out/$t" -nt "$src/export/fuzz/$t.cpp" ] && [ -z "$(find "$src/export" "$src/include" -newer "$out/$t" -print -quit)" ] && return 0
  "$cxx" "${flags[@]}" "$src/export/fuzz/$t.cpp" "${core[@]}" "$@" -o "$out/$t"
}
build telemetry_fuzz "$src/export/src/telemetry_commands.cpp" "$src/export/src/metrics_json.cpp"
build names_fuzz "$src/export/src/prometheus.cpp"
mkdir -p "$out/corpus/telemetry" "$out/corpus/names"
printf '/percore/get,fuzz_events_total{kind="a\\"b"}' > "$out/corpus/telemetry/get"
printf '/help,/info' > "$out/corpus/telemetry/help"
printf 'requests_total\0method\0get\0Help.' > "$out/corpus/names/ok"
"$out/telemetry_fuzz" -max_total_time="$secs" -max_len=2048 "$out/corpus/telemetry" 2>&1 | tail -2
"$out/names_fuzz" -max_total_time="$secs" -max_len=512 "$out/corpus/names" 2>&1 | tail -2
