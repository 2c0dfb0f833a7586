#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Turns the JSON of bench/ring_bench or bench/shared_mutex_bench (one run,
# with repetitions) into the markdown tables of docs/structures.md, and the
# targets of issue 11 into ratios computed from that same run.
# Usage: scripts/bench_structures.py ring|shared-mutex RESULT.json
import json
import re
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        agg = b.get("aggregate_name")
        if agg not in ("median", "cv"):
            continue
        runs.setdefault(b["run_name"], {})[agg] = b
    return data.get("context", {}), runs


def rate(b):
    return b.get("items_per_second", 0.0)


def fmt_rate(v):
    if v >= 1e9:
        return f"{v / 1e9:.2f} G"
    if v >= 1e6:
        return f"{v / 1e6:.1f} M"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k"
    return f"{v:.0f}"


def fmt_ns(v):
    if v >= 1e6:
        return f"{v / 1e6:.1f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.1f} us"
    return f"{v:.0f} ns"


def ratio(a, b):
    return f"{a / b:.2f}x" if b > 0 else "-"


def ring(ctx, runs):
    names = {}
    table = {}
    for run, aggs in runs.items():
        m = re.match(r"BM_(Push|Pipeline)/([a-z_]+)/producers:(\d+)", run)
        if not m or "median" not in aggs:
            continue
        kind, q, p = m.group(1), m.group(2), int(m.group(3))
        med = aggs["median"]
        if med.get("error_occurred"):
            continue
        names[q] = med.get("label", q)
        cv = aggs.get("cv", {}).get("items_per_second", 0.0)
        table[(kind, q, p)] = (rate(med), cv, med.get("cut_rounds", 0))
        if kind == "Push":
            table[("PushMedian", q, p)] = (med.get("median_round_rate", 0), aggs.get("cv", {}).get(
                "median_round_rate", 0), med.get("cut_rounds", 0))
    order = [q for q in ["sharded_ring_rseq", "sharded_ring_thread", "rte_ring", "rte_ring_rts", "ck_ring",
                         "tbb_bounded_queue", "mutex_deque"] if q in names]
    for kind, title in [("PushMedian", "Producer side (`BM_Push`), median round: items/s, all producers together"),
                        ("Push", "Producer side (`BM_Push`), all rounds: items/s, all producers together"),
                        ("Pipeline", "End to end (`BM_Pipeline`): items/s consumed, one consumer thread running")]:
        print(f"#### {title}\n")
        print("| queue | 1 producer | 2 | 4 | 8 | 1 -> 2 | cv at 2 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for q in order:
            cells = []
            for p in (1, 2, 4, 8):
                v = table.get((kind, q, p))
                if v is None:
                    cells.append("-")
                else:
                    s = fmt_rate(v[0])
                    if v[2]:
                        s += " (cut)"
                    cells.append(s)
            a, b = table.get((kind, q, 1)), table.get((kind, q, 2))
            sc = ratio(b[0], a[0]) if a and b else "-"
            cv = f"{100 * b[1]:.0f}%" if b else "-"
            label = names[q]
            if q.startswith("sharded_ring"):
                label = f"**{label}**"
            print(f"| {label} | " + " | ".join(cells) + f" | {sc} | {cv} |")
        if kind == "Push" and any(v[2] for k, v in table.items() if k[0] == "Push"):
            print("\n(cut): in the median repetition, rounds were cut off at 20 ms; the rate counts what got in.")
        print()
        mine = table.get((kind, "sharded_ring_rseq", 2))
        if mine:
            where = {"PushMedian": "producer side, median round", "Push": "producer side, all rounds",
                     "Pipeline": "end to end"}[kind]
            print(f"At 2 producers ({where}), ShardedRing (rseq) against:", end="")
            parts = []
            for q in order:
                if q.startswith("sharded_ring"):
                    continue
                o = table.get((kind, q, 2))
                if o:
                    parts.append(f" {names[q]} {ratio(mine[0], o[0])}")
            print(";".join(parts) + ".\n")


def mutex(ctx, runs):
    names = {}
    rl, mixed, lat = {}, {}, {}
    for run, aggs in runs.items():
        if "median" not in aggs or aggs["median"].get("error_occurred"):
            continue
        med = aggs["median"]
        cv = aggs.get("cv", {})
        m = re.match(r"BM_ReadLockUnlock/([a-z_]+)/real_time/threads:(\d+)", run)
        if m:
            names[m.group(1)] = med.get("label", m.group(1))
            # real time per iteration, per thread -> ns per lock+unlock pair
            # of one thread; the aggregate rate is items_per_second.
            rl[(m.group(1), int(m.group(2)))] = (1e9 / rate(med) if rate(med) else 0, cv.get("items_per_second", 0))
            continue
        m = re.match(r"BM_Mixed/([a-z_]+)/write_permille:(\d+)/real_time/threads:(\d+)", run)
        if m:
            names[m.group(1)] = med.get("label", m.group(1))
            mixed[(m.group(1), int(m.group(2)), int(m.group(3)))] = (rate(med), cv.get("items_per_second", 0))
            continue
        m = re.match(r"BM_WriterLatency/([a-z_]+)/readers:(\d+)", run)
        if m:
            names[m.group(1)] = med.get("label", m.group(1))
            lat[(m.group(1), int(m.group(2)))] = (med.get("p50_ns", 0), med.get("p99_ns", 0), med.get("writes", 0),
                                                  med.get("reads_per_s", 0))
    order = [n for n in ["percore_rseq_membarrier", "percore_rseq_fences", "percore_thread_membarrier", "ck_brlock",
                         "ck_bytelock", "std_shared_mutex", "pthread_rwlock"] if n in names]

    def label(n):
        return f"**{names[n]}**" if n.startswith("percore") else names[n]

    print("#### Read lock + unlock, no writer (`BM_ReadLockUnlock`): ns per pair (aggregate at 2 threads)\n")
    print("| lock | 1 thread | 2 threads | cv 1T |")
    print("|---|---:|---:|---:|")
    for n in order:
        a, b = rl.get((n, 1)), rl.get((n, 2))
        print(f"| {label(n)} | {a[0]:.2f} | {b[0]:.2f} | {100 * a[1]:.0f}% |" if a and b else f"| {label(n)} | - | - | - |")
    print()
    for w, wname in [(0, "0% writes"), (1, "0.1% writes"), (10, "1% writes")]:
        print(f"#### Mixed, {wname} (`BM_Mixed/write_permille:{w}`): operations/s, all threads together\n")
        print("| lock | 1 thread | 2 | 4 | 8 | 1 -> 2 | cv at 2 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for n in order:
            cells = [fmt_rate(mixed[(n, w, t)][0]) if (n, w, t) in mixed else "-" for t in (1, 2, 4, 8)]
            a, b = mixed.get((n, w, 1)), mixed.get((n, w, 2))
            sc = ratio(b[0], a[0]) if a and b else "-"
            cv = f"{100 * b[1]:.0f}%" if b else "-"
            print(f"| {label(n)} | " + " | ".join(cells) + f" | {sc} | {cv} |")
        print()
    print("#### Writer acquisition latency (`BM_WriterLatency`): one writer every 20 us, readers reading back to back\n")
    print("| lock | p50, 1 reader | p99, 1 reader | p50, 3 readers | p99, 3 readers | writes in 3-reader run |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in order:
        a, b = lat.get((n, 1)), lat.get((n, 3))
        if a and b:
            print(f"| {label(n)} | {fmt_ns(a[0])} | {fmt_ns(a[1])} | {fmt_ns(b[0])} | {fmt_ns(b[1])} | {b[2]:.0f} |")
    print()
    me = "percore_rseq_membarrier"
    if (me, 1) in rl and ("ck_brlock", 1) in rl:
        print(f"Read lock + unlock, 1 thread: percore {rl[(me, 1)][0]:.2f} ns, ck_brlock {rl[('ck_brlock', 1)][0]:.2f} ns "
              f"({ratio(rl[('ck_brlock', 1)][0], rl[(me, 1)][0])} cheaper).")
    if (me, 0, 1) in mixed and (me, 0, 2) in mixed:
        print(f"Reader scaling, 0% writes, 1 -> 2 threads: {ratio(mixed[(me, 0, 2)][0], mixed[(me, 0, 1)][0])}.")
    if (me, 1, 2) in mixed and ("std_shared_mutex", 1, 2) in mixed:
        print(f"2 threads, 0.1% writes: {ratio(mixed[(me, 1, 2)][0], mixed[('std_shared_mutex', 1, 2)][0])} "
              "std::shared_mutex.")
    print()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("ring", "shared-mutex"):
        print("usage: bench_structures.py ring|shared-mutex RESULT.json", file=sys.stderr)
        return 2
    ctx, runs = load(sys.argv[2])
    c2c = ""
    for run, aggs in runs.items():
        if run.startswith("BM_CoreToCore") and "median" in aggs:
            cv = aggs.get("cv", {}).get("real_time", 0)
            c2c = (f" Cache-line round trip between the first and the last CPU (`BM_CoreToCore`, interleaved with "
                   f"the rows): median {aggs['median']['real_time']:.0f} ns, cv {100 * cv:.0f}%.")
    par = {}
    for run, aggs in runs.items():
        m = re.match(r"BM_Parallel/.*threads:(\d+)", run)
        if m and "median" in aggs:
            par[int(m.group(1))] = rate(aggs["median"])
    if 1 in par and 2 in par:
        c2c += (f" Parallelism the host gave the run (`BM_Parallel`, 2 threads over 1 on private lines): "
                f"{ratio(par[2], par[1])}.")
    print(f"Run of {ctx.get('date', '?')} on {ctx.get('num_cpus', '?')} CPUs, load average at start "
          f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}; medians of the repetitions.{c2c}\n")
    (ring if sys.argv[1] == "ring" else mutex)(ctx, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
