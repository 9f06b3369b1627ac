//! The plan: job + window + inventory size → the ordered list of requests to make. Pure: no I/O,
//! no clock, so `vscope-export plan` can show it without touching the network.
//!
//! One request is one (page, query group) of one service: a time range and the sub-queries of a
//! group of metrics that share their tags, aggregator and downsample. Tag grouping
//! (`{"vm": "*"}`) brings every series of a metric back in one sub-query, so the number of
//! requests grows with the window and the estate only through the points budget, never with the
//! number of series.

use std::collections::BTreeMap;

use crate::domain::shard::Shard;
use crate::job::{Catalog, Component, Export, Job, Window};
use crate::tsdb::{QueryRequest, SubQuery};

pub mod shard;

/// Raw vScope series have one point a minute; the page length is chosen on that assumption.
pub const RAW_RESOLUTION_SECS: i64 = 60;

/// Points one sub-query may bring back at most: OVH's cap (20 M). The automatic page keeps every
/// sub-query under it; a request carries all the metrics of an export, so its total is not
/// bounded by this (what a page holds in flight is bounded apart, by spooling to disk). A job
/// that prefers smaller requests, each cheaper to retry, sets `page` itself.
pub const SUB_QUERY_POINT_CAP: u64 = 20_000_000;

const DAY_SECS: i64 = 86_400;

/// Longest automatic page: a month. A small estate could otherwise fetch a year in one request,
/// committing nothing until it ends, retrying all of it on a reset, and holding back every
/// partition it covers when it fails for good.
const MAX_AUTO_PAGE_DAYS: i64 = 31;

/// Automatic page lengths shorter than a day, longest first. Each divides a day, so pages line
/// up with the `date=` partitions; longer pages are any whole number of days.
const SUB_DAY_PAGES_SECS: [i64; 9] = [
    12 * 3_600,
    8 * 3_600,
    6 * 3_600,
    4 * 3_600,
    3 * 3_600,
    2 * 3_600,
    3_600,
    1_800,
    900,
];

/// NICs per host the host network metrics are reported for (vmnic0..vmnic3, as in the guide).
const NICS_PER_HOST: u64 = 4;

/// How big one service's estate is, and how its series are selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceScope {
    pub service_name: String,
    /// The `datacenter` tag values of the datacenters exported (`{service}_{Datacenter.name}`).
    pub datacenter_tags: Vec<String>,
    pub vms: u64,
    pub hosts: u64,
    pub filers: u64,
    /// The objects' names as the metrics tag them, one entry per datacenter tag, in the same
    /// order: what a sharded plan weighs its pieces by. Empty when only the sizes are known
    /// (`vscope-export plan` of a real API); the pieces are then weighed as if even.
    pub objects: Vec<ObjectNames>,
}

/// The names of one datacenter's objects as their series are tagged: `vm` (the VM's moRef),
/// `host` (its name) and `datastore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectNames {
    pub vms: Vec<String>,
    pub hosts: Vec<String>,
    pub filers: Vec<String>,
}

impl ObjectNames {
    pub fn names(&self, component: Component) -> &[String] {
        match component {
            Component::Vm => &self.vms,
            Component::Host => &self.hosts,
            Component::Filer => &self.filers,
        }
    }
}

impl ServiceScope {
    /// The service's objects of one component.
    fn count(&self, component: Component) -> u64 {
        match component {
            Component::Vm => self.vms,
            Component::Host => self.hosts,
            Component::Filer => self.filers,
        }
    }

    /// Series one metric has at most in this service.
    fn series_per_metric(&self, component: Component, metric: &str, catalog: &Catalog) -> u64 {
        let entities = self.count(component);
        let per_nic = catalog
            .get(metric)
            .is_some_and(|m| m.tags.iter().any(|t| t == "nicname"));
        (entities * if per_nic { NICS_PER_HOST } else { 1 }).max(1)
    }
}

/// Sub-queries that go together in one request.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryGroup {
    pub service: usize,
    pub component: Component,
    pub queries: Vec<SubQuery>,
    /// Most series the group's sub-queries may return together.
    pub series: u64,
}

/// One request: a query group over `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub group: usize,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Everything a run will fetch, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub window: Window,
    pub page_secs: i64,
    pub services: Vec<ServiceScope>,
    pub groups: Vec<QueryGroup>,
    /// Ordered by time, then group: the early part of the window completes first.
    pub pages: Vec<Page>,
    /// The slice of the job this plan fetches, when it is one shard of several.
    pub shard: Option<ShardShare>,
}

