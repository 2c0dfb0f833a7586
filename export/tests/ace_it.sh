#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The process-wide adaptive tuner, switched on by the environment, seen by
# the real peers: the fixture (--ace) runs a write-buffer workload tuned by
# percore::ace() (PERCORE_ACE_ENABLED=1, 50 ms fast loop); DPDK's
# dpdk-telemetry.py reads /percore/ace, the real Prometheus scrapes the knob
# gauges, and the two must agree with the tuner's log. Then: a bad
# PERCORE_ACE_* value gets one line on stderr and its default, and without
# PERCORE_ACE_ENABLED there is no tuner.
# Usage: ace_it.sh FIXTURE PEERS_DIR
set -euo pipefail
fixture=$1 peers=$2
. "$(dirname "$0")/peers.sh"
need_cmd prometheus curl python3 ss
need_dpdk_telemetry "$peers"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-ace.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT
export RUNTIME_DIRECTORY=$work

mkfifo "$work/stdin"
PERCORE_ACE_ENABLED=1 PERCORE_ACE_FAST_INTERVAL_MS=50 PERCORE_ACE_LOG_LEVEL=1 \
  "$fixture" --ace --prom-port 0 --telemetry-prefix acetest < "$work/stdin" > "$work/fixture.out" 2> "$work/fixture.err" &
PIDS+=($!)
exec 3> "$work/stdin"  # the fixture runs until this closes
wait_for 10 grep -q ready "$work/fixture.out" || { cat "$work/fixture.out" "$work/fixture.err"; exit 1; }
fport=$(sed -n 's/.*prom_port=\([0-9]*\).*/\1/p' "$work/fixture.out")

ace() {  # the /percore/ace reply, through dpdk-telemetry.py
  printf '/percore/ace\n' | timeout 30 python3 "$script" -f acetest 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{") and "/percore/ace" in line:
        print(json.dumps(json.loads(line)["/percore/ace"]))'
}
# Every arm pulled at least once (the first round), with a deadline.
every_arm_pulled() {
  ace > "$work/ace.json"
  python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["groups"][0]; sys.exit(0 if min(a["pulls"] for a in g["arms"]) >= 1 else 1)' "$work/ace.json"
}
wait_for 60 every_arm_pulled || { cat "$work/ace.json" "$work/fixture.err"; exit 1; }
cat "$work/ace.json"; echo

start_prometheus ace "127.0.0.1:$fport" 3>&-  # Prometheus must not hold the fixture's stdin open
query() {  # prints the single value of an instant query, or nothing
  curl -sf --data-urlencode "query=$1" "$api/query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if len(r)==1 else "")'
}
changes_seen() { v=$(query 'percore_ace_arm_changes_total{group="write_buffer"}'); [ -n "$v" ] && [ "$v" -ge 1 ]; }
wait_for 60 changes_seen || { cat "$work/prometheus.log"; curl -s "$api/targets"; exit 1; }
# Each scrape's (capacity, arm) pairs, by scrape timestamp. One scrape reads
# the gauges one after the other while the tuner keeps moving (50 ms), so a
# scrape may fall between a change's two reads; most may not.
series() {  # series QUERY [TIME]: "timestamp value" lines of the 30 s up to TIME (default now)
  curl -sf --data-urlencode "query=$1[30s]" ${2:+--data-urlencode "time=$2"} "$api/query" |
    python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]["result"]:
    for ts, v in r["values"]: print(ts, v)'
}
enough_scrapes() { [ "$(series 'percore_ace_arm{group="write_buffer"}' | wc -l)" -ge 5 ]; }
wait_for 60 enough_scrapes || { curl -s "$api/targets"; exit 1; }
at=$(date +%s.%N)  # both over the same window, up to now
series 'percore_ace_knob{group="write_buffer",param="capacity"}' "$at" > "$work/caps.txt"
series 'percore_ace_arm{group="write_buffer"}' "$at" > "$work/arms.txt"
ticks=$(query 'percore_ace_ticks_total')
echo "prometheus: $(wc -l < "$work/arms.txt") scrapes, ticks=$ticks"
ace > "$work/ace2.json"

