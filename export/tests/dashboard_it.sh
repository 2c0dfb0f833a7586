#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The live dashboard in a real browser: headless Chromium (chromium-driver,
# python3-selenium) loads the page of a running percore-demo (or of the
# export fixture: the page works for any registry), and
# dashboard_browser.py checks it: every chart has points, the rate shown
# matches /metrics within 10%, picker and pause work, no console errors.
# The screenshot goes to SCREENSHOT (docs/img/dashboard.png is one).
# Usage: dashboard_it.sh demo PERCORE_DEMO SCREENSHOT
#        dashboard_it.sh fixture EXPORT_FIXTURE SCREENSHOT
set -euo pipefail
kind=$1 bin=$2 shot=$3
here=$(dirname "$0")
. "$here/peers.sh"
need_cmd chromium chromedriver curl ss
# Debian's python3-selenium is in /usr/bin/python3's path; another python3
# earlier on PATH may lack it.
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import selenium' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || skip "python3-selenium not importable"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-dashboard.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT

port=$(free_port)
if [ "$kind" = demo ]; then
  "$bin" --workers 2 --duration 0 --rate 20000 --no-compare --no-cost --prometheus "127.0.0.1:$port" > "$work/demo.out" 2>&1 &
  series='percore_demo_packets_total{proto="tcp"}'
else
  mkfifo "$work/stdin"
  "$bin" --prom-port "$port" --live 2000 < "$work/stdin" > "$work/demo.out" 2>&1 &
  exec 3> "$work/stdin"  # the fixture runs until this closes
  series='fixture_live_events_total{kind="a"}'
fi
PIDS+=($!)
wait_for 30 curl -sf "http://127.0.0.1:$port/api/metrics" || { cat "$work/demo.out"; exit 1; }
mkdir -p "$(dirname "$shot")"
"$py" "$here/dashboard_browser.py" "http://127.0.0.1:$port" "$series" "$shot"
