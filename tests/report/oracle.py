"""An independent oracle for `vscope-export report --format json`.

Recomputes every table of every section from the export's Parquet files with DuckDB SQL and
compares each figure with the report's JSON (numbers within a relative and absolute tolerance,
everything else exactly). Shares no code with the Rust side: only the rules the report states in
its notes (thresholds, formulas) are written again here.

    python oracle.py OUT report.json

Prints one line per difference and exits 1 when there is any; prints a count and exits 0 when
every figure matches.
"""

import json
import math
import sys

import duckdb

REL = 1e-6
ABS = 1e-6
DAY_MS = 86_400_000
KB_PER_GB = 1024.0 * 1024.0

METRIC_TABLES = {
    "vm_metrics": ["service_name", "datacenter", "vm"],
    "host_metrics": ["service_name", "datacenter", "host", "nicname"],
    "filer_metrics": ["service_name", "datacenter", "datastore"],
}

# The rules the report states (section 3 and 5 notes).
OVERSIZED_CPU, OVERSIZED_MEM, OVERSIZED_DAYS = 10.0, 30.0, 7
UNDERSIZED_CPU, UNDERSIZED_READY = 85.0, 5.0
TARGET = 50.0
HOT = 80.0
FILLING_DAYS = 365.0


class Oracle:
    def __init__(self, out, report):
        self.out = out
        self.report = report
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.from_ms = epoch_ms(report["from"])
        self.to_ms = epoch_ms(report["to"])
        self.services = report["services"]
        self.top = report["top"]
        self.problems = []
        self.compared = 0
        self.steps = {}

    # --- reading ---------------------------------------------------------------------------

    def exists(self, table):
        import glob
        import os

        return bool(glob.glob(os.path.join(self.out, table, "**", "*.parquet"), recursive=True))

    def source(self, table):
        services = ""
        if self.services:
            quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in self.services)
            services = f"WHERE service_name IN ({quoted})"
        return (
            f"(SELECT * FROM read_parquet('{self.out}/{table}/**/*.parquet', "
            f"hive_partitioning = true, union_by_name = true) {services})"
        )

    def points(self, table, from_ms=None, to_ms=None):
        f = self.from_ms if from_ms is None else from_ms
        t = self.to_ms if to_ms is None else to_ms
        return (
            f"(SELECT *, epoch_ms(ts) AS t, floor(epoch_ms(ts) / {DAY_MS})::BIGINT AS day "
            f"FROM {self.source(table)} WHERE epoch_ms(ts) >= {f} AND epoch_ms(ts) < {t})"
        )

    def latest(self, table):
        return (
            f"(SELECT * FROM {self.source(table)} s WHERE snapshot_ts = "
            f"(SELECT max(snapshot_ts) FROM {self.source(table)} l WHERE l.service_name = s.service_name))"
        )

    def rows(self, sql):
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    # --- comparing -------------------------------------------------------------------------

    def table(self, section, table_id):
        for s in self.report["sections"]:
            if s["id"] == section:
                for t in s["tables"]:
                    if t["id"] == table_id:
                        return t
        return None

    def same(self, where, got, want):
        self.compared += 1
        if isinstance(want, float) or isinstance(got, float):
            if got is None or want is None:
                ok = got is None and want is None
            else:
                ok = math.isclose(float(got), float(want), rel_tol=REL, abs_tol=ABS)
        else:
            ok = got == want
        if not ok:
            self.problems.append(f"{where}: report {got!r}, oracle {want!r}")

    def compare(self, section, table_id, expected, key, ordered=False):
        """Every column of every expected row against the report's row with the same key."""
        t = self.table(section, table_id)
        where = f"{section}.{table_id}"
        if t is None:
            self.problems.append(f"{where}: missing from the report")
            return
        got_rows = t["rows"]
        if len(got_rows) != len(expected):
            self.problems.append(f"{where}: {len(got_rows)} rows, oracle {len(expected)}")
        if ordered:
            pairs = zip(got_rows, expected)
        else:
            by_key = {tuple(r[k] for k in key): r for r in got_rows}
            pairs = []
            for e in expected:
                k = tuple(e[c] for c in key)
                if k not in by_key:
                    self.problems.append(f"{where}: no row {k}")
                    continue
                pairs.append((by_key[k], e))
        for got, want in pairs:
            k = tuple(want.get(c) for c in key)
            for column, value in want.items():
                if column not in got:
                    self.problems.append(f"{where}: no column {column}")
                    continue
                self.same(f"{where}{k}.{column}", got[column], value)

    # --- sections --------------------------------------------------------------------------

    def compute_steps(self):
        for table, series in METRIC_TABLES.items():
            if not self.exists(table):
                continue
            first = self.rows(f"SELECT min(t) AS first FROM {self.points(table)}")[0]["first"]
            if first is None:
                continue
            day_end = min(first + 6 * 3_600_000, self.to_ms)
            keys = ", ".join(["metric"] + series)
            rows = self.rows(
                f"""
                WITH d AS (
                  SELECT metric, t - lag(t) OVER (PARTITION BY {keys} ORDER BY t) AS d
                  FROM {self.points(table, first, day_end)})
                SELECT metric, d, count(*) AS n FROM d WHERE d > 0 GROUP BY ALL
                """
            )
            best = {}
            for r in rows:
                b = best.get(r["metric"])
                if b is None or r["n"] > b[0] or (r["n"] == b[0] and r["d"] < b[1]):
                    best[r["metric"]] = (r["n"], r["d"])
            self.steps.update({m: d for m, (_, d) in best.items()})

    def coverage(self):
        expected = []
        for table, series in METRIC_TABLES.items():
            if not self.exists(table):
                continue
            keys = ", ".join(["metric"] + series)
            for r in self.rows(
                f"""
                SELECT metric, count(*) AS series, sum(received)::BIGINT AS received FROM (
                  SELECT {keys}, count(value) AS received FROM {self.points(table)} GROUP BY ALL)
                GROUP BY metric
                """
            ):
                step = self.steps.get(r["metric"])
                exp = None
                if step:
                    exp = r["series"] * (ceil_div(self.to_ms, step) - ceil_div(self.from_ms, step))
                expected.append(
                    {
                        "table": table,
                        "metric": r["metric"],
                        "series": r["series"],
                        "step": step / 1000.0 if step else None,
                        "received": r["received"],
                        "expected": exp,
                        "coverage": r["received"] / exp * 100.0 if exp else None,
                    }
                )
        self.compare("coverage", "metrics", expected, ["table", "metric"])

        counts = {}

        def add(table, sql, fields):
            if not self.exists(table):
                return
            for r in self.rows(sql.format(src=self.latest(table))):
                c = counts.setdefault(r["service_name"], {"service_name": r["service_name"]})
                for f in fields:
                    c[f] = r[f]

        add(
            "datacenter_inventory",
            "SELECT service_name, count(DISTINCT datacenter_id) AS datacenters FROM {src} GROUP BY ALL",
            ["datacenters"],
        )
        add(
            "host_inventory",
            "SELECT service_name, count(*) AS hosts, count(DISTINCT cluster_name) AS clusters "
            "FROM {src} GROUP BY ALL",
            ["hosts", "clusters"],
        )
        add(
            "vm_inventory",
            "SELECT service_name, count(*) FILTER (power_state = 'poweredOn') AS vms_on, "
            "count(*) FILTER (power_state <> 'poweredOn') AS vms_off FROM {src} GROUP BY ALL",
            ["vms_on", "vms_off"],
        )
        add(
            "filer_inventory",
            "SELECT service_name, count(*) AS datastores FROM {src} GROUP BY ALL",
            ["datastores"],
        )
        self.compare("coverage", "estate", list(counts.values()), ["service_name"])

    def capacity(self):
        if not self.exists("host_metrics"):
            return
        cpu, mem = "vscope.host.cpu.usage.perc", "vscope.host.mem.usage.perc"

        def stats(keys, daily):
            group = ", ".join(keys + (["day"] if daily else []))
            rows = self.rows(
                f"""
                SELECT {group},
                  avg(value) FILTER (metric = '{cpu}') AS cpu_avg,
                  quantile_cont(value, 0.95) FILTER (metric = '{cpu}') AS cpu_p95,
                  max(value) FILTER (metric = '{cpu}') AS cpu_max,
                  avg(value) FILTER (metric = '{mem}') AS mem_avg,
                  quantile_cont(value, 0.95) FILTER (metric = '{mem}') AS mem_p95,
                  max(value) FILTER (metric = '{mem}') AS mem_max
                FROM {self.points('host_metrics')} WHERE metric IN ('{cpu}', '{mem}')
                GROUP BY {group}
                """
            )
            for r in rows:
                if daily:
                    r["date"] = date_of_day(r.pop("day"))
            return rows

        self.compare(
            "capacity",
            "clusters_daily",
            stats(["service_name", "cluster_name"], True),
            ["service_name", "cluster_name", "date"],
        )
        self.compare(
            "capacity",
            "hosts_daily",
            stats(["service_name", "cluster_name", "host"], True),
            ["service_name", "cluster_name", "host", "date"],
        )
        hot = [
            r
            for r in stats(["service_name", "cluster_name", "host"], False)
            if (r["cpu_p95"] or 0) > HOT or (r["mem_p95"] or 0) > HOT
        ]
        self.compare("capacity", "hosts_hot", hot, ["service_name", "cluster_name", "host"])

    def vms(self):
        cpu, mem, ready = "vscope.vm.cpu.usage.perc", "vscope.vm.mem.usage.perc", "vscope.vm.cpu.ready"
        lr, lw = "vscope.vm.disk.latency.read", "vscope.vm.disk.latency.write"
        inventory = (
            f"LEFT JOIN (SELECT service_name AS sn, mo_ref, name, host_name, cluster_name, cpu_num, "
            f"memory_max FROM {self.latest('vm_inventory')}) i ON i.sn = m.service_name AND i.mo_ref = m.vm"
            if self.exists("vm_inventory")
            else "LEFT JOIN (SELECT NULL AS sn, NULL AS mo_ref, NULL AS name, NULL AS host_name, "
            "NULL AS cluster_name, NULL::BIGINT AS cpu_num, NULL::BIGINT AS memory_max) i ON false"
        )
        rows = self.rows(
            f"""
            SELECT m.*, i.name, i.host_name, i.cluster_name, i.cpu_num, i.memory_max FROM (
              SELECT service_name, vm,
                quantile_cont(value, 0.95) FILTER (metric = '{cpu}') AS cpu_p95,
                max(value) FILTER (metric = '{cpu}') AS cpu_max,
                count(DISTINCT day) FILTER (metric = '{cpu}' AND value IS NOT NULL) AS days,
                quantile_cont(value, 0.95) FILTER (metric = '{mem}') AS mem_p95,
                avg(value) FILTER (metric = '{ready}') AS ready_avg,
                quantile_cont(value, 0.99) FILTER (metric = '{ready}') AS ready_p99,
                quantile_cont(value, 0.99) FILTER (metric = '{lr}') AS read_p99,
                quantile_cont(value, 0.99) FILTER (metric = '{lw}') AS write_p99,
                count(*) FILTER (metric = '{cpu}') AS has_cpu
              FROM {self.points('vm_metrics')}
              WHERE metric IN ('{cpu}', '{mem}', '{ready}', '{lr}', '{lw}')
              GROUP BY ALL) m {inventory}
            """
        )
        step = self.steps.get(ready)
        for r in rows:
            n = r["cpu_num"]
            r["ready_pct"] = (
                r["ready_avg"] / (step * n) * 100.0
                if r["ready_avg"] is not None and n and step
                else None
            )
            if not r.pop("has_cpu"):
                r["days"] = None
        return rows

    def rightsizing(self, vms):
        all_rows, candidates = [], []
        totals = dict(vms=len(vms), oversized=0, undersized=0, vcpus_freed=0, memory_freed=0.0,
                      vcpus_needed=0, memory_needed=0.0)
        for v in vms:
            cpu, mem, ready = v["cpu_p95"], v["mem_p95"], v["ready_pct"]
            if (cpu is not None and cpu > UNDERSIZED_CPU) or (ready is not None and ready > UNDERSIZED_READY):
                verdict = "undersized"
            elif (cpu is not None and cpu < OVERSIZED_CPU and mem is not None and mem < OVERSIZED_MEM
                  and v["days"] is not None and v["days"] >= OVERSIZED_DAYS):
                verdict = "oversized"
            else:
                verdict = "ok"
            n = v["cpu_num"]
            gb = v["memory_max"] / 1024.0 if v["memory_max"] is not None else None
            new_n, new_gb = n, gb
            if verdict == "oversized":
                new_n = max(1, math.ceil(n * cpu / TARGET)) if n is not None else None
                new_gb = max(1.0, math.ceil(gb * mem / TARGET)) if gb is not None and mem is not None else None
                totals["oversized"] += 1
                totals["vcpus_freed"] -= (new_n - n) if new_n is not None and n is not None else 0
                totals["memory_freed"] -= (new_gb - gb) if new_gb is not None and gb is not None else 0.0
            elif verdict == "undersized":
                if n is not None and cpu is not None and cpu > UNDERSIZED_CPU:
                    new_n = max(n, math.ceil(n * cpu / TARGET))
                elif cpu is None:
                    new_n = None
                totals["undersized"] += 1
                totals["vcpus_needed"] += (new_n - n) if new_n is not None and n is not None else 0
            row = {
                "service_name": v["service_name"], "vm": v["vm"], "vm_name": v["name"],
                "host_name": v["host_name"], "cluster_name": v["cluster_name"], "verdict": verdict,
                "vcpus": n, "memory": gb, "days": v["days"], "cpu_p95": cpu, "cpu_max": v["cpu_max"],
                "mem_p95": mem, "ready_avg": v["ready_avg"], "ready": ready,
                "vcpus_new": new_n, "memory_new": new_gb,
            }
            all_rows.append(row)
            if verdict != "ok":
                candidates.append(row)
        self.compare("rightsizing", "vms", all_rows, ["service_name", "vm"])
        self.compare("rightsizing", "candidates", candidates, ["service_name", "vm"])
        self.compare("rightsizing", "totals", [totals], ["vms"])
        got = self.table("rightsizing", "candidates")
        if got:
            verdicts = [r["verdict"] for r in got["rows"]]
            if verdicts != sorted(verdicts, key=lambda v: v != "undersized"):
                self.problems.append("rightsizing.candidates: undersized VMs are not listed first")
        return all_rows

    def top_n(self, vms, key):
        ranked = [v for v in vms if key(v) is not None]
        ranked.sort(key=lambda v: (-key(v), v["service_name"] or "", v["vm"] or ""))
        return ranked[: self.top]

    def contention(self, vms):
        who = lambda v: {"service_name": v["service_name"], "vm": v["vm"], "vm_name": v["name"],
                         "host_name": v["host_name"], "cluster_name": v["cluster_name"]}
        ready = [
            dict(rank=i + 1, **who(v), ready_avg=v["ready_avg"], ready_p99=v["ready_p99"], ready=v["ready_pct"])
            for i, v in enumerate(self.top_n(vms, lambda v: v["ready_avg"]))
        ]
        self.compare("contention", "cpu_ready_top", ready, ["rank"], ordered=True)

        def worst(v):
            vals = [x for x in (v["read_p99"], v["write_p99"]) if x is not None]
            return max(vals) if vals else None

        latency = [
            dict(rank=i + 1, **who(v), read_p99=v["read_p99"], write_p99=v["write_p99"])
            for i, v in enumerate(self.top_n(vms, worst))
        ]
        self.compare("contention", "disk_latency_top", latency, ["rank"], ordered=True)

    def storage(self):
        if not self.exists("filer_metrics"):
            return
        used = "vscope.filer.datastore.diskspace.used"
        src = f"(SELECT * FROM {self.points('filer_metrics')} WHERE metric = '{used}' AND value IS NOT NULL)"
        fits = self.rows(
            f"""
            SELECT service_name, datacenter, datastore,
              regr_slope(value / {KB_PER_GB}, (t - {self.from_ms}) / {DAY_MS}.0) AS slope,
              regr_intercept(value / {KB_PER_GB}, (t - {self.from_ms}) / {DAY_MS}.0) AS intercept,
              max((t - {self.from_ms}) / {DAY_MS}.0) AS x_last,
              max(day) AS last_day, count(DISTINCT day) AS days
            FROM {src} GROUP BY ALL
            """
        )
        last = {
            (r["service_name"], r["datacenter"], r["datastore"], r["day"]): r["used"]
            for r in self.rows(f"SELECT service_name, datacenter, datastore, day, avg(value / {KB_PER_GB}) AS used FROM {src} GROUP BY ALL")
        }
        sizes = {}
        if self.exists("filer_inventory"):
            factor = {"KB": 1 / KB_PER_GB, "MB": 1 / 1024.0, "GB": 1.0, "TB": 1024.0, "PB": KB_PER_GB}
            for r in self.rows(f"SELECT service_name, name, size_value, size_unit FROM {self.latest('filer_inventory')}"):
                f = factor.get((r["size_unit"] or "").upper())
                if r["size_value"] is not None and f is not None:
                    sizes[(r["service_name"], r["name"])] = r["size_value"] * f
        rows = []
        for f in fits:
            size = sizes.get((f["service_name"], f["datastore"]))
            u = last[(f["service_name"], f["datacenter"], f["datastore"], f["last_day"])]
            slope = f["slope"]
            until = None
            full_date = None
            if slope is not None and size is not None and slope > 0:
                until = max(0.0, (size - (f["intercept"] + slope * f["x_last"])) / slope)
                full_ms = self.from_ms + int((f["x_last"] + until) * DAY_MS)
                full_date = date_of_day(full_ms // DAY_MS)
            rows.append({
                "service_name": f["service_name"], "datacenter": f["datacenter"], "datastore": f["datastore"],
                "size": float(size) if size is not None else None, "used": u,
                "used_pct": u / size * 100.0 if size else None, "days": f["days"], "growth": slope,
                "days_until_full": until, "full_date": full_date,
                "filling": until is not None and until <= FILLING_DAYS and f["days"] >= 7,
            })
        self.compare("storage", "datastores", rows, ["service_name", "datacenter", "datastore"])
        got = self.table("storage", "datastores")
        if got:
            days = [r["days_until_full"] if r["days_until_full"] is not None else math.inf for r in got["rows"]]
            if days != sorted(days):
                self.problems.append("storage.datastores: not sorted soonest full first")

    def network(self, vms):
        names = {(v["service_name"], v["vm"]): v for v in vms}
        if self.exists("vm_metrics"):
            rx, tx = "vscope.vm.net.rx", "vscope.vm.net.tx"
            vol = self.rows(
                f"""
                SELECT service_name, vm,
                  sum(value) FILTER (metric = '{rx}') AS rx, count(value) FILTER (metric = '{rx}') AS nrx,
                  sum(value) FILTER (metric = '{tx}') AS tx, count(value) FILTER (metric = '{tx}') AS ntx
                FROM {self.points('vm_metrics')} WHERE metric IN ('{rx}', '{tx}') GROUP BY ALL
                """
            )
            for r in vol:
                r["rx"] = r["rx"] * self.steps[rx] / 1000.0 / KB_PER_GB if r.pop("nrx") else None
                r["tx"] = r["tx"] * self.steps[tx] / 1000.0 / KB_PER_GB if r.pop("ntx") else None
            for key, table in (("rx", "rx_top"), ("tx", "tx_top")):
                ranked = [r for r in vol if r[key] is not None]
                ranked.sort(key=lambda r: (-r[key], r["service_name"] or "", r["vm"] or ""))
                rows = []
                for i, r in enumerate(ranked[: self.top]):
                    inv = names.get((r["service_name"], r["vm"]), {})
                    rows.append({"rank": i + 1, "service_name": r["service_name"], "vm": r["vm"],
                                 "vm_name": inv.get("name"), "host_name": inv.get("host_name"),
                                 "rx": r["rx"], "tx": r["tx"]})
                self.compare("network", table, rows, ["rank"], ordered=True)
        if self.exists("host_metrics"):
            rx, tx = "vscope.host.net.rx", "vscope.host.net.tx"
            rows = self.rows(
                f"""
                SELECT service_name, cluster_name, host, nicname,
                  avg(value) FILTER (metric = '{rx}') AS rx_avg,
                  quantile_cont(value, 0.95) FILTER (metric = '{rx}') AS rx_p95,
                  max(value) FILTER (metric = '{rx}') AS rx_max,
                  avg(value) FILTER (metric = '{tx}') AS tx_avg,
                  quantile_cont(value, 0.95) FILTER (metric = '{tx}') AS tx_p95,
                  max(value) FILTER (metric = '{tx}') AS tx_max
                FROM {self.points('host_metrics')} WHERE metric IN ('{rx}', '{tx}') GROUP BY ALL
                """
            )
            self.compare("network", "host_nics", rows, ["service_name", "cluster_name", "host", "nicname"])

    def run(self):
        self.compute_steps()
        self.coverage()
        self.capacity()
        vms = self.vms() if self.exists("vm_metrics") else []
        if self.exists("vm_metrics"):
            self.rightsizing(vms)
            self.contention(vms)
        self.storage()
        self.network(vms)
        return self.problems


def epoch_ms(text):
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1000)


def ceil_div(a, b):
    return -((-a) // b)


def date_of_day(day):
    from datetime import date, timedelta

    return (date(1970, 1, 1) + timedelta(days=int(day))).isoformat()


def main():
    out, report_path = sys.argv[1], sys.argv[2]
    with open(report_path) as f:
        report = json.load(f)
    oracle = Oracle(out, report)
    problems = oracle.run()
    for p in problems[:200]:
        print(p)
    if problems:
        print(f"{len(problems)} differences ({oracle.compared} figures compared)")
        sys.exit(1)
    print(f"ok: {oracle.compared} figures match")


if __name__ == "__main__":
    main()
