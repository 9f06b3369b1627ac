//! Section 2, cluster and host capacity: per cluster and host and UTC day, the average, p95 and
//! maximum of CPU % and memory %; the hosts whose p95 over the span is above 80 %.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::super::model::{
    col as column, col_in, Cell, Chart, LineChart, LineSeries, Section, Table,
};
use super::super::scan::{day_number, floats, ints, quantile, run, strings, ts_ms, DAY_MS};
use super::super::{Context, ReportError};
use super::note_missing;

pub const CPU: &str = "vscope.host.cpu.usage.perc";
pub const MEM: &str = "vscope.host.mem.usage.perc";
/// A host whose p95 CPU or memory over the span is above this (percent) is listed as hot.
pub const HOT_P95: f64 = 80.0;
/// Spans shorter than this many days are charted by the hour.
const HOURLY_BELOW_DAYS: i64 = 4;

/// avg, p95, max of CPU then memory, per key.
type Stats = [Option<f64>; 6];

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("capacity", "Cluster and host capacity");
    if !ctx.ds.has("host_metrics") {
        note_missing(&mut section, "host_metrics", "capacity");
        return Ok(section);
    }
    let cpu_unit = ctx.unit(CPU);
    let mem_unit = ctx.unit(MEM);
    let stat_columns = || {
        vec![
            col_in("cpu_avg", &cpu_unit),
            col_in("cpu_p95", &cpu_unit),
            col_in("cpu_max", &cpu_unit),
            col_in("mem_avg", &mem_unit),
            col_in("mem_p95", &mem_unit),
            col_in("mem_max", &mem_unit),
        ]
    };

    let clusters = stats(ctx, &["service_name", "cluster_name"], true)?;
    let mut t = Table::new(
        "clusters_daily",
        "Clusters, per UTC day",
        [
            vec![
                column("service_name"),
                column("cluster_name"),
                column("date"),
            ],
            stat_columns(),
        ]
        .concat(),
    );
    let mut p95_lines: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let services: std::collections::BTreeSet<_> = clusters.keys().map(|(k, _)| &k[0]).collect();
    for ((keys, day), s) in &clusters {
        let mut row: Vec<Cell> = keys.iter().cloned().map(Cell::from).collect();
        row.push(super::super::scan::date_of_day(*day).into());
        row.extend(s.iter().map(|v| Cell::from(*v)));
        t.rows.push(row);
        if let Some(p95) = s[1] {
            let name = keys[1].clone().unwrap_or_else(|| "(no cluster)".into());
            let name = if services.len() > 1 {
                format!("{} {name}", keys[0].clone().unwrap_or_default())
            } else {
                name
            };
            p95_lines
                .entry(name)
                .or_default()
                .push((day * DAY_MS + DAY_MS / 2, p95));
        }
    }
    // A day or three is one to three points a cluster: hours show the shape of such a span.
    let hourly = ctx.span.to_ms - ctx.span.from_ms < HOURLY_BELOW_DAYS * DAY_MS;
    if hourly {
        p95_lines = hourly_p95(ctx, services.len() > 1)?;
    }
    section.charts.push(Chart::Lines(LineChart {
        title: format!(
            "{} p95 of host CPU per cluster",
            if hourly { "Hourly" } else { "Daily" }
        ),
        y_label: "CPU p95".into(),
        y_unit: "%".into(),
        series: p95_lines
            .into_iter()
            .map(|(name, points)| LineSeries {
                name,
                points,
                dashed: false,
            })
            .collect(),
        thresholds: vec![(HOT_P95, format!("{HOT_P95} %"))],
        y_range: Some((0.0, 100.0)),
    }));
    section.tables.push(t);

    let hosts = stats(ctx, &["service_name", "cluster_name", "host"], true)?;
    let mut t = Table::new(
        "hosts_daily",
        "Hosts, per UTC day",
        [
            vec![
                column("service_name"),
                column("cluster_name"),
                column("host"),
                column("date"),
            ],
            stat_columns(),
        ]
        .concat(),
    );
    for ((keys, day), s) in &hosts {
        let mut row: Vec<Cell> = keys.iter().cloned().map(Cell::from).collect();
        row.push(super::super::scan::date_of_day(*day).into());
        row.extend(s.iter().map(|v| Cell::from(*v)));
        t.rows.push(row);
    }
    t.display_limit = Some(ctx.top.max(10));
    section.tables.push(t);

    let span = stats(ctx, &["service_name", "cluster_name", "host"], false)?;
    let mut t = Table::new(
        "hosts_hot",
        format!("Hosts whose p95 CPU or memory over the span is above {HOT_P95} %"),
        [
            vec![
                column("service_name"),
                column("cluster_name"),
                column("host"),
            ],
            stat_columns(),
        ]
        .concat(),
    );
    let mut hot = 0;
    for ((keys, _), s) in &span {
        if s[1].is_some_and(|v| v > HOT_P95) || s[4].is_some_and(|v| v > HOT_P95) {
            hot += 1;
            let mut row: Vec<Cell> = keys.iter().cloned().map(Cell::from).collect();
            row.extend(s.iter().map(|v| Cell::from(*v)));
            t.rows.push(row);
        }
    }
    section.notes.push(format!(
        "{hot} of {} hosts have a p95 of CPU or memory above {HOT_P95} % over the span.",
        span.len()
    ));
    section.tables.push(t);
    Ok(section)
}

