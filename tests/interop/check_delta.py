"""The Delta Lake tests' readers (tests/it/delta.rs): what the Python `deltalake` package and
polars' `scan_delta` read from a Delta output, against the same job's Parquet output.

  check_delta.py compare DELTA PARQUET T…   JSON: per table T, the rows of DELTA/T read with
                                            deltalake and with polars.scan_delta, each compared
                                            with PARQUET/T read as hive-partitioned Parquet
  check_delta.py tables DELTA T…            JSON: per table T, its version, its files and its
                                            commits' operations and application transactions

Rows are compared as multisets of every column but `snapshot_ts` (each run takes its own
inventory snapshot), partition columns included, times as UTC milliseconds.
"""

import json
import os
import sys


def normalized(df):
    import polars as pl

    df = df.drop([c for c in ("snapshot_ts",) if c in df.columns])
    columns = []
    for name, dtype in df.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            column = column.dt.replace_time_zone("UTC").dt.cast_time_unit("ms").dt.epoch("ms")
        elif isinstance(dtype, pl.List):
            # A map: its entries as `key=value` text, in their order.
            column = column.list.eval(
                pl.element().struct.field("key")
                + "="
                + pl.element().struct.field("value").fill_null("∅")
            ).list.join("\x1f")
        elif isinstance(dtype, (pl.Date, pl.Categorical, pl.Enum)):
            column = column.cast(pl.String)
        columns.append(column.alias(name))
    df = df.select(columns)
    df = df.select(sorted(df.columns))
    return df.sort(df.columns, nulls_last=True)


def compare_one(expected, got):
    if sorted(expected.columns) != sorted(got.columns):
        return f"columns {sorted(got.columns)}, expected {sorted(expected.columns)}"
    if expected.height != got.height:
        return f"{got.height} rows, expected {expected.height}"
    if expected.equals(got):
        return "equal"
    import polars as pl

    differs = expected.with_row_index().join(got.with_row_index(), on="index", suffix="_got")
    for name in expected.columns:
        bad = differs.filter(pl.col(name).ne_missing(pl.col(f"{name}_got")))
        if bad.height:
            row = bad.row(0, named=True)
            return f"{bad.height} rows differ, e.g. {name}: {row[f'{name}_got']!r}, expected {row[name]!r}"
    return "differs"


def compare(delta, parquet, tables):
    import polars as pl
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

    out = {}
    for table in tables:
        hive = ds.dataset(f"{parquet}/{table}", format="parquet", partitioning="hive")
        expected = normalized(pl.from_arrow(hive.to_table()))
        read = DeltaTable(f"{delta}/{table}")
        out[table] = {
            "rows": expected.height,
            "deltalake": compare_one(expected, normalized(pl.from_arrow(read.to_pyarrow_table()))),
            "polars": compare_one(expected, normalized(pl.scan_delta(f"{delta}/{table}").collect())),
        }
    return out


def tables(delta, names):
    from deltalake import DeltaTable

    out = {}
    for table in names:
        read = DeltaTable(f"{delta}/{table}")
        history = sorted(read.history(), key=lambda c: c["version"])
        out[table] = {
            "version": read.version(),
            "files": sorted(uri.split(f"/{table}/", 1)[1] for uri in read.file_uris()),
            "operations": [c["operation"] for c in history],
            "owners": [c.get("vscope_export.owner") for c in history],
            "rows": read.to_pyarrow_table().num_rows,
        }
    return out


def main(args):
    command, rest = args[0], args[1:]
    if command == "compare":
        print(json.dumps(compare(rest[0], rest[1], rest[2:])))
    elif command == "tables":
        print(json.dumps(tables(rest[0], rest[1:])))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.stdout.flush()
    # deltalake's runtime threads can abort the interpreter's exit ("terminate called without an
    # active exception"): the answer is out, so leave at once.
    os._exit(0)
