# SPDX-License-Identifier: MIT
"""The fleet check: Prometheus' sums and quantiles across instances against
the processes' own final totals. Waits for each percore-demo (run with
--json --hold) to print its summary (the last line of its output), then for
Prometheus to scrape every instance after that, then compares:
  - sum(x) and sum by (proto|reason) (x) with the sums of the summaries'
    counters: exactly;
  - sum(rate(packets[5s])) during the runs with the sum of the summaries'
    rates: within 15% (both are averages of the same paced traffic);
  - every summed le bucket with the merged histograms' buckets;
  - histogram_quantile over the instances' summed _bucket counters with the
    percentile of the three processes' merged histograms: both must lie in
    the Prometheus bucket (le) that holds the percentile.

Usage: fleet_check.py PROMETHEUS_API_URL JOB DEMO_OUTPUT:INSTANCE...
Exit status: 0 pass, 1 fail."""
import json
import sys
import time
import urllib.parse
import urllib.request

DEADLINE = 60  # seconds any wait may take on a loaded machine

api, job = sys.argv[1].rstrip("/"), sys.argv[2]
procs = [a.rsplit(":", 2) for a in sys.argv[3:]]
procs = [(p[0], p[1] + ":" + p[2]) for p in procs]  # (output file, host:port)
failures = 0


def check(ok, msg):
    global failures
    print(("ok   " if ok else "FAIL ") + msg)
    failures += 0 if ok else 1


def query(e, at=None):
    params = {"query": e}
    if at is not None:
        params["time"] = f"{at:.3f}"
    with urllib.request.urlopen(api + "/query?" + urllib.parse.urlencode(params), timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{e}: {body}")
    return body["data"]["result"]


def scalar(e, at=None):
    r = query(e, at)
    return float(r[0]["value"][1]) if len(r) == 1 else None


def by_label(e, label):
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in query(e)}


def wait(what, cond):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.25)
    print("FAIL timed out waiting for " + what)
    sys.exit(1)


def summary(path):
    """The summary JSON, once the last line of the output is one."""
    try:
        lines = open(path).read().splitlines()
        return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    except (OSError, ValueError):
        return None


# 1. Every process prints its final totals; note when each was seen.
sums, seen = {}, {}
for out, inst in procs:
    sums[inst] = wait(f"the summary of {inst}", lambda: summary(out))
    seen[inst] = time.time()  # the summary was printed before this
    print(f"     {inst}: {sums[inst]['packets']} packets, {sums[inst]['rate']:.0f}/s")

# 2. Prometheus scrapes each of them after that (the counters were final
# when the summary was printed): the scrape's sample timestamp says when.
for inst in seen:
    wait(f"a scrape of {inst} after its summary",
         lambda: (scalar(f'timestamp(up{{job="{job}",instance="{inst}"}})') or 0) > seen[inst])
check(len(query(f'up{{job="{job}"}} == 1')) == len(procs), f"{len(procs)} instances up in job {job}")

# 3. Counters: exact.
sel = f'{{job="{job}"}}'
want = sum(s["packets"] for s in sums.values())
got = scalar(f"sum(percore_demo_packets_total{sel})")
check(got == want, f"sum(percore_demo_packets_total) = {got:.0f}, processes' total {want}")
for metric, key, label in (("packets", "packets", "proto"), ("bytes", "bytes", "proto")):
    got = by_label(f"sum by (proto) (percore_demo_{metric}_total{sel})", label)
    want = {}
    for s in sums.values():
        for proto, v in s["protocols"].items():
            want[proto] = want.get(proto, 0) + v[key]
    check(got == {k: float(v) for k, v in want.items()}, f"sum by (proto) (percore_demo_{metric}_total) = {got}, processes' {want}")
for metric in ("drops", "errors"):
    got = by_label(f"sum by (reason) (percore_demo_{metric}_total{sel})", "reason")
    want = {}
    for s in sums.values():
        for reason, v in s[metric].items():
            want[reason] = want.get(reason, 0) + v
    check(got == {k: float(v) for k, v in want.items()}, f"sum by (reason) (percore_demo_{metric}_total) = {got}, processes' {want}")

# 4. Rates: the fleet's rate over 5 s ending 2 s before the first summary
# was seen (well inside every run), against the sum of each process's
# average rate.
end_first = min(seen.values()) - 2
got = scalar(f"sum(rate(percore_demo_packets_total{sel}[5s]))", at=end_first)
want = sum(s["rate"] for s in sums.values())
err = abs(got - want) / want if got is not None and want else float("inf")
check(err <= 0.15, f"sum(rate(percore_demo_packets_total[5s])) = {got}, processes' rates sum to {want:.0f} ({err:.1%} apart)")

# 5. Quantiles: Prometheus' histogram_quantile over the summed buckets,
# against the percentile of the merged histograms (upper edge of the
# bucket holding the rank, like percore's percentile()).
merged = {}
for s in sums.values():
    for lo, hi, n in s["latency_ns"]["buckets"]:
        merged[(lo, hi)] = merged.get((lo, hi), 0) + n
fine = sorted(merged.items())
total = sum(n for _, n in fine)
check(total == sum(s["latency_ns"]["count"] for s in sums.values()), f"merged buckets hold {total} values")
le = sorted((float(k) if k != "+Inf" else float("inf"), v)
            for k, v in by_label(f"sum by (le) (percore_demo_packet_duration_seconds_bucket{sel})", "le").items())
check(le and le[-1][1] == total, f"Prometheus' +Inf bucket {le[-1][1] if le else None:.0f} = merged count {total}")
# Each cumulative le count lies between the merged counts of the buckets
# wholly at or below the bound and of those starting at or below it.
bad = []
for bound, cum in le:
    if bound == float("inf"):
        continue
    b = round(bound * 1e9)  # the bounds are whole nanoseconds
    below = sum(n for (lo, hi), n in fine if hi <= b)
    upto = sum(n for (lo, hi), n in fine if lo <= b)
    if not below <= cum <= upto:
        bad.append(f"le={bound:g}: {cum:.0f} not in [{below}, {upto}]")
check(not bad, f"{len(le)} cumulative le counts agree with the merged buckets" + (": " + "; ".join(bad) if bad else ""))
for q in (0.5, 0.9, 0.99):
    rank = q * total
    acc, ref = 0, None
    for (lo, hi), n in fine:
        acc += n
        if acc >= rank:
            ref = (lo / 1e9, hi / 1e9)
            break
    prev, bucket = 0.0, None
    for bound, cum in le:
        if cum >= rank:
            bucket = (prev, bound)
            break
        prev = bound
    got = scalar(f"histogram_quantile({q}, sum by (le) (percore_demo_packet_duration_seconds_bucket{sel}))")
    ok = (bucket is not None and got is not None and bucket[0] <= got <= bucket[1]
          and ref[0] <= bucket[1] and ref[1] >= bucket[0])  # both within the le bucket holding the rank
    check(ok, f"p{q * 100:g}: histogram_quantile {got * 1e9 if got is not None else None:.0f} ns, "
              f"merged histograms [{ref[0] * 1e9:.0f}, {ref[1] * 1e9:.0f}] ns, "
              f"le bucket ({bucket[0] * 1e9:.0f}, {bucket[1] * 1e9:.0f}] ns")
sys.exit(1 if failures else 0)
