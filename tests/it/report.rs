//! `vscope-export report` on a simulator export: every figure against an independent DuckDB SQL
//! oracle (tests/report/oracle.py), the simulator's known idle, busy and filling objects found,
//! every format written, the HTML checked in a real headless Chromium, and the errors a user can
//! make.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::*;
use serde_json::Value;
use vscope_export::sim::{SimConfig, World};

/// Eight days (the oversized rule needs seven) of a small estate at a 5-minute step: big enough
/// for every rule to have cases, small enough for a debug build of polars.
const SIZES: &str = "seed = 11\nservices = 1\ndatacenters = 2\nhosts = 3\nvms = 12\nfilers = 3\nresolution_secs = 300";
const START: &str = "2026-03-01T00:00:00Z";
const END: &str = "2026-03-09T00:00:00Z";

fn sim_config() -> SimConfig {
    SimConfig {
        seed: 11,
        services: 1,
        datacenters: 2,
        hosts: 3,
        vms: 12,
        filers: 3,
        resolution_secs: 300,
        ..SimConfig::default()
    }
}

/// The export every test reads, made once per test binary run.
fn export() -> &'static Path {
    static EXPORT: OnceLock<PathBuf> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-export");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the export folder");
        let job = dir.join("report.toml");
        std::fs::write(&job, sim_job("report", SIZES, START, END, "1d")).expect("write job");
        let out = Command::new(BIN)
            .args([
                "run",
                "report.toml",
                "--output",
                "out",
                "--progress",
                "never",
            ])
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .output()
            .expect("run vscope-export");
        assert!(out.status.success(), "export failed: {}", stderr(&out));
        dir.join("out")
    })
}

fn helper(name: &str) -> String {
    format!("{}/tests/report/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `report` on the export with `args`, in a fresh workspace; returns the workspace and output.
fn report(args: &[&str]) -> (Workspace, std::process::Output) {
    let ws = Workspace::new();
    let out = export().display().to_string();
    let mut all = vec!["report", out.as_str()];
    all.extend_from_slice(args);
    let output = ws.run(&all, &[]);
    (ws, output)
}

fn json_report() -> &'static Value {
    static JSON: OnceLock<(Workspace, Value)> = OnceLock::new();
    &JSON
        .get_or_init(|| {
            let (ws, out) = report(&["--format", "json", "--output", "report.json"]);
            assert!(out.status.success(), "report failed: {}", stderr(&out));
            let text = std::fs::read_to_string(ws.path().join("report.json")).expect("report.json");
            (ws, serde_json::from_str(&text).expect("valid JSON"))
        })
        .1
}

fn table<'a>(report: &'a Value, section: &str, id: &str) -> &'a Vec<Value> {
    report["sections"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == section))
        .and_then(|s| s["tables"].as_array())
        .and_then(|t| t.iter().find(|t| t["id"] == id))
        .and_then(|t| t["rows"].as_array())
        .unwrap_or_else(|| panic!("no table {section}.{id}"))
}

#[test]
fn every_figure_matches_the_duckdb_oracle() {
    // Per-VM percentiles taken a few VMs at a time, as a long span of many VMs is: the chunks
    // must add up to the same figures.
    let ws = Workspace::new();
    let dir = export().display().to_string();
    let out = ws.run(
        &[
            "report",
            &dir,
            "--format",
            "json",
            "--output",
            "report.json",
        ],
        &[("VSCOPE_REPORT_CHUNK_ROWS", "50000")],
    );
    assert!(out.status.success(), "report failed: {}", stderr(&out));
    let oracle = Command::new(python())
        .arg(helper("oracle.py"))
        .arg(&dir)
        .arg(ws.path().join("report.json"))
        .output()
        .expect("run the oracle");
    assert!(
        oracle.status.success(),
        "the report differs from DuckDB:\n{}{}",
        stdout(&oracle),
        stderr(&oracle)
    );
    // The oracle compared something: every table of every section has rows.
    let text = stdout(&oracle);
    let compared: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(compared > 1_500, "{text}");
}

