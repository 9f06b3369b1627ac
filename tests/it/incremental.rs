//! Incremental runs: `start = "last-run"` picks up where the last committed window ended (minus
//! the look-back), the state moves only forward, and consecutive runs never duplicate a point.

use std::fs;

use crate::common::*;
use vscope_export::job::{Catalog, Component};
use vscope_export::sim::{SimConfig, World};

const SIZES: &str = "seed = 11\nservices = 1\ndatacenters = 1\nhosts = 2\nvms = 6\nfilers = 1";

fn config() -> SimConfig {
    SimConfig {
        seed: 11,
        services: 1,
        datacenters: 1,
        hosts: 2,
        vms: 6,
        filers: 1,
        ..SimConfig::default()
    }
}

fn incremental_job() -> String {
    sim_job("inc", SIZES, "last-run", "now", "1h").replace(
        "start = \"last-run\"",
        "start = \"last-run\"\nlookback = \"90m\"\ninitial_start = \"2026-11-01T00:00:00Z\"",
    )
}

fn state(ws: &Workspace) -> serde_json::Value {
    serde_json::from_slice(&fs::read(ws.out().join("_state/inc.json")).expect("state file"))
        .unwrap()
}

/// VM points the simulator serves in `[start, end)`.
fn expected_vm_points(start: &str, end: &str) -> usize {
    let world = World::new(config());
    Catalog::builtin()
        .for_component(Component::Vm)
        .flat_map(|m| world.series(&m.name))
        .map(|s| world.points(&s, ms(start), ms(end) - 1).count())
        .sum()
}

