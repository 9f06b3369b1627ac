//! Section 5, storage: each datastore's used space per UTC day, its daily growth (least-squares
//! line through every point of the span) and the days until it is full against its size in
//! `filer_inventory`.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::super::model::{
    col as column, col_in, Cell, Chart, LineChart, LineSeries, Section, Table,
};
use super::super::scan::{date_of_day, day_number, floats, ints, run, strings, ts_ms, DAY_MS};
use super::super::{Context, ReportError};
use super::note_missing;

const USED: &str = "vscope.filer.datastore.diskspace.used";
/// KB to GB.
const KB_PER_GB: f64 = 1024.0 * 1024.0;
/// A datastore that the fitted line fills within this many days is flagged as filling …
pub const FILLING_WITHIN_DAYS: f64 = 365.0;
/// … when the line rests on at least this many UTC days of data: over fewer, the daily cycle
/// passes for growth.
pub const FILLING_MIN_DAYS: i64 = 7;

type Key = (Option<String>, Option<String>, Option<String>);

/// The least-squares line of one datastore: used GB = intercept + slope × days since `from`.
#[derive(Debug, Clone, Copy)]
struct Fit {
    slope: f64,
    intercept: f64,
    /// Days since `from` of the last point.
    x_last: f64,
    /// UTC days with data.
    days: i64,
}

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("storage", "Storage");
    if !ctx.ds.has("filer_metrics") {
        note_missing(&mut section, "filer_metrics", "storage");
        return Ok(section);
    }
    let unit = ctx.unit(USED);
    let from_ms = ctx.span.from_ms;
    let base = || -> Result<LazyFrame, ReportError> {
        Ok(ctx
            .ds
            .metrics(
                "filer_metrics",
                &[USED],
                &["service_name", "datacenter", "datastore"],
                ctx.span,
            )?
            .filter(col("value").is_not_null())
            .with_columns([
                day_number().alias("day"),
                ((ts_ms() - lit(from_ms)).cast(DataType::Float64) / lit(DAY_MS as f64)).alias("x"),
                (col("value") / lit(KB_PER_GB)).alias("y"),
            ]))
    };
    let keys = || [col("service_name"), col("datacenter"), col("datastore")];
    let keys_of = |df: &DataFrame| -> Result<Vec<Key>, ReportError> {
        let (a, b, c) = (
            strings(df, "service_name")?,
            strings(df, "datacenter")?,
            strings(df, "datastore")?,
        );
        Ok(a.into_iter()
            .zip(b)
            .zip(c)
            .map(|((a, b), c)| (a, b, c))
            .collect())
    };

    let daily_df = run(
        base()?
            .group_by([keys().as_slice(), &[col("day")]].concat())
            .agg([col("y").mean().alias("used")]),
        "the datastores' daily use",
    )?;
    let mut daily: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
    for ((k, day), used) in keys_of(&daily_df)?
        .into_iter()
        .zip(ints(&daily_df, "day")?)
        .zip(floats(&daily_df, "used")?)
    {
        if let (Some(day), Some(used)) = (day, used) {
            daily.entry(k).or_default().push((day, used));
        }
    }
    for v in daily.values_mut() {
        v.sort_by_key(|p| p.0);
    }

    let fit_df = run(
        base()?.group_by(keys()).agg([
            len().alias("n"),
            col("x").sum().alias("sx"),
            col("y").sum().alias("sy"),
            (col("x") * col("x")).sum().alias("sxx"),
            (col("x") * col("y")).sum().alias("sxy"),
            col("x").max().alias("x_last"),
            col("day").n_unique().alias("days"),
        ]),
        "the datastores' growth",
    )?;
    let mut fits: BTreeMap<Key, Fit> = BTreeMap::new();
    let col_f = |name| floats(&fit_df, name);
    let (n, sx, sy, sxx, sxy, x_last) = (
        col_f("n")?,
        col_f("sx")?,
        col_f("sy")?,
        col_f("sxx")?,
        col_f("sxy")?,
        col_f("x_last")?,
    );
    let n_days = ints(&fit_df, "days")?;
    for (i, k) in keys_of(&fit_df)?.into_iter().enumerate() {
        let (Some(n), Some(sx), Some(sy), Some(sxx), Some(sxy), Some(x_last)) =
            (n[i], sx[i], sy[i], sxx[i], sxy[i], x_last[i])
        else {
            continue;
        };
        let denominator = n * sxx - sx * sx;
        if n < 2.0 || denominator <= 0.0 {
            continue;
        }
        let slope = (n * sxy - sx * sy) / denominator;
        fits.insert(
            k,
            Fit {
                slope,
                intercept: (sy - slope * sx) / n,
                x_last,
                days: n_days[i].unwrap_or(0),
            },
        );
    }

    let mut sizes: BTreeMap<(Option<String>, Option<String>), f64> = BTreeMap::new();
    match ctx.ds.latest_inventory(
        "filer_inventory",
        &["service_name", "name", "size_value", "size_unit"],
    )? {
        None => section.notes.push(
            "The export has no filer_inventory table: sizes, and so days until full, are left \
             empty."
                .into(),
        ),
        Some(lf) => {
            let df = run(lf, "the datastores' sizes")?;
            let (sn, name, value, unit) = (
                strings(&df, "service_name")?,
                strings(&df, "name")?,
                floats(&df, "size_value")?,
                strings(&df, "size_unit")?,
            );
            for i in 0..df.height() {
                if let Some(gb) = value[i].zip(unit[i].as_deref().and_then(gb_per)) {
                    sizes.insert((sn[i].clone(), name[i].clone()), gb.0 * gb.1);
                }
            }
        }
    }

    let mut t = Table::new(
        "datastores",
        "Datastores (soonest full first)",
        vec![
            column("service_name"),
            column("datacenter"),
            column("datastore"),
            col_in("size", "GB"),
            col_in("used", "GB"),
            col_in("used_pct", "%"),
            col_in("days", "days"),
            col_in("growth", "GB/day"),
            col_in("days_until_full", "days"),
            column("full_date"),
            column("filling"),
        ],
    );
    let mut chart_rows = Vec::new();
    for (k, days) in &daily {
        let size = sizes.get(&(k.0.clone(), k.2.clone())).copied();
        let used = days.last().map(|d| d.1);
        let fit = fits.get(k).copied();
        let until_full = fit.zip(size).and_then(|(f, size)| {
            (f.slope > 0.0)
                .then(|| ((size - (f.intercept + f.slope * f.x_last)) / f.slope).max(0.0))
        });
        let full_ms = fit
            .zip(until_full)
            .map(|(f, d)| from_ms + ((f.x_last + d) * DAY_MS as f64) as i64);
        let filling = until_full.is_some_and(|d| d <= FILLING_WITHIN_DAYS)
            && fit.is_some_and(|f| f.days >= FILLING_MIN_DAYS);
        t.rows.push(vec![
            k.0.clone().into(),
            k.1.clone().into(),
            k.2.clone().into(),
            size.into(),
            used.into(),
            used.zip(size).map(|(u, s)| u / s * 100.0).into(),
            fit.map(|f| f.days).into(),
            fit.map(|f| f.slope).into(),
            until_full.into(),
            full_ms.map(|ms| date_of_day(ms.div_euclid(DAY_MS))).into(),
            filling.into(),
        ]);
        chart_rows.push((
            until_full.unwrap_or(f64::INFINITY),
            k.clone(),
            size,
            fit,
            full_ms,
        ));
    }
    // Soonest full first, then the ones that do not fill, by name.
    let soon = |r: &Vec<Cell>| match r[8] {
        Cell::Float(d) => d,
        _ => f64::INFINITY,
    };
    t.rows.sort_by(|a, b| soon(a).total_cmp(&soon(b)));
    let filling = t.rows.iter().filter(|r| r[10] == Cell::Bool(true)).count();
    section.notes.push(format!(
        "{filling} of {} datastores fill within {FILLING_WITHIN_DAYS} days at their fitted growth \
         (flagged with at least {FILLING_MIN_DAYS} days of data: over fewer, the daily cycle \
         passes for growth). used: the average of the last day; growth: slope of the \
         least-squares line through every point of the span ({unit} / 1024² = GB); days until \
         full = (size − fitted use at the last point) / growth.",
        t.rows.len()
    ));
    section.tables.push(t);

    chart_rows.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut series = Vec::new();
    for (_, k, size, fit, full_ms) in chart_rows.into_iter().take(ctx.top.min(8)) {
        let Some(size) = size.filter(|s| *s > 0.0) else {
            continue;
        };
        let name = k.2.clone().unwrap_or_default();
        series.push(LineSeries {
            name: name.clone(),
            points: daily[&k]
                .iter()
                .map(|(day, used)| (day * DAY_MS + DAY_MS / 2, used / size * 100.0))
                .collect(),
            dashed: false,
        });
        if let Some(f) = fit {
            // The fitted line, drawn to where it reaches the size (or to the span's end plus
            // the span again when it does not fill soon).
            let horizon = ctx.span.to_ms + (ctx.span.to_ms - ctx.span.from_ms).max(30 * DAY_MS);
            let end = full_ms.unwrap_or(horizon).min(horizon).max(ctx.span.to_ms);
            let at = |ms: i64| {
                let x = (ms - from_ms) as f64 / DAY_MS as f64;
                (ms, (f.intercept + f.slope * x) / size * 100.0)
            };
            series.push(LineSeries {
                name: format!("{name} fitted"),
                points: vec![at(from_ms), at(end)],
                dashed: true,
            });
        }
    }
    section.charts.push(Chart::Lines(LineChart {
        title: "Used space (daily average) and the fitted line, soonest full first".into(),
        y_label: "used".into(),
        y_unit: "% of size".into(),
        series,
        thresholds: vec![(100.0, "full".into())],
        y_range: Some((0.0, 110.0)),
    }));
    Ok(section)
}

/// GB in one `unit` of `Filer.size` (OVH gives `GB` or `TB`; binary multiples like vSphere).
fn gb_per(unit: &str) -> Option<f64> {
    match unit.to_ascii_uppercase().as_str() {
        "KB" => Some(1.0 / (1024.0 * 1024.0)),
        "MB" => Some(1.0 / 1024.0),
        "GB" => Some(1.0),
        "TB" => Some(1024.0),
        "PB" => Some(1024.0 * 1024.0),
        _ => None,
    }
}
