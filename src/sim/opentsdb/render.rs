//! Answering a parsed query: which series each sub-query selects and how they group, the point
//! cap, then the response body written by hand into byte chunks (no JSON tree per point), raw or
//! downsampled, aggregated or not, with the fill policies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::request::{Agg, Downsample, Fill, Request};
use super::QueryError;
use crate::sim::world::World;
use crate::sim::Flavor;

/// Bytes per chunk sent to the client: large enough that per-chunk overhead is negligible, small
/// enough that a response of any size streams in bounded memory.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Everything needed to write the response, checked and resolved before the first byte is sent.
pub(crate) struct Plan {
    world: Arc<World>,
    start_ms: i64,
    end_ms: i64,
    ms_resolution: bool,
    /// Where downsample buckets are stamped.
    align: Align,
    jobs: Vec<Job>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    /// Stock OpenTSDB: `ts - ts % interval`, a bucket stamped with its start.
    Epoch,
    /// OVH (Warp 10 bucketize): buckets end at the query end, each stamped with its end.
    End,
}

/// One result series (or the aggregate of several) to write.
struct Job {
    index: usize,
    metric: String,
    aggregator: Option<Agg>,
    downsample: Option<Downsample>,
    /// Indices into `world.series_defs(metric)`: one for `none`, the group otherwise.
    members: Vec<usize>,
}

