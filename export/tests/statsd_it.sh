#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The reference statsd daemon (npm statsd@0.9.0) on loopback receives the
# fixture's shutdown push, including a burst of 10,000 counters in one push;
# every value must read back exactly through its management interface.
# Usage: statsd_it.sh FIXTURE EXPOCHECK PEERS_DIR
set -euo pipefail
fixture=$1 peers=$3
. "$(dirname "$0")/peers.sh"
need_cmd node python3 ss
statsd=$peers/statsd/node_modules/statsd/stats.js
[ -f "$statsd" ] || skip "statsd daemon not found at $statsd"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-statsd.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT

start_statsd "$statsd"

"$fixture" --statsd-port "$uport" --burst 10000 < /dev/null > "$work/fixture.out"  # pushes at exit
cat "$work/fixture.out"
grep -q "errors=0 oversize=0" "$work/fixture.out"
# The daemon reads its socket at its own pace: poll its management interface
# until every value is in (or 60 s pass), then report what it holds.
check_values() {
  statsd_mgmt counters > "$work/counters.txt"
  statsd_mgmt gauges > "$work/gauges.txt"
  python3 - "$work/counters.txt" "$work/gauges.txt" <<'PY'
import re, sys
def parse(path):
    return {k: float(v) for k, v in re.findall(r"'([^']+)': (-?[0-9.e+-]+)", open(path).read())}
c, g = parse(sys.argv[1]), parse(sys.argv[2])
want_c = {"fixture.fixture_requests_total.get": 1234, "fixture.fixture_requests_total.post": 56,
          "fixture.fixture_request_duration_seconds.count": 100,
          "fixture.fixture_request_duration_seconds.sum": 0.00318, "statsd.bad_lines_seen": 0}
want_g = {"fixture.fixture_queue_depth": -17, "fixture.fixture_temperature_celsius": 21.5,
          "fixture.fixture_request_duration_seconds.p50": 2.007e-06,  # upper edge of 2000 ns bucket
          "fixture.fixture_request_duration_seconds.max": 0.0003}
fail = 0
for want, got, kind in ((want_c, c, "counter"), (want_g, g, "gauge")):
    for k, v in want.items():
        ok = k in got and abs(got[k] - v) <= 1e-12 * max(1, abs(v))
        print(("ok  " if ok else "FAIL"), kind, k, got.get(k), "want", v)
        fail |= not ok
burst = {k: v for k, v in c.items() if k.startswith("fixture.fixture_burst_total.")}
exact = sum(1 for k, v in burst.items() if v == int(k.rsplit(".", 1)[1]) + 1)
print("burst counters received:", len(burst), "exact:", exact)
fail |= len(burst) != 10000 or exact != 10000
sys.exit(1 if fail else 0)
PY
}
wait_for 60 check_values || true
check_values
