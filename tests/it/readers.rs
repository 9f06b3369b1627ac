//! The reader matrix: one export of the simulator read by every Parquet reader version the README
//! promises (DuckDB, pyarrow, polars, pandas with pyarrow and with fastparquet, Spark), each from
//! its own virtual environment built by `make readers` from `tests/interop/readers/<name>.txt`.
//!
//! Each reader runs `tests/interop/readers/check.py` on the export and a JSON file of what the
//! simulator says must be there, and answers check by check: every table opens with every row,
//! every `value` equals the simulator's bit for bit, gaps stay null, `ts` is a UTC timestamp, the
//! `date` partition is discovered, `tags` is a map, and filters on `value` and `ts` that match
//! nothing skip every row group on statistics (pyarrow's row-group statistics, DuckDB's
//! `parquet_metadata` and pushed filters, Spark's pushed filters and parquet-java's statistics
//! filter, polars' filtered scans).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::*;
use chrono::DateTime;
use serde_json::{json, Value};
use vscope_export::job::{Catalog, Component};
use vscope_export::sim::{Flavor, SimConfig, World};

/// A small estate: two hosts with their NICs, a few VMs (one powered off, one deleted) and
/// datastores, and a collector that misses 3 % of its polls so that filled gaps become nulls.
/// Stock OpenTSDB's dialect, whose downsampling buckets start on multiples of the interval
/// (OVH's end on the query's last millisecond), so that a bucket's time is its raw point's.
const SIZES: &str = "seed = 13\nservices = 1\ndatacenters = 1\nhosts = 2\nvms = 5\nfilers = 2\n\
                     gaps_per_mille = 30\nflavor = \"opentsdb\"";

fn config() -> SimConfig {
    SimConfig {
        seed: 13,
        services: 1,
        datacenters: 1,
        hosts: 2,
        vms: 5,
        filers: 2,
        gaps_per_mille: 30,
        flavor: Flavor::Opentsdb,
        ..SimConfig::default()
    }
}

/// Four hours across midnight UTC: two `date=` partitions.
const START: &str = "2026-11-01T22:00:00Z";
const END: &str = "2026-11-02T02:00:00Z";

/// The filer table is downsampled into one-minute buckets (the simulator's resolution, so each
/// bucket holds one raw point and its average is that point exactly) with missing buckets
/// filled with `null`: the only way the endpoint serves a null value.
const FILER_DOWNSAMPLE: &str = "1m-avg-null";

/// How long one reader may take (Spark starts a JVM) before it counts as hung.
const READER_TIMEOUT: Duration = Duration::from_secs(600);

const METRICS: [Component; 3] = [Component::Vm, Component::Host, Component::Filer];
const INVENTORY: [&str; 4] = [
    "vm_inventory",
    "host_inventory",
    "filer_inventory",
    "datacenter_inventory",
];

fn requirements_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/readers")
}

/// Where `make readers` puts the virtual environments (`VSCOPE_READERS`, set by `make test`).
fn venvs_dir() -> PathBuf {
    std::env::var_os("VSCOPE_READERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-readers"))
}

/// Every reader of the matrix: the names of the requirements files.
fn readers() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(requirements_dir())
        .expect("tests/interop/readers")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".txt").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// The checks a reader must report: what every reader shows, plus how it proves pruning.
fn required_checks(reader: &str) -> BTreeSet<String> {
    let mut checks = BTreeSet::new();
    for table in INVENTORY {
        checks.insert(format!("open:{table}"));
    }
    let pruning: &[&str] = match reader.split('-').next().unwrap_or_default() {
        "pandas" => &[],
        "pyarrow" | "duckdb" => &["stats", "prune"],
        "polars" => &["prune"],
        "spark" => &["pushed", "prune"],
        other => panic!("tests/interop/readers/{reader}.txt: no checks known for {other:?}"),
    };
    for c in METRICS {
        let table = c.table_name();
        for check in ["open", "values", "nulls", "ts_utc", "date", "tags"] {
            checks.insert(format!("{check}:{table}"));
        }
        for check in pruning {
            for column in ["value", "ts"] {
                checks.insert(format!("{check}:{table}.{column}"));
            }
        }
    }
    checks
}

