"""Reads an export with one real Parquet reader and says, check by check, what a user of that
reader would see: every table opens with every row, every `value` bit for bit, nulls as nulls,
`ts` as a UTC timestamp, the `date` partition, `tags` as a map, and filters that match nothing
skipping every row group on statistics.

Usage: check.py READER OUTPUT_DIR EXPECTED_JSON

READER is the name of a requirements file beside this script (`pyarrow-26`, `spark-4.0`, …); the
part before the first `-` (or the whole of `pandas-pyarrow`/`pandas-fastparquet`) picks the code
below. EXPECTED_JSON is written by tests/it/readers.rs from the simulator's truth. Prints one JSON
object: {"reader", "version", "checks": {name: {"ok": bool, "detail": str}}}. Every check runs
even when an earlier one failed, so one run shows everything a reader gets wrong.
"""

import glob
import json
import math
import os
import struct
import sys
import traceback
import warnings

METRICS = ("vm_metrics", "host_metrics", "filer_metrics")
INVENTORY = ("vm_inventory", "host_inventory", "filer_inventory", "datacenter_inventory")


def bits(v):
    """The float64 bits of a value as 16 hex digits, or None for a null (and NaN, which the
    simulator never serves: its fills are nulls)."""
    if v is None:
        return None
    v = float(v)
    if math.isnan(v):
        return None
    return "%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]