/// A shard's part of its job, in the planner's estimated points (see [`Plan::estimated_points`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardShare {
    pub shard: Shard,
    /// The estimated points of every shard of the job, by index; this one's is at `shard.index`.
    pub shard_points: Vec<u64>,
    /// Names the split (see [`shard::Split::fingerprint`]): the shards of one window must agree.
    pub split: String,
}

impl Plan {
    /// The request body of a page. OpenTSDB ranges are inclusive at both ends, so the page asks
    /// for `[start, end - 1 ms]`: a point exactly on a boundary belongs to the later page only.
    pub fn request(&self, page: &Page) -> QueryRequest {
        QueryRequest {
            start_ms: page.start_ms,
            end_ms: page.end_ms - 1,
            queries: self.groups[page.group].queries.clone(),
        }
    }

    /// Upper bound of the points one page fetches (raw resolution, every series present).
    pub fn page_points(&self, page: &Page) -> u64 {
        points_per_series(page.end_ms - page.start_ms) * self.groups[page.group].series
    }

    /// Upper bound of the points the plan fetches (raw resolution, every series present).
    pub fn estimated_points(&self) -> u64 {
        self.pages
            .iter()
            .map(|p| points_per_series(p.end_ms - p.start_ms) * self.groups[p.group].series)
            .sum()
    }
}

/// Points one series has at most over `span_ms` at raw resolution.
fn points_per_series(span_ms: i64) -> u64 {
    (span_ms.max(0) as u64).div_ceil(RAW_RESOLUTION_SECS as u64 * 1000)
}

/// Builds the plan of a job over a resolved window.
pub fn build(job: &Job, window: Window, services: &[ServiceScope]) -> Plan {
    build_shard(job, window, services, None)
}

/// Builds the plan of one shard of a job (all of it for `None`): the same pages of time as the
/// whole job's, over the shard's query groups ([`shard`]).
pub fn build_shard(
    job: &Job,
    window: Window,
    services: &[ServiceScope],
    shard: Option<Shard>,
) -> Plan {
    let catalog = Catalog::builtin();
    let page_secs = match job.window.page {
        Some(page) => (page.as_secs() as i64).max(1),
        None => auto_page_secs(job, window, services, &catalog),
    };
    let (groups, share) = match shard {
        None => (groups(job, services, &catalog), None),
        Some(shard) => {
            let split = shard::split(job, services, shard.count, &catalog);
            let per_series: u64 = page_ranges(window, page_secs)
                .iter()
                .map(|&(start, end)| points_per_series(end - start))
                .sum();
            let share = ShardShare {
                shard,
                shard_points: split.loads.iter().map(|l| l * per_series).collect(),
                split: split.fingerprint.clone(),
            };
            (
                shard::groups(job, services, &split, shard, &catalog),
                Some(share),
            )
        }
    };
    let mut pages = Vec::new();
    for (start_ms, end_ms) in page_ranges(window, page_secs) {
        for group in 0..groups.len() {
            pages.push(Page {
                group,
                start_ms,
                end_ms,
            });
        }
    }
    Plan {
        window,
        page_secs,
        services: services.to_vec(),
        groups,
        pages,
        shard: share,
    }
}

/// The query groups: per service and export, one request with a sub-query per metric.
fn groups(job: &Job, services: &[ServiceScope], catalog: &Catalog) -> Vec<QueryGroup> {
    let mut groups = Vec::new();
    for (service_index, service) in services.iter().enumerate() {
        for export in job.exports.iter().filter(|e| !e.metrics.is_empty()) {
            groups.push(service_group(service_index, service, export, catalog));
        }
    }
    groups
}

/// The group of every series of one export in one service.
fn service_group(
    service_index: usize,
    service: &ServiceScope,
    export: &Export,
    catalog: &Catalog,
) -> QueryGroup {
    QueryGroup {
        service: service_index,
        component: export.component,
        queries: export
            .metrics
            .iter()
            .map(|metric| sub_query(export, metric, &service.datacenter_tags, catalog))
            .collect(),
        series: export
            .metrics
            .iter()
            .map(|metric| service.series_per_metric(export.component, metric, catalog))
            .sum(),
    }
}

