//! The whole export through the real command line against the in-process simulator, compared
//! with what the simulator says must be there.

use std::collections::BTreeMap;
use std::fs;

use crate::common::*;
use chrono::{DateTime, Utc};
use vscope_export::job::{Catalog, Component};
use vscope_export::sim::{SimConfig, World};

const SIZES: &str = "seed = 7\nservices = 1\ndatacenters = 2\nhosts = 3\nvms = 12\nfilers = 3";

fn config() -> SimConfig {
    SimConfig {
        seed: 7,
        services: 1,
        datacenters: 2,
        hosts: 3,
        vms: 12,
        filers: 3,
        ..SimConfig::default()
    }
}

/// What the simulator serves for `[start, end)`, keyed like [`exported_points`].
fn expected_points(world: &World, component: Component, start: i64, end: i64) -> Points {
    let entity = component.entity_tag();
    let mut points = Points::new();
    for metric in Catalog::builtin().for_component(component) {
        for series in world.series(&metric.name) {
            let mut e = series.tags.get(entity).cloned().unwrap_or_default();
            if let Some(n) = series.tags.get("nicname") {
                e = format!("{e}/{n}");
            }
            for (ts, v) in world.points(&series, start, end - 1) {
                points.insert((metric.name.clone(), e.clone(), ts), Some(v));
            }
        }
    }
    points
}

fn assert_matches_simulator(ws: &Workspace, start: &str, end: &str) {
    let world = World::new(config());
    for component in [Component::Vm, Component::Host, Component::Filer] {
        let expected = expected_points(&world, component, ms(start), ms(end));
        let actual = exported_points(&ws.out(), component.table_name(), component.entity_tag());
        assert!(
            !expected.is_empty(),
            "the simulator serves {component:?} points"
        );
        assert_eq!(
            actual.len(),
            expected.len(),
            "{} row count",
            component.table_name()
        );
        assert!(
            actual == expected,
            "{} values differ from the simulator",
            component.table_name()
        );
    }
}

#[test]
fn a_window_across_pages_and_days_exports_every_point_exactly_once() {
    let ws = Workspace::new();
    let (start, end) = ("2026-11-01T21:00:00Z", "2026-11-02T03:00:00Z");
    let job = ws.write("cross.toml", &sim_job("cross", SIZES, start, end, "1h"));
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "stderr: {}\nstdout: {}",
        stderr(&out),
        stdout(&out)
    );
    assert_matches_simulator(&ws, start, end);

    // Rows sit in the partition of their own UTC date.
    for table in ["vm_metrics", "host_metrics", "filer_metrics"] {
        let mut dates = Vec::new();
        for file in parquet_files(&ws.out().join(table)) {
            let date = file
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            dates.push(date.clone());
            for batch in read_parquet(&file) {
                for ts in timestamps(&batch, "ts") {
                    let d = DateTime::from_timestamp_millis(ts)
                        .unwrap()
                        .format("date=%Y-%m-%d")
                        .to_string();
                    assert_eq!(d, date, "{} holds a row of another date", file.display());
                }
            }
        }
        assert_eq!(dates, ["date=2026-11-01", "date=2026-11-02"], "{table}");
    }
}

#[test]
fn automatic_page_length_gives_the_same_rows() {
    let ws = Workspace::new();
    let (start, end) = ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
    let job = ws.write("auto.toml", &sim_job("auto", SIZES, start, end, "auto"));
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_matches_simulator(&ws, start, end);
    assert!(
        stdout(&out).contains("duckdb -c"),
        "the summary shows how to query: {}",
        stdout(&out)
    );
}

#[test]
fn rows_carry_the_inventory_and_deleted_vms_keep_their_points() {
    let ws = Workspace::new();
    let job = ws.write(
        "inv.toml",
        &sim_job(
            "inv",
            SIZES,
            "2026-11-01T00:00:00Z",
            "2026-11-01T02:00:00Z",
            "auto",
        ),
    );
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));

    let world = World::new(config());
    let inventory = world.inventory(Utc::now());
    let known: BTreeMap<String, (i64, Option<String>)> = inventory
        .services
        .iter()
        .flat_map(|s| s.datacenters.iter().flat_map(|d| d.vms.iter()))
        .map(|v| (v.mo_ref.clone(), (v.vm_id, v.name.clone())))
        .collect();
    let (mut joined, mut orphans) = (0, 0);
    for file in parquet_files(&ws.out().join("vm_metrics")) {
        for batch in read_parquet(&file) {
            let vm = strings(&batch, "vm");
            let vm_id = i64s(&batch, "vm_id");
            let name = strings(&batch, "vm_name");
            let tags = batch.column_by_name("tags").unwrap();
            assert_eq!(tags.null_count(), 0);
            for i in 0..batch.num_rows() {
                let moref = vm[i].clone().unwrap();
                match known.get(&moref) {
                    Some((id, n)) => {
                        assert_eq!(vm_id[i], Some(*id), "{moref}");
                        assert_eq!(&name[i], n, "{moref}");
                        joined += 1;
                    }
                    None => {
                        assert_eq!(
                            vm_id[i], None,
                            "a VM missing from the inventory has no vm_id"
                        );
                        orphans += 1;
                    }
                }
            }
        }
    }
    assert!(
        joined > 0 && orphans > 0,
        "joined {joined}, orphans {orphans}"
    );

    let inv = parquet_files(&ws.out().join("vm_inventory"));
    assert_eq!(inv.len(), 1);
    let rows: usize = read_parquet(&inv[0]).iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, inventory.vm_count());
}

#[test]
fn re_running_replaces_the_jobs_own_files_and_keeps_other_jobs() {
    let ws = Workspace::new();
    let (start, end) = ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
    let a = ws.write("a.toml", &sim_job("a", SIZES, start, end, "6h"));
    let b = ws.write(
        "b.toml",
        &sim_job("b", SIZES, "2026-11-01T12:00:00Z", end, "6h"),
    );
    assert!(ws.run(&["run", a.to_str().unwrap()], &[]).status.success());
    assert!(ws.run(&["run", b.to_str().unwrap()], &[]).status.success());
    let b_file = ws.out().join("vm_metrics/date=2026-11-01/part-b-0.parquet");
    let b_before = fs::read(&b_file).unwrap();

    // Job a again, over the same day, then over a part of it: still exactly one copy of each point.
    assert!(ws.run(&["run", a.to_str().unwrap()], &[]).status.success());
    let again = ws.run(
        &[
            "run",
            a.to_str().unwrap(),
            "--start",
            "2026-11-01T06:00:00Z",
            "--end",
            "2026-11-01T12:00:00Z",
        ],
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));

    let world = World::new(config());
    let a_points: usize =
        read_parquet(&ws.out().join("vm_metrics/date=2026-11-01/part-a-0.parquet"))
            .iter()
            .map(|b| b.num_rows())
            .sum();
    assert_eq!(
        a_points,
        expected_points(&world, Component::Vm, ms(start), ms(end)).len()
    );
    assert_eq!(
        fs::read(&b_file).unwrap(),
        b_before,
        "job b's file is untouched"
    );
    let names: Vec<_> = fs::read_dir(ws.out().join("vm_metrics/date=2026-11-01"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        ["part-a-0.parquet", "part-b-0.parquet"],
        "no temporary files left"
    );
}
