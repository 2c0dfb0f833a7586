# SPDX-License-Identifier: MIT
# Shared by the integration scripts: finds the peers that scripts/deps --peers
# installed, finds free loopback ports, and stops what was started. A test
# never installs anything: without its peer it exits with SKIP_CODE, which
# CMake declares as the test's SKIP_RETURN_CODE, so ctest reports it Skipped
# (and scripts/test fails).
set -euo pipefail

SKIP_CODE=77
skip() {
  echo "SKIP: $* (scripts/deps --peers installs it)"
  exit "$SKIP_CODE"
}

# need_cmd CMD...: skips the test unless every CMD is on PATH.
need_cmd() {
  for c in "$@"; do
    command -v "$c" >/dev/null || skip "$c not found on PATH"
  done
}

# A TCP and UDP port nobody listens on right now (checked with ss).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! ss -Htuln "sport = :$p" | grep -q .; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# need_dpdk_telemetry PEERS_DIR: sets $script to DPDK's dpdk-telemetry.py
# (the one scripts/deps unpacked into the peer cache, else one on PATH).
need_dpdk_telemetry() {
  need_cmd python3
  script=$1/dpdk/dpdk-telemetry.py
  [ -f "$script" ] || script=$(command -v dpdk-telemetry.py) || skip "dpdk-telemetry.py not found in $1/dpdk or on PATH"
}

PIDS=()
stop_started() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
  local secs=$1; shift
  local n=$(( secs * 5 ))
  for _ in $(seq 1 "$n"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# start_prometheus JOB TARGET...: Debian's real Prometheus on a free loopback
# port, scraping each TARGET (host:port) every second as job JOB, its data in
# $work. Sets $pport and $api (the HTTP API's base URL) and waits until it is
# ready; its log is $work/prometheus.log.
start_prometheus() {
  local job=$1 targets="" t
  shift
  for t in "$@"; do targets+="${targets:+, }'$t'"; done
  pport=$(free_port)
  cat > "$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: $job
    static_configs:
      - targets: [$targets]
YML
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$pport" > "$work/prometheus.log" 2>&1 &
  PIDS+=($!)
  api="http://127.0.0.1:$pport/api/v1"
  wait_for 30 curl -sf "http://127.0.0.1:$pport/-/ready" || { cat "$work/prometheus.log"; return 1; }
}

# start_statsd STATS_JS: the reference statsd daemon on free loopback ports,
# never flushing (so counters accumulate) and keeping idle stats. Sets $uport
# (its UDP port) and $mport (its management port) and waits until it answers;
# its log is $work/statsd.log.
start_statsd() {
  uport=$(free_port)
  mport=$(free_port)
  cat > "$work/statsd.js" <<JS
{ address: "127.0.0.1", port: $uport, mgmt_address: "127.0.0.1", mgmt_port: $mport,
  flushInterval: 3600000, backends: [], deleteIdleStats: false }
JS
  node "$1" "$work/statsd.js" > "$work/statsd.log" 2>&1 &
  PIDS+=($!)
  wait_for 30 statsd_mgmt stats || { cat "$work/statsd.log"; return 1; }
}

# statsd_mgmt COMMAND: one command to the daemon's management interface
# (stats, counters, gauges, ...); prints the reply.
statsd_mgmt() {
  python3 - "$mport" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.rstrip().endswith(b"END"):
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    buf += chunk
s.sendall(b"quit\n")
print(buf.decode())
PY
}
