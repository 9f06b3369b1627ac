//! Exact per-series figures of a metrics table, computed as polars streams the rows past.
//!
//! polars' group-by quantile gathers every value of a group by row index, a cache miss a row, and
//! a report takes several of them over hundreds of millions of rows. The exporter writes every
//! file sorted by series (entity, metric, `ts`), so a scan delivers rows in runs of one series:
//! here a run costs one hash lookup, a row a comparison of its key and a few additions, and each
//! percentile one selection (`select_nth_unstable`) per series. polars still does the reading:
//! partition and statistics pruning, projection, filters and decoding, in parallel.
//!
//! Only the series of the metrics whose percentiles are wanted keep their values, and only until
//! the scan that read them ends; callers bound that by scanning a range of entities at a time
//! ([`super::scan::ranges`]). Every other figure is a running count, sum, maximum or set of days.

use std::collections::HashMap;

use polars::prelude::*;

use super::scan::{entity_of, ranges, ts_ms, Dataset, Span, DAY_MS};
use super::ReportError;

/// The values of a series' key columns, in the order asked for.
pub type SeriesKey = Vec<Option<String>>;

/// What one series' rows came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Values present (nulls left out).
    pub count: u64,
    pub sum: f64,
    pub max: Option<f64>,
    /// UTC days with at least one value.
    pub days: usize,
    /// The percentiles asked for, in their order; empty for a series that keeps no values.
    pub percentiles: Vec<Option<f64>>,
}