#[test]
fn every_section_is_there_with_its_units() {
    let r = json_report();
    let ids: Vec<&str> = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "coverage",
            "capacity",
            "rightsizing",
            "contention",
            "storage",
            "network"
        ]
    );
    assert_eq!(r["from"], "2026-03-01T00:00:00+00:00");
    assert_eq!(r["to"], "2026-03-08T23:55:00.001+00:00");
    // Units come from the catalog.
    let coverage = table(r, "coverage", "metrics");
    let cpu = coverage
        .iter()
        .find(|m| m["metric"] == "vscope.vm.cpu.usage.perc")
        .unwrap();
    assert_eq!(cpu["unit"], "percent");
    assert_eq!(cpu["step"], 300.0);
    let used = coverage
        .iter()
        .find(|m| m["metric"] == "vscope.filer.datastore.diskspace.used")
        .unwrap();
    assert_eq!(used["unit"], "KB");
    // The simulator misses about one point in a thousand.
    let pct = cpu["coverage"].as_f64().unwrap();
    assert!((99.0..100.0).contains(&pct), "{pct}");
    let section = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "capacity")
        .unwrap();
    let cols = &section["tables"][0]["columns"];
    assert!(cols
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "cpu_p95" && c["unit"] == "percent"));
}

/// p95 with linear interpolation, as the report states.
fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * 0.95;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (h - lo as f64)
}

#[test]
fn the_simulators_idle_and_busy_vms_are_found() {
    let r = json_report();
    let world = World::new(sim_config());
    let (start, end) = (ms(START), ms(END) - 1);
    let truth = |metric: &str| -> std::collections::BTreeMap<String, f64> {
        world
            .series(metric)
            .into_iter()
            .map(|s| {
                let values: Vec<f64> = world.points(&s, start, end).map(|p| p.1).collect();
                (s.tags["vm"].clone(), p95(values))
            })
            .collect()
    };
    let (cpu, mem) = (
        truth("vscope.vm.cpu.usage.perc"),
        truth("vscope.vm.mem.usage.perc"),
    );
    let idle: BTreeSet<&String> = cpu
        .iter()
        .filter(|(vm, p)| **p < 10.0 && mem[*vm] < 30.0)
        .map(|(vm, _)| vm)
        .collect();
    let busy: BTreeSet<&String> = cpu
        .iter()
        .filter(|(_, p)| **p > 85.0)
        .map(|(vm, _)| vm)
        .collect();
    assert!(idle.len() >= 3 && busy.len() >= 2, "{idle:?} {busy:?}");
    let found = |verdict: &str| -> BTreeSet<&String> {
        table(r, "rightsizing", "vms")
            .iter()
            .filter(|v| v["verdict"] == verdict)
            .map(|v| {
                cpu.keys()
                    .find(|k| v["vm"] == ***k)
                    .expect("a simulated VM")
            })
            .collect()
    };
    assert_eq!(found("oversized"), idle);
    assert_eq!(found("undersized"), busy);
    // What rightsizing would free: every oversized VM gives back at least one vCPU or GB.
    let totals = &table(r, "rightsizing", "totals")[0];
    assert_eq!(totals["oversized"], idle.len());
    assert!(totals["memory_freed"].as_f64().unwrap() > 0.0);
    assert!(totals["vcpus_needed"].as_i64().unwrap() >= busy.len() as i64);
}

#[test]
fn the_simulators_filling_datastores_are_found() {
    let r = json_report();
    let stores = table(r, "storage", "datastores");
    let filling: Vec<&Value> = stores.iter().filter(|d| d["filling"] == true).collect();
    let stable: Vec<&Value> = stores.iter().filter(|d| d["filling"] == false).collect();
    assert!(!filling.is_empty() && !stable.is_empty(), "{stores:#?}");
    // The simulator fills a datastore by 60 % of its size in 120 days (0.5 % a day), then cleans
    // it up; the others only swing with the day.
    for d in &filling {
        let share = d["growth"].as_f64().unwrap() / d["size"].as_f64().unwrap();
        assert!((0.004..0.006).contains(&share), "{d}");
        assert!(d["days_until_full"].as_f64().unwrap() < 130.0, "{d}");
    }
    for d in &stable {
        let share = d["growth"].as_f64().unwrap() / d["size"].as_f64().unwrap();
        assert!(share.abs() < 0.0005, "{d}");
    }
}

