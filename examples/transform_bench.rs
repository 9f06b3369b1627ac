//! A micro-benchmark of the transform and load stages, without HTTP: a simulated day of VM
//! metrics goes through `MetricsTable` (page by page, as extraction delivers it) and
//! `Destination::replace_job_partition_stream` into a temporary folder, and the CPU time per
//! point and the bytes per point are printed.
//!
//! `cargo run --release --example transform_bench -- [VMS_PER_DATACENTER] [BUDGET_POINTS]`
//! (two datacenters; 55 gives 110 VMs × 13 metrics × 1,440 points ≈ 2.06 M points).
//! `VSCOPE_BENCH_LAYOUT=plain|split|stats` writes without the layout's split/no-statistics
//! settings, with `value` byte-stream-split, or with every statistic, to compare.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark's driver: it prints its table, and a failed step ends it"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vscope_export::domain::table::Table;
use vscope_export::job::{Catalog, Component, PartitionBy};
use vscope_export::load::{Destination, FileProvenance};
use vscope_export::sim::{SimConfig, World};
use vscope_export::transform::{self, InventoryIndex, MetricsTable, BATCH_ROWS};
use vscope_export::tsdb::OwnedSeries;

/// The process's user + system CPU time, from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let vms: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(55);
    let budget: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(transform::DEFAULT_BUDGET_POINTS);
    let world = World::new(SimConfig {
        vms,
        ..SimConfig::default()
    });
    let day: DateTime<Utc> = "2026-11-24T00:00:00Z".parse()?;
    let start = day.timestamp_millis();
    let index = Arc::new(InventoryIndex::new(&world.inventory(day)));
    let catalog = Catalog::builtin();
    let metrics: Vec<String> = catalog
        .for_component(Component::Vm)
        .map(|m| m.name.to_string())
        .collect();

    // Pages of one hour, as the exporter fetches them; generated before timing.
    let hour = 3_600_000;
    let mut pages: Vec<(i64, i64, Vec<OwnedSeries>)> = Vec::new();
    for h in 0..24 {
        let (ps, pe) = (start + h * hour, start + (h + 1) * hour);
        let mut series = Vec::new();
        for metric in &metrics {
            for s in world.series(metric) {
                let (ts, values): (Vec<i64>, Vec<f64>) = world.points(&s, ps, pe).unzip();
                series.push(OwnedSeries {
                    metric: s.metric.clone(),
                    tags: s.tags.into_iter().collect(),
                    timestamps_ms: ts,
                    values,
                    ..OwnedSeries::default()
                });
            }
        }
        pages.push((ps, pe, series));
    }

    let dir = tempfile::tempdir()?;
    let dest = Destination::open(dir.path().to_str().unwrap_or("."), &Default::default())?;
    let provenance = FileProvenance {
        job: "bench".into(),
        shard: None,
        run_id: "r".into(),
        window_start: day.to_rfc3339(),
        window_end: day.to_rfc3339(),
    };
    let mut layout = vscope_export::load::layout(Table::VmMetrics);
    match std::env::var("VSCOPE_BENCH_LAYOUT").as_deref() {
        Ok("plain") => {
            layout.split_columns.clear();
            layout.no_stats_columns.clear();
        }
        Ok("split") => layout.split_columns = vec!["value"],
        Ok("stats") => layout.no_stats_columns.clear(),
        _ => {}
    }

    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut table =
        MetricsTable::new(Component::Vm, &[PartitionBy::Date], index).with_budget(budget);
    let mut points = 0;
    for (ps, pe, series) in &pages {
        for s in series {
            points += table.push_series(&s.as_series(), *ps, *pe);
        }
    }
    let (cpu1, spills) = (cpu_time(), table.spills());
    let mut bytes = 0;
    for (key, rows) in table.take_all() {
        let written = dest.replace_job_partition_stream(
            &layout,
            &key,
            &provenance,
            3,
            rows.into_batches(BATCH_ROWS),
        )?;
        bytes += written.map_or(0, |w| w.bytes);
    }
    let (cpu2, wall) = (cpu_time(), wall0.elapsed());
    let ns = |d: Duration| d.as_nanos() as f64 / points as f64;
    println!(
        "points {points}  spills {spills}  push {:.1} ns/pt  build+write {:.1} ns/pt  \
         total {:.1} ns/pt CPU ({:.2} s wall)  {:.3} bytes/pt",
        ns(cpu1 - cpu0),
        ns(cpu2 - cpu1),
        ns(cpu2 - cpu0),
        wall.as_secs_f64(),
        bytes as f64 / points as f64
    );
    Ok(())
}
