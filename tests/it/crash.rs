//! Crashes and concurrent runs: the exporter is killed (SIGKILL) at many instants of a run, and
//! after every kill a reader must see whole files only, each partition holding the old data or
//! the new data; a normal re-run then leaves exactly what a clean run leaves. A second run of a
//! job on the same output fails at once, and a killed run's lock never blocks the next.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use vscope_export::job::Component;

const JOB: &str = "crash";
/// Small enough that a run takes about a second in a debug build, with several pages per table.
const SIZES: &str = "seed = 3\nservices = 1\ndatacenters = 2\nhosts = 2\nvms = 4\nfilers = 2";
/// Four one-hour pages over two dates.
const START: &str = "2026-11-01T22:00:00Z";
const END: &str = "2026-11-02T02:00:00Z";
/// The window of the first, narrower run whose files the killed runs replace.
const OLD_START: &str = "2026-11-01T23:00:00Z";
const OLD_END: &str = "2026-11-02T01:00:00Z";

const METRIC_TABLES: [Component; 3] = [Component::Vm, Component::Host, Component::Filer];

fn job_text() -> String {
    sim_job(JOB, SIZES, START, END, "1h")
}

fn run_args<'a>(job: &'a str, start: &'a str, end: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        job,
        "--start",
        start,
        "--end",
        end,
        "--concurrency",
        "2",
        "--progress",
        "never",
    ]
}

/// Runs the job to completion over `[start, end)` and insists that it succeeded.
fn run_ok(ws: &Workspace, start: &str, end: &str) {
    let job = ws.path().join(format!("{JOB}.toml"));
    let out = ws.run(&run_args(job.to_str().unwrap(), start, end), &[]);
    assert!(
        out.status.success(),
        "run {start} → {end} failed: {}",
        stderr(&out)
    );
}

