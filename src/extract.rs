//! The extract stage: runs the plan's pages against the metrics endpoint with a bound on how many
//! are in flight, retries what is worth retrying, and splits a page the endpoint finds too large.
//! Hands back the series of each page as it completes; never builds Arrow arrays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use backon::Retryable;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::Semaphore;

use crate::domain::retry::RetryPolicy;
use crate::plan::Plan;
use crate::tsdb::{self, QueryRequest, SubQuery, TsdbError};
#[cfg(all(test, feature = "sim"))]
use crate::tsdb::{OwnedSeries, Series};

mod spool;

pub use spool::{Spool, SpoolSink};

// The tests run pages against the simulator.
#[cfg(all(test, feature = "sim"))]
mod tests;

/// Points that pages in flight may bring back together (estimated from the plan): one
/// sub-query cap's worth; a bigger page runs alone. Past it, parsing more pages at once only
/// adds spool and parser buffers on two cores.
const IN_FLIGHT_POINTS: u64 = crate::plan::SUB_QUERY_POINT_CAP;

/// Pages in flight at once by default. The endpoint serves each request from its own storage
/// scan, so a few parallel requests hide network latency, while more would only queue there.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// A page that is too large is halved in time down to this span, then split by sub-query.
const SPLIT_FLOOR_MS: i64 = 60_000;

/// The points parsed so far by a run's requests, counted as each series reaches its page's
/// spool rather than when its request completes: a day of thousands of VMs is a single response,
/// read for most of the run. An attempt that fails takes its points back, so once the pages are
/// done the count is the summary's. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct ParsedPoints(Arc<AtomicU64>);

impl ParsedPoints {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, points: u64) {
        self.0.fetch_add(points, Ordering::Relaxed);
    }

    fn take_back(&self, points: u64) {
        self.0.fetch_sub(points, Ordering::Relaxed);
    }
}

/// What fetching one page took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    pub requests: u64,
    pub retries: u64,
    /// Times a too-large request was cut in two.
    pub splits: u64,
    pub points: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for PageStats {
    fn add_assign(&mut self, o: PageStats) {
        self.requests += o.requests;
        self.retries += o.retries;
        self.splits += o.splits;
        self.points += o.points;
        self.bytes += o.bytes;
    }
}

/// A page's series.
#[derive(Debug)]
pub struct Fetched {
    /// Index into `plan.pages`.
    pub page: usize,
    /// One spool per request the page took (more than one when it was split).
    pub spools: Vec<Spool>,
    pub stats: PageStats,
}

/// Why [`fetch`] failed: the endpoint, or the disk the response's series were kept on.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Tsdb(#[from] TsdbError),
    #[error("cannot keep a response's series on disk")]
    Spool {
        #[source]
        source: std::io::Error,
    },
}

/// A page that failed for good.
#[derive(Debug)]
pub struct PageFailure {
    pub page: usize,
    pub error: TsdbError,
    pub stats: PageStats,
}

/// Fetches every page of `plan`, at most `concurrency` at a time, each on its own task so that
/// parsing runs on every core. `clients[i]` serves the plan's service `i`. Results come in
/// completion order. `parsed` counts their points as they are parsed.
#[allow(
    clippy::result_large_err,
    reason = "a page's failure is returned once per page, never in a loop over points"
)]
pub fn pages(
    plan: Arc<Plan>,
    clients: Arc<Vec<tsdb::Client>>,
    concurrency: usize,
    policy: RetryPolicy,
    spool_dir: PathBuf,
    parsed: ParsedPoints,
) -> impl Stream<Item = Result<Fetched, PageFailure>> {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_POINTS as usize));
    stream::iter(0..plan.pages.len())
        .map(move |index| {
            let plan = Arc::clone(&plan);
            let clients = Arc::clone(&clients);
            let spool_dir = spool_dir.clone();
            let in_flight = Arc::clone(&in_flight);
            let parsed = parsed.clone();
            let task = tokio::spawn(async move {
                let page = plan.pages[index];
                // A page takes its share of the points in flight (one page always fits), so
                // large pages go one or two at a time and small ones `concurrency` at a time.
                let share = plan.page_points(&page).clamp(1, IN_FLIGHT_POINTS) as u32;
                let _permit = in_flight.acquire_many_owned(share).await;
                let client = &clients[plan.groups[page.group].service];
                let request = plan.request(&page);
                let mut stats = PageStats::default();
                let shard_tag = plan.groups[page.group].component.entity_tag();
                match fetch_spooled(
                    client, request, shard_tag, policy, &mut stats, &spool_dir, &parsed,
                )
                .await
                {
                    Ok(spools) => Ok(Fetched {
                        page: index,
                        spools,
                        stats,
                    }),
                    Err(error) => Err(PageFailure {
                        page: index,
                        error,
                        stats,
                    }),
                }
            });
            async move {
                task.await.unwrap_or_else(|join| {
                    // Page tasks are never cancelled, so this is a panic: a bug, which must not
                    // pass for a failed page. Propagate it.
                    std::panic::resume_unwind(join.into_panic())
                })
            }
        })
        .buffer_unordered(concurrency.max(1))
}

