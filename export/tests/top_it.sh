#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# percore-top against a live process (the fixture), as a user meets it:
# --list has a header and process names; u64 counters print exactly, in the
# table and in JSON; the table fits the terminal's width; and the live view
# gives the terminal back (canonical mode, echo) however it ends: q, Ctrl-C,
# SIGTERM. The live view runs in a pseudo-terminal driven by python3's pty.
# Usage: top_it.sh FIXTURE PERCORE_TOP
set -euo pipefail
fixture=$1 top=$2
. "$(dirname "$0")/peers.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/percore-top.XXXXXX")
trap 'stop_started; rm -rf "$work"' EXIT
export RUNTIME_DIRECTORY="$work/run"  # isolates --list from other processes
mkdir -p "$RUNTIME_DIRECTORY"
chmod 700 "$RUNTIME_DIRECTORY"

mkfifo "$work/stdin"
"$fixture" --telemetry-prefix top-it --big < "$work/stdin" > "$work/fixture.out" &
PIDS+=($!)
exec 3> "$work/stdin"  # the fixture runs until this closes
wait_for 20 grep -q ready "$work/fixture.out"
pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$work/fixture.out")

"$top" --list > "$work/list.txt"
cat "$work/list.txt"
head -1 "$work/list.txt" | grep -q '^PID *PROCESS *VERSION *SOCKET'
grep -q "^$pid  *export_fixture " "$work/list.txt"

"$top" --pid "$pid" --once --json --interval 0.2 > "$work/top.json"
COLUMNS=200 "$top" --pid "$pid" --once --interval 0.2 > "$work/top.txt"
python3 - "$work/top.json" "$work/top.txt" <<'PY'
import json, sys
rows = {r["metric"]: r for r in json.load(open(sys.argv[1]))}
big = rows["fixture_big_total"]["value"]
text = open(sys.argv[2]).read()
checks = [
    ("json u64 exact", big == 18446744073709551611 and isinstance(big, int)),
    ("table u64 exact", "18446744073709551611" in text),
    ("no exponent form", "e+" not in text),
]
fail = False
for name, ok in checks:
    print("ok  " if ok else "FAIL", name)
    fail |= not ok
sys.exit(1 if fail else 0)
PY

# The live view in a 72-column pseudo-terminal, ended three ways.
python3 - "$top" "$pid" <<'PY'
import fcntl, os, pty, re, select, signal, struct, sys, termios, time
top, pid = sys.argv[1], sys.argv[2]

def run(end):
    child, fd = pty.fork()
    if child == 0:
        os.execv(top, [top, "--pid", pid, "--interval", "0.2"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 72, 0, 0))
    os.kill(child, signal.SIGWINCH)
    out, deadline = b"", time.time() + 30
    # Wait for two full screens after the resize (its width is the test).
    while out.count(b"percore-top  pid") < 3 and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    raw = termios.tcgetattr(fd)[3]
    if end == "q":
        os.write(fd, b"q")
    else:
        os.kill(child, getattr(signal, end))
    deadline = time.time() + 20
    while time.time() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            break
        try:
            select.select([fd], [], [], 0.2) and os.read(fd, 65536)
        except OSError:
            pass
    lflag = termios.tcgetattr(fd)[3]
    os.close(fd)
    # The last complete screen: the one before the last clear.
    screens = out.decode(errors="replace").split("\x1b[H\x1b[2J")
    screen = screens[-2] if len(screens) >= 3 else screens[-1]
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", l).rstrip("\r") for l in screen.split("\n")]
    widest = max(len(l) for l in lines)
    if os.environ.get("TOP_DEBUG"): print("\n".join(lines))
    checks = [
        (end + ": raw while running", not (raw & termios.ICANON) and not (raw & termios.ECHO)),
        (end + ": terminal restored", bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)),
        (end + ": fits 72 columns (widest %d)" % widest, widest <= 72),
        (end + ": long name shortened", any(l.startswith("fixture_long_t") and "~" in l.split(" ")[0] for l in lines)),
    ]
    return checks

fail = False
for end in ("q", "SIGINT", "SIGTERM"):
    for name, ok in run(end):
        print("ok  " if ok else "FAIL", name)
        fail |= not ok
sys.exit(1 if fail else 0)
PY
echo "top_it: all checks passed"
