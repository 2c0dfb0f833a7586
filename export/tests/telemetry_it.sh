#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# DPDK's own dpdk-telemetry.py (from Debian dpdk-dev: the one scripts/deps
# unpacked into the peer cache, else one on PATH) queries the fixture's
# telemetry socket. Then percore-top (when given) attaches to the same process.
# Usage: telemetry_it.sh FIXTURE EXPOCHECK PEERS_DIR [PERCORE_TOP]
set -euo pipefail
fixture=$1 peers=$3 top=${4:-}
. "$(dirname "$0")/peers.sh"
need_dpdk_telemetry "$peers"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-tel.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT
export RUNTIME_DIRECTORY=$work

mkfifo "$work/stdin"
"$fixture" --telemetry-prefix itest < "$work/stdin" > "$work/fixture.out" &
PIDS+=($!)
exec 3> "$work/stdin"
wait_for 10 grep -q ready "$work/fixture.out"
sock="$work/dpdk/itest/dpdk_telemetry.v2"
[ "$(stat -c %a "$sock")" = 600 ] || { echo "socket mode $(stat -c %a "$sock")"; exit 1; }

printf '%s\n' / /info '/help,/percore/get' '/percore/list' \
  '/percore/get,fixture_requests_total{method="get"}' '/percore/get,fixture_request_duration_seconds' \
  '/percore/all' '/percore/reset,fixture_requests_total{method="post"}' '/percore/get,fixture_requests_total{method="post"}' \
  '/no/such/command' '/bad$chars' '/fixture/echo,hello' |
  timeout 30 python3 "$script" -f itest > "$work/out.txt" 2>&1 || true
cat "$work/out.txt"
python3 - "$work/out.txt" "$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$work/fixture.out")" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
pid = int(sys.argv[2])
replies = []
for line in text.splitlines():
    line = line.strip()
    if line.startswith("{"):
        replies.append(json.loads(line))
def get(cmd):
    for r in replies:
        if cmd in r:
            return r[cmd]
    raise SystemExit(f"FAIL no reply for {cmd}")
checks = [
    ("/ lists percore commands", "/percore/get" in get("/")),
    ("/info pid", get("/info")["pid"] == pid),
    ("/help", "/percore/get" in get("/help")),
    ("list", 'fixture_requests_total{method="get"}' in get("/percore/list")["series"]),
    ("counter value", any(isinstance(r.get("/percore/get"), dict) and r["/percore/get"].get("value") == 1234 for r in replies)),
    ("histogram summary", any(isinstance(r.get("/percore/get"), dict) and r["/percore/get"].get("count") == 100
                              and r["/percore/get"].get("max") == 0.0003 for r in replies)),
    ("all", get("/percore/all")["metrics"]["fixture_queue_depth"]["value"] == -17),
    ("reset", get("/percore/reset")["cleared"] == 56),
    ("after reset", any(isinstance(r.get("/percore/get"), dict) and r["/percore/get"].get("labels") == {"method": "post"}
                        and r["/percore/get"]["value"] == 0 for r in replies)),
    ("unknown -> null", get("/no/such/command") is None),
    ("malformed -> null", get("/bad$chars") is None),
    ("user command", get("/fixture/echo") == "hello"),
]
fail = False
for name, ok in checks:
    print("ok  " if ok else "FAIL", name)
    fail |= not ok
sys.exit(1 if fail else 0)
PY
if [ -n "$top" ]; then
  "$top" --list | grep -q "$sock"
  pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$work/fixture.out")
  timeout 20 "$top" --pid "$pid" --once --json --interval 0.2 > "$work/top.json"
  python3 - "$work/top.json" <<'PY'
import json, sys
rows = {r["metric"]: r for r in json.load(open(sys.argv[1]))}
ok = rows['fixture_requests_total{method="get"}']["value"] == 1234 and \
     rows["fixture_request_duration_seconds"]["max"] == 0.0003 and \
     rows['fixture_requests_total{method="get"}']["rate"] == 0
print("ok   percore-top" if ok else "FAIL percore-top")
sys.exit(0 if ok else 1)
PY
fi

# A malformed series id gets an error saying what is wrong, not a bare null.
printf '%s\n' '/percore/get,fixture_requests_total{method="get"},' |
  timeout 30 python3 "$script" -f itest > "$work/bad.txt" 2>&1 || true
grep -q 'bad series id' "$work/bad.txt" || { echo "FAIL malformed series id"; cat "$work/bad.txt"; exit 1; }
echo "ok   malformed series id"

# Every slot taken (TelemetryOptions::max_clients, 16 in the fixture) by
# clients that stay active, so the idle timeout frees none: the stock client
# must report the refusal cleanly, then be served once the slots are free.
python3 - "$sock" 16 > "$work/holder.out" 2>&1 <<'PY' &
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
held, deadline = [], time.monotonic() + 60
while len(held) < n and time.monotonic() < deadline:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    if "error" in json.loads(s.recv(4096)):  # an earlier client's slot not freed yet
        s.close()
        time.sleep(0.1)
        continue
    held.append(s)
print("held", len(held), flush=True)
while True:
    time.sleep(1)
    for s in held:
        s.send(b"/info")
        s.recv(65536)
PY
holder=$!
PIDS+=("$holder")
wait_for 60 grep -q '^held' "$work/holder.out"
grep -q '^held 16$' "$work/holder.out" || { echo "FAIL holding the slots"; cat "$work/holder.out"; exit 1; }
rc=0
printf '%s\n' /info | timeout 30 python3 "$script" -f itest > "$work/busy.txt" 2>&1 || rc=$?
cat "$work/busy.txt"
if [ "$rc" != 0 ] || ! grep -q 'too many clients' "$work/busy.txt" || grep -q Traceback "$work/busy.txt"; then
  echo "FAIL refusal past max_clients (exit $rc)"
  exit 1
fi
echo "ok   refusal past max_clients"
kill "$holder"
served() {
  printf '%s\n' /info | timeout 30 python3 "$script" -f itest 2>&1 | grep -q '"pid"'
}
wait_for 60 served || { echo "FAIL not served after the slots were freed"; exit 1; }
echo "ok   served again"

# On exit the server removes its socket and the directory it created.
exec 3>&-
wait "${PIDS[0]}" || true
[ ! -e "$work/dpdk/itest" ] || { echo "FAIL $work/dpdk/itest left behind"; ls -la "$work/dpdk/itest"; exit 1; }
echo "ok   runtime directory removed"
