"""Reads an export folder with the real DuckDB and prints what a warehouse user would check, as JSON.

Usage: check_duckdb.py OUTPUT_DIR
"""

import json
import sys

import duckdb

ENTITY = {
    "vm_metrics": ["vm"],
    "host_metrics": ["host", "nicname"],
    "filer_metrics": ["datastore"],
}
INVENTORY_COLUMN = {"vm_metrics": "vm_name", "host_metrics": "host_id", "filer_metrics": "filer_id"}


def main(out: str) -> None:
    con = duckdb.connect()
    report = {}
    for table, entity in ENTITY.items():
        source = f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true)"
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source})").fetchall())
        key = ", ".join(["service_name", "datacenter", *entity, "metric", "ts"])
        rows, dates = con.execute(f"SELECT count(*), count(DISTINCT date) FROM {source}").fetchone()
        duplicates = con.execute(
            f"SELECT count(*) FROM (SELECT {key}, count(*) AS n FROM {source} GROUP BY ALL HAVING n > 1)"
        ).fetchone()[0]
        filled = con.execute(
            f"SELECT count({INVENTORY_COLUMN[table]}) FROM {source}"
        ).fetchone()[0]
        per_date = dict(
            (str(d), n) for d, n in con.execute(f"SELECT date, count(*) FROM {source} GROUP BY date ORDER BY date").fetchall()
        )
        report[table] = {
            "types": types,
            "rows": rows,
            "dates": dates,
            "rows_per_date": per_date,
            "duplicates": duplicates,
            "inventory_filled": filled,
            "min_ts": str(con.execute(f"SELECT min(ts) FROM {source}").fetchone()[0]),
        }
    inv = f"read_parquet('{out}/vm_inventory/**/*.parquet', hive_partitioning = true)"
    report["vm_inventory"] = {"rows": con.execute(f"SELECT count(*) FROM {inv}").fetchone()[0]}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
