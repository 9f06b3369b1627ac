//! The built-in simulator of both APIs a vScope export talks to: the signed OVH APIv6 (inventory,
//! users, metrics token) and the OpenTSDB-compatible metrics endpoint. Tests, the demo and
//! `vscope-export sim` start it on loopback; the exporter only ever reaches it over HTTP.
//!
//! Everything it serves is a pure function of [`SimConfig`]: the inventory comes from the seed and
//! the sizes, and every point is a function of (series, timestamp), so any window is reproducible
//! and tests compute exactly what an export must hold through [`World`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::ovh::inventory::Inventory;

/// The simulated estate; also the `[source.simulator]` table of a job file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
        }
    }
}

/// The login of the simulated user whose metrics token a job fetches when it names none.
pub const METRICS_USER: &str = "vscope-reader";

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

/// The simulated estate and its data.
#[derive(Debug)]
pub struct World {
    config: SimConfig,
}

impl World {
    pub fn new(config: SimConfig) -> World {
        World { config }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The credentials this world accepts.
    pub fn credentials(&self) -> SimCredentials {
        todo!("sim credentials")
    }

    /// The inventory APIv6 serves, as the exporter's snapshot of it at `snapshot_ts` would be.
    pub fn inventory(&self, snapshot_ts: DateTime<Utc>) -> Inventory {
        let _ = snapshot_ts;
        todo!("sim inventory")
    }

    /// Every series of `metric` that has at least one point somewhere (powered-off VMs have none).
    pub fn series(&self, metric: &str) -> Vec<SimSeries> {
        let _ = metric;
        todo!("sim series")
    }

    /// The raw points of a series in `[start_ms, end_ms]` (both inclusive, as OpenTSDB), ascending.
    pub fn points(
        &self,
        series: &SimSeries,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = (i64, f64)> + '_ {
        let _ = (series, start_ms, end_ms);
        std::iter::empty::<(i64, f64)>()
    }
}

/// Serves both APIs on `listener` until `shutdown` completes: APIv6 under `/1.0`, OpenTSDB under
/// `/api`. The base URLs are `http://<addr>/1.0` and `http://<addr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    world: Arc<World>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (listener, world, shutdown);
    todo!("sim server")
}