class Loaded(dict):
    """What `open:<table>` read, for the checks after it; they fail plainly when it could not."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def __missing__(self, key):
        raise RuntimeError(f"not checked: {self.table} did not open (see open:{self.table})")


class NO_STATS:
    """Statistics of a column chunk that has none: nothing known about its nulls."""

    null_count = None


def error(e):
    lines = [l for l in traceback.format_exception_only(type(e), e) if l.strip()]
    return " ".join(l.strip() for l in lines)[:600]


class Report:
    def __init__(self, reader):
        self.reader = reader
        self.version = "?"
        self.checks = {}

    def check(self, name, fn):
        """Runs `fn`, which returns (ok, detail) or raises; records the outcome under `name`."""
        try:
            ok, detail = fn()
        except Exception as e:  # noqa: BLE001 - every reader error is a finding
            ok, detail = False, error(e)
        self.checks[name] = {"ok": bool(ok), "detail": str(detail)[:2000]}

    def dump(self):
        json.dump({"reader": self.reader, "version": self.version, "checks": self.checks}, sys.stdout)


# What every reader's rows are compared with -------------------------------------------------

def entity_key(table, row):
    if table == "vm_metrics":
        return row["vm"]
    if table == "host_metrics":
        nic = row.get("nicname")
        return row["host"] + ("/" + nic if nic is not None else "")
    return row["datastore"]


def compare_values(expected, table, rows):
    """rows: iterable of (metric, entity, ts_ms, value_bits_or_None)."""
    want = {(m, e, t): b for m, e, t, b in expected["tables"][table]["points"]}
    got = {}
    dup = 0
    for m, e, t, b in rows:
        if (m, e, t) in got:
            dup += 1
        got[(m, e, t)] = b
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [(k, want[k], got[k]) for k in want if k in got and want[k] != got[k]]
    ok = not (missing or extra or wrong or dup)
    detail = (
        f"{len(got)} rows read, {len(want)} expected; {dup} duplicate keys, {len(missing)} missing "
        f"(e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]}), {len(wrong)} with "
        f"other bits (expected, got) (e.g. {wrong[:3]})"
    )
    return ok, detail


def compare_nulls(expected, table, rows):
    want = {(m, e, t) for m, e, t, b in expected["tables"][table]["points"] if b is None}
    got = {(m, e, t) for m, e, t, b in rows if b is None}
    ok = want == got
    return ok, (
        f"{len(got)} null values read, {len(want)} expected; "
        f"not null (e.g.): {sorted(want - got)[:2]}, null but should not be (e.g.): {sorted(got - want)[:2]}"
    )


def compare_dates(expected, table, dates):
    want = sorted(expected["tables"][table]["dates"])
    got = sorted({str(d)[:10] for d in dates})
    return got == want, f"date partitions read: {got}, expected {want}"


def compare_tags(expected, table, tags):
    """tags: one entry per row, as the reader gives it (dict, list of pairs, or None)."""
    rows = 0
    nulls = 0
    entries = 0
    kinds = set()
    for t in tags:
        rows += 1
        if t is None:
            nulls += 1
            continue
        if hasattr(t, "tolist"):
            t = t.tolist()
        kinds.add(type(t).__name__)
        if isinstance(t, dict):
            entries += len(t)
        else:
            pairs = list(t)
            if not all(len(p) == 2 for p in pairs):
                return False, f"a tags value is not key/value pairs: {pairs[:2]!r}"
            entries += len(pairs)
    return tag_counts(expected, table, rows, nulls, entries, kinds)


def tag_counts(expected, table, rows, nulls, entries, kinds):
    want = expected["tables"][table]["tag_entries"]
    ok = rows > 0 and nulls == 0 and entries == want
    return ok, f"{rows} rows, {nulls} with tags None, {entries} key/value entries (expected {want}), as {sorted(kinds)}"


def rows_count(expected, table, n):
    want = expected["tables"][table]["rows"]
    return n == want, f"{n} rows, expected {want}"


# The readers ----------------------------------------------------------------------------------

def check_pyarrow(report, out, expected, pandas_engine=None):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    report.version = pa.__version__

    def dataset(table):
        return ds.dataset(os.path.join(out, table), format="parquet", partitioning="hive")

    for table in INVENTORY:
        report.check(f"open:{table}", lambda t=table: rows_count(expected, t, dataset(t).to_table().num_rows))

    for table in METRICS:
        loaded = Loaded(table)

        def load(t=table):
            tab = dataset(t).to_table()
            loaded["table"] = tab
            return rows_count(expected, t, tab.num_rows)

        report.check(f"open:{table}", load)

        def rows(t=table):
            tab = loaded["table"]
            d = tab.select([c for c in ("metric", "vm", "host", "nicname", "datastore") if c in tab.column_names]).to_pydict()
            ts = tab.column("ts").cast(pa.int64()).to_pylist()
            values = tab.column("value").to_pylist()
            names = list(d)
            for i in range(tab.num_rows):
                row = {n: d[n][i] for n in names}
                yield row["metric"], entity_key(t, row), ts[i], bits(values[i])

        report.check(f"values:{table}", lambda t=table: compare_values(expected, t, rows(t)))
        report.check(f"nulls:{table}", lambda t=table: compare_nulls(expected, t, rows(t)))

        def ts_utc(t=table):
            typ = loaded["table"].schema.field("ts").type
            return pa.types.is_timestamp(typ) and typ.tz in ("UTC", "+00:00", "Etc/UTC"), f"ts is {typ}"

        report.check(f"ts_utc:{table}", ts_utc)
        report.check(f"date:{table}", lambda t=table: compare_dates(expected, t, loaded["table"].column("date").to_pylist()))

        def tags(t=table):
            col = loaded["table"].column("tags")
            if not pa.types.is_map(col.type):
                return False, f"tags is {col.type}, not a map"
            try:
                values = col.to_pylist()
            except Exception as e:  # noqa: BLE001 - what a user calling to_pylist()/to_pandas() gets
                return False, f"the {col.type} values cannot be read: {error(e)}"
            return compare_tags(expected, t, values)

        report.check(f"tags:{table}", tags)

        # Statistics and pruning on them, per row group.
        prune = expected["prune"][table]

        def stats(column, t=table):
            groups = 0
            without = []
            for path in sorted(dataset(t).files):
                meta = pq.ParquetFile(path).metadata
                index = meta.schema.names.index(column)
                for g in range(meta.num_row_groups):
                    groups += 1
                    s = meta.row_group(g).column(index).statistics
                    if s is None or not s.has_min_max:
                        without.append(f"{os.path.relpath(path, out)}#{g}")
            return groups > 0 and not without, f"{groups} row groups, {len(without)} without min/max for {column} (e.g. {without[:2]})"

        report.check(f"stats:{table}.value", lambda: stats("value"))
        report.check(f"stats:{table}.ts", lambda: stats("ts"))

        def pruned(column, expr, t=table):
            # pyarrow never prunes a row group that holds a null in the filtered column (its
            # statistics guarantee is `is_null(c) or min <= c <= max`, which it cannot simplify),
            # whatever the file: such groups are counted apart, and the rest must all be skipped.
            total = 0
            kept = []
            with_nulls = 0
            for fragment in dataset(t).get_fragments():
                meta = fragment.metadata
                index = meta.schema.names.index(column)
                nulls = {g for g in range(meta.num_row_groups) if ((meta.row_group(g).column(index).statistics or NO_STATS).null_count or 0) > 0}
                total += meta.num_row_groups
                with_nulls += len(nulls)
                for group in fragment.split_by_row_group(expr):
                    (g,) = [r.id for r in group.row_groups]
                    if g not in nulls:
                        kept.append(f"{os.path.relpath(fragment.path, out)}#{g}")
            ok = total > 0 and not kept
            return ok, (
                f"{len(kept)} of {total - with_nulls} row groups without nulls in {column} kept by the filter {expr} "
                f"(e.g. {kept[:2]}); {with_nulls} with nulls not counted"
            )

        report.check(f"prune:{table}.value", lambda: pruned("value", pc.field("value") > pa.scalar(prune["value_above"], pa.float64())))
        ts_after = pa.scalar(prune["ts_after_ms"], pa.timestamp("ms", tz="UTC"))
        report.check(f"prune:{table}.ts", lambda: pruned("ts", pc.field("ts") > ts_after))


def check_pandas(report, out, expected, engine):
    import pandas as pd

    if engine == "pyarrow":
        import pyarrow

        report.version = f"pandas {pd.__version__}, pyarrow {pyarrow.__version__}"
    else:
        import fastparquet

        report.version = f"pandas {pd.__version__}, fastparquet {fastparquet.__version__}"

    def read(table):
        with warnings.catch_warnings():
            # pandas 3 says the fastparquet engine is deprecated; it is still what users have.
            warnings.simplefilter("ignore")
            return pd.read_parquet(os.path.join(out, table), engine=engine)

    for table in INVENTORY:
        report.check(f"open:{table}", lambda t=table: rows_count(expected, t, len(read(t))))

    for table in METRICS:
        loaded = Loaded(table)

        def load(t=table):
            df = read(t)
            loaded["df"] = df
            return rows_count(expected, t, len(df))

        report.check(f"open:{table}", load)

        def rows(t=table):
            df = loaded["df"]
            ts = df["ts"]
            if getattr(ts.dt, "tz", None) is not None:
                ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
            ts_ms = (ts - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
            cols = {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in ("metric", "vm", "host", "nicname", "datastore") if c in df.columns}
            values = df["value"].astype(object).where(df["value"].notna(), None).tolist()
            ts_ms = ts_ms.tolist()
            for i in range(len(df)):
                row = {c: v[i] for c, v in cols.items()}
                yield row["metric"], entity_key(t, row), int(ts_ms[i]), bits(values[i])

        report.check(f"values:{table}", lambda t=table: compare_values(expected, t, rows(t)))
        report.check(f"nulls:{table}", lambda t=table: compare_nulls(expected, t, rows(t)))

        def ts_utc(t=table):
            dtype = loaded["df"]["ts"].dtype
            tz = getattr(dtype, "tz", None)
            if engine == "fastparquet" and tz is None:
                # fastparquet gives a zone only from pandas' own metadata; without it, it reads
                # any timestamp naive. What it can show is that it knows the column is UTC (and
                # the values, compared above, are the UTC instants).
                import fastparquet

                pf = fastparquet.ParquetFile(sorted(glob.glob(os.path.join(out, t, "*", "*.parquet")))[0])
                logical = pf.schema.root["children"]["ts"].logicalType
                utc = logical is not None and logical.TIMESTAMP is not None and bool(logical.TIMESTAMP.isAdjustedToUTC)
                return utc, f"ts is {dtype}; fastparquet's schema says isAdjustedToUTC={utc}"
            return tz is not None and str(tz) in ("UTC", "+00:00", "Etc/UTC"), f"ts is {dtype}"

        report.check(f"ts_utc:{table}", ts_utc)
        report.check(f"date:{table}", lambda t=table: compare_dates(expected, t, loaded["df"]["date"].astype(str).tolist()))
        report.check(f"tags:{table}", lambda t=table: compare_tags(expected, t, loaded["df"]["tags"].tolist()))


def check_duckdb(report, out, expected):
    import duckdb

    report.version = duckdb.__version__
    con = duckdb.connect()

    def source(table):
        return f"read_parquet('{out}/{table}/*/*.parquet', hive_partitioning = true)"

    for table in INVENTORY:
        report.check(
            f"open:{table}",
            lambda t=table: rows_count(expected, t, con.execute(f"SELECT count(*) FROM {source(t)}").fetchone()[0]),
        )

    for table in METRICS:
        entity = {"vm_metrics": "vm", "host_metrics": "host || coalesce('/' || nicname, '')", "filer_metrics": "datastore"}[table]
        src = source(table)
        report.check(
            f"open:{table}",
            lambda t=table, s=src: rows_count(expected, t, con.execute(f"SELECT count(*) FROM {s}").fetchone()[0]),
        )

        def rows(s=src, e=entity):
            for m, ent, ts, v in con.execute(f"SELECT metric, {e}, epoch_ms(ts), value FROM {s}").fetchall():
                yield m, ent, ts, bits(v)

        report.check(f"values:{table}", lambda t=table: compare_values(expected, t, rows()))
        report.check(f"nulls:{table}", lambda t=table: compare_nulls(expected, t, rows()))

        def types(s=src):
            return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {s})").fetchall())

        report.check(f"ts_utc:{table}", lambda s=src: (types(s)["ts"] == "TIMESTAMP WITH TIME ZONE", f"ts is {types(s)['ts']}"))

        def date(t=table, s=src):
            typ = types(s).get("date")
            ok, detail = compare_dates(expected, t, [r[0] for r in con.execute(f"SELECT DISTINCT date FROM {s}").fetchall()])
            return ok and typ == "DATE", f"date is {typ}; {detail}"

        report.check(f"date:{table}", date)

        def tags(t=table, s=src):
            typ = types(s)["tags"]
            if not typ.startswith("MAP("):
                return False, f"tags is {typ}, not a map"
            rows, nulls, entries = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE tags IS NULL), sum(cardinality(tags)) FROM {s}"
            ).fetchone()
            return tag_counts(expected, t, rows, nulls, entries, {typ})

        report.check(f"tags:{table}", tags)

        prune = expected["prune"][table]
        files = f"'{out}/{table}/*/*.parquet'"

        def stats(column):
            rows = con.execute(
                f"SELECT file_name, row_group_id, coalesce(stats_min_value, stats_min), coalesce(stats_max_value, stats_max) "
                f"FROM parquet_metadata({files}) WHERE path_in_schema = '{column}'"
            ).fetchall()
            without = [f"{os.path.relpath(f, out)}#{g}" for f, g, lo, hi in rows if lo is None or hi is None]
            return rows and not without, f"{len(rows)} row groups, {len(without)} without min/max for {column} (e.g. {without[:2]})"

        report.check(f"stats:{table}.value", lambda: stats("value"))
        report.check(f"stats:{table}.ts", lambda: stats("ts"))

        def pruned(condition, s=src):
            # DuckDB shows no per-row-group counter; what a user sees is that the filter is pushed
            # into the Parquet scan (where row groups are skipped on their min/max) and matches nothing.
            n = con.execute(f"SELECT count(*) FROM {s} WHERE {condition}").fetchone()[0]
            plan = "\n".join(str(r[-1]) for r in con.execute(f"EXPLAIN SELECT * FROM {s} WHERE {condition}").fetchall())
            column = condition.split()[0]
            scan = plan[plan.find("PARQUET_SCAN") if "PARQUET_SCAN" in plan else plan.find("READ_PARQUET"):]
            pushed = "Filters:" in scan and column in scan[scan.find("Filters:"):]
            return n == 0 and pushed, f"{n} rows match {condition}; filter pushed into the scan: {pushed}"

        report.check(f"prune:{table}.value", lambda: pruned(f"value > {prune['value_above']!r}"))
        report.check(f"prune:{table}.ts", lambda: pruned(f"ts > make_timestamp({prune['ts_after_ms'] * 1000})::TIMESTAMPTZ"))


def check_polars(report, out, expected):
    import polars as pl

    report.version = pl.__version__

    def scan(table):
        return pl.scan_parquet(os.path.join(out, table, "*", "*.parquet"), hive_partitioning=True)

    for table in INVENTORY:
        report.check(f"open:{table}", lambda t=table: rows_count(expected, t, scan(t).collect().height))

    for table in METRICS:
        loaded = Loaded(table)

        def load(t=table):
            df = scan(t).collect()
            loaded["df"] = df
            return rows_count(expected, t, df.height)

        report.check(f"open:{table}", load)

        def rows(t=table):
            df = loaded["df"]
            ts = df.get_column("ts").dt.epoch("ms").to_list()
            values = df.get_column("value").to_list()
            cols = {c: df.get_column(c).cast(pl.Utf8).to_list() for c in ("metric", "vm", "host", "nicname", "datastore") if c in df.columns}
            for i in range(df.height):
                row = {c: v[i] for c, v in cols.items()}
                yield row["metric"], entity_key(t, row), ts[i], bits(values[i])

        report.check(f"values:{table}", lambda t=table: compare_values(expected, t, rows(t)))
        report.check(f"nulls:{table}", lambda t=table: compare_nulls(expected, t, rows(t)))

        def ts_utc():
            dtype = loaded["df"].schema["ts"]
            return isinstance(dtype, pl.Datetime) and dtype.time_zone in ("UTC", "+00:00", "Etc/UTC"), f"ts is {dtype}"

        report.check(f"ts_utc:{table}", ts_utc)
        report.check(f"date:{table}", lambda t=table: compare_dates(expected, t, loaded["df"].get_column("date").cast(pl.Utf8).to_list()))

        def tags(t=table):
            # polars before 2.0 has no map type: a Parquet MAP reads as a list of key/value structs.
            dtype = loaded["df"].schema["tags"]
            is_map = type(dtype).__name__ == "Map"
            pairs = isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct) and len(dtype.inner.fields) == 2
            if not (is_map or pairs):
                return False, f"tags is {dtype}, neither a map nor a list of key/value structs"
            values = loaded["df"].get_column("tags").to_list()
            return compare_tags(
                expected,
                t,
                [v if v is None or isinstance(v, dict) else [tuple(e.values()) if isinstance(e, dict) else e for e in v] for v in values],
            )

        report.check(f"tags:{table}", tags)

        prune = expected["prune"][table]

        def empty(expr, t=table):
            n = scan(t).filter(expr).collect().height
            return n == 0, f"{n} rows match {expr}"

        report.check(f"prune:{table}.value", lambda: empty(pl.col("value") > prune["value_above"]))
        report.check(f"prune:{table}.ts", lambda: empty(pl.col("ts").dt.epoch("ms") > prune["ts_after_ms"]))


def check_spark(report, out, expected):
    import pyspark
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    report.version = pyspark.__version__
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("vscope-export reader matrix")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        def read(table):
            return spark.read.parquet(os.path.join(out, table))

        for table in INVENTORY:
            report.check(f"open:{table}", lambda t=table: rows_count(expected, t, read(t).count()))

        jvm = spark._jvm
        conf = spark._jsc.hadoopConfiguration()
        for table in METRICS:
            loaded = Loaded(table)

            def load(t=table):
                df = read(t)
                loaded["df"] = df
                cols = ["metric", *[c for c in ("vm", "host", "nicname", "datastore") if c in df.columns]]
                loaded["rows"] = df.select(*cols, F.expr("unix_millis(ts)").alias("ts_ms"), "value", F.col("date").cast("string").alias("date"), "tags").collect()
                return rows_count(expected, t, len(loaded["rows"]))

            report.check(f"open:{table}", load)

            def rows(t=table):
                for r in loaded["rows"]:
                    d = r.asDict()
                    yield d["metric"], entity_key(t, d), d["ts_ms"], bits(d["value"])

            report.check(f"values:{table}", lambda t=table: compare_values(expected, t, rows(t)))
            report.check(f"nulls:{table}", lambda t=table: compare_nulls(expected, t, rows(t)))

            def field(name):
                return loaded["df"].schema[name].dataType

            # TimestampType is an instant (Parquet's isAdjustedToUTC); a naive one reads as TimestampNTZType.
            report.check(f"ts_utc:{table}", lambda: (type(field("ts")) is T.TimestampType, f"ts is {field('ts')}"))

            def date(t=table):
                ok, detail = compare_dates(expected, t, [r["date"] for r in loaded["rows"]])
                return ok and isinstance(field("date"), T.DateType), f"date is {field('date')}; {detail}"

            report.check(f"date:{table}", date)

            def tags(t=table):
                if not isinstance(field("tags"), T.MapType):
                    return False, f"tags is {field('tags')}, not a map"
                return compare_tags(expected, t, [r["tags"] for r in loaded["rows"]])

            report.check(f"tags:{table}", tags)

            prune = expected["prune"][table]
            FilterApi = jvm.org.apache.parquet.filter2.predicate.FilterApi
            predicates = {
                "value": (
                    F.col("value") > F.lit(float(prune["value_above"])),
                    "GreaterThan(value,",
                    FilterApi.gt(FilterApi.doubleColumn("value"), jvm.java.lang.Double(float(prune["value_above"]))),
                ),
                # The ts column is INT64 milliseconds (TIMESTAMP(MILLIS, UTC)) for parquet-java.
                "ts": (
                    F.col("ts") > F.expr(f"timestamp_millis({prune['ts_after_ms']})"),
                    "GreaterThan(ts,",
                    FilterApi.gt(FilterApi.longColumn("ts"), jvm.java.lang.Long(prune["ts_after_ms"])),
                ),
            }

            def pushed(column, t=table):
                cond, needle, _ = predicates[column]
                df = read(t).filter(cond)
                plan = df._jdf.queryExecution().executedPlan().toString()
                line = next((l for l in plan.splitlines() if "PushedFilters" in l), "")
                start = line.find("PushedFilters")
                pushed_filters = line[start:line.find("]", start) + 1] if start >= 0 else "(no PushedFilters)"
                n = df.count()
                return needle in pushed_filters and n == 0, f"{n} rows match; {pushed_filters}"

            def skipped(column, t=table):
                # parquet-java's own row-group filter on statistics alone (no dictionary or bloom
                # filter), as Spark's reader applies it to the pushed filters.
                _, _, predicate = predicates[column]
                options = (
                    jvm.org.apache.parquet.HadoopReadOptions.builder(conf)
                    .withRecordFilter(jvm.org.apache.parquet.filter2.compat.FilterCompat.get(predicate))
                    .useStatsFilter(True)
                    .useDictionaryFilter(False)
                    .useBloomFilter(False)
                    .build()
                )
                total = 0
                kept = 0
                for root, _, names in sorted(os.walk(os.path.join(out, t))):
                    for name in sorted(names):
                        if not name.endswith(".parquet") or name.startswith((".", "_")):
                            continue
                        path = jvm.org.apache.hadoop.fs.Path(os.path.join(root, name))
                        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
                            jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, conf), options
                        )
                        try:
                            total += reader.getFooter().getBlocks().size()
                            kept += reader.getRowGroups().size()
                        finally:
                            reader.close()
                return total > 0 and kept == 0, f"parquet-java keeps {kept} of {total} row groups on statistics"

            report.check(f"pushed:{table}.value", lambda: pushed("value"))
            report.check(f"pushed:{table}.ts", lambda: pushed("ts"))
            report.check(f"prune:{table}.value", lambda: skipped("value"))
            report.check(f"prune:{table}.ts", lambda: skipped("ts"))
    finally:
        spark.stop()


def main(reader, out, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    report = Report(reader)
    kind = reader.split("-")[0]
    try:
        if reader == "pandas-pyarrow":
            check_pandas(report, out, expected, "pyarrow")
        elif reader == "pandas-fastparquet":
            check_pandas(report, out, expected, "fastparquet")
        elif kind == "pyarrow":
            check_pyarrow(report, out, expected)
        elif kind == "duckdb":
            check_duckdb(report, out, expected)
        elif kind == "polars":
            check_polars(report, out, expected)
        elif kind == "spark":
            check_spark(report, out, expected)
        else:
            report.check("reader", lambda: (False, f"no checks for reader {reader!r}"))
    except Exception as e:  # noqa: BLE001 - e.g. the library does not import
        report.check("reader", lambda: (False, error(e)))
    report.dump()


if __name__ == "__main__":
    main(*sys.argv[1:])
