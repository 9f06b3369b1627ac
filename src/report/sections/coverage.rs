//! Section 1, estate and coverage: what the inventory holds (services, datacenters, clusters,
//! hosts, VMs on and off, datastores) and, per metric, the points received against the points
//! the span and the series' step call for, so that gaps show before anyone trusts a figure.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::super::model::{col as column, col_in, BarChart, Cell, Chart, Section, Table};
use super::super::scan::{ints, run, strings, ts_ms, Span, METRIC_TABLES};
use super::super::{Context, ReportError};

/// How much of the span the steps are measured on.
const STEP_SAMPLE_MS: i64 = 6 * 3_600_000;

/// Whether any metric table holds a point in the span.
pub fn has_points(ctx: &Context) -> Result<bool, ReportError> {
    for (table, _) in METRIC_TABLES {
        if !ctx.ds.has(table) {
            continue;
        }
        let lf = ctx.ds.metrics(table, &[], &[], ctx.span)?.limit(1);
        if run(lf, "whether the span has points")?.height() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The step of each metric: the most common interval between consecutive points of a series
/// (the shortest one on a tie), over the first six hours of each table's points in the span.
/// That is enough to see the collector's interval and keeps the sort this needs small.
pub fn steps(ctx: &Context) -> Result<BTreeMap<String, i64>, ReportError> {
    let mut steps = BTreeMap::new();
    for (table, series) in METRIC_TABLES {
        if !ctx.ds.has(table) {
            continue;
        }
        let Some(first) = first_point(ctx, table)? else {
            continue;
        };
        let day = Span {
            from_ms: first,
            to_ms: (first + STEP_SAMPLE_MS).min(ctx.span.to_ms),
        };
        let mut keys: Vec<Expr> = vec![col("metric")];
        keys.extend(series.iter().map(|c| col(*c)));
        let mut order: Vec<PlSmallStr> = vec!["metric".into()];
        order.extend(series.iter().map(|c| PlSmallStr::from(*c)));
        order.push("t".into());
        let previous = col("t")
            .shift(lit(1))
            .over(keys)
            .map_err(|e| ReportError::polars("the step of each metric".into(), e))?;
        let lf = ctx
            .ds
            .metrics(table, &[], series, day)?
            .with_columns([ts_ms().alias("t")])
            .sort(order, SortMultipleOptions::default().with_nulls_last(true))
            .with_columns([(col("t") - previous).alias("d")])
            .filter(col("d").gt(lit(0i64)))
            .group_by([col("metric"), col("d")])
            .agg([len().alias("n")]);
        let df = run(lf, "the step of each metric")?;
        let (metrics, d, n) = (strings(&df, "metric")?, ints(&df, "d")?, ints(&df, "n")?);
        let mut best: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for ((m, d), n) in metrics.into_iter().zip(d).zip(n) {
            let (Some(m), Some(d), Some(n)) = (m, d, n) else {
                continue;
            };
            let e = best.entry(m).or_insert((n, d));
            if n > e.0 || (n == e.0 && d < e.1) {
                *e = (n, d);
            }
        }
        steps.extend(best.into_iter().map(|(m, (_, d))| (m, d)));
    }
    Ok(steps)
}

/// The first point of `table` in the span: the table's first point when the span starts before
/// it (as it does unless `--from` says otherwise), else a query.
fn first_point(ctx: &Context, table: &str) -> Result<Option<i64>, ReportError> {
    match ctx.present.get(table) {
        None => Ok(None),
        Some(p) if p.from_ms >= ctx.span.from_ms => {
            Ok(Some(p.from_ms).filter(|t| *t < ctx.span.to_ms))
        }
        Some(_) => {
            let first = run(
                ctx.ds
                    .metrics(table, &[], &[], ctx.span)?
                    .select([ts_ms().min().alias("first")]),
                "the first point",
            )?;
            Ok(ints(&first, "first")?[0])
        }
    }
}

/// How many instants of a grid of `step` (aligned on the Unix epoch) lie in `[from, to)`.
pub fn grid_points(span: Span, step_ms: i64) -> i64 {
    let ceil = |t: i64| t.div_euclid(step_ms) + i64::from(t.rem_euclid(step_ms) != 0);
    ceil(span.to_ms) - ceil(span.from_ms)
}

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("coverage", "Estate and coverage");
    section.tables.push(estate(ctx, &mut section.notes)?);
    let coverage = coverage(ctx)?;
    let pct = coverage.column_index("coverage").unwrap_or(0);
    let metric = coverage.column_index("metric").unwrap_or(0);
    section.charts.push(Chart::Bars(BarChart {
        title: "Points received against points expected, per metric".into(),
        x_label: "coverage".into(),
        unit: "%".into(),
        series: vec!["coverage".into()],
        bars: coverage
            .rows
            .iter()
            .map(|r| {
                let name = match &r[metric] {
                    Cell::Text(t) => t.trim_start_matches("vscope.").to_string(),
                    _ => String::new(),
                };
                let v = match r[pct] {
                    Cell::Float(v) => v,
                    _ => 0.0,
                };
                (name, vec![v])
            })
            .collect(),
    }));
    section.notes.push(
        "expected = series × instants of the metric's step in the span (step: the most common \
         interval between two points of a series in the first six hours of data); received = \
         points with a value."
            .into(),
    );
    section.tables.push(coverage);
    Ok(section)
}

/// One row per service: the counts of each kind of object in its latest inventory snapshot.
fn estate(ctx: &Context, notes: &mut Vec<String>) -> Result<Table, ReportError> {
    #[derive(Default)]
    struct Counts {
        datacenters: Option<i64>,
        clusters: Option<i64>,
        hosts: Option<i64>,
        vms_on: Option<i64>,
        vms_off: Option<i64>,
        datastores: Option<i64>,
    }
    let mut by_service: BTreeMap<String, Counts> = BTreeMap::new();
    let mut count = |table: &str,
                     aggs: Vec<Expr>,
                     columns: &[&str],
                     set: &dyn Fn(&mut Counts, &DataFrame, usize) -> Result<(), ReportError>|
     -> Result<bool, ReportError> {
        let Some(lf) = ctx.ds.latest_inventory(table, columns)? else {
            return Ok(false);
        };
        let df = run(
            lf.group_by([col("service_name")]).agg(aggs),
            &format!("the estate from {table}"),
        )?;
        let services = strings(&df, "service_name")?;
        for (i, sn) in services.into_iter().enumerate() {
            let entry = by_service.entry(sn.unwrap_or_default()).or_default();
            set(entry, &df, i)?;
        }
        Ok(true)
    };
    let present = [
        count(
            "datacenter_inventory",
            vec![col("datacenter_id").n_unique().alias("n")],
            &["datacenter_id"],
            &|c, df, i| {
                c.datacenters = ints(df, "n")?[i];
                Ok(())
            },
        )?,
        count(
            "host_inventory",
            vec![
                len().alias("hosts"),
                col("cluster_name")
                    .drop_nulls()
                    .n_unique()
                    .alias("clusters"),
            ],
            &["cluster_name"],
            &|c, df, i| {
                c.hosts = ints(df, "hosts")?[i];
                c.clusters = ints(df, "clusters")?[i];
                Ok(())
            },
        )?,
        count(
            "vm_inventory",
            vec![
                col("power_state").eq(lit("poweredOn")).sum().alias("on"),
                len().alias("all"),
            ],
            &["power_state"],
            &|c, df, i| {
                let on = ints(df, "on")?[i];
                c.vms_on = on;
                c.vms_off = ints(df, "all")?[i].zip(on).map(|(a, o)| a - o);
                Ok(())
            },
        )?,
        count(
            "filer_inventory",
            vec![len().alias("n")],
            &[],
            &|c, df, i| {
                c.datastores = ints(df, "n")?[i];
                Ok(())
            },
        )?,
    ];
    for (table, present) in [
        "datacenter_inventory",
        "host_inventory",
        "vm_inventory",
        "filer_inventory",
    ]
    .iter()
    .zip(present)
    {
        if !present {
            notes.push(format!(
                "The export has no {table} table: its counts are left empty."
            ));
        }
    }
    let mut table = Table::new(
        "estate",
        "Estate (each service's latest inventory snapshot)",
        vec![
            column("service_name"),
            column("datacenters"),
            column("clusters"),
            column("hosts"),
            column("vms_on"),
            column("vms_off"),
            column("datastores"),
        ],
    );
    for (sn, c) in by_service {
        table.rows.push(vec![
            sn.into(),
            c.datacenters.into(),
            c.clusters.into(),
            c.hosts.into(),
            c.vms_on.into(),
            c.vms_off.into(),
            c.datastores.into(),
        ]);
    }
    if table.rows.is_empty() {
        notes.push("No inventory table: the estate is not known.".into());
    }
    Ok(table)
}

/// One row per (table, metric): series, step, points received and expected.
fn coverage(ctx: &Context) -> Result<Table, ReportError> {
    let mut table = Table::new(
        "metrics",
        "Coverage per metric",
        vec![
            column("table"),
            column("metric"),
            column("unit"),
            column("series"),
            col_in("step", "s"),
            col_in("received", "points"),
            col_in("expected", "points"),
            col_in("coverage", "%"),
        ],
    );
    for (name, _) in METRIC_TABLES {
        if !ctx.ds.has(name) {
            continue;
        }
        let Some(series) = ctx.series.get(name) else {
            continue;
        };
        let mut per_metric: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (key, f) in series {
            let metric = key.last().cloned().flatten().unwrap_or_default();
            let e = per_metric.entry(metric).or_default();
            e.0 += 1;
            e.1 += f.count as i64;
        }
        let rows: Vec<_> = per_metric
            .into_iter()
            .map(|(m, (s, r))| (m, s, r))
            .collect();
        for (metric, n_series, received) in rows {
            let step = ctx.step_ms(&metric);
            let expected = step.map(|s| n_series * grid_points(ctx.span, s));
            let pct = expected
                .filter(|e| *e > 0)
                .map(|e| received as f64 / e as f64 * 100.0);
            table.rows.push(vec![
                name.into(),
                Cell::Text(metric.clone()),
                ctx.unit(&metric).into(),
                n_series.into(),
                step.map(|s| s as f64 / 1000.0).into(),
                received.into(),
                expected.into(),
                pct.into(),
            ]);
        }
    }
    Ok(table)
}