impl Plan {
    /// `cap` is the most points one sub-query may fetch.
    pub(crate) fn new(
        world: Arc<World>,
        req: Request,
        flavor: Flavor,
        cap: u64,
    ) -> Result<Plan, QueryError> {
        let (start_ms, end_ms) = (req.start_ms, req.end_ms);
        let grid = world.grid_len(start_ms, end_ms);
        let mut jobs = Vec::new();
        // One unknown metric fails the whole request, whatever the other sub-queries would do.
        if let Some(q) = req
            .queries
            .iter()
            .find(|q| world.series_defs(&q.metric).is_none())
        {
            return Err(QueryError::NoSuchMetric(q.metric.clone()));
        }
        for q in &req.queries {
            let Some(defs) = world.series_defs(&q.metric) else {
                return Err(QueryError::NoSuchMetric(q.metric.clone()));
            };
            let selected: Vec<usize> = defs
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    q.filters.iter().all(|f| {
                        d.series
                            .tags
                            .get(&f.tagk)
                            .is_some_and(|v| f.matcher.matches(v))
                    })
                })
                .map(|(i, _)| i)
                .collect();
            if grid.saturating_mul(selected.len() as u64) > cap {
                return Err(QueryError::TooLarge { limit: cap });
            }
            // OVH buckets every aggregated query: raw points only come back with `none`.
            let downsample = match (q.downsample, q.aggregator, flavor) {
                (None, Some(agg), Flavor::Ovh) => {
                    let span = ((end_ms - start_ms) / 1000 + 999) / 1000 * 1000;
                    Some(Downsample {
                        interval_ms: Some(span.max(world.step_ms())),
                        agg,
                        fill: Fill::None,
                    })
                }
                (d, _, _) => d,
            };
            let job = |members: Vec<usize>| Job {
                index: q.index,
                metric: q.metric.clone(),
                aggregator: q.aggregator,
                downsample,
                members,
            };
            match q.aggregator {
                None => jobs.extend(selected.into_iter().map(|i| job(vec![i]))),
                Some(_) => {
                    let group_keys: BTreeSet<&str> = q
                        .filters
                        .iter()
                        .filter(|f| f.group_by)
                        .map(|f| f.tagk.as_str())
                        .collect();
                    let mut groups: BTreeMap<Vec<&str>, Vec<usize>> = BTreeMap::new();
                    for i in selected {
                        let tags = &defs[i].series.tags;
                        let key = group_keys
                            .iter()
                            .map(|k| tags.get(*k).map_or("", String::as_str))
                            .collect();
                        groups.entry(key).or_default().push(i);
                    }
                    jobs.extend(groups.into_values().map(job));
                }
            }
        }
        Ok(Plan {
            world,
            start_ms,
            end_ms,
            ms_resolution: req.ms_resolution,
            align: match flavor {
                Flavor::Ovh => Align::End,
                Flavor::Opentsdb => Align::Epoch,
            },
            jobs,
        })
    }

    /// Writes the whole JSON array, handing `emit` a chunk whenever `CHUNK` bytes are ready; stops
    /// early when `emit` returns false (the client went away).
    pub(crate) fn write(&self, emit: impl FnMut(Vec<u8>) -> bool) {
        let mut out = Out {
            buf: Vec::with_capacity(CHUNK + 4096),
            emit,
            open: true,
        };
        out.buf.push(b'[');
        let mut first = true;
        for job in &self.jobs {
            if !out.open {
                return;
            }
            if self.write_job(job, &mut out, first) {
                first = false;
            }
        }
        out.buf.push(b']');
        out.flush();
    }

    /// Writes one result series; false (and nothing written) when it has no point in range.
    fn write_job(
        &self,
        job: &Job,
        out: &mut Out<impl FnMut(Vec<u8>) -> bool>,
        first: bool,
    ) -> bool {
        let Some(defs) = self.world.series_defs(&job.metric) else {
            return false;
        };
        match (job.aggregator, job.downsample) {
            (None, None) => {
                let def = &defs[job.members[0]];
                let mut points = self
                    .world
                    .def_points(def, self.start_ms, self.end_ms)
                    .peekable();
                if points.peek().is_none() {
                    return false;
                }
                self.header(out, first, &job.metric, &def.series.tags, &[], job.index);
                let mut sep = false;
                for (ts, v) in points {
                    self.dp(out, &mut sep, ts, Value::Num(v));
                    out.maybe_flush();
                }
            }
            (None, Some(ds)) => {
                let def = &defs[job.members[0]];
                let mut points = self
                    .world
                    .def_points(def, self.start_ms, self.end_ms)
                    .peekable();
                if points.peek().is_none() {
                    return false;
                }
                self.header(out, first, &job.metric, &def.series.tags, &[], job.index);
                let mut filler = Filler::new(self, ds);
                let mut current: Option<(i64, Acc)> = None;
                for (ts, v) in points {
                    let stamp = self.stamp(ds, ts);
                    match &mut current {
                        Some((s, acc)) if *s == stamp => acc.add(v),
                        _ => {
                            if let Some((s, acc)) = current.take() {
                                filler.point(self, out, s, acc.value(ds.agg));
                            }
                            let mut acc = Acc::default();
                            acc.add(v);
                            current = Some((stamp, acc));
                        }
                    }
                }
                if let Some((s, acc)) = current {
                    filler.point(self, out, s, acc.value(ds.agg));
                }
                filler.finish(self, out);
            }
            (Some(agg), ds) => {
                // Each member downsampled first (if asked), then aggregated across members at
                // each timestamp, then gaps filled: OpenTSDB's order.
                let mut merged: BTreeMap<i64, Acc> = BTreeMap::new();
                for &i in &job.members {
                    let points = self.world.def_points(&defs[i], self.start_ms, self.end_ms);
                    match ds {
                        None => {
                            for (ts, v) in points {
                                merged.entry(ts).or_default().add(v);
                            }
                        }
                        Some(ds) => {
                            let mut buckets: BTreeMap<i64, Acc> = BTreeMap::new();
                            for (ts, v) in points {
                                buckets.entry(self.stamp(ds, ts)).or_default().add(v);
                            }
                            for (s, acc) in buckets {
                                merged.entry(s).or_default().add(acc.value(ds.agg));
                            }
                        }
                    }
                }
                if merged.is_empty() {
                    return false;
                }
                let members: Vec<&BTreeMap<String, String>> =
                    job.members.iter().map(|&i| &defs[i].series.tags).collect();
                let (tags, aggregated) = common_tags(&members);
                let aggregated: Vec<&str> = aggregated.iter().map(String::as_str).collect();
                self.header(out, first, &job.metric, &tags, &aggregated, job.index);
                match ds {
                    None => {
                        let mut sep = false;
                        for (ts, acc) in merged {
                            self.dp(out, &mut sep, ts, Value::Num(acc.value(agg)));
                            out.maybe_flush();
                        }
                    }
                    Some(ds) => {
                        let mut filler = Filler::new(self, ds);
                        for (s, acc) in merged {
                            filler.point(self, out, s, acc.value(agg));
                        }
                        filler.finish(self, out);
                    }
                }
            }
        }
        out.buf.extend_from_slice(b"}}");
        out.maybe_flush();
        true
    }

    /// The bucket a point at `ts` falls in.
    fn stamp(&self, ds: Downsample, ts: i64) -> i64 {
        match ds.interval_ms {
            None => self.start_ms,
            Some(iv) => match self.align {
                Align::Epoch => ts - ts.rem_euclid(iv),
                Align::End => self.end_ms - (self.end_ms - ts) / iv * iv,
            },
        }
    }

    fn header(
        &self,
        out: &mut Out<impl FnMut(Vec<u8>) -> bool>,
        first: bool,
        metric: &str,
        tags: &BTreeMap<String, String>,
        aggregated: &[&str],
        index: usize,
    ) {
        let b = &mut out.buf;
        if !first {
            b.push(b',');
        }
        b.extend_from_slice(b"{\"metric\":");
        json_str(b, metric);
        b.extend_from_slice(b",\"tags\":{");
        for (i, (k, v)) in tags.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            json_str(b, k);
            b.push(b':');
            json_str(b, v);
        }
        b.extend_from_slice(b"},\"query\":{\"index\":");
        b.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
        b.extend_from_slice(b"},\"aggregateTags\":[");
        for (i, k) in aggregated.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            json_str(b, k);
        }
        b.extend_from_slice(b"],\"dps\":{");
    }

    /// One `"ts":value` member of `dps`.
    fn dp(&self, out: &mut Out<impl FnMut(Vec<u8>) -> bool>, sep: &mut bool, ts: i64, v: Value) {
        let b = &mut out.buf;
        if *sep {
            b.push(b',');
        }
        *sep = true;
        let key = if self.ms_resolution {
            ts
        } else {
            ts.div_euclid(1000)
        };
        b.push(b'"');
        b.extend_from_slice(itoa::Buffer::new().format(key).as_bytes());
        b.extend_from_slice(b"\":");
        match v {
            Value::Num(x) if x.is_finite() => {
                b.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes())
            }
            // Stock OpenTSDB's serializer writes NaN as a string; so does the simulator.
            Value::Num(_) | Value::Nan => b.extend_from_slice(b"\"NaN\""),
            Value::Null => b.extend_from_slice(b"null"),
        }
    }
}

