"""The nightly vScope export as an Airflow DAG: one mapped task per shard.

Each night's DAG run exports its data interval (the day before the run, UTC) with `shards`
processes of `vscope-export run JOB --shard I/N --start … --end …`, created by dynamic task
mapping over the list the first task returns. The window comes from Airflow's data interval, so a
cleared task or an `airflow backfill create` over past dates re-exports exactly those days, and a
re-run replaces its own files and nothing else.

Set on the workers (or in the DAG's environment):
  VSCOPE_EXPORT_BIN  the exporter (default: `vscope-export` on PATH)
  VSCOPE_JOB         the job file (default: /etc/vscope-export/nightly.toml)
  VSCOPE_SHARDS      how many shards a night runs (default 4; the DAG's `shards` param overrides it)
and the credentials the job needs (OVH_APPLICATION_KEY…, AWS_ACCESS_KEY_ID…), e.g. from a
connection or a secrets backend: never in the DAG or the job file.

To run the exporter's container instead of a binary on the workers, replace the `export` task by
`KubernetesPodOperator.partial(image=…, cmds=["vscope-export"], …).expand(arguments=…)` from the
cncf.kubernetes provider, mapped over the same list.
"""

from __future__ import annotations

import os
import shlex
from datetime import timedelta

import pendulum
from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.9 and later
    from airflow.decorators import dag, task
    from airflow.models.param import Param

EXPORTER = os.environ.get("VSCOPE_EXPORT_BIN", "vscope-export")
JOB = os.environ.get("VSCOPE_JOB", "/etc/vscope-export/nightly.toml")
SHARDS = int(os.environ.get("VSCOPE_SHARDS", "4"))


@dag(
    dag_id="vscope_export_nightly",
    description="Export yesterday's vScope history to Parquet, one task per shard",
    # Daily intervals [D 00:00, D+1 00:00) UTC, each run just after its interval ends (the sensor
    # below gives late points time to arrive). Said explicitly: in Airflow 3, "@daily" alone gives
    # runs with an empty data interval.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"shards": Param(SHARDS, type="integer", minimum=1, maximum=256)},
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["vscope-export"],
)
def vscope_export_nightly():
    @task.sensor(poke_interval=300, timeout=6 * 3600, mode="reschedule")
    def late_points_arrived(data_interval_end=None) -> bool:
        """vScope points can arrive up to about an hour late: wait 90 minutes past the day."""
        return pendulum.now("UTC") >= data_interval_end + timedelta(minutes=90)

    @task
    def shards(params=None) -> list[str]:
        """The shards of this run: `0/N` … `N-1/N`."""
        n = int(params["shards"])
        return [f"{i}/{n}" for i in range(n)]

    @task.bash(max_active_tis_per_dagrun=64)
    def export(shard: str, data_interval_start=None, data_interval_end=None) -> str:
        """One shard of the day. Exit code 1 (some pages failed, the rest committed) fails the
        task and Airflow retries it: the retry exports the shard's day again and replaces its own
        files."""
        return shlex.join(
            [
                EXPORTER,
                "run",
                JOB,
                "--shard",
                shard,
                "--start",
                data_interval_start.to_iso8601_string(),
                "--end",
                data_interval_end.to_iso8601_string(),
            ]
        )

    late_points_arrived() >> export.expand(shard=shards())


vscope_export_nightly()
