#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# percore-bench refuses bad arguments with a message (never a crash or NaN),
# and does exactly what it is told: -t 3 -n 7 adds 7, files land in -o DIR.
# (percore-demo's arguments are tested by demo_it.sh.)
# Usage: tools_args.sh PERCORE_BENCH WORK_DIR
set -uo pipefail
bench=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}
refused() {  # refused PATTERN CMD...: exits 1..127 (an error, not a signal) and says PATTERN
  local pat=$1; shift
  "$@" >"$work/out" 2>&1
  local rc=$?
  [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] && grep -qi -- "$pat" "$work/out"
}
check "bench scaling -t 0 refused" refused "threads" "$bench" scaling -t 0 -r 1 -q --csv '' --svg ''
check "bench scaling -n 0 refused" refused "ops" "$bench" scaling -n 0 -r 1 -q --csv '' --svg ''
check "bench ep -n 0 refused" refused "packets" "$bench" ep -n 0 -q --csv '' --svg ''
check "bench ep --work-cycles 0 refused" refused "work-cycles" "$bench" ep --work-cycles 0 -q --csv '' --svg ''
check "bench ep --wb-soft > capacity refused" refused "wb-soft" "$bench" ep --wb-capacity 4 --wb-soft 8 -q

"$bench" scaling -t 1 3 -n 7 -r 1 -q -o "$work/results" >"$work/scaling.out" 2>&1
check "bench scaling -t 3 -n 7 adds exactly 7" [ "$(grep -c ' 7 (exact)' "$work/scaling.out")" -eq 4 ]
check "bench scaling writes into -o" [ -s "$work/results/scaling.csv" ] && [ -s "$work/results/scaling.svg" ]

"$bench" ep -w 1 -n 2000 -r 1 --read-ms 0 -q -o "$work/ep" --only per-core >"$work/ep.out" 2>&1
check "bench ep explains its columns" grep -q "^columns: W workers" "$work/ep.out"
check "bench ep writes into -o" [ -s "$work/ep/ep.csv" ] && [ -s "$work/ep/ep-overhead.svg" ]
exit $fail
