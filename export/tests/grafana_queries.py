# SPDX-License-Identifier: MIT
"""Checks a Grafana dashboard against a real Prometheus: the JSON parses,
every panel and query takes its data source from the dashboard's variable,
and every PromQL expression in it (panel targets and query variables, with
the variables set to "All") returns data through the HTTP API.

Usage: grafana_queries.py DASHBOARD.json PROMETHEUS_API_URL
Exit status: 0 pass, 1 fail."""
import json
import re
import sys
import time
import urllib.parse
import urllib.request

DEADLINE = 60  # seconds for all queries to have data, on a loaded machine

path, api = sys.argv[1], sys.argv[2].rstrip("/")
with open(path) as f:
    dash = json.load(f)  # a dashboard that does not parse fails here

problems = []
variables = dash.get("templating", {}).get("list", [])
ds_vars = [v["name"] for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
if not ds_vars:
    problems.append("no Prometheus data source variable")
ds = "${%s}" % (ds_vars[0] if ds_vars else "datasource")

exprs = []  # (where, PromQL)
for v in variables:
    if v.get("type") != "query":
        continue
    if v.get("datasource", {}).get("uid") != ds:
        problems.append(f"variable {v['name']}: data source is not {ds}")
    q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
    # label_values(M, L) is Grafana's; it has data when this has.
    exprs.append((f"variable {v['name']}", f"count by ({m.group(2)}) ({m.group(1)})" if m else q))
if not dash.get("panels"):
    problems.append("no panels")
ids = [p.get("id") for p in dash.get("panels", [])]
if len(set(ids)) != len(ids):
    problems.append(f"panel ids repeat: {ids}")
for p in dash.get("panels", []):
    if p.get("datasource", {}).get("uid") != ds:
        problems.append(f"panel '{p.get('title')}': data source is not {ds}")
    if not p.get("targets"):
        problems.append(f"panel '{p.get('title')}' has no query")
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != ds:
            problems.append(f"panel '{p.get('title')}' query {t.get('refId')}: data source is not {ds}")
        exprs.append((f"panel '{p['title']}' {t.get('refId')}", t["expr"]))

names = [v["name"] for v in variables if v.get("type") == "query"]


def expand(e):
    """Every query variable set to All (its allValue, a regex matching anything)."""
    for n in names:
        e = e.replace("${%s}" % n, ".*").replace("$" + n, ".*")
    return e


def query(e):
    url = api + "/query?" + urllib.parse.urlencode({"query": e})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", body))
    return body["data"]["result"]


pending = {}
for where, e in exprs:
    x = expand(e)
    if "$" in x:
        problems.append(f"{where}: unknown variable in {e}")
    else:
        pending[where] = x
end = time.monotonic() + DEADLINE
results = {}
while pending and time.monotonic() < end:
    for where, e in list(pending.items()):
        try:
            r = query(e)
        except Exception as err:  # a query Prometheus refuses fails at once
            problems.append(f"{where}: {e}: {err}")
            del pending[where]
            continue
        if r:
            results[where] = (e, len(r))
            del pending[where]
    if pending:
        time.sleep(1)
for where, e in pending.items():
    problems.append(f"{where}: no data within {DEADLINE} s: {e}")
for where, (e, n) in results.items():
    print(f"ok   {where}: {n} series: {e}")
for p in problems:
    print("FAIL " + p)
print(f"{len(results)} of {len(exprs)} queries returned data")
sys.exit(1 if problems or not results else 0)