/// The automatic page length: of the sub-day lengths not longer than the window and the whole
/// numbers of days up to [`MAX_AUTO_PAGE_DAYS`], on which every sub-query stays under
/// [`SUB_QUERY_POINT_CAP`], the one that needs the fewest pages; on a tie the shorter, whose
/// partitions complete sooner.
fn auto_page_secs(job: &Job, window: Window, services: &[ServiceScope], catalog: &Catalog) -> i64 {
    let window_secs = (window.end - window.start).num_seconds().max(1);
    let shortest = SUB_DAY_PAGES_SECS[SUB_DAY_PAGES_SECS.len() - 1];
    let widest = services
        .iter()
        .flat_map(|s| {
            job.exports.iter().flat_map(move |e| {
                e.metrics
                    .iter()
                    .map(move |m| s.series_per_metric(e.component, m, catalog))
            })
        })
        .max()
        .unwrap_or(1);
    // Whole days are cut at midnight, so a window that does not start at one may need a day
    // more than its length.
    let days = ((window_secs + DAY_SECS - 1) / DAY_SECS + 1).min(MAX_AUTO_PAGE_DAYS);
    let sub_day = SUB_DAY_PAGES_SECS
        .into_iter()
        .filter(|&secs| secs <= window_secs.max(shortest));
    (1..=days)
        .map(|d| d * DAY_SECS)
        .chain(sub_day)
        .filter(|&secs| widest * points_per_series(secs * 1000) <= SUB_QUERY_POINT_CAP)
        .map(|secs| (page_ranges(window, secs).len(), secs))
        .min()
        .map_or(shortest, |(_, secs)| secs)
}

/// `[start, end)` ranges covering the window, cut at the window's own ends and in between on
/// multiples of the page length: since the Unix epoch for pages shorter than a day (so they cut
/// at midnight UTC too), since the UTC midnight the window starts in for whole days (so pages
/// are whole UTC days, and a window of whole days takes the fewest pages).
pub fn page_ranges(window: Window, page_secs: i64) -> Vec<(i64, i64)> {
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let step = page_secs * 1000;
    let day = DAY_SECS * 1000;
    let anchor = if step % day == 0 {
        start.div_euclid(day) * day
    } else {
        0
    };
    let mut ranges = Vec::new();
    let mut at = start;
    while at < end {
        let next = anchor + ((at - anchor).div_euclid(step) + 1) * step;
        let stop = next.min(end);
        ranges.push((at, stop));
        at = stop;
    }
    ranges
}

/// The sub-query of one metric over some datacenters of a service (every datacenter when there
/// are none): every series there, grouped by every tag the catalog names (so no series is
/// aggregated with another), plus the export's own filters.
fn sub_query(export: &Export, metric: &str, datacenters: &[String], catalog: &Catalog) -> SubQuery {
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    let grouped: Vec<String> = match catalog.get(metric) {
        Some(def) => def.tags.clone(),
        None => vec![
            "datacenter".to_string(),
            export.component.entity_tag().to_string(),
        ],
    };
    for tag in grouped {
        tags.insert(tag, "*".to_string());
    }
    if !datacenters.is_empty() {
        tags.insert("datacenter".to_string(), datacenters.join("|"));
    }
    for (k, v) in &export.tags {
        tags.insert(k.clone(), v.clone());
    }
    SubQuery {
        metric: metric.to_string(),
        aggregator: export.aggregator.clone(),
        downsample: export.downsample.clone(),
        tags,
        regexps: Vec::new(),
    }
}

/// The pages of each table not done yet, counted by start, as a run completes them in any
/// order: a partition is complete once no pending page of its table starts before its end.
#[derive(Debug)]
pub struct Pending(BTreeMap<Component, BTreeMap<i64, usize>>);

impl Pending {
    /// Every page of the plan, none done.
    pub fn new(plan: &Plan) -> Pending {
        let mut pending: BTreeMap<Component, BTreeMap<i64, usize>> = BTreeMap::new();
        for page in &plan.pages {
            *pending
                .entry(plan.groups[page.group].component)
                .or_default()
                .entry(page.start_ms)
                .or_default() += 1;
        }
        Pending(pending)
    }

    /// One page of `component`'s table starting at `start_ms` is done (fetched or failed).
    pub fn done(&mut self, component: Component, start_ms: i64) {
        if let Some(starts) = self.0.get_mut(&component) {
            if let Some(count) = starts.get_mut(&start_ms) {
                *count -= 1;
                if *count == 0 {
                    starts.remove(&start_ms);
                }
            }
        }
    }