#[test]
fn last_run_windows_follow_each_other_with_lookback_and_no_duplicates() {
    let ws = Workspace::new();
    let job = ws.write("inc.toml", &incremental_job());
    let job = job.to_str().unwrap();

    // First run: no state yet, so the window starts at initial_start.
    let first = ws.run(&["run", job, "--end", "2026-11-01T06:00:00Z"], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("2026-11-01T00:00:00+00:00 → 2026-11-01T06:00:00+00:00"),
        "{}",
        stdout(&first)
    );
    assert_eq!(state(&ws)["committed_until"], "2026-11-01T06:00:00Z");

    // Second run: starts 90 minutes before the committed end, to catch late points.
    let second = ws.run(&["run", job, "--end", "2026-11-01T12:00:00Z"], &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("2026-11-01T04:30:00+00:00 → 2026-11-01T12:00:00+00:00"),
        "{}",
        stdout(&second)
    );
    assert_eq!(state(&ws)["committed_until"], "2026-11-01T12:00:00Z");

    // Every point of [00:00, 12:00) exactly once (exported_points fails on a duplicate).
    let points = exported_points(&ws.out(), "vm_metrics", "vm");
    assert_eq!(
        points.len(),
        expected_vm_points("2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z")
    );

    // Two manifests, newest first in `runs`.
    let runs = ws.run(&["runs", job], &[]);
    assert!(runs.status.success(), "{}", stderr(&runs));
    let listed = stdout(&runs);
    assert_eq!(
        listed.lines().filter(|l| l.contains("succeeded")).count(),
        2,
        "{listed}"
    );
    let manifests: Vec<_> = fs::read_dir(ws.out().join("_runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(manifests.len(), 2);
    for m in manifests {
        let m: serde_json::Value = serde_json::from_slice(&fs::read(m.path()).unwrap()).unwrap();
        assert_eq!(m["job"], "inc");
        assert_eq!(m["outcome"], "succeeded");
        assert!(
            m["rows"].as_u64().unwrap() > 0 && m["requests"].as_u64().unwrap() > 0,
            "{m}"
        );
        assert!(
            m["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["table"] == "vm_metrics"),
            "{m}"
        );
    }

    // An explicit older window (a backfill) does not move the state back.
    let old = ws.run(
        &[
            "run",
            job,
            "--start",
            "2026-11-01T01:00:00Z",
            "--end",
            "2026-11-01T02:00:00Z",
        ],
        &[],
    );
    assert!(old.status.success(), "{}", stderr(&old));
    assert_eq!(state(&ws)["committed_until"], "2026-11-01T12:00:00Z");

    // Reset: the next run starts at initial_start again.
    let reset = ws.run(&["state", "reset", job], &[]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    let show = ws.run(&["state", "show", job], &[]);
    assert!(stdout(&show).contains("has no state"), "{}", stdout(&show));
    let again = ws.run(&["run", job, "--end", "2026-11-01T03:00:00Z"], &[]);
    assert!(
        stdout(&again).contains("2026-11-01T00:00:00+00:00 → 2026-11-01T03:00:00+00:00"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_partition_whose_rows_vanished_from_the_source_loses_them_on_re_run() {
    // Job "narrow" exports two VMs, then is re-run over the same window for one VM only: the
    // other VM's rows inside the window are gone, those outside it stay.
    let ws = Workspace::new();
    let world = World::new(config());
    let mut vms: Vec<String> = world
        .series("vscope.vm.cpu.usage.perc")
        .into_iter()
        .filter_map(|s| s.tags.get("vm").cloned())
        .collect();
    vms.sort();
    vms.dedup();
    let (a, b) = (&vms[0], &vms[1]);
    let job_for = |filter: &str| {
        sim_job("narrow", SIZES, "2026-11-01T00:00:00Z", "2026-11-01T06:00:00Z", "1h")
            .replace("metrics = \"all\"\n\n[[export]]\ntable = \"host_metrics\"", &format!("metrics = [\"vscope.vm.cpu.usage.perc\"]\ntags = {{ vm = \"{filter}\" }}\n\n[[export]]\ntable = \"host_metrics\""))
    };
    let both = ws.write("both.toml", &job_for(&format!("{a}|{b}")));
    let only_a = ws.write("a.toml", &job_for(a));
    assert!(ws
        .run(&["run", both.to_str().unwrap()], &[])
        .status
        .success());
    let out = ws.run(
        &[
            "run",
            only_a.to_str().unwrap(),
            "--start",
            "2026-11-01T03:00:00Z",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let points = exported_points(&ws.out(), "vm_metrics", "vm");
    let cut = ms("2026-11-01T03:00:00Z");
    assert!(
        points.keys().any(|(_, vm, ts)| vm == a && *ts >= cut),
        "a is re-exported"
    );
    assert!(
        points.keys().any(|(_, vm, ts)| vm == b && *ts < cut),
        "b's rows before the window stay"
    );
    assert!(
        !points.keys().any(|(_, vm, ts)| vm == b && *ts >= cut),
        "b's rows inside the window are gone"
    );
}

#[test]
fn a_page_that_fails_for_good_exits_1_and_holds_back_its_partition_and_the_state() {
    // Seed 8 of this schedule fails six pages, all on 2026-11-02 or later (two of vm_metrics,
    // on 2026-11-02), with no retries allowed: the run completes what it can.
    let ws = Workspace::new();
    let job = sim_job(
        "partial",
        SIZES,
        "2026-11-01T12:00:00Z",
        "2026-11-03T12:00:00Z",
        "6h",
    )
    .replace(
        "filers = 1",
        "filers = 1\nfaults = \"5xx=0.35,seed=8\"\n\n[source.retry]\nmax_retries = 0",
    );
    let job = ws.write("partial.toml", &job);
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    let summary = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{summary}\n{}", stderr(&out));
    assert!(summary.contains("FAILED vm_metrics"), "{summary}");
    assert!(
        summary.contains("kept as it was (a page failed): vm_metrics/date=2026-11-02"),
        "{summary}"
    );

    // The partition a failed page covers is not written; the others are.
    let day = |d: &str| {
        ws.out()
            .join(format!("vm_metrics/date={d}/part-partial-0.parquet"))
    };
    assert!(day("2026-11-01").exists() && day("2026-11-03").exists());
    assert!(!day("2026-11-02").exists());

    // The state stops where the uncommitted time starts: the start of 2026-11-02, not the
    // failed page's start, since the whole partition was held back.
    assert_eq!(
        state_of(&ws, "partial")["committed_until"],
        "2026-11-02T00:00:00Z"
    );
    let manifest = fs::read_dir(ws.out().join("_runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(manifest).unwrap()).unwrap();
    assert_eq!(manifest["outcome"], "partial");
    assert_eq!(
        manifest["failed_pages"].as_array().unwrap().len(),
        6,
        "{manifest}"
    );

    // Without faults, a re-run completes the window.
    let clean = ws.write(
        "clean.toml",
        &sim_job(
            "partial",
            SIZES,
            "2026-11-01T12:00:00Z",
            "2026-11-03T12:00:00Z",
            "6h",
        ),
    );
    let again = ws.run(&["run", clean.to_str().unwrap()], &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(day("2026-11-02").exists());
    assert_eq!(
        state_of(&ws, "partial")["committed_until"],
        "2026-11-03T12:00:00Z"
    );
}

fn state_of(ws: &Workspace, job: &str) -> serde_json::Value {
    serde_json::from_slice(
        &fs::read(ws.out().join(format!("_state/{job}.json"))).expect("state file"),
    )
    .unwrap()
}
