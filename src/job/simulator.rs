//! The `[source.simulator]` table: what a job asks of the built-in simulator. The run turns it into
//! the simulator's own configuration; the job never starts or reaches the simulator itself.

use serde::Deserialize;

use crate::domain::simulator::{Faults, Flavor};

/// `[source.simulator]`: the estate the built-in simulator serves to a job whose
/// `endpoint = "simulator"`. Every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Simulator {
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
    #[cfg_attr(test, schemars(with = "String", extend("enum" = ["ovh", "opentsdb"], "default" = "ovh")))]
    pub flavor: Flavor,
    /// Raw points missing per thousand (a collector that missed a poll); 0 for none.
    #[cfg_attr(test, schemars(extend("maximum" = 1000)))]
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
    #[cfg_attr(test, schemars(with = "Option<String>", extend("examples" = ["5xx=0.2,429=0.1,reset=0.05,truncate=0.05,slow=0.1:200ms,invalid-json=0.02,cap=500000,apiv6-5xx=0.1,seed=3"])))]
    pub faults: Option<Faults>,
    /// Names and tag values full of what breaks naive code: `/`, `..`, `=`, `%`, newlines,
    /// quotes, backslashes, non-ASCII, and one name of more than 300 characters. Default false.
    pub hostile_names: bool,
}

impl Default for Simulator {
    fn default() -> Self {
        Simulator {
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