python3 - "$work/ace2.json" "$work/fixture.err" "$work/caps.txt" "$work/arms.txt" "$ticks" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read().splitlines()
def load(path):
    return {ts: float(v) for ts, v in (line.split() for line in open(path) if line.strip())}
caps_seen, arms_seen = load(sys.argv[3]), load(sys.argv[4])
ticks = float(sys.argv[5])
g = j["groups"][0]
caps = [a["values"]["capacity"] for a in g["arms"]]
pairs = [(caps_seen[ts], int(arms_seen[ts])) for ts in arms_seen if ts in caps_seen]
agree = sum(1 for c, a in pairs if 0 <= a < len(caps) and caps[a] == c)
print(f"scrapes: {len(pairs)}, capacity and arm agree in {agree}")
checks = [
    ("one group, write_buffer", len(j["groups"]) == 1 and g["name"] == "write_buffer"),
    ("params", g["params"] == ["capacity", "soft_threshold", "hint_period"]),
    ("fast interval from the environment", j["fast_interval_ms"] == 50),
    ("ticks counted", j["ticks"] >= ticks > 0),
    ("pulls add up to the ticks credited", sum(a["pulls"] for a in g["arms"]) <= j["ticks"]),
    ("scrapes of both gauges", len(pairs) >= 3),
    ("every scraped capacity is one of the arms", all(c in caps for c, _ in pairs)),
    ("every scraped arm index is valid", all(0 <= a < len(caps) for _, a in pairs)),
    ("in most scrapes the arm's capacity is the scraped one", agree * 2 > len(pairs)),
    ("current matches its arm", g["current"] == g["arms"][g["arm"]]["values"]),
    ("a last tick with a throughput", j["last_tick"] is not None and j["last_tick"]["throughput"] > 0),
    ("arm changes logged, one line each",
     sum(1 for l in err if re.match(r"^\[percore-ace\] write_buffer: capacity=\d+ .* -> capacity=\d+", l)) >= g["changes"] >= 1),
    ("nothing else on stderr", all(l.startswith("[percore-ace] ") for l in err)),
]
bad = [n for n, ok in checks if not ok]
for n, ok in checks:
    print(("ok   " if ok else "FAIL ") + n)
sys.exit(1 if bad else 0)
PY

exec 3>&-  # the fixture stops its workload and checks the total
wait_for 30 grep -q '^ace exact=' "$work/fixture.out"
grep '^ace exact=yes' "$work/fixture.out"

# A bad value: one line naming it, and the default (500 ms) in effect.
mkfifo "$work/stdin2"
PERCORE_ACE_ENABLED=1 PERCORE_ACE_FAST_INTERVAL_MS=soon "$fixture" --ace --telemetry-prefix acebad \
  < "$work/stdin2" > "$work/bad.out" 2> "$work/bad.err" &
PIDS+=($!)
exec 4> "$work/stdin2"
wait_for 10 grep -q ready "$work/bad.out"
printf '/percore/ace\n' | timeout 30 python3 "$script" -f acebad 2>/dev/null > "$work/bad.json" || true
grep -q '"fast_interval_ms": *500' "$work/bad.json" || { cat "$work/bad.json"; exit 1; }
exec 4>&-
wait_for 30 grep -q '^ace exact=yes' "$work/bad.out" || { cat "$work/bad.out"; exit 1; }
[ "$(wc -l < "$work/bad.err")" = 1 ] || { cat "$work/bad.err"; exit 1; }
grep -qx '\[percore-ace\] PERCORE_ACE_FAST_INTERVAL_MS=soon is not a number in \[1, 3.6e+06\]; using the default' "$work/bad.err" ||
  { cat "$work/bad.err"; exit 1; }

# Not enabled: no tuner, and the fixture says so.
rc=0
"$fixture" --ace --seconds 5 < /dev/null > "$work/off.out" 2> "$work/off.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'needs PERCORE_ACE_ENABLED=1' "$work/off.err" || { cat "$work/off.err"; exit 1; }
echo "ace: ok"