/// A `dps` value.
#[derive(Debug, Clone, Copy)]
enum Value {
    Num(f64),
    Nan,
    Null,
}

/// Writes downsampled points in order, filling the empty buckets between and around them when
/// the fill policy asks for it.
struct Filler {
    ds: Downsample,
    /// The next bucket that has not been written yet.
    next: i64,
    last: i64,
    sep: bool,
}

impl Filler {
    fn new(plan: &Plan, ds: Downsample) -> Filler {
        Filler {
            ds,
            next: plan.stamp(ds, plan.start_ms),
            last: plan.stamp(ds, plan.end_ms),
            sep: false,
        }
    }

    fn fill_value(&self) -> Option<Value> {
        match (self.ds.fill, self.ds.interval_ms) {
            (_, None) | (Fill::None, _) => None,
            (Fill::Nan, _) => Some(Value::Nan),
            (Fill::Null, _) => Some(Value::Null),
            (Fill::Zero, _) => Some(Value::Num(0.0)),
        }
    }

    fn fill_until(&mut self, plan: &Plan, out: &mut Out<impl FnMut(Vec<u8>) -> bool>, stamp: i64) {
        if let (Some(fill), Some(iv)) = (self.fill_value(), self.ds.interval_ms) {
            while self.next < stamp {
                plan.dp(out, &mut self.sep, self.next, fill);
                self.next += iv;
                out.maybe_flush();
            }
        }
    }

    fn point(
        &mut self,
        plan: &Plan,
        out: &mut Out<impl FnMut(Vec<u8>) -> bool>,
        stamp: i64,
        v: f64,
    ) {
        self.fill_until(plan, out, stamp);
        plan.dp(out, &mut self.sep, stamp, Value::Num(v));
        self.next = stamp + self.ds.interval_ms.unwrap_or(1);
        out.maybe_flush();
    }

    fn finish(mut self, plan: &Plan, out: &mut Out<impl FnMut(Vec<u8>) -> bool>) {
        let end = self.last + 1;
        self.fill_until(plan, out, end);
    }
}

/// Tags every member shares (the result's `tags`) and the keys that differ (`aggregateTags`).
fn common_tags(members: &[&BTreeMap<String, String>]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut common: BTreeMap<String, String> =
        members.first().map_or_else(BTreeMap::new, |m| (*m).clone());
    let mut all: BTreeSet<&String> = BTreeSet::new();
    for m in members {
        all.extend(m.keys());
        common.retain(|k, v| m.get(k) == Some(v));
    }
    let aggregated = all
        .into_iter()
        .filter(|k| !common.contains_key(*k))
        .cloned()
        .collect();
    (common, aggregated)
}

/// Running statistics for one bucket or one timestamp across series.
#[derive(Debug, Default, Clone)]
struct Acc {
    n: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    mean: f64,
    m2: f64,
}

impl Acc {
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
            self.first = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.last = v;
        self.n += 1;
        self.sum += v;
        // Welford's update, for `dev`.
        let d = v - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (v - self.mean);
    }

    fn value(&self, agg: Agg) -> f64 {
        match agg {
            Agg::Sum | Agg::Zimsum => self.sum,
            Agg::Avg => self.sum / self.n as f64,
            Agg::Min | Agg::Mimmin => self.min,
            Agg::Max | Agg::Mimmax => self.max,
            Agg::Count => self.n as f64,
            Agg::Dev => (self.m2 / self.n as f64).sqrt(),
            Agg::First => self.first,
            Agg::Last => self.last,
        }
    }
}

/// The response buffer and where full chunks go.
struct Out<E: FnMut(Vec<u8>) -> bool> {
    buf: Vec<u8>,
    emit: E,
    open: bool,
}

impl<E: FnMut(Vec<u8>) -> bool> Out<E> {
    fn maybe_flush(&mut self) {
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || !self.open {
            return;
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        self.open = (self.emit)(chunk);
    }
}

/// Appends `s` as a JSON string.
fn json_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    for c in s.chars() {
        match c {
            '"' => b.extend_from_slice(b"\\\""),
            '\\' => b.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                b.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut tmp = [0u8; 4];
                b.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    b.push(b'"');
}
