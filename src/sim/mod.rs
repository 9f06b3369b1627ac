//! The built-in simulator of both APIs a vScope export talks to: the signed OVH APIv6 (inventory,
//! users, metrics token) and the OpenTSDB-compatible metrics endpoint. Tests, the demo and
//! `vscope-export sim` start it on loopback; the exporter only ever reaches it over HTTP.
//!
//! Everything it serves is a pure function of [`SimConfig`]: the inventory comes from the seed and
//! the sizes, and every point is a function of (series, timestamp), so any window is reproducible
//! and tests compute exactly what an export must hold through [`World`].
//!
//! - `world`: the estate (services `pcc-…`, datacenters, hosts named by IP, VMs with `vm-…`
//!   moRefs, datastores `pcc-000…`, shared datastores, users incl. [`METRICS_USER`]) and the points.
//!   One VM in twenty is powered off and has no series; each service has one deleted VM that still
//!   has series but is in no inventory; hosts have 2 or 4 NICs (`vmnic0…`) for `net.*` metrics;
//!   points sit on the `resolution_secs` grid, with a daily cycle, idle and busy VMs, and
//!   `gaps_per_mille` missing points.
//! - `apiv6`: `/1.0/…`, signed-request checks (against the simulator's clock: real, or virtual
//!   time shared with the run's client), batch reads, the metrics token.
//! - `opentsdb`: `/api/query`, `/api/suggest`, `/api/search/lookup`, in OVH's or stock OpenTSDB's
//!   dialect. Fill `nan` is written as the string `"NaN"`, as stock OpenTSDB's serializer does.
//! - `faults`: the `faults` spec (5xx, 429, resets, truncated bodies, latency, invalid JSON, a
//!   lower point cap, APIv6 failures) and the seeded schedule that draws them.
//!
//! With `hostile_names`, names and tag values carry what breaks naive code (`/`, `..`, `=`, `%`,
//! newlines, quotes, backslashes, non-ASCII, a 300-character name); see `world`.

mod apiv6;
mod faults;
mod opentsdb;
mod world;

pub use crate::domain::simulator::{FaultKind, FaultSpecError, Faults, Flavor, METRICS_USER};
pub use world::World;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::routing::{any, get};
use axum::Router;

/// The simulated estate (a job file's `[source.simulator]` table becomes one of these; the keys
/// are documented there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Seeds names, ids, shapes and every value.
    pub seed: u64,
    /// Hosted Private Cloud services (`pcc-…`).
    pub services: usize,
    /// Datacenters per service.
    pub datacenters: usize,
    /// Hosts per datacenter.
    pub hosts: usize,
    /// VMs per datacenter.
    pub vms: usize,
    /// Datastores per datacenter.
    pub filers: usize,
    /// Seconds between two points of a raw series.
    pub resolution_secs: u32,
    /// Most points one sub-query may fetch before the endpoint refuses it (OVH: 20,000,000).
    pub point_cap: u64,
    /// Which metrics endpoint to imitate: `ovh` (plain-text errors, substring suggest, buckets
    /// aligned to the query end) or `opentsdb` (stock OpenTSDB 2.x: JSON errors, 413 when too large).
    pub flavor: Flavor,
    /// Raw points missing per thousand (a collector that missed a poll); 0 for none.
    pub gaps_per_mille: u32,
    /// Seconds the simulated APIv6 clock runs ahead of this machine's (negative: behind), so that
    /// clients must use `GET /auth/time` as OVH's own clients do.
    pub clock_offset_secs: i64,
    /// How many seconds a signed request's `X-Ovh-Timestamp` may be from the APIv6 clock before
    /// it is refused with `400 Client::BadRequest: Query out of time`. OVH does not publish its
    /// window; the default, 180, is the official clients' request timeout.
    pub timestamp_tolerance_secs: u32,
    /// Whether APIv6 answers batch reads (`X-Ovh-Batch`). OVH does not promise to keep them;
    /// false answers as an APIv6 without them does (the joined ids are no id: 400), so every
    /// object is read with its own request. Default true.
    pub batch_reads: bool,
    /// Run the APIv6 clock on virtual time shared with the exporter's APIv6 client: it starts at
    /// this machine's time and moves only when the client's request pacing has to wait, jumping
    /// to the moment the request may leave. Paced requests then carry the timestamps they would
    /// carry in real time, and an estate read one object at a time takes seconds instead of
    /// minutes. For tests; only a run's built-in simulator shares its clock. Default false.
    pub virtual_time: bool,
    /// Failures to inject, e.g. `"5xx=0.2,429=0.1,reset=0.05,truncate=0.05,slow=0.1:200ms,cap=500000,apiv6-5xx=0.1"`:
    /// `kind=rate[:parameter]` items with kinds `5xx`, `429[:Ns]`, `reset`, `truncate`,
    /// `slow:DELAY`, `invalid-json` (metrics endpoint), `apiv6-5xx`, `apiv6-429[:Ns]`,
    /// `apiv6-reset`, `apiv6-slow:DELAY` (APIv6), plus `cap=N` (a lower point cap) and `seed=N`.
    /// Rates are fractions (`0.2`) or percentages (`20%`). Faults never change the data.
    /// Default: none.
    pub faults: Option<Faults>,
    /// Names and tag values full of what breaks naive code: `/`, `..`, `=`, `%`, newlines,
    /// quotes, backslashes, non-ASCII, and one name of more than 300 characters. Default false.
    pub hostile_names: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            services: 1,
            datacenters: 2,
            hosts: 4,
            vms: 150,
            filers: 3,
            resolution_secs: 60,
            point_cap: 20_000_000,
            flavor: Flavor::Ovh,
            gaps_per_mille: 1,
            clock_offset_secs: 0,
            timestamp_tolerance_secs: 180,
            batch_reads: true,
            virtual_time: false,
            faults: None,
            hostile_names: false,
        }
    }
}

