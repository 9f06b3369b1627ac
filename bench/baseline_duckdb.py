"""DuckDB converting captured `/api/query` responses to date-partitioned Parquet (a baseline).

One `COPY … TO … (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))` over every file, with
the key columns of `vm_metrics`. Run as its own process so that its CPU time can be measured alone.

    python bench/baseline_duckdb.py OUT_DIR 'capture/*.json'
"""

import sys

import duckdb

SQL = """
COPY (
    SELECT
        make_timestamp(CAST(e.key AS BIGINT) * 1000) AS ts,
        metric,
        e.value AS value,
        tags['servicename'] AS service_name,
        tags['datacenter'] AS datacenter,
        tags['vm'] AS vm,
        CAST(make_timestamp(CAST(e.key AS BIGINT) * 1000) AS DATE) AS date
    FROM (
        SELECT metric, tags, unnest(map_entries(dps)) AS e
        FROM read_json(
            ?,
            format = 'array',
            columns = {metric: 'VARCHAR', tags: 'MAP(VARCHAR, VARCHAR)', dps: 'MAP(VARCHAR, DOUBLE)'}
        )
    )
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date))
"""


def main():
    out, pattern = sys.argv[1], sys.argv[2]
    con = duckdb.connect()
    # COPY answers with the number of rows it wrote.
    print(con.execute(SQL.replace("{out}", out.replace("'", "''")), [pattern]).fetchone()[0])


if __name__ == "__main__":
    main()
