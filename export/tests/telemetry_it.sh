#!/usr/bin/env bash
# DPDK's own dpdk-telemetry.py (from Debian dpdk-dev, unpacked into the
# cache, not installed) queries the fixture's telemetry socket.
# Then percore-top (when given) attaches to the same process.
# Usage: telemetry_it.sh FIXTURE EXPOCHECK CACHE_DIR [PERCORE_TOP]
set -euo pipefail
fixture=$1 cache=$3 top=${4:-}
. "$(dirname "$0")/peers.sh"
need_debs python3
script=$(find "$cache/dpdk" -name dpdk-telemetry.py 2>/dev/null | head -1 || true)
if [ -z "$script" ]; then
  mkdir -p "$cache/dpdk"
  (cd "$cache/dpdk" && timeout 120 apt-get download dpdk-dev >/dev/null 2>&1) || {
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    (cd "$cache/dpdk" && timeout 120 apt-get download dpdk-dev >/dev/null)
  }
  dpkg-deb -x "$cache"/dpdk/dpdk-dev_*.deb "$cache/dpdk/root"
  script=$(find "$cache/dpdk" -name dpdk-telemetry.py | head -1)
fi
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