/// The hourly p95 of host CPU per cluster, for the chart of a short span.
fn hourly_p95(
    ctx: &Context,
    prefix_service: bool,
) -> Result<BTreeMap<String, Vec<(i64, f64)>>, ReportError> {
    const HOUR_MS: i64 = 3_600_000;
    let lf = ctx
        .ds
        .metrics(
            "host_metrics",
            &[CPU],
            &["service_name", "cluster_name"],
            ctx.span,
        )?
        .with_columns([(ts_ms() - ts_ms() % lit(HOUR_MS)).alias("hour")])
        .group_by([col("service_name"), col("cluster_name"), col("hour")])
        .agg([quantile(col("value"), 0.95).alias("p95")]);
    let df = run(lf, "the hourly CPU p95 per cluster")?;
    let (sn, cluster, hour, p95) = (
        strings(&df, "service_name")?,
        strings(&df, "cluster_name")?,
        ints(&df, "hour")?,
        floats(&df, "p95")?,
    );
    let mut lines: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(hour), Some(p95)) = (hour[i], p95[i]) else {
            continue;
        };
        let name = cluster[i].clone().unwrap_or_else(|| "(no cluster)".into());
        let name = if prefix_service {
            format!("{} {name}", sn[i].clone().unwrap_or_default())
        } else {
            name
        };
        lines
            .entry(name)
            .or_default()
            .push((hour + HOUR_MS / 2, p95));
    }
    for points in lines.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    Ok(lines)
}

/// avg/p95/max of CPU % and memory % per `keys` (and UTC day when `daily`), sorted by key.
#[allow(clippy::type_complexity)]
fn stats(
    ctx: &Context,
    keys: &[&str],
    daily: bool,
) -> Result<BTreeMap<(Vec<Option<String>>, i64), Stats>, ReportError> {
    let mut by: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    by.push(col("metric"));
    if daily {
        by.push(col("day"));
    }
    let lf = ctx
        .ds
        .metrics("host_metrics", &[CPU, MEM], keys, ctx.span)?
        .with_columns([day_number().alias("day")])
        .group_by(by)
        .agg([
            col("value").mean().alias("avg"),
            quantile(col("value"), 0.95).alias("p95"),
            col("value").max().alias("max"),
        ]);
    let df = run(lf, "host capacity")?;
    let key_values: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|k| strings(&df, k))
        .collect::<Result<_, _>>()?;
    let metric = strings(&df, "metric")?;
    let day = if daily {
        ints(&df, "day")?
    } else {
        vec![Some(0); df.height()]
    };
    let (avg, p95, max) = (
        floats(&df, "avg")?,
        floats(&df, "p95")?,
        floats(&df, "max")?,
    );
    let mut out: BTreeMap<(Vec<Option<String>>, i64), Stats> = BTreeMap::new();
    for i in 0..df.height() {
        let key: Vec<Option<String>> = key_values.iter().map(|k| k[i].clone()).collect();
        let offset = if metric[i].as_deref() == Some(CPU) {
            0
        } else {
            3
        };
        let e = out.entry((key, day[i].unwrap_or(0))).or_default();
        e[offset] = avg[i];
        e[offset + 1] = p95[i];
        e[offset + 2] = max[i];
    }
    Ok(out)
}