#[test]
fn top_tables_hold_top_rows() {
    let (_, out) = report(&["--format", "json", "--top", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for (section, id) in [
        ("contention", "cpu_ready_top"),
        ("contention", "disk_latency_top"),
        ("network", "rx_top"),
        ("network", "tx_top"),
    ] {
        assert_eq!(table(&r, section, id).len(), 3, "{section}.{id}");
    }
    let rx: Vec<f64> = table(&r, "network", "rx_top")
        .iter()
        .map(|v| v["rx"].as_f64().unwrap())
        .collect();
    assert!(rx.windows(2).all(|w| w[0] >= w[1]), "{rx:?}");
}

#[test]
fn text_has_every_section_and_no_colour_off_a_terminal() {
    let (_, out) = report(&["--format", "text"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for title in [
        "1. Estate and coverage",
        "2. Cluster and host capacity",
        "3. VM rightsizing",
        "4. Contention",
        "5. Storage",
        "6. Network",
    ] {
        assert!(text.contains(title), "{title} in\n{text}");
    }
    assert!(!text.contains('\x1b'));
    assert!(text.contains("[percent]") && text.contains("[GB/day]"));
}

#[test]
fn csv_and_parquet_write_one_file_per_table() {
    let tables: usize = json_report()["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tables"].as_array().unwrap().len())
        .sum();
    for format in ["csv", "parquet"] {
        let (ws, out) = report(&["--format", format, "--output", "tables"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let files: Vec<_> = std::fs::read_dir(ws.path().join("tables"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), tables, "{files:?}");
        assert!(files.contains(&format!("rightsizing.vms.{format}")));
    }
    let (ws, _) = report(&["--format", "csv", "--output", "tables"]);
    let csv = std::fs::read_to_string(ws.path().join("tables/rightsizing.vms.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("cpu_p95 [percent]"), "{header}");
    assert_eq!(
        csv.lines().count() - 1,
        table(json_report(), "rightsizing", "vms").len()
    );
    // The Parquet tables read back with the same rows (through arrow-rs, another reader).
    let (ws, _) = report(&["--format", "parquet", "--output", "tables"]);
    let batches = read_parquet(&ws.path().join("tables/rightsizing.vms.parquet"));
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, table(json_report(), "rightsizing", "vms").len());
}

fn chromium() -> String {
    if let Ok(c) = std::env::var("VSCOPE_CHROMIUM") {
        return c;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_string();
        }
    }
    panic!("no Chromium: run `make test` (it installs Debian's chromium) or set VSCOPE_CHROMIUM");
}

#[test]
fn html_renders_in_headless_chromium() {
    let (ws, out) = report(&["--output", "report.html"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("report.html"));
    let html = std::fs::read_to_string(ws.path().join("report.html")).unwrap();
    assert!(html.contains("default-src 'none'"));
    let check = Command::new(python())
        .arg(helper("chromium_check.py"))
        .arg(chromium())
        .arg(ws.path().join("report.html"))
        .arg(ws.path().join("report.png"))
        .args([
            "coverage",
            "capacity",
            "rightsizing",
            "contention",
            "storage",
            "network",
        ])
        .output()
        .expect("run the Chromium check");
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
}

#[test]
fn errors_name_the_problem_and_exit_2() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("empty")).unwrap();
    std::fs::create_dir_all(ws.path().join("foreign/photos")).unwrap();
    std::fs::write(ws.path().join("foreign/photos/a.jpg"), "not parquet").unwrap();
    let out = export().display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["report", "empty"], "holds no exported table"),
        (&["report", "foreign"], "holds no exported table"),
        (&["report", "missing"], "missing is not a folder"),
        (
            &["report", &out, "--from", "2020-01-01", "--to", "2020-01-02"],
            "no metric points in 2020-01-01T00:00:00+00:00 → 2020-01-02T00:00:00+00:00",
        ),
        (
            &["report", &out, "--from", "soon"],
            "--from soon: 'soon' is not a time",
        ),
    ];
    for (args, message) in cases {
        let out = ws.run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(message),
            "{args:?}: {err}"
        );
    }
    // Only inventory tables: nothing to report on.
    copy_dir(
        &export().join("vm_inventory"),
        &ws.path().join("inv/vm_inventory"),
    );
    let out = ws.run(&["report", "inv"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("holds no metric table"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_table_leaves_its_section_out_with_a_note() {
    let ws = Workspace::new();
    for table in [
        "vm_metrics",
        "host_metrics",
        "vm_inventory",
        "host_inventory",
    ] {
        copy_dir(
            &export().join(table),
            &ws.path().join("partial").join(table),
        );
    }
    let out = ws.run(&["report", "partial", "--format", "json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let storage = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "storage")
        .unwrap();
    assert_eq!(storage["tables"].as_array().unwrap().len(), 0);
    assert!(storage["notes"][0]
        .as_str()
        .unwrap()
        .contains("no filer_metrics table"));
    assert!(!table(&r, "rightsizing", "vms").is_empty());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
