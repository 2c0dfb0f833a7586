#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Times Prometheus scrapes while idle and slow clients hold connections open.

Opens IDLE connections that send nothing and SLOW ones that send a request
header one byte every INTERVAL seconds and never finish it, waits SETTLE
seconds, then times SCRAPES sequential scrapes (a fresh connection each, the
whole reply read) with a deadline of TIMEOUT seconds each. Loopback only and
bounded: at most 1000 connections, and the run ends after the scrapes.

  export_fixture --prom-port 0 --seconds 600 &      # prints prom_port=PORT
  bench/prom_load.py --port PORT --idle 200 --slow 50

Prints one line per scrape and a summary:
  scrape 1: 200 in 4.2 ms (4531 bytes); held open: idle 200/200, slow 50/50
"""
import argparse
import ipaddress
import socket
import statistics
import sys
import threading
import time


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def still_open(s):
    """True while the server has not closed (or reset) the connection."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def slow_head(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()


def slow_sender(socks, path, interval, stop):
    """One more header byte per connection every `interval` s (each sent its
    first on connecting); never the blank line that ends the headers."""
    head = slow_head(path)
    alive = list(socks)
    i = 1
    while not stop.wait(interval) and alive:
        byte = head[i : i + 1] if i < len(head) else b"a"
        i += 1
        for s in list(alive):
            try:
                s.send(byte)
            except OSError:  # closed by the server: that is its header deadline
                alive.remove(s)


def scrape(host, port, path, timeout):
    """(status, bytes, seconds); status 0 when it failed or timed out."""
    t0 = time.monotonic()
    try:
        with connect(host, port, timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                left = timeout - (time.monotonic() - t0)
                if left <= 0:
                    return 0, len(data), time.monotonic() - t0
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return 0, 0, time.monotonic() - t0
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
    return status, len(data), time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/metrics")
    ap.add_argument("--idle", type=int, default=200, help="silent connections")
    ap.add_argument("--slow", type=int, default=50, help="connections sending one header byte per interval")
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between a slow client's bytes")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before the first scrape")
    ap.add_argument("--scrapes", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=15.0, help="deadline of one scrape, seconds")
    a = ap.parse_args()
    if not ipaddress.ip_address(socket.gethostbyname(a.host)).is_loopback:
        sys.exit("prom_load.py: loopback addresses only")
    if a.idle + a.slow > 1000 or a.scrapes > 100 or a.timeout > 60:
        sys.exit("prom_load.py: at most 1000 connections, 100 scrapes, 60 s per scrape")

    idle, slow, refused = [], [], 0
    for n, group, first in ((a.idle, idle, b""), (a.slow, slow, slow_head(a.path)[:1])):
        for _ in range(n):
            try:
                s = connect(a.host, a.port, 5)
                s.send(first)
                group.append(s)
            except OSError:
                refused += 1
    stop = threading.Event()
    sender = threading.Thread(target=slow_sender, args=(slow, a.path, a.interval, stop), daemon=True)
    sender.start()
    time.sleep(a.settle)

    times, failed = [], 0
    for i in range(a.scrapes):
        status, size, secs = scrape(a.host, a.port, a.path, a.timeout)
        held_idle = sum(still_open(s) for s in idle)
        held_slow = sum(still_open(s) for s in slow)
        print(f"scrape {i + 1}: {status or 'failed'} in {secs * 1000:.1f} ms ({size} bytes); "
              f"held open: idle {held_idle}/{a.idle}, slow {held_slow}/{a.slow}", flush=True)
        if status == 200:
            times.append(secs)
        else:
            failed += 1
    stop.set()
    sender.join()
    for s in idle + slow:
        s.close()
    if refused:
        print(f"{refused} of the idle/slow connections could not connect")
    if times:
        print(f"{len(times)}/{a.scrapes} scrapes answered 200: median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms")
    else:
        print(f"0/{a.scrapes} scrapes answered 200 within {a.timeout:g} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
