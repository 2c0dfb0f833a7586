#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fleet: three percore-demo processes, each serving Prometheus on its own
# port, one real Prometheus scraping all three (job and instance labels).
# Sums and quantiles across instances must agree with the processes' own
# final totals (fleet_check.py says how). docs/fleet.md describes it.
# Usage: fleet_it.sh PERCORE_DEMO
set -euo pipefail
demo=$1
here=$(dirname "$0")
. "$here/peers.sh"
need_cmd prometheus curl python3 ss
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-fleet.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT

ports=() targets=() args=()
for i in 1 2 3; do
  ports+=("$(free_port)")
  targets+=("127.0.0.1:${ports[-1]}")
  args+=("$work/demo$i.out:127.0.0.1:${ports[-1]}")
done
# Prometheus first, so it scrapes the demos from their first second.
start_prometheus percore-demo "${targets[@]}"

for i in 1 2 3; do
  # --hold keeps /metrics up after the totals are final, for a last scrape.
  "$demo" --workers 1 --duration 12 --rate 20000 --seed "$i" --json --hold --no-compare --no-cost \
    --prometheus "127.0.0.1:${ports[$((i - 1))]}" > "$work/demo$i.out" 2> "$work/demo$i.err" &
  PIDS+=($!)
done

status=0
python3 "$here/fleet_check.py" "http://127.0.0.1:$pport/api/v1" percore-demo "${args[@]}" || status=1
# SIGTERM ends a holding demo with status 0.
for i in 1 2 3; do
  kill -TERM "${PIDS[$i]}"  # PIDS[0] is Prometheus
  rc=0; wait "${PIDS[$i]}" || rc=$?
  if [ "$rc" -ne 0 ]; then echo "FAIL demo $i exited $rc after SIGTERM"; cat "$work/demo$i.err"; status=1; fi
done
[ "$status" -eq 0 ] || { tail -n 3 "$work"/demo*.out "$work"/demo*.err; }
exit $status
