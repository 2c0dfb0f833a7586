#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/demo, as a new user runs it, into a scratch build directory: it
# shows build progress and builds only the demo (no test or benchmark
# binaries), then runs it.
# Usage: demo_script.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work"
PERCORE_BUILD_DIR="$work" "$src/scripts/demo" -w 2 -d 0.5 --cost-ms 50 --cost-reps 1 --compare-ops 100000 \
  >"$work.out" 2>"$work.err" || {
  cat "$work.err" "$work.out"; exit 1; }
grep -q '^  \[[0-9]*/[0-9]*\]' "$work.err" || { echo "no build progress shown"; cat "$work.err"; exit 1; }
grep -q '^exact: ' "$work.out" || { echo "the demo did not run"; cat "$work.out"; exit 1; }
grep -q 'percore::Counter .* (exact)' "$work.out" || { echo "no scaling table"; cat "$work.out"; exit 1; }
built=$(find "$work" -type f -executable -name '*_test' -o -type f -executable -name '*_bench' | wc -l)
[ "$built" -eq 0 ] || { echo "scripts/demo built $built test/benchmark binaries"; exit 1; }
echo "demo_script: progress shown, only the demo built, demo ran"