/// A page that is too large is cut by series at most this many times over (11^4 shards).
const MAX_SHARD_DEPTH: usize = 4;

/// Character classes that split tag values by one trailing character; with the exact match of
/// the suffix so far, they partition every possible value. One class per digit, since entity
/// names end in numbers (`vm-1254`, `172.17.86.51`, `pcc-000443`), often consecutive ones.
const SHARD_CLASSES: [&str; 11] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[^0-9]"];

/// A subset of the series of a sub-query, by the trailing characters of one tag's values: the
/// series whose value ends with `suffix` (or, `exact`, is `suffix`). Needs no list of names, so
/// series that are in no inventory (a deleted VM) are never lost to a split.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shard {
    suffix: Vec<&'static str>,
    exact: bool,
}

impl Shard {
    fn regexp(&self) -> String {
        let body: String = self.suffix.concat();
        if self.exact {
            format!("^{body}$")
        } else {
            format!("^.*{body}$")
        }
    }

    /// The shards that together hold exactly this one's series.
    fn split(shard: Option<&Shard>) -> Vec<Shard> {
        let suffix = shard.map(|s| s.suffix.clone()).unwrap_or_default();
        let mut children: Vec<Shard> = SHARD_CLASSES
            .iter()
            .map(|class| {
                let mut longer = vec![*class];
                longer.extend(&suffix);
                Shard {
                    suffix: longer,
                    exact: false,
                }
            })
            .collect();
        if !suffix.is_empty() {
            children.push(Shard {
                suffix,
                exact: true,
            });
        }
        children
    }
}

/// What is left to fetch of a request.
struct Work {
    queries: Vec<SubQuery>,
    start: i64,
    /// Inclusive, as on the wire.
    end: i64,
    shard: Option<Shard>,
}