    /// The start of the earliest pending page of the table; `None` when none is left.
    pub fn done_until(&self, component: Component) -> Option<i64> {
        self.0
            .get(&component)
            .and_then(|starts| starts.keys().next().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn at(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    fn window(start: &str, end: &str) -> Window {
        Window {
            start: at(start),
            end: at(end),
        }
    }

    #[test]
    fn pages_cover_the_window_without_gap_or_overlap_and_cut_at_midnight() {
        let w = window("2026-11-01T21:30:00Z", "2026-11-02T03:00:00Z");
        let ranges = page_ranges(w, 3_600);
        assert_eq!(ranges.first().unwrap().0, w.start.timestamp_millis());
        assert_eq!(ranges.last().unwrap().1, w.end.timestamp_millis());
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "pages touch");
        }
        assert!(ranges.contains(&(
            at("2026-11-01T23:00:00Z").timestamp_millis(),
            at("2026-11-02T00:00:00Z").timestamp_millis()
        )));
        assert_eq!(ranges.len(), 6, "21:30-22, then five whole hours");
        let days = page_ranges(
            window("2026-11-01T12:00:00Z", "2026-11-03T12:00:00Z"),
            86_400,
        );
        assert_eq!(days.len(), 3);
        assert_eq!(
            days[1],
            (
                at("2026-11-02T00:00:00Z").timestamp_millis(),
                at("2026-11-03T00:00:00Z").timestamp_millis()
            )
        );
    }

    #[test]
    fn a_page_asks_for_its_range_minus_the_last_millisecond() {
        let w = window("2026-11-01T00:00:00Z", "2026-11-01T02:00:00Z");
        let plan = Plan {
            window: w,
            page_secs: 3_600,
            services: vec![],
            groups: vec![QueryGroup {
                service: 0,
                component: Component::Vm,
                queries: vec![],
                series: 1,
            }],
            pages: vec![],
            shard: None,
        };
        let request = plan.request(&Page {
            group: 0,
            start_ms: 0,
            end_ms: 3_600_000,
        });
        assert_eq!((request.start_ms, request.end_ms), (0, 3_599_999));
    }

    fn job(vm_metrics: usize) -> Job {
        let text = format!(
            "name = \"p\"\n[source]\nendpoint = \"simulator\"\n[window]\nstart = \"2026-10-01\"\nend = \"2026-10-02\"\n\
             [[export]]\ntable = \"vm_metrics\"\nmetrics = {:?}\n[output]\npath = \"out\"\n",
            Catalog::builtin().for_component(Component::Vm).take(vm_metrics).map(|m| m.name.clone()).collect::<Vec<_>>()
        );
        crate::job::parse(std::path::Path::new("p.toml"), &text).unwrap()
    }

    fn scope(vms: u64) -> Vec<ServiceScope> {
        vec![ServiceScope {
            service_name: "pcc-1".into(),
            datacenter_tags: vec![],
            vms,
            hosts: 1,
            filers: 1,
            objects: vec![],
        }]
    }

    #[test]
    fn the_automatic_page_needs_the_fewest_requests_the_budget_allows() {
        let day = window("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z");
        let month = window("2026-10-01T00:00:00Z", "2026-10-31T00:00:00Z");
        // 1,000 VMs × 13 metrics × 1,440 points = 18.7 M: one request carries the whole day.
        let plan = build(&job(13), day, &scope(1000));
        assert_eq!(
            (
                plan.page_secs,
                plan.pages.len(),
                plan.groups[0].queries.len()
            ),
            (86_400, 1, 13)
        );
        // Thirty days: one metric is 43.2 M points, so three pages of ten days, each a single
        // request of 13 sub-queries of 14.4 M points.
        let plan = build(&job(13), month, &scope(1000));
        assert_eq!(
            (plan.page_secs, plan.groups.len(), plan.pages.len()),
            (10 * 86_400, 1, 3)
        );
        assert_eq!(
            plan.pages.iter().map(|p| p.start_ms).collect::<Vec<_>>(),
            [0, 10, 20].map(|d| month.start.timestamp_millis() + d * 86_400_000)
        );
        // 20,000 VMs: one metric of a day is 28.8 M points, over the cap; 12 h pages carry both
        // metrics at 14.4 M points each (2 requests).
        let plan = build(&job(2), day, &scope(20_000));
        assert_eq!(
            (plan.page_secs, plan.groups.len(), plan.pages.len()),
            (43_200, 1, 2)
        );
        // Eleven days of 1,000 VMs: 15.8 M points per metric fits one page of eleven days.
        let eleven = window("2026-10-01T00:00:00Z", "2026-10-12T00:00:00Z");
        assert_eq!(build(&job(13), eleven, &scope(1000)).pages.len(), 1);
        // A window of 23 h from 01:00: one day-long page, cut at the window's ends.
        let late = window("2026-10-01T01:00:00Z", "2026-10-02T00:00:00Z");
        let plan = build(&job(13), late, &scope(1000));
        assert_eq!((plan.page_secs, plan.pages.len()), (86_400, 1));
        // A year of 10 VMs would fit one request; pages stop at a month.
        let year = window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let plan = build(&job(13), year, &scope(10));
        assert_eq!((plan.page_secs, plan.pages.len()), (31 * 86_400, 12));
        // A short window is never paged longer than itself.
        let hour = window("2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z");
        assert_eq!(build(&job(13), hour, &scope(10)).page_secs, 3_600);
    }
}
