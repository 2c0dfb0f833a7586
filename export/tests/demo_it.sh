#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# percore-demo as users run it:
#   1. a short run with --json: the summary parses, every total is exact,
#      every protocol is present, the rate is positive; stdout is not a
#      terminal, so the live view is one compact line per interval, without
#      terminal control codes;
#   2. --rate: the pace is never exceeded (beyond one batch per worker);
#   3. a run until stopped (--duration 0) with --prometheus: /metrics
#      carries the demo's metrics while it runs, percore-top --once reads
#      them over the telemetry socket, and SIGTERM ends it with exit 0 and
#      its summary;
#   4. --statsd: the real statsd daemon (npm statsd@0.9.0) ends up with
#      exactly the run's per-protocol totals;
#   5. bad arguments: exit 2 and a one-line error naming the option.
# Usage: demo_it.sh PERCORE_DEMO PERCORE_TOP PEERS_DIR
set -euo pipefail
demo=$1 top=$2 peers=$3
. "$(dirname "$0")/peers.sh"
need_cmd python3 node ss
statsd=$peers/statsd/node_modules/statsd/stats.js
[ -f "$statsd" ] || skip "statsd daemon not found at $statsd"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-demo.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT
export RUNTIME_DIRECTORY="$work/run"  # the telemetry socket goes here
mkdir -p "$RUNTIME_DIRECTORY"
chmod 700 "$RUNTIME_DIRECTORY"
fail=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}

# ---- 1. --json ------------------------------------------------------------
"$demo" -w 2 -d 1 --interval 200 --json --no-cost --no-compare >"$work/run.out" 2>"$work/run.err" || {
  echo "FAIL the --json run exited $?"; cat "$work/run.err"; exit 1; }
check "json summary checks" python3 - "$work/run.out" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
s = json.loads(lines[-1])
protos = ["tcp", "udp", "icmp", "other"]
checks = [
    ("exact", s["exact"] is True),
    ("packets == sum over protocols", s["packets"] == sum(s["protocols"][p]["packets"] for p in protos)),
    ("bytes == sum over protocols", s["bytes"] == sum(s["protocols"][p]["bytes"] for p in protos)),
    ("every protocol present", all(s["protocols"][p]["packets"] > 0 for p in protos)),
    ("per-flow totals == totals", s["flows"]["totals"] == {"packets": s["packets"], "bytes": s["bytes"]}),
    ("rate > 0", s["rate"] > 0),
    ("latency histogram filled", s["latency_ns"]["count"] > 0 and
        sum(b[2] for b in s["latency_ns"]["buckets"]) == s["latency_ns"]["count"]),
    ("drops by reason", set(s["drops"]) == {"acl", "ttl", "no_route"}),
    ("compact lines while running", any(l.startswith("t=") and "rate=" in l for l in lines)),
    ("no terminal control codes", all("\x1b" not in l for l in lines)),
]
bad = [n for n, ok in checks if not ok]
for n, ok in checks:
    print(("  ok   " if ok else "  FAIL ") + n)
sys.exit(1 if bad else 0)
PY

# ---- 2. --rate --------------------------------------------------------------
"$demo" -w 2 -d 1 --rate 200000 --json --no-cost --no-compare >"$work/rate.out" 2>&1 || {
  echo "FAIL the --rate run exited $?"; cat "$work/rate.out"; exit 1; }
check "paced run never exceeds the pace" python3 - "$work/rate.out" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
# The token bucket lets each worker run at most one 64-packet batch ahead
# (plus the batch in flight); 2% covers the TSC-rate calibration the pace
# is computed with. Unpaced, the same run counts tens of millions.
limit = s["target_rate"] * s["duration_s"] * 1.02 + 2 * 64 + 2 * 64
print("  packets", s["packets"], "limit", limit)
sys.exit(0 if s["exact"] and 0 < s["packets"] <= limit else 1)
PY
check "paced run reports target and achieved" grep -q '^pace: target 200 kpkt/s, achieved' "$work/rate.out"

# ---- 3. --duration 0 with --prometheus, percore-top, SIGTERM ---------------
"$demo" -w 2 -d 0 --prometheus 0 --no-cost --no-compare >"$work/live.out" 2>"$work/live.err" &
pid=$!
PIDS+=("$pid")
wait_for 60 grep -q 'Prometheus metrics at http://' "$work/live.err" || { echo "FAIL no Prometheus endpoint"; cat "$work/live.err"; exit 1; }
url=$(sed -n 's/.*Prometheus metrics at \(http[^ ]*\).*/\1/p' "$work/live.err")
scrape() {  # scrape: succeeds once /metrics shows tcp packets above zero
  python3 - "$url" "$work/metrics.txt" <<'PY'
import re, sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
open(sys.argv[2], "w").write(body)
m = re.search(r'^percore_demo_packets_total\{proto="tcp"\} (\d+)', body, re.M)
sys.exit(0 if m and int(m.group(1)) > 0 else 1)
PY
}
check "/metrics carries the demo's packets while it runs" wait_for 60 scrape
for name in percore_demo_bytes_total percore_demo_drops_total percore_demo_errors_total \
            percore_demo_packet_duration_seconds_bucket percore_demo_packet_size_max_bytes percore_demo_active_flows \
            percore_demo_flows_expired_total; do
  check "/metrics has $name" grep -q "^$name" "$work/metrics.txt"
