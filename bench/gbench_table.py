#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown tables from Google Benchmark JSON (--benchmark_format=json).

One table per metric: a row per benchmark, a column per thread count (the
"threads:N" part of the name, or the first numeric argument). Values are the
medians when the run had repetitions (--benchmark_repetitions), else the
single result. Throughput cells carry the coefficient of variation over the
repetitions in parentheses, and a 2T / 1T column.

  gbench_table.py run.json items_per_second:M/s p99_us cv
    metric[:unit]   items_per_second is shown in millions (M/s); any other
                    counter as is, with the unit as its heading.
"""
import json
import re
import sys


def split_name(name):
    """('BM_X<A>', 2) from 'BM_X<A>/2/manual_time' or 'X/conns:8/real_time/threads:2'."""
    parts = name.split("/")
    threads = None
    keep = []
    for p in parts:
        m = re.fullmatch(r"threads:(\d+)", p)
        if m:
            threads = int(m.group(1))
            continue
        if p in ("manual_time", "real_time"):
            continue
        if threads is None and re.fullmatch(r"\d+", p) and keep:
            threads = int(p)
            continue
        keep.append(p)
    return "/".join(keep), threads or 1


def fmt(v):
    if v == float("inf"):
        return "inf"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1]))
    metrics = sys.argv[2:]
    rows, cols, val, cv = [], set(), {}, {}
    for b in data["benchmarks"]:
        agg = b.get("aggregate_name")
        if agg not in (None, "median", "cv"):
            continue
        base, threads = split_name(b.get("run_name", b["name"]))
        if base not in rows:
            rows.append(base)
        cols.add(threads)
        for m in metrics:
            key = m.split(":")[0]
            if key in b:
                (cv if agg == "cv" else val)[(base, threads, key)] = b[key]
    cols = sorted(cols)
    for m in metrics:
        key, _, unit = m.partition(":")
        scale = 1e6 if key == "items_per_second" else 1.0
        unit = unit or key
        thr = key == "items_per_second"
        ratio = thr and 1 in cols and 2 in cols
        print(f"\n| {unit} | " + " | ".join(f"{c} thread{'s' if c > 1 else ''}" for c in cols)
              + (" | 2T / 1T |" if ratio else " |"))
        print("|---|" + "---:|" * (len(cols) + (1 if ratio else 0)))
        for r in rows:
            cells = []
            for c in cols:
                v = val.get((r, c, key))
                s = "-" if v is None else fmt(v / scale)
                d = cv.get((r, c, key))
                if thr and d is not None and v is not None:
                    s += f" ({d * 100:.0f}%)"
                cells.append(s)
            line = f"| {r} | " + " | ".join(cells)
            if ratio:
                a, b = val.get((r, 1, key)), val.get((r, 2, key))
                line += f" | {b / a:.2f}x" if a and b else " | -"
            print(line + " |")


if __name__ == "__main__":
    main()
