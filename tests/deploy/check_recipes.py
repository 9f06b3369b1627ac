"""Runs the deployment recipes in deploy/ as their schedulers would, against the built-in simulator.

- Airflow: `airflow dags test` on deploy/airflow/vscope_export_dag.py (a real Airflow, in its own
  virtual environment), which maps one task per shard and runs them.
- Kubernetes: the CronJob's Indexed Job from deploy/kubernetes/nightly.yaml, its pods started as
  local processes at once, each with its JOB_COMPLETION_INDEX, its container's environment, and
  `$(VAR)` expanded in `args` as the kubelet does; a folder standing for the ConfigMap's mount
  holds a simulator job. Its own job file (the
  ConfigMap's) must pass `vscope-export validate`.

Each union of shards must equal one unsharded run of the same window, row for row (every column
but `snapshot_ts`, which is the time each run read the inventory).

Usage: python check_recipes.py --exporter target/debug/vscope-export --airflow .venv-airflow/bin/airflow
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "vscope_export_nightly"

# A small simulated estate; the window is the Airflow run's data interval or, for Kubernetes, the
# job's own.
SIM_JOB = """\
name = "nightly"

[source]
endpoint = "simulator"
services = "all"

[source.simulator]
seed = 11
services = 2
datacenters = 2
hosts = 2
vms = 12
filers = 2

[window]
start = "{start}"
end = "{end}"
page = "auto"

[[export]]
table = "vm_metrics"
metrics = "all"

[[export]]
table = "host_metrics"
metrics = "all"

[[export]]
table = "filer_metrics"
metrics = "all"

[output]
path = "{out}"
partitioning = ["date"]
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(
            f"{' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}"
        )


def tables(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def assert_same_rows(sharded: Path, single: Path, what: str) -> None:
    """Every table of `sharded` holds the rows of `single`'s, no more, no fewer."""
    assert tables(sharded) == tables(single), (what, tables(sharded), tables(single))
    con = duckdb.connect()
    for table in tables(single):
        files = len(list((sharded / table).rglob("*.parquet")))
        query = "SELECT * EXCLUDE (snapshot_ts) FROM read_parquet('{}/**/*.parquet', hive_partitioning = false)"
        rows = con.sql(f"SELECT count(*) FROM ({query.format(single / table)})").fetchall()[0][0]
        for a, b in ((sharded, single), (single, sharded)):
            extra = con.sql(
                f"SELECT count(*) FROM ({query.format(a / table)} EXCEPT ALL {query.format(b / table)})"
            ).fetchall()[0][0]
            assert extra == 0, f"{what}: {table}: {extra} rows of {a} are not in {b}"
        assert rows > 0, f"{what}: {table} is empty"
        print(f"  {what}: {table}: {rows} rows in {files} files, the same as one run")


def assert_shard_files(out: Path, count: int, what: str) -> None:
    """Each of the `count` shards wrote files of its own (`part-<job>-s<I>of<N>-…`)."""
    names = {p.name for p in out.rglob("part-*.parquet")}
    shards = {m.group(1) for m in map(re.compile(r"part-.+-(s\d+of\d+)-\d+\.parquet").fullmatch, names) if m}
    assert shards == {f"s{i}of{count}" for i in range(count)}, f"{what}: shard files {sorted(names)}"


def single_run(exporter: str, workdir: Path, start: str, end: str) -> Path:
    out = workdir / "single"
    job = workdir / "single.toml"
    job.write_text(SIM_JOB.format(start=start, end=end, out=out))
    run([exporter, "run", str(job), "--quiet"])
    return out


def check_airflow(exporter: str, airflow: str, workdir: Path) -> None:
    out = workdir / "airflow-out"
    job = workdir / "airflow.toml"
    # The DAG passes the window itself (--start/--end from the data interval).
    job.write_text(SIM_JOB.format(start="2026-11-01", end="2026-11-02", out=out))
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(workdir / "airflow-home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "deploy" / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        VSCOPE_EXPORT_BIN=exporter,
        VSCOPE_JOB=str(job),
        VSCOPE_SHARDS="4",
    )
    run([airflow, "db", "migrate"], env)
    # A manual run on 2026-11-24 covers the last whole interval before it: 2026-11-23.
    run([airflow, "dags", "test", DAG_ID, "2026-11-24"], env)
    assert_shard_files(out, 4, "airflow")
    single = single_run(exporter, workdir / "airflow-single", "2026-11-23", "2026-11-24")
    assert_same_rows(out, single, "airflow, 4 mapped shards")


def expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion in command and args (`$$` escapes)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def check_kubernetes(exporter: str, workdir: Path) -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "nightly.yaml").read_text()))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    cron = next(d for d in docs if d["kind"] == "CronJob")
    spec = cron["spec"]["jobTemplate"]["spec"]
    assert spec["completionMode"] == "Indexed", spec
    completions = spec["completions"]
    assert spec["parallelism"] == completions, "all shards of a night run at once"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "job")

    # The recipe's own job file must be valid for this exporter.
    recipe_job = workdir / "configmap"
    recipe_job.mkdir()
    for key, text in config["data"].items():
        (recipe_job / key).write_text(text)
        run([exporter, "validate", str(recipe_job / key)])

    # The same mount, holding a simulator job: the pods run the recipe's args unchanged.
    mounted = workdir / "k8s-mount"
    mounted.mkdir()
    out = workdir / "k8s-out"
    for key in config["data"]:
        (mounted / key).write_text(SIM_JOB.format(start="2026-11-23", end="2026-11-24", out=out))
    pods = []
    for index in range(completions):
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        env["JOB_COMPLETION_INDEX"] = str(index)
        args = [expand(a, env).replace(mount["mountPath"], str(mounted)) for a in container["args"]]
        assert args[args.index("--shard") + 1] == f"auto/{completions}", f"pod {index} runs {args}"
        pods.append(subprocess.Popen([exporter, *args], env=dict(os.environ, **env),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for index, pod_process in enumerate(pods):
        output, _ = pod_process.communicate()
        assert pod_process.returncode == 0, f"pod {index} exited {pod_process.returncode}:\n{output[-4000:]}"
    assert_shard_files(out, completions, "kubernetes")
    single = single_run(exporter, workdir / "k8s-single", "2026-11-23", "2026-11-24")
    assert_same_rows(out, single, f"kubernetes, {completions} indexed pods")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--airflow", required=True)
    args = parser.parse_args()
    exporter = str(Path(args.exporter).resolve())
    with tempfile.TemporaryDirectory(prefix="vscope-recipes-") as tmp:
        workdir = Path(tmp)
        for part in ("airflow-single", "k8s-single"):
            (workdir / part).mkdir()
        check_kubernetes(exporter, workdir)
        check_airflow(exporter, args.airflow, workdir)
    print("deploy recipes: ok")


if __name__ == "__main__":
    main()
