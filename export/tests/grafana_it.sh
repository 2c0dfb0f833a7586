#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# docs/grafana/percore-demo.json against a real Prometheus: Prometheus
# scrapes a running percore-demo every second, and every query in the
# dashboard must return data (grafana_queries.py).
# Usage: grafana_it.sh PERCORE_DEMO DASHBOARD_JSON
set -euo pipefail
demo=$1 dashboard=$2
here=$(dirname "$0")
. "$here/peers.sh"
need_cmd prometheus curl python3 ss
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-grafana.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT

dport=$(free_port)
"$demo" --workers 2 --duration 0 --rate 20000 --no-compare --no-cost --prometheus "127.0.0.1:$dport" > "$work/demo.out" 2>&1 &
PIDS+=($!)
wait_for 30 curl -sf "http://127.0.0.1:$dport/metrics" || { cat "$work/demo.out"; exit 1; }

start_prometheus percore-demo "127.0.0.1:$dport"

# rate(...[1m]) needs two samples in its window: wait for three scrapes.
scrapes() {
  curl -sf --data-urlencode 'query=count_over_time(up{job="percore-demo"}[1m])' "$api/query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) >= 3 else 1)'
}
wait_for 60 scrapes || { echo "FAIL: Prometheus did not scrape the demo 3 times"; curl -s "$api/targets"; exit 1; }
python3 "$here/grafana_queries.py" "$dashboard" "$api"