/// Fetches one request, splitting it while the endpoint says it is too large: in time down to
/// [`SPLIT_FLOOR_MS`], then by sub-query, then by series of `shard_tag` (e.g. `vm`). The tests'
/// way in; a run spools ([`fetch_spooled`]).
#[cfg(all(test, feature = "sim"))]
pub(crate) async fn fetch(
    client: &tsdb::Client,
    request: QueryRequest,
    shard_tag: &str,
    policy: RetryPolicy,
    stats: &mut PageStats,
) -> Result<Vec<OwnedSeries>, FetchError> {
    let spools = fetch_spooled(
        client,
        request,
        shard_tag,
        policy,
        stats,
        &std::env::temp_dir(),
        &ParsedPoints::default(),
    )
    .await?;
    let mut series = Vec::new();
    for spool in spools {
        spool
            .replay(&mut |s: Series<'_>| series.push(s.to_owned_series()))
            .map_err(|source| FetchError::Spool { source })?;
    }
    Ok(series)
}

/// Fetches one request as `fetch` does (splitting it while the endpoint says it is too large),
/// with each request's series kept in a [`Spool`] (overflowing into `spool_dir`) and
/// their points counted in `parsed` as they arrive.
pub async fn fetch_spooled(
    client: &tsdb::Client,
    request: QueryRequest,
    shard_tag: &str,
    policy: RetryPolicy,
    stats: &mut PageStats,
    spool_dir: &Path,
    parsed: &ParsedPoints,
) -> Result<Vec<Spool>, TsdbError> {
    let mut series = Vec::new();
    // A stack keeps the pieces of a split in time order.
    let mut todo = vec![Work {
        queries: request.queries,
        start: request.start_ms,
        end: request.end_ms,
        shard: None,
    }];
    while let Some(work) = todo.pop() {
        let mut queries = work.queries.clone();
        if let Some(shard) = &work.shard {
            for q in &mut queries {
                q.regexps.push((shard_tag.to_string(), shard.regexp()));
            }
        }
        let request = QueryRequest {
            start_ms: work.start,
            end_ms: work.end,
            queries,
        };
        let error = match fetch_with_retries(
            client,
            &request,
            policy,
            page_retryable,
            stats,
            spool_dir,
            parsed,
        )
        .await
        {
            Ok(spool) => {
                series.push(spool);
                continue;
            }
            Err(error @ TsdbError::TooLarge { .. }) => error,
            Err(error) => return Err(error),
        };
        let Work {
            queries,
            start,
            end,
            shard,
        } = work;
        // A downsampled sub-query is never cut in time: the halves would put their own bucket
        // grid on the data, and a bucket across the cut would come back twice, half filled.
        let downsampled = queries.iter().any(|q| q.downsample.is_some());
        let pieces = if end - start + 1 > SPLIT_FLOOR_MS && !downsampled {
            let mid = start + (end - start + 1) / 2;
            tracing::info!(start, end, mid, "Request too large; splitting it in time.");
            vec![
                Work {
                    queries: queries.clone(),
                    start,
                    end: mid - 1,
                    shard: shard.clone(),
                },
                Work {
                    queries,
                    start: mid,
                    end,
                    shard,
                },
            ]
        } else if queries.len() > 1 {
            tracing::info!(
                start,
                end,
                queries = queries.len(),
                "Request too large; splitting its sub-queries."
            );
            let mut first = queries;
            let second = first.split_off(first.len() / 2);
            vec![
                Work {
                    queries: first,
                    start,
                    end,
                    shard: shard.clone(),
                },
                Work {
                    queries: second,
                    start,
                    end,
                    shard,
                },
            ]
        } else if shard
            .as_ref()
            .is_none_or(|s| !s.exact && s.suffix.len() < MAX_SHARD_DEPTH)
        {
            tracing::info!(
                start,
                end,
                tag = shard_tag,
                "Request too large; splitting it by series."
            );
            Shard::split(shard.as_ref())
                .into_iter()
                .map(|s| Work {
                    queries: queries.clone(),
                    start,
                    end,
                    shard: Some(s),
                })
                .collect()
        } else {
            return Err(error);
        };
        stats.splits += 1;
        todo.extend(pieces.into_iter().rev());
    }
    Ok(series)
}

/// Asks `client` for one metric over one millisecond, with retries for transient failures only:
/// checks that the endpoint takes the token and answers OpenTSDB's JSON before a run commits to
/// anything. A query too large or refused is fine here; pages will deal with it.
pub async fn probe(
    client: &tsdb::Client,
    metric: &str,
    at_ms: i64,
    policy: RetryPolicy,
) -> Result<(), TsdbError> {
    let request = QueryRequest {
        start_ms: at_ms,
        end_ms: at_ms,
        queries: vec![SubQuery {
            metric: metric.to_string(),
            aggregator: "none".to_string(),
            downsample: None,
            tags: Default::default(),
            regexps: Vec::new(),
        }],
    };
    let mut stats = PageStats::default();
    // A body that is not JSON gets three tries: a proxy's page now and then passes, an
    // endpoint that never speaks OpenTSDB fails in a moment rather than after the backoff.
    let mut tries = 0;
    loop {
        tries += 1;
        match fetch_with_retries(
            client,
            &request,
            policy,
            TsdbError::is_transient,
            &mut stats,
            &std::env::temp_dir(),
            &ParsedPoints::default(),
        )
        .await
        {
            // Too large, or a query refused as such (an unknown metric): the pages' business.
            // A 403 is the token's, as a 401 is.
            Ok(_) | Err(TsdbError::TooLarge { .. }) => return Ok(()),
            Err(TsdbError::Http { status, .. })
                if (400..500).contains(&status) && status != 403 =>
            {
                return Ok(())
            }
            Err(TsdbError::Parse { .. }) if tries < PROBE_TRIES => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Attempts of the probe at a body that is not JSON.
const PROBE_TRIES: usize = 3;

/// Worth another attempt during a page: what is transient, and a 200 whose body is not JSON (a
/// proxy's maintenance page in the middle of a run; an endpoint that never speaks JSON is
/// caught by [`probe`] before the run starts).
fn page_retryable(error: &TsdbError) -> bool {
    error.is_transient() || matches!(error, TsdbError::Parse { .. })
}

async fn fetch_with_retries(
    client: &tsdb::Client,
    request: &QueryRequest,
    policy: RetryPolicy,
    retryable: fn(&TsdbError) -> bool,
    stats: &mut PageStats,
    spool_dir: &Path,
    parsed: &ParsedPoints,
) -> Result<Spool, TsdbError> {
    let mut requests = 0u64;
    let mut retries = 0u64;
    let result = (|| {
        requests += 1;
        async {
            // A fresh spool per attempt: what a failed attempt delivered is dropped with it.
            let mut sink = Spool::new(spool_dir.to_path_buf()).counting(parsed.clone());
            match client.query(request, &mut sink).await {
                Ok(stats) => Ok::<_, TsdbError>((sink, stats)),
                Err(error) => {
                    sink.take_back_count();
                    Err(error)
                }
            }
        }
    })
    .retry(policy.backoff())
    .when(retryable)
    // The endpoint's own word on when to come back wins over the backoff, within the cap.
    .adjust(|error, delay| policy.delay(error.retry_after(), delay))
    .notify(|error, delay| {
        retries += 1;
        tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64, "Request failed; trying again.");
    })
    .await;
    stats.requests += requests;
    stats.retries += retries;
    let (series, parsed) = result?;
    stats.points += parsed.points;
    stats.bytes += parsed.bytes;
    Ok(series)
}
