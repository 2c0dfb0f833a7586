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