impl Figures {
    /// The `i`-th of the percentiles asked for.
    pub fn percentile(&self, i: usize) -> Option<f64> {
        self.percentiles.get(i).copied().flatten()
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Which series keep their values, and the percentiles computed from them.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// Metrics whose percentiles are wanted.
    pub metrics: Vec<String>,
    /// Percentiles in `[0, 1]`, e.g. `0.95`.
    pub percentiles: Vec<f64>,
}

/// Streams `lf` and adds the figures of every series in it to `out`, a series being the values of
/// the string columns `keys` (one of them `metric`). `lf` must have `keys`, `value` and `ts`.
pub fn figures(
    lf: LazyFrame,
    keys: &[&str],
    wanted: &Wanted,
    out: &mut HashMap<SeriesKey, Figures>,
) -> Result<(), ReportError> {
    let started = std::time::Instant::now();
    let metric = keys.iter().position(|k| *k == "metric");
    let mut acc = Accumulator {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        keep: match metric {
            Some(i) => (i, wanted.metrics.clone()),
            None => (0, Vec::new()),
        },
        ..Accumulator::default()
    };
    let mut select: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    select.extend([col("value"), ts_ms().alias("t")]);
    let failed = |e| ReportError::polars("cannot compute the figures of each series".into(), e);
    // polars decodes on its threads and hands each batch over; one thread of ours adds them up
    // meanwhile. The channel's few slots bound the batches in flight.
    let (send, receive) = std::sync::mpsc::sync_channel::<Option<DataFrame>>(4);
    let end = send.clone();
    let acc = std::thread::scope(|scope| {
        let adder = scope.spawn(move || -> PolarsResult<Accumulator> {
            while let Ok(Some(df)) = receive.recv() {
                acc.add(&df)?;
            }
            Ok(acc)
        });
        let scanned = lf
            .select(select)
            .sink_batches(
                PlanCallback::new(move |df: DataFrame| {
                    // A closed channel means the adder failed: stop, and its error is reported.
                    Ok(send.send(Some(df)).is_err())
                }),
                false,
                None,
            )
            .and_then(|lf| lf.collect_with_engine(Engine::Streaming));
        let _ = end.send(None);
        let added = adder
            .join()
            .unwrap_or_else(|_| Err(PolarsError::ComputeError("the adder panicked".into())));
        scanned.and(added)
    })
    .map_err(failed)?;
    let series = acc.series.len();
    for (key, mut r) in acc.series {
        let percentiles = if r.keep {
            percentiles(&mut r.values, &wanted.percentiles)
        } else {
            Vec::new()
        };
        let f = Figures {
            count: r.count,
            sum: r.sum,
            max: r.max,
            days: r.days.len(),
            percentiles,
        };
        out.insert(key, f);
    }
    tracing::info!(
        query = "the figures of each series",
        rows = acc.rows,
        series,
        secs = started.elapsed().as_secs_f64(),
        "Query done."
    );
    Ok(())
}

/// Rows of a table one scan reads when values are kept (for percentiles, 8 bytes each): the
/// table is read a range of entities at a time, so what is held stays bounded however long the
/// span, at the price of one more (pruned) scan per range. `VSCOPE_REPORT_CHUNK_ROWS` sets
/// another bound (the tests force several ranges with it).
const CHUNK_ROWS: i64 = 48_000_000;

/// The figures of every series of a metrics `table` in `span`, a series being the values of
/// `columns` and `metric`.
pub fn table(
    ds: &Dataset,
    table: &str,
    columns: &[&str],
    span: Span,
    wanted: &Wanted,
) -> Result<HashMap<SeriesKey, Figures>, ReportError> {
    let mut keys = columns.to_vec();
    keys.push("metric");
    let entity = entity_of(table);
    let ranges = if wanted.metrics.is_empty() {
        vec![lit(true)]
    } else {
        let budget = std::env::var("VSCOPE_REPORT_CHUNK_ROWS")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(CHUNK_ROWS);
        ranges(entity, ds.row_groups(table, entity, span)?, budget)
    };
    let mut out = HashMap::new();
    for range in ranges {
        let lf = ds.metrics(table, &[], columns, span)?.filter(range);
        figures(lf, &keys, wanted, &mut out)?;
    }
    Ok(out)
}

/// One series while its rows arrive.
#[derive(Default)]
struct Running {
    count: u64,
    sum: f64,
    max: Option<f64>,
    days: Vec<i64>,
    keep: bool,
    values: Vec<f64>,
}

#[derive(Default)]
struct Accumulator {
    keys: Vec<String>,
    /// The position of `metric` among the keys, and the metrics whose values are kept.
    keep: (usize, Vec<String>),
    series: HashMap<SeriesKey, Running>,
    rows: u64,
}

impl Accumulator {
    fn add(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let keys: Vec<&StringChunked> = self
            .keys
            .iter()
            .map(|k| df.column(k).and_then(|c| c.str()))
            .collect::<PolarsResult<_>>()?;
        let value = df.column("value")?.f64()?;
        let t = df.column("t")?.i64()?;
        self.rows += df.height() as u64;
        let mut columns: Vec<_> = keys.iter().map(|k| k.iter()).collect();
        let mut row: Vec<Option<&str>> = Vec::with_capacity(keys.len());
        let mut current: Vec<Option<&str>> = Vec::with_capacity(keys.len());
        let mut run: Option<&mut Running> = None;
        for (value, t) in value.iter().zip(t.iter()) {
            row.clear();
            row.extend(columns.iter_mut().map(|c| c.next().flatten()));
            if run.is_none() || row != current {
                std::mem::swap(&mut row, &mut current);
                let key: SeriesKey = current.iter().map(|v| v.map(str::to_string)).collect();
                let (at, kept) = &self.keep;
                let keep = current
                    .get(*at)
                    .copied()
                    .flatten()
                    .is_some_and(|m| kept.iter().any(|k| k == m));
                let r = self.series.entry(key).or_default();
                r.keep = keep;
                run = Some(r);
            }
            let Some(r) = run.as_deref_mut() else {
                continue;
            };
            let Some(v) = value.filter(|v| !v.is_nan()) else {
                continue;
            };
            r.count += 1;
            r.sum += v;
            r.max = Some(r.max.map_or(v, |m| m.max(v)));
            if r.keep {
                r.values.push(v);
            }
            if let Some(t) = t {
                let day = t.div_euclid(DAY_MS);
                if r.days.last() != Some(&day) && !r.days.contains(&day) {
                    r.days.push(day);
                }
            }
        }
        Ok(())
    }
}

/// The `ps` percentiles of `values` with linear interpolation between the closest ranks
/// (DuckDB's `quantile_cont`, numpy's default, polars' `Linear`): rank `p × (n − 1)`.
/// Reorders `values`.
pub fn percentiles(values: &mut [f64], ps: &[f64]) -> Vec<Option<f64>> {
    ps.iter().map(|&p| percentile(values, p)).collect()
}

fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let rank = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let (_, &mut at_lo, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let frac = rank - lo as f64;
    if frac == 0.0 || above.is_empty() {
        return Some(at_lo);
    }
    let at_hi = above.iter().copied().fold(f64::INFINITY, f64::min);
    Some(at_lo + (at_hi - at_lo) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's `percentile(…, method="linear")`, by sorting.
    fn by_sorting(values: &[f64], p: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = p * (v.len() - 1) as f64;
        let lo = rank.floor() as usize;
        let hi = rank.ceil() as usize;
        v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
    }

    #[test]
    fn percentiles_interpolate_between_the_closest_ranks() {
        // 1..=10: p95 has rank 8.55, between 9 and 10.
        let mut v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let got = percentiles(&mut v, &[0.95, 0.5, 0.0, 1.0]);
        // The rank is 0.95 × 9 in floating point, a hair under 8.55.
        assert_eq!(got[0], Some(9.0 + (0.95 * 9.0 - 8.0) * (10.0 - 9.0)));
        assert!((got[0].unwrap() - 9.55).abs() < 1e-12);
        assert_eq!(got[1], Some(5.5));
        assert_eq!(got[2], Some(1.0));
        assert_eq!(got[3], Some(10.0));
        assert_eq!(percentiles(&mut [], &[0.95]), vec![None]);
        assert_eq!(percentiles(&mut [4.0], &[0.99]), vec![Some(4.0)]);
    }

    #[test]
    fn percentiles_equal_sorting_on_awkward_data() {
        let mut seed = 7u64;
        for n in [2usize, 3, 19, 20, 21, 1000, 4321] {
            let values: Vec<f64> = (0..n)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Repeats, negatives and zeros of both signs.
                    match i % 7 {
                        0 => 0.0,
                        1 => -0.0,
                        2 => 5.0,
                        _ => (seed >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0,
                    }
                })
                .collect();
            for p in [0.0, 0.5, 0.95, 0.99, 1.0] {
                let mut v = values.clone();
                let got = percentile(&mut v, p).unwrap();
                assert_eq!(got, by_sorting(&values, p), "n={n} p={p}");
            }
        }
    }
}
