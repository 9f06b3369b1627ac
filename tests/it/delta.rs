//! Delta Lake output (`[output] format = "delta"`, cargo feature `delta`) through the real CLI,
//! read back by the readers users have: the Python `deltalake` package and polars' `scan_delta`
//! (tests/interop/check_delta.py, in the interop tests' Python environment). Each table must hold
//! the rows of the same job's Parquet output; a re-run replaces its own files in one commit and
//! leaves the older version readable, and the report reads the current one; a killed run changes
//! nothing a reader sees and the next run removes what it wrote; shards committing to the same
//! tables at once all land.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use vscope_export::domain::table::Table;

use crate::common::*;
use crate::shard::{credentials, job, run_shards, ESTATE};

const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/check_delta.py");
const DAY: &str = "start = \"2026-11-23T00:00:00Z\"\nend = \"2026-11-23T06:00:00Z\"";
const LATER: &str = "2026-11-23T12:00:00Z";

/// The job `nightly` over the simulator, to an output of `format`.
fn write_job(ws: &Workspace, sim: &SimProcess, file: &str, format: &str) -> String {
    let text = format!("{}format = \"{format}\"\n", job(sim, "nightly", DAY));
    ws.write(file, &text);
    file.to_string()
}

fn run(ws: &Workspace, sim: &SimProcess, args: &[&str]) -> std::process::Output {
    let env = credentials(sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = args.to_vec();
    all.extend(["--progress", "never"]);
    ws.run(&all, &env)
}

/// The simulator, a workspace, and the job `nightly` written to a Parquet and a Delta output;
/// `None` (and a message) without the Python environment that reads them.
struct Setup {
    sim: SimProcess,
    ws: Workspace,
    parquet: String,
    delta: String,
}

fn setup() -> Option<Setup> {
    if python_env().is_none() {
        eprintln!("skipped: no Python environment with deltalake: run `make venv`");
        return None;
    }
    let sim = SimProcess::start(&ESTATE);
    let ws = Workspace::new();
    let parquet = write_job(&ws, &sim, "parquet.toml", "parquet");
    let delta = write_job(&ws, &sim, "delta.toml", "delta");
    Some(Setup {
        sim,
        ws,
        parquet,
        delta,
    })
}

impl Setup {
    /// Runs `run JOB --output OUTPUT ARGS…`, which must succeed.
    fn run_ok(&self, job: &str, output: &str, args: &[&str]) -> std::process::Output {
        let mut all = vec!["run", job, "--output", output];
        all.extend(args);
        let o = run(&self.ws, &self.sim, &all);
        assert!(o.status.success(), "{all:?}: {}", stderr(&o));
        o
    }
}

/// The Python environments that read the Delta output: the interop tests' (the newest deltalake
/// and polars) and the older one `make test` installs (`VSCOPE_DELTA_OLD_PYTHON`,
/// tests/interop/delta-old-requirements.txt), when there is one.
fn readers() -> Vec<String> {
    let mut pythons = vec![python()];
    match std::env::var("VSCOPE_DELTA_OLD_PYTHON") {
        Ok(old) => pythons.push(old),
        Err(_) => {
            let old = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-delta-old/bin/python");
            if Path::new(old).exists() {
                pythons.push(old.to_string());
            } else {
                eprintln!("no older Delta readers: run `make delta-old` to read with them too");
            }
        }
    }
    pythons
}

fn check(args: &[&str]) -> Value {
    check_with(&python(), args)
}

fn check_with(python: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(python)
        .arg(CHECK)
        .args(args)
        .output()
        .expect("run check_delta.py");
    assert!(
        out.status.success(),
        "check_delta.py {args:?}: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("check_delta.py prints JSON")
}

fn tables() -> Vec<&'static str> {
    Table::ALL.map(Table::name).to_vec()
}

/// Asserts that every table of the Delta output `delta` reads, through `deltalake` and polars
/// alike, as the Parquet output `parquet` does.
pub fn assert_reads_as(delta: &Path, parquet: &Path, when: &str) {
    let mut args = vec![
        "compare",
        delta.to_str().unwrap(),
        parquet.to_str().unwrap(),
    ];
    args.extend(tables());
    for python in readers() {
        let compared = check_with(&python, &args);
        for table in tables() {
            let t = &compared[table];
            assert!(t["rows"].as_u64().unwrap() > 0, "{when}: {table} is empty");
            let through = |reader: &str| format!("{when}: {table} through {reader} of {python}");
            assert_eq!(t["deltalake"], "equal", "{}", through("deltalake"));
            assert_eq!(t["polars"], "equal", "{}", through("polars"));
        }
    }
}

/// Each table's version, live files, commits' operations and owners, as `deltalake` reads them.
pub fn delta_tables(delta: &Path) -> Value {
    let mut args = vec!["tables", delta.to_str().unwrap()];
    args.extend(tables());
    check(&args)
}

/// Asserts that two JSON values are equal, numbers to 1e-9 relative; names the first difference.
#[cfg(feature = "report")]
pub fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(x), keys(y), "{path}");
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_close(v, w, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{path}: {x} and {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn a_delta_output_reads_as_the_parquet_output_and_a_re_run_replaces_its_files_in_one_commit() {
    let Some(setup) = setup() else { return };
    let Setup {
        sim,
        ws,
        parquet,
        delta,
    } = &setup;
    setup.run_ok(parquet, "parquet", &[]);
    let o = setup.run_ok(delta, "delta", &[]);
    assert!(stdout(&o).contains("delta_scan("), "{}", stdout(&o));
    let (d, p) = (ws.path().join("delta"), ws.path().join("parquet"));
    assert_reads_as(&d, &p, "first run");

    // The same window again: each table gets one more version, whose files replace the run's own.
    setup.run_ok(delta, "delta", &[]);
    assert_reads_as(&d, &p, "re-run");
    let read = delta_tables(&d);
    let vm = &read["vm_metrics"];
    assert_eq!(vm["version"], 1);
    assert_eq!(
        vm["operations"],
        serde_json::json!(["CREATE TABLE", "WRITE"])
    );
    assert_eq!(vm["owners"], serde_json::json!(["nightly", "nightly"]));
    assert_eq!(
        vm["files"],
        serde_json::json!(["date=2026-11-23/part-nightly-2.parquet"])
    );
    // The first version still reads: its file stays until the table is vacuumed.
    assert!(d
        .join("vm_metrics/date=2026-11-23/part-nightly-1.parquet")
        .exists());
    let manifests: Vec<Value> = all_files(&d.join("_runs"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert!(
        manifests
            .iter()
            .any(|m| m["delta_versions"]["vm_metrics"] == 1),
        "{manifests:?}"
    );

    // A different window reads differently: the comparison can fail.
    setup.run_ok(parquet, "other", &["--end", LATER]);
    let mut args = vec!["compare", d.to_str().unwrap(), "other"];
    args.push("vm_metrics");
    let other = std::process::Command::new(python())
        .current_dir(ws.path())
        .arg(CHECK)
        .args(&args)
        .output()
        .unwrap();
    let other: Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_ne!(other["vm_metrics"]["deltalake"], "equal", "{other}");

    // Each format refuses the other's output.
    let o = run(ws, sim, &["run", parquet, "--output", "delta"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds a Delta table"), "{}", stderr(&o));
    let o = run(ws, sim, &["run", delta, "--output", "parquet"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Parquet files but no Delta table"),
        "{}",
        stderr(&o)
    );
    // The report reads the tables' current version: the same as from the Parquet output, where
    // reading every file of the Delta folders would count the re-run's rows twice.
    #[cfg(feature = "report")]
    {
        let report = |out: &str| -> Value {
            let o = ws.run(&["report", out, "--format", "json"], &[]);
            assert!(o.status.success(), "report {out}: {}", stderr(&o));
            let mut json: Value = serde_json::from_str(&stdout(&o)).expect("the report's JSON");
            // Where it was read from, as given.
            json["source"] = Value::Null;
            json
        };
        let (from_delta, from_parquet) = (report("delta"), report("parquet"));
        assert!(from_parquet.to_string().contains("vm_metrics"));
        // Equal but for the last bits of floating-point sums, which add the same rows in
        // another order.
        assert_close(&from_delta, &from_parquet, "report");
    }
}

#[test]
fn a_killed_delta_run_changes_nothing_a_reader_sees_and_the_next_run_removes_its_files() {
    let Some(setup) = setup() else { return };
    let Setup {
        sim,
        ws,
        parquet,
        delta,
    } = &setup;
    let (d, p) = (ws.path().join("delta"), ws.path().join("parquet"));
    let env = credentials(sim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Runs `args` and kills it (SIGKILL) once it has written a file named `name`.
    let kill_once_written = |args: &[&str], name: &str| {
        let mut child = ws
            .command(args, &env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let written = || {
            all_files(&d)
                .iter()
                .any(|f| f.file_name().unwrap().to_string_lossy() == name)
        };
        while !written() {
            assert!(child.try_wait().unwrap().is_none(), "the run ended first");
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no file in 60 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    };

    // The first run ever, killed before any table exists: it leaves files and no log, and the
    // next run goes on over them.
    kill_once_written(
        &["run", delta, "--output", "delta"],
        "part-nightly-1.parquet",
    );
    for table in tables() {
        assert!(!d.join(table).join("_delta_log").exists(), "{table}");
    }
    setup.run_ok(parquet, "parquet", &[]);
    setup.run_ok(delta, "delta", &[]);
    assert_reads_as(&d, &p, "after a killed first run");

    // A run over a wider window, killed once it has written its first file.
    kill_once_written(
        &["run", delta, "--output", "delta", "--end", LATER],
        "part-nightly-2.parquet",
    );
    for table in tables() {
        assert!(
            !d.join(table)
                .join("_delta_log/00000000000000000001.json")
                .exists(),
            "{table}: the killed run committed"
        );
    }
    assert_reads_as(&d, &p, "after the kill");

    // The next run removes the killed run's files and commits its own.
    setup.run_ok(parquet, "parquet", &["--end", LATER]);
    setup.run_ok(delta, "delta", &["--end", LATER]);
    assert_reads_as(&d, &p, "after the next run");
    let read = delta_tables(&d);
    for table in tables() {
        let live: Vec<String> = read[table]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        for file in all_files(&d.join(table)) {
            let rel = file.strip_prefix(d.join(table)).unwrap().to_string_lossy();
            if rel.starts_with("_delta_log") || rel.ends_with("part-nightly-1.parquet") {
                continue;
            }
            assert!(
                live.contains(&rel.to_string()),
                "{table}: {rel} is neither the first version's file nor a live one: {live:?}"
            );
        }
    }
}

#[test]
fn four_shards_committing_to_the_same_delta_tables_at_once_all_land() {
    let Some(setup) = setup() else { return };
    let Setup {
        sim,
        ws,
        parquet,
        delta,
    } = &setup;
    setup.run_ok(parquet, "whole", &[]);
    let (d, whole) = (ws.path().join("sharded"), ws.path().join("whole"));
    let env = credentials(sim);
    // Twice: the first time the shards race to create each table, the second each shard's
    // commit removes its own earlier files while its siblings commit theirs.
    for round in 1..=2 {
        for (index, o) in run_shards(ws, Path::new(delta), "sharded", 4, &env)
            .iter()
            .enumerate()
        {
            assert!(
                o.status.success(),
                "round {round}, shard {index}: {}",
                stderr(o)
            );
        }
        assert_reads_as(&d, &whole, &format!("round {round}"));
        let read = delta_tables(&d);
        let vm = &read["vm_metrics"];
        assert_eq!(vm["version"], 4 * round - 1, "round {round}: {vm}");
        let mut owners: Vec<&str> = vm["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        owners.sort();
        owners.dedup();
        assert_eq!(
            owners,
            (0..4)
                .map(|i| format!("nightly-s{i}of4"))
                .collect::<Vec<_>>(),
        );
        let files: Vec<String> = (0..4)
            .map(|i| format!("date=2026-11-23/part-nightly-s{i}of4-{round}.parquet"))
            .collect();
        assert_eq!(vm["files"], serde_json::json!(files), "round {round}");
    }
}