fn spawn_run(ws: &Workspace) -> Child {
    let job = ws.path().join(format!("{JOB}.toml"));
    ws.command(&run_args(job.to_str().unwrap(), START, END), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vscope-export")
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn read_fully(path: &Path) -> Result<Vec<RecordBatch>, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The points of every metrics partition folder (relative to the output, e.g.
/// `vm_metrics/date=2026-11-01`), read from the visible files only, as a reader sees them.
fn partition_points(out: &Path) -> BTreeMap<PathBuf, Points> {
    let mut parts = BTreeMap::new();
    for component in METRIC_TABLES {
        let table = component.table_name();
        for file in parquet_files(&out.join(table)) {
            if is_hidden(&file) {
                continue;
            }
            let dir = file.parent().unwrap();
            let points =
                points_of_files(std::slice::from_ref(&file), table, component.entity_tag());
            parts.insert(dir.strip_prefix(out).unwrap().to_path_buf(), points);
        }
    }
    parts
}

/// `committed_until` of the job's state, if there is a state file.
fn committed_until(out: &Path) -> Option<String> {
    let path = out.join("_state").join(format!("{JOB}.json"));
    let bytes = fs::read(&path).ok()?;
    let state: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not whole JSON: {e}", path.display()));
    let until = state["committed_until"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no committed_until: {state}", path.display()));
    Some(until.to_string())
}

fn same_instant(a: &str, b: &str) -> bool {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    parse(a).is_some() && parse(a) == parse(b)
}

/// What a reader may see at any instant, also just after a kill: whole Parquet files only, at
/// most one file of the job per partition, every partition holding either its old or its new
/// rows (never a mix, never nothing where there was something), whole JSON state and manifests,
/// and a state that never claims more than the files hold.
fn check_reader_view(
    out: &Path,
    old: &BTreeMap<PathBuf, Points>,
    new: &BTreeMap<PathBuf, Points>,
    when: &str,
) {
    let mut per_folder: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for file in all_files(out) {
        if is_hidden(&file) {
            continue;
        }
        let rel = file.strip_prefix(out).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".parquet") {
            let size = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(size > 0, "{when}: empty file {}", rel.display());
            if let Err(e) = read_fully(&file) {
                panic!(
                    "{when}: a reader sees a partial file {}: {e}",
                    rel.display()
                );
            }
            if name.starts_with(&format!("part-{JOB}-")) {
                per_folder
                    .entry(rel.parent().unwrap().to_path_buf())
                    .or_default()
                    .push(name);
            }
        } else if name.ends_with(".json") {
            let bytes = fs::read(&file).unwrap();
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                panic!("{when}: {} is not whole JSON: {e}", rel.display());
            }
        }
    }
    for (folder, files) in &per_folder {
        assert!(
            files.len() <= 1,
            "{when}: {} holds several files of the job, a reader would read them all: {files:?}",
            folder.display()
        );
    }
    let seen = partition_points(out);
    for (part, points) in &seen {
        let is_new = new.get(part) == Some(points);
        let is_old = old.get(part) == Some(points);
        assert!(
            is_new || is_old,
            "{when}: {} holds neither its old rows ({}) nor its new rows ({}) but {} rows",
            part.display(),
            old.get(part).map_or(0, |p| p.len()),
            new.get(part).map_or(0, |p| p.len()),
            points.len()
        );
    }
    for part in old.keys() {
        assert!(
            seen.contains_key(part),
            "{when}: {} had data before the run and now has none",
            part.display()
        );
    }
    if let Some(until) = committed_until(out) {
        if same_instant(&until, END) {
            assert_eq!(
                &seen, new,
                "{when}: the state says everything up to {END} is committed, the files do not"
            );
        }
    }
}

/// What a clean run left, compared after a normal re-run: the same files, the same rows, no
/// temporary file anywhere, the same state, and whole manifests of this job.
fn check_equals_clean(out: &Path, clean: &Path, max_manifests: usize, when: &str) {
    let hidden: Vec<_> = all_files(out)
        .into_iter()
        .filter(|p| is_hidden(p))
        .collect();
    assert!(
        hidden.is_empty(),
        "{when}: leftover temporary files {hidden:?}"
    );
    // Inventory tables are partitioned by the date of the snapshot, the day a run starts: runs on
    // both sides of midnight UTC write the same snapshot under two dates. Those compare by table
    // and file name.
    let inventory = |rel: &Path| {
        rel.components()
            .next()
            .is_some_and(|c| c.as_os_str().to_string_lossy().ends_with("_inventory"))
    };
    let names = |root: &Path| -> BTreeSet<PathBuf> {
        parquet_files(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .map(
                |rel| match (inventory(&rel), rel.components().next(), rel.file_name()) {
                    (true, Some(table), Some(file)) => Path::new(table.as_os_str()).join(file),
                    _ => rel,
                },
            )
            .collect()
    };
    assert_eq!(
        names(out),
        names(clean),
        "{when}: the Parquet files differ from a clean run's"
    );
    for component in METRIC_TABLES {
        let (table, entity) = (component.table_name(), component.entity_tag());
        let got = exported_points(out, table, entity);
        let want = exported_points(clean, table, entity);
        assert!(!want.is_empty(), "the clean run exported {table}");
        assert_eq!(got.len(), want.len(), "{when}: {table} row count");
        assert!(
            got == want,
            "{when}: {table} rows differ from a clean run's"
        );
    }
    for file in parquet_files(clean) {
        let rel = file.strip_prefix(clean).unwrap();
        if inventory(rel) && !out.join(rel).exists() {
            // The same snapshot under the other side of midnight's date (see `names`).
            continue;
        }
        let rows = |p: &Path| read_parquet(p).iter().map(|b| b.num_rows()).sum::<usize>();
        assert_eq!(
            rows(&out.join(rel)),
            rows(&file),
            "{when}: rows of {}",
            rel.display()
        );
    }
    let until = committed_until(out).unwrap_or_else(|| panic!("{when}: no _state/{JOB}.json"));
    let clean_until = committed_until(clean).expect("a clean run writes its state");
    assert!(
        same_instant(&clean_until, END),
        "a clean run commits up to {END}: {clean_until}"
    );
    assert!(
        same_instant(&until, END),
        "{when}: state committed_until {until}, want {END}"
    );
    let manifests: Vec<_> = all_files(&out.join("_runs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(
        !manifests.is_empty(),
        "{when}: the re-run wrote no manifest"
    );
    assert!(
        manifests.len() <= max_manifests,
        "{when}: {} manifests for at most {max_manifests} completed runs",
        manifests.len()
    );
    for m in manifests {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
        assert_eq!(
            v["job"],
            JOB,
            "{when}: manifest {} names the job",
            m.display()
        );
    }
    // The state names the run that moved it; that run's manifest says what the files hold.
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("_state").join(format!("{JOB}.json"))).unwrap())
            .unwrap();
    let run_id = state["run_id"].as_str().expect("the state names its run");
    let path = out.join("_runs").join(format!("{run_id}.json"));
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(&path).unwrap_or_else(|e| panic!("{when}: {}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(manifest["outcome"], "succeeded", "{when}: {manifest}");
    let files = manifest["files"].as_array().expect("manifest files");
    assert_eq!(
        files.len(),
        parquet_files(out).len(),
        "{when}: files in the manifest"
    );
    for f in files {
        let partition = f["partition"].as_str().unwrap();
        let file = out.join(partition).join(format!("part-{JOB}-0.parquet"));
        let rows: usize = read_parquet(&file).iter().map(|b| b.num_rows()).sum();
        assert_eq!(
            f["rows"].as_u64(),
            Some(rows as u64),
            "{when}: rows of {partition} in the manifest"
        );
    }
}

/// (size, modification time) of every file below `dir`.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    all_files(dir)
        .into_iter()
        .filter_map(|p| {
            let m = fs::metadata(&p).ok()?;
            Some((p, (m.len(), m.modified().ok()?)))
        })
        .collect()
}

enum KillAt {
    /// This long after the start.
    Elapsed(Duration),
    /// When the n-th change in the output folder is seen (a file appears, grows, is renamed or
    /// removed): this lands the kills in the commit phase, where they matter most.
    Change(usize),
}

/// Starts a run and kills it with SIGKILL at `at`; returns whether it finished on its own first.
fn run_and_kill(ws: &Workspace, at: &KillAt) -> bool {
    let mut before = listing(&ws.out());
    let mut child = spawn_run(ws);
    let started = Instant::now();
    let mut changes = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "an unkilled run failed: {status}");
            return true;
        }
        let due = match at {
            KillAt::Elapsed(d) => started.elapsed() >= *d,
            KillAt::Change(n) => {
                let now = listing(&ws.out());
                changes += now
                    .iter()
                    .filter(|(p, v)| before.get(*p) != Some(v))
                    .count();
                changes += before.keys().filter(|p| !now.contains_key(*p)).count();
                before = now;
                changes >= *n
            }
        };
        assert!(started.elapsed() < Duration::from_secs(60), "a run hangs");
        if due {
            child.kill().unwrap();
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn killed_runs_never_show_partial_files_and_a_re_run_repairs_everything() {
    // The reference: a clean run in its own folder.
    let clean = Workspace::new();
    clean.write(&format!("{JOB}.toml"), &job_text());
    let t0 = Instant::now();
    run_ok(&clean, START, END);
    let duration = t0.elapsed();
    let new = partition_points(&clean.out());
    assert_eq!(
        new.len(),
        6,
        "three tables over two dates: {:?}",
        new.keys()
    );

    let ws = Workspace::new();
    ws.write(&format!("{JOB}.toml"), &job_text());
    // Returns how many kills hit a running process, and how many of those left a temporary file
    // behind (killed in the middle of writing one).
    let check_kills =
        |ws: &Workspace, old: &BTreeMap<PathBuf, Points>, schedule: &[KillAt], phase: &str| {
            let (mut landed, mut mid_write) = (0, 0);
            for (i, at) in schedule.iter().enumerate() {
                let hidden = |ws: &Workspace| -> BTreeSet<PathBuf> {
                    all_files(&ws.out())
                        .into_iter()
                        .filter(|p| is_hidden(p))
                        .collect()
                };
                let before = hidden(ws);
                if !run_and_kill(ws, at) {
                    landed += 1;
                    if !hidden(ws).is_subset(&before) {
                        mid_write += 1;
                    }
                }
                let when = match at {
                    KillAt::Elapsed(d) => format!("{phase}, killed after {d:?} (kill {i})"),
                    KillAt::Change(n) => format!("{phase}, killed at change {n} (kill {i})"),
                };
                check_reader_view(&ws.out(), old, &new, &when);
            }
            eprintln!(
                "{phase}: {} kills, {landed} while running, {mid_write} left a temporary file",
                schedule.len()
            );
            assert!(
                landed * 2 >= schedule.len(),
                "{phase}: most kills must hit a running process to prove anything"
            );
        };
    let at = |f: f64| KillAt::Elapsed(duration.mul_f64(f));

    // 1. A first run ever, killed: nothing old to keep, nothing partial to see.
    let empty = BTreeMap::new();
    check_kills(
        &ws,
        &empty,
        &[at(0.0), at(0.6), KillAt::Change(1), KillAt::Change(4)],
        "first run",
    );
    run_ok(&ws, START, END);
    check_equals_clean(
        &ws.out(),
        &clean.out(),
        1 + 4,
        "after the first run's kills",
    );

    // 2. Killed runs replacing older, narrower files: every partition is old or new.
    let ws = Workspace::new();
    ws.write(&format!("{JOB}.toml"), &job_text());
    run_ok(&ws, OLD_START, OLD_END);
    let old = partition_points(&ws.out());
    assert_eq!(old.len(), 6, "the narrow run covers both dates too");
    assert!(old != new, "the killed runs have something to replace");
    let schedule = [
        at(0.8),
        at(0.9),
        at(1.0),
        KillAt::Change(1),
        KillAt::Change(2),
        KillAt::Change(3),
        KillAt::Change(5),
        KillAt::Change(8),
        KillAt::Change(12),
        KillAt::Change(18),
    ];
    check_kills(&ws, &old, &schedule, "replacing older files");
    run_ok(&ws, START, END);
    check_equals_clean(
        &ws.out(),
        &clean.out(),
        2 + schedule.len(),
        "after the kills",
    );
}

#[test]
fn a_second_run_fails_at_once_and_a_killed_runs_lock_does_not_block() {
    let ws = Workspace::new();
    // Two days of one-hour pages one request at a time: long enough to be caught running.
    let job = ws.write(
        "long.toml",
        &sim_job(
            "long",
            SIZES,
            "2026-11-01T00:00:00Z",
            "2026-11-03T00:00:00Z",
            "1h",
        ),
    );
    let job = job.to_str().unwrap();
    let args = ["run", job, "--concurrency", "1", "--progress", "never"];
    let mut first = ws
        .command(&args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The lock file names its holder once the lock is taken.
    let lock = ws.out().join("_state").join("long.lock");
    let started = Instant::now();
    while fs::read(&lock).map_or(true, |b| b.is_empty()) {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended without ever holding {}",
            lock.display()
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no lock file {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let t = Instant::now();
    let second = ws.run(&args, &[]);
    let took = t.elapsed();
    let still_running = first.try_wait().unwrap().is_none();
    assert_eq!(
        second.status.code(),
        Some(2),
        "second run: {}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains("already running"),
        "{}",
        stderr(&second)
    );
    assert!(
        still_running,
        "the first run was still running when the second was refused"
    );
    assert!(
        took < Duration::from_secs(3),
        "the second run fails at once, not after {took:?}"
    );

    // SIGKILL: the kernel drops the flock, so the next run goes ahead and completes.
    first.kill().unwrap();
    first.wait().unwrap();
    let t = Instant::now();
    let third = ws.run(&args, &[]);
    assert_eq!(
        third.status.code(),
        Some(0),
        "run after a kill: {}",
        stderr(&third)
    );
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(!parquet_files(&ws.out().join("vm_metrics")).is_empty());
}