/// The public, test-only credentials the simulator accepts. Printed by `vscope-export sim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCredentials {
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    /// The login of the user whose metrics token the simulator hands out.
    pub metrics_user: String,
    /// The metrics read token (basic-auth password on `/api/query`).
    pub token: String,
}

/// One series the metrics endpoint serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimSeries {
    pub metric: String,
    /// Every tag the endpoint returns for the series, OVH's extra ones included.
    pub tags: BTreeMap<String, String>,
}

/// What every request handler shares.
pub(crate) struct AppState {
    pub world: Arc<World>,
    /// Numbers the `X-Ovh-QueryID` of APIv6 answers.
    pub query_seq: AtomicU64,
    /// The injected faults, if the configuration asks for any.
    pub faults: faults::Schedule,
}

impl AppState {
    /// The point cap in force: `point_cap`, or the lower one of the fault spec.
    pub fn point_cap(&self) -> u64 {
        self.faults.point_cap(self.world.config().point_cap)
    }
}

/// The routes of both APIs over `world`.
pub(crate) fn router(world: Arc<World>) -> Router {
    let config = world.config();
    let faults = faults::Schedule::new(config.faults.clone().unwrap_or_default(), config.seed);
    let state = Arc::new(AppState {
        world,
        query_seq: AtomicU64::new(0),
        faults,
    });
    Router::new()
        .route("/1.0/auth/time", get(apiv6::auth_time))
        .route("/1.0/{*path}", any(apiv6::handle))
        .route("/api/query", any(opentsdb::query))
        .route("/api/suggest", get(opentsdb::suggest))
        .route("/api/search/lookup", get(opentsdb::lookup))
        .with_state(state)
}

/// Serves both APIs on `listener` until `shutdown` completes: APIv6 under `/1.0`, OpenTSDB under
/// `/api`. The base URLs are `http://<addr>/1.0` and `http://<addr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    world: Arc<World>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(world))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
pub(crate) mod test_server {
    //! Starts the simulator on loopback for the HTTP tests of the submodules.

    use super::*;

    pub struct TestServer {
        pub addr: std::net::SocketAddr,
        pub world: Arc<World>,
        pub client: reqwest::Client,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    impl TestServer {
        pub async fn start(config: SimConfig) -> TestServer {
            let world = Arc::new(World::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(serve(listener, world.clone(), async move {
                let _ = stopped.await;
            }));
            TestServer {
                addr,
                world,
                client: reqwest::Client::new(),
                _stop: stop,
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }
    }
}
