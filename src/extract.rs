//! The extract stage: runs the plan's pages against the metrics endpoint with a bound on how many
//! are in flight, retries what is worth retrying, and splits a page the endpoint finds too large.
//! Hands back the series of each page as it completes; never builds Arrow arrays.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures_util::stream::{self, Stream, StreamExt};

use crate::plan::Plan;
use crate::tsdb::{self, OwnedSeries, QueryRequest, Series, SeriesSink, SubQuery, TsdbError};

/// Pages in flight at once by default. The endpoint serves each request from its own storage
/// scan, so a few parallel requests hide network latency, while more would only queue there.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// A page that is too large is halved in time down to this span, then split by sub-query.
const SPLIT_FLOOR_MS: i64 = 60_000;

/// When and how often a transient failure is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Further attempts after the first.
    pub max_retries: usize,
    /// Sleeping stops once this much time was spent waiting between attempts.
    pub total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retries: 6,
            total_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.total_delay))
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
    pub series: Vec<OwnedSeries>,
    pub stats: PageStats,
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
/// completion order.
pub fn pages(
    plan: Arc<Plan>,
    clients: Arc<Vec<tsdb::Client>>,
    concurrency: usize,
    policy: RetryPolicy,
) -> impl Stream<Item = Result<Fetched, PageFailure>> {
    stream::iter(0..plan.pages.len())
        .map(move |index| {
            let plan = Arc::clone(&plan);
            let clients = Arc::clone(&clients);
            let task = tokio::spawn(async move {
                let page = plan.pages[index];
                let client = &clients[plan.groups[page.group].service];
                let request = plan.request(&page);
                let mut stats = PageStats::default();
                match fetch(client, request, policy, &mut stats).await {
                    Ok(series) => Ok(Fetched {
                        page: index,
                        series,
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

/// Fetches one request, splitting it while the endpoint says it is too large.
pub async fn fetch(
    client: &tsdb::Client,
    request: QueryRequest,
    policy: RetryPolicy,
    stats: &mut PageStats,
) -> Result<Vec<OwnedSeries>, TsdbError> {
    let mut series = Vec::new();
    // Work still to do, as (sub-queries, first ms, last ms inclusive); a stack keeps the
    // halves of a split in time order.
    let mut todo: Vec<(Vec<SubQuery>, i64, i64)> =
        vec![(request.queries, request.start_ms, request.end_ms)];
    while let Some((queries, start, end)) = todo.pop() {
        let request = QueryRequest {
            start_ms: start,
            end_ms: end,
            queries,
        };
        match fetch_with_retries(client, &request, policy, stats).await {
            Ok(mut got) => series.append(&mut got),
            Err(TsdbError::TooLarge { .. }) if end - start + 1 > SPLIT_FLOOR_MS => {
                stats.splits += 1;
                let mid = start + (end - start + 1) / 2;
                tracing::info!(start, end, mid, "Request too large; splitting it in time.");
                todo.push((request.queries.clone(), mid, end));
                todo.push((request.queries, start, mid - 1));
            }
            Err(TsdbError::TooLarge { .. }) if request.queries.len() > 1 => {
                stats.splits += 1;
                tracing::info!(
                    start,
                    end,
                    queries = request.queries.len(),
                    "Request too large; splitting its sub-queries."
                );
                let mut first = request.queries;
                let second = first.split_off(first.len() / 2);
                todo.push((second, start, end));
                todo.push((first, start, end));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(series)
}

/// Collects a response's series.
struct Collect(Vec<OwnedSeries>);

impl SeriesSink for Collect {
    fn series(&mut self, series: Series<'_>) {
        self.0.push(series.to_owned_series());
    }
}

async fn fetch_with_retries(
    client: &tsdb::Client,
    request: &QueryRequest,
    policy: RetryPolicy,
    stats: &mut PageStats,
) -> Result<Vec<OwnedSeries>, TsdbError> {
    let mut requests = 0u64;
    let mut retries = 0u64;
    let result = (|| {
        requests += 1;
        async {
            let mut sink = Collect(Vec::new());
            let parsed = client.query(request, &mut sink).await?;
            Ok::<_, TsdbError>((sink.0, parsed))
        }
    })
    .retry(policy.backoff())
    .when(TsdbError::is_transient)
    .adjust(|error, delay| {
        // The endpoint's own word on when to come back wins over the backoff, within the cap.
        match (error.retry_after(), delay) {
            (Some(after), Some(_)) => Some(after.min(policy.max_delay)),
            (_, delay) => delay,
        }
    })
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