done
top_reads() {
  "$top" --pid "$pid" --once --json --interval 0.2 >"$work/top.json" 2>"$work/top.err" &&
    python3 - "$work/top.json" <<'PY'
import json, sys
rows = {r["metric"]: r for r in json.load(open(sys.argv[1]))}
v = rows.get('percore_demo_packets_total{proto="udp"}', {}).get("value", 0)
sys.exit(0 if isinstance(v, int) and v > 0 else 1)
PY
}
check "percore-top --once reads the demo over the telemetry socket" wait_for 60 top_reads
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
PIDS=()
check "SIGTERM: exit 0" [ "$rc" -eq 0 ]
check "SIGTERM: summary printed" grep -q '^summary: ' "$work/live.out"
check "SIGTERM: totals exact" grep -q '^exact: ' "$work/live.out"

# ---- 3b. the terminal dashboard, ended by Ctrl-C --------------------------
# In a pseudo-terminal: frames redraw in place (cursor up), the cursor is
# hidden while they do and shown again at the end, and Ctrl-C (SIGINT to the
# process group, as a terminal sends it) still prints the summary and exits 0.
check "dashboard in a terminal, Ctrl-C" python3 - "$demo" <<'PY'
import os, pty, re, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "-w", "2", "-d", "0", "--interval", "100", "--no-cost", "--no-compare"])
out = b""
def read_until(pred, secs):
    global out
    end = time.time() + secs
    while time.time() < end and not pred(out):
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return pred(out)
frames = lambda o: len(re.findall(rb"\x1b\[\d+A", o)) >= 3
ok_frames = read_until(frames, 60)
os.killpg(os.getpgid(pid), signal.SIGINT)
read_until(lambda o: b"exact: " in o and o.rstrip().endswith(b"match what the workers generated"), 60)
_, status = os.waitpid(pid, 0)
text = out.decode(errors="replace")
checks = [
    ("frames redrawn in place", ok_frames),
    ("cursor hidden while drawing", "\x1b[?25l" in text),
    ("cursor shown again", text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l")),
    ("dashboard shows protocols and top flows", "top flows by bytes" in text and "tcp" in text),
    ("summary after Ctrl-C", "summary: " in text and "exact: " in text),
    ("exit 0", os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0),
]
for n, ok in checks:
    print(("  ok   " if ok else "  FAIL ") + n)
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY

# ---- 4. --statsd into the real daemon ---------------------------------------
start_statsd "$statsd"
"$demo" -w 2 -d 2 --statsd "127.0.0.1:$uport" --json --no-cost --no-compare >"$work/statsd.out" 2>&1 || {
  echo "FAIL the --statsd run exited $?"; cat "$work/statsd.out"; exit 1; }
# The daemon reads its socket at its own pace: poll until the totals are in.
statsd_totals() {
  statsd_mgmt counters >"$work/counters.txt"
  python3 - "$work/statsd.out" "$work/counters.txt" <<'PY'
import json, re, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
got = {k: float(v) for k, v in re.findall(r"'([^']+)': (-?[0-9.e+-]+)", open(sys.argv[2]).read())}
want = {f"percore_demo_packets_total.{p}": v["packets"] for p, v in s["protocols"].items()}
want.update({f"percore_demo_bytes_total.{p}": v["bytes"] for p, v in s["protocols"].items()})
want["statsd.bad_lines_seen"] = 0
sys.exit(0 if all(got.get(k) == v for k, v in want.items()) else 1)
PY
}
check "statsd daemon holds the run's exact per-protocol totals" wait_for 60 statsd_totals
check "statsd: no send errors" grep -q '^statsd: .* 0 send errors' "$work/statsd.out"

# ---- 5. bad arguments -------------------------------------------------------
refused() {  # refused PATTERN ARGS...: exit 2, one line on stderr naming PATTERN, nothing on stdout
  local pat=$1; shift
  local rc=0
  "$demo" "$@" >"$work/bad.out" 2>"$work/bad.err" || rc=$?
  [ "$rc" -eq 2 ] && [ "$(wc -l <"$work/bad.err")" -eq 1 ] && [ ! -s "$work/bad.out" ] &&
    grep -q -- "$pat" "$work/bad.err" || { echo "  exit $rc:"; cat "$work/bad.err"; return 1; }
}
check "0 workers refused" refused "workers" -w 0
check "malformed mix refused" refused "mix" --mix 70,25,3
check "non-numeric mix refused" refused "mix" --mix a,b,c,d
check "all-zero mix refused" refused "mix" --mix 0,0,0,0
check "rate 0 refused" refused "rate" --rate 0
check "negative rate refused" refused "rate" --rate -5
check "drops over 100% refused" refused "drops" --drops 50,40,20
check "bad prometheus port refused" refused "prometheus" --prometheus 99999
check "bad prometheus address refused" refused "prometheus" --prometheus 300.1.2.3:9464
check "statsd without host refused" refused "statsd" --statsd 8125
check "unknown stats mode refused" refused "stats" --stats fast
check "time-every not a power of two refused" refused "time-every" --time-every 3
check "unknown option refused" refused "bogus" --bogus
exit $fail
