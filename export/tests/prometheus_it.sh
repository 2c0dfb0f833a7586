#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real Prometheus server scrapes the fixture on loopback; the values read
# back through its HTTP API must be the ones the fixture recorded. Also runs
# promtool and the strict checker on both formats.
# Usage: prometheus_it.sh FIXTURE EXPOCHECK PEERS_DIR
set -euo pipefail
fixture=$1 expocheck=$2
. "$(dirname "$0")/peers.sh"
need_cmd prometheus promtool curl python3 ss
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-prom.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT

mkfifo "$work/stdin"
"$fixture" --prom-port 0 --burst 50 < "$work/stdin" > "$work/fixture.out" &
PIDS+=($!)
exec 3> "$work/stdin"  # the fixture runs until this closes
wait_for 10 grep -q ready "$work/fixture.out"
fport=$(sed -n 's/.*prom_port=\([0-9]*\).*/\1/p' "$work/fixture.out")

# Both formats pass promtool (text) and the strict checks.
curl -sf "http://127.0.0.1:$fport/metrics" > "$work/text.txt"
curl -sf -H 'Accept: application/openmetrics-text;version=1.0.0' "http://127.0.0.1:$fport/metrics" > "$work/om.txt"
promtool check metrics < "$work/text.txt" > "$work/promtool.out" 2>&1 || { cat "$work/promtool.out"; exit 1; }
[ -s "$work/promtool.out" ] && { echo "promtool warnings:"; cat "$work/promtool.out"; exit 1; }
"$expocheck" < "$work/text.txt"
"$expocheck" --openmetrics < "$work/om.txt"
tail -1 "$work/om.txt" | grep -qx '# EOF'

start_prometheus fixture "127.0.0.1:$fport"

query() {  # prints the single value of an instant query, or nothing
  curl -sf --data-urlencode "query=$1" "$api/query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if len(r)==1 else "")'
}
has_value() { [ -n "$(query "$1")" ]; }
# The first scrape comes ~5 s after start; poll for it.
wait_for 30 has_value fixture_queue_depth || { cat "$work/prometheus.log"; curl -s "$api/targets"; exit 1; }
health=$(curl -sf "$api/targets" | python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"][0]; print(t["health"], t["lastError"])')
echo "target: $health"
[ "${health%% *}" = up ]

fail=0
check() {  # check QUERY EXPECTED
  local got
  got=$(query "$1")
  if [ "$got" = "$2" ]; then echo "ok   $1 = $got"; else echo "FAIL $1 = '$got', want '$2'"; fail=1; fi
}
check 'fixture_requests_total{method="get"}' 1234
check 'fixture_requests_total{method="post"}' 56
check 'fixture_queue_depth' -17
check 'fixture_temperature_celsius' 21.5
check 'fixture_request_duration_seconds_count' 100
check 'fixture_request_duration_seconds_sum' 0.00318
check 'fixture_request_duration_seconds_bucket{le="5e-06"}' 90
check 'fixture_request_duration_seconds_bucket{le="+Inf"}' 100
check 'count(fixture_burst_total)' 50
check 'sum(fixture_burst_total)' 1275
exit $fail
