"""The plain Python exporter a user would write instead of vscope-export (a benchmark baseline).

Reads captured `/api/query` responses (one JSON array per file, `msResolution: true`) with the
standard `json` module, builds the key columns of `vm_metrics` (ts, metric, value, service_name,
datacenter, vm) and writes date-partitioned Parquet with ZSTD through pyarrow.

    python bench/baseline_python.py OUT_DIR capture/*.json
"""

import json
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def convert(path):
    with open(path, "rb") as f:
        series_list = json.load(f)
    ts, metric, value, service, datacenter, vm = [], [], [], [], [], []
    for series in series_list:
        tags = series.get("tags", {})
        dps = series.get("dps", {})
        n = len(dps)
        ts.extend(int(k) for k in dps.keys())
        value.extend(dps.values())
        metric.extend([series["metric"]] * n)
        service.extend([tags.get("servicename")] * n)
        datacenter.extend([tags.get("datacenter")] * n)
        vm.extend([tags.get("vm")] * n)
    ts_col = pa.array(ts, type=pa.timestamp("ms", tz="UTC"))
    return pa.table(
        {
            "ts": ts_col,
            "metric": pa.array(metric, type=pa.string()),
            "value": pa.array(value, type=pa.float64()),
            "service_name": pa.array(service, type=pa.string()),
            "datacenter": pa.array(datacenter, type=pa.string()),
            "vm": pa.array(vm, type=pa.string()),
            "date": pc.strftime(ts_col, format="%Y-%m-%d"),
        }
    )


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    rows = 0
    for i, path in enumerate(sorted(paths)):
        table = convert(path)
        rows += table.num_rows
        pq.write_to_dataset(
            table,
            out,
            partition_cols=["date"],
            compression="zstd",
            basename_template=f"part-{i}-{{i}}.parquet",
        )
    print(rows)


if __name__ == "__main__":
    main()