/// The version a requirements file pins for its reader (`duckdb==0.10.3` → `0.10.3`), which the
/// reader must report: proof that the environment holds what the file says.
fn pinned_versions(reader: &str) -> Vec<String> {
    let text = fs::read_to_string(requirements_dir().join(format!("{reader}.txt"))).unwrap();
    let main = match reader.split('-').next().unwrap_or_default() {
        "pandas" => vec!["pandas", "pyarrow", "fastparquet"],
        "spark" => vec!["pyspark"],
        other => vec![other],
    };
    text.lines()
        .filter_map(|l| l.split_once("=="))
        .filter(|(name, _)| main.contains(&name.trim()))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// What the simulator serves for the job: (metric, entity, ts) → value, keyed like
/// [`exported_points`], and how many leftover tags (the `tags` map's entries) the rows carry.
fn expected_points(world: &World, component: Component) -> (Points, usize) {
    let (start, end) = (ms(START), ms(END));
    let step = i64::from(world.config().resolution_secs) * 1000;
    let entity_tags: &[&str] = match component {
        Component::Host => &["host", "nicname"],
        _ => &[component.entity_tag()],
    };
    let mut points = Points::new();
    let mut tag_entries = 0;
    for metric in Catalog::builtin().for_component(component) {
        for series in world.series(&metric.name) {
            let mut e = series
                .tags
                .get(component.entity_tag())
                .cloned()
                .unwrap_or_default();
            if let Some(n) = series.tags.get("nicname") {
                e = format!("{e}/{n}");
            }
            let leftover = series
                .tags
                .keys()
                .filter(|k| {
                    !["datacenter", "servicename"].contains(&k.as_str())
                        && !entity_tags.contains(&k.as_str())
                })
                .count();
            let raw: BTreeMap<i64, f64> = world.points(&series, start, end - 1).collect();
            let before = points.len();
            if component == Component::Filer {
                // Every bucket of the window, null where the raw point is missing.
                let first = start + (step - start.rem_euclid(step)) % step;
                for ts in (first..end).step_by(step as usize) {
                    points.insert((metric.name.clone(), e.clone(), ts), raw.get(&ts).copied());
                }
            } else {
                for (ts, v) in raw {
                    points.insert((metric.name.clone(), e.clone(), ts), Some(v));
                }
            }
            tag_entries += leftover * (points.len() - before);
        }
    }
    (points, tag_entries)
}

fn utc_date(ts: i64) -> String {
    DateTime::from_timestamp_millis(ts)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// The export every reader reads, and the JSON of what it must hold.
struct Export {
    _ws: Workspace,
    out: PathBuf,
    expected: PathBuf,
}

/// The simulator's export, written with `encoder` (`VSCOPE_EXPORT_ENCODER`: the runs encoder or
/// arrow-rs' own writer), and what it must hold.
fn export(encoder: &str) -> Export {
    let ws = Workspace::new();
    let job = sim_job("readers", SIZES, START, END, "1h").replace(
        "table = \"filer_metrics\"\nmetrics = \"all\"\n",
        &format!(
            "table = \"filer_metrics\"\nmetrics = \"all\"\ndownsample = \"{FILER_DOWNSAMPLE}\"\n"
        ),
    );
    assert!(
        job.contains(FILER_DOWNSAMPLE),
        "the job downsamples filer_metrics"
    );
    let job = ws.write("readers.toml", &job);
    let run = ws.run(
        &["run", job.to_str().unwrap()],
        &[("VSCOPE_EXPORT_ENCODER", encoder)],
    );
    assert!(
        run.status.success(),
        "the export ({encoder} encoder) failed: {}",
        stderr(&run)
    );

    let world = World::new(config());
    let snapshot = world.inventory(chrono::Utc::now());
    let mut tables = serde_json::Map::new();
    let mut prune = serde_json::Map::new();
    let mut nulls = 0;
    for component in METRICS {
        let table = component.table_name();
        let (expected, tag_entries) = expected_points(&world, component);
        // The readers are judged against the simulator; first make sure the export itself
        // (read with arrow-rs) holds exactly that, so a reader failure means the reader.
        let exported = exported_points(&ws.out(), table, component.entity_tag());
        assert_eq!(exported.len(), expected.len(), "{table}: rows exported");
        let differ: Vec<_> = expected
            .iter()
            .filter(|(k, v)| {
                exported.get(*k).map(|x| x.map(f64::to_bits)) != Some(v.map(f64::to_bits))
            })
            .take(3)
            .collect();
        assert!(
            differ.is_empty(),
            "{table}: the export differs from the simulator at {differ:?}"
        );

        let table_nulls = expected.values().filter(|v| v.is_none()).count();
        nulls += table_nulls;
        let max_value = expected.values().flatten().fold(f64::MIN, |a, &b| a.max(b));
        let max_ts = expected.keys().map(|k| k.2).max().unwrap();
        let dates: BTreeSet<String> = expected.keys().map(|k| utc_date(k.2)).collect();
        assert_eq!(dates.len(), 2, "{table}: the window spans two dates");
        let points: Vec<Value> = expected
            .iter()
            .map(|((m, e, ts), v)| json!([m, e, ts, v.map(|v| format!("{:016x}", v.to_bits()))]))
            .collect();
        tables.insert(
            table.to_string(),
            json!({
                "rows": expected.len(),
                "dates": dates,
                "tag_entries": tag_entries,
                "points": points,
            }),
        );
        // Thresholds just past the data: a filter on them matches no row, and every row group's
        // min/max says so.
        prune.insert(
            table.to_string(),
            json!({ "value_above": max_value.ceil() + 1.0, "ts_after_ms": max_ts + 1 }),
        );
    }
    assert!(nulls > 0, "the export holds null values (filled gaps)");
    let inventory_rows = [
        snapshot.vm_count(),
        snapshot.host_count(),
        snapshot.filer_count(),
        snapshot.datacenters().count(),
    ];
    for (table, rows) in INVENTORY.into_iter().zip(inventory_rows) {
        assert!(rows > 0, "{table}: the simulator has some");
        tables.insert(table.to_string(), json!({ "rows": rows }));
    }
    let expected = ws.path().join("expected.json");
    fs::write(
        &expected,
        json!({ "tables": tables, "prune": prune }).to_string(),
    )
    .unwrap();
    Export {
        out: ws.out(),
        expected,
        _ws: ws,
    }
}

/// Runs one reader's check script; its JSON answer, or why there is none.
fn run_reader(reader: &str, export: &Export) -> Result<Value, String> {
    let python = venvs_dir().join(reader).join("bin/python");
    if !venvs_dir().join(reader).join(".installed").exists() || !python.exists() {
        return Err(format!(
            "its virtual environment {} is missing or incomplete: run `make readers` (or `make test`)",
            venvs_dir().join(reader).display()
        ));
    }
    let answer = export.out.parent().unwrap().join(format!("{reader}.json"));
    let log = export.out.parent().unwrap().join(format!("{reader}.log"));
    let mut child = Command::new(&python)
        .arg(requirements_dir().join("check.py"))
        .arg(reader)
        .arg(&export.out)
        .arg(&export.expected)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&answer).unwrap())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > READER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer after {READER_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = fs::read_to_string(&answer).unwrap_or_default();
    let stderr = fs::read_to_string(&log).unwrap_or_default();
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    if !status.success() {
        return Err(format!("check.py exited with {status}: {tail}"));
    }
    serde_json::from_str(&stdout).map_err(|e| format!("check.py printed no JSON ({e}): {tail}"))
}

/// What is wrong with one reader's answer, one line per failed or missing check.
fn failures(reader: &str, answer: &Value) -> Vec<String> {
    let version = answer["version"].as_str().unwrap_or("?");
    let mut out = Vec::new();
    for pinned in pinned_versions(reader) {
        if !version.contains(&pinned) {
            out.push(format!(
                "{reader} ({version}): is not the pinned version {pinned}"
            ));
        }
    }
    let checks = answer["checks"].as_object().cloned().unwrap_or_default();
    for name in required_checks(reader) {
        match checks.get(&name) {
            None => out.push(format!("{reader} ({version}): {name}: not reported")),
            Some(c) if c["ok"] != true => out.push(format!(
                "{reader} ({version}): {name}: {}",
                c["detail"].as_str().unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    for (name, c) in &checks {
        if c["ok"] != true && !required_checks(reader).contains(name) {
            out.push(format!(
                "{reader} ({version}): {name}: {}",
                c["detail"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

#[test]
fn every_reader_version_reads_the_export_exactly_and_prunes_on_statistics() {
    let readers = readers();
    assert!(
        readers.len() >= 12,
        "the matrix lists every reader version: {readers:?}"
    );
    // The same rows written by both encoders: every reader must read both alike.
    let encoders = ["runs", "arrow"];
    let exports: Vec<Export> = encoders.iter().map(|e| export(e)).collect();

    // Two readers at a time: most of a reader's time is its start (Spark's JVM) and reading.
    let queue: Vec<(usize, String)> = (0..exports.len())
        .flat_map(|e| readers.iter().map(move |r| (e, r.clone())))
        .collect();
    let queue = Mutex::new(queue);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((e, reader)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let started = Instant::now();
                let answer = run_reader(&reader, &exports[e]);
                eprintln!(
                    "reader {reader} ({} encoder): {:.1} s",
                    encoders[e],
                    started.elapsed().as_secs_f64()
                );
                results
                    .lock()
                    .unwrap()
                    .insert((encoders[e], reader), answer);
            });
        }
    });

    let mut problems = Vec::new();
    for ((encoder, reader), answer) in results.into_inner().unwrap() {
        let found = match answer {
            Ok(answer) => failures(&reader, &answer),
            Err(why) => vec![format!("{reader}: {why}")],
        };
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("[{encoder} encoder] {p}")),
        );
    }
    assert!(
        problems.is_empty(),
        "{} problems in the reader matrix:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_reader_of_the_matrix_has_checks() {
    for reader in readers() {
        assert!(!required_checks(&reader).is_empty(), "{reader}");
        assert!(
            !pinned_versions(&reader).is_empty(),
            "tests/interop/readers/{reader}.txt pins its reader's version with =="
        );
    }
}
