//! `vscope-export sim`: serves the built-in simulator on loopback and prints how to reach it. The
//! simulator is built only with the `sim` cargo feature; without it the command exists and says
//! how to get it, so `--help` is the same in every build.

use clap::Args;

use super::Printer;
use crate::domain::simulator::Faults;
use crate::job::Simulator;

#[derive(Debug, Args)]
pub(super) struct SimArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Seed of names, shapes and values.
    #[arg(long, default_value_t = Simulator::default().seed)]
    seed: u64,
    /// Hosted Private Cloud services (0: an account without any).
    #[arg(long, default_value_t = Simulator::default().services)]
    services: usize,
    /// Datacenters per service.
    #[arg(long, default_value_t = Simulator::default().datacenters)]
    datacenters: usize,
    /// Hosts per datacenter.
    #[arg(long, default_value_t = Simulator::default().hosts)]
    hosts: usize,
    /// VMs per datacenter.
    #[arg(long, default_value_t = Simulator::default().vms)]
    vms: usize,
    /// Datastores per datacenter.
    #[arg(long, default_value_t = Simulator::default().filers)]
    filers: usize,
    /// Most points one sub-query may fetch (OVH: 20,000,000; at least 1).
    #[arg(long, default_value_t = Simulator::default().point_cap, value_parser = clap::value_parser!(u64).range(1..))]
    point_cap: u64,
    /// Failures to inject, e.g. "5xx=0.2,429=0.1,reset=0.05,slow=0.1:200ms,apiv6-5xx=0.1".
    ///
    /// Comma-separated kind=rate[:parameter] items; a rate is a fraction (0.2) or a percentage
    /// (20%), and the rates of one API add up to at most 1. On POST /api/query: 5xx (500, 502,
    /// 503), 429[:Ns] (Retry-After, default 1 s), reset (connection closed without an answer),
    /// truncate (the real body cut short), slow:DELAY (e.g. slow=0.1:200ms), invalid-json (an
    /// HTML page with 200). On APIv6: apiv6-5xx, apiv6-429[:Ns], apiv6-reset, apiv6-slow:DELAY.
    /// Also cap=N (a lower point cap: larger sub-queries are answered "too large") and seed=N
    /// (default: --seed). A retried request draws again; faults never change the data.
    #[arg(long, value_name = "SPEC")]
    faults: Option<Faults>,
}

#[cfg(not(feature = "sim"))]
pub(super) fn run(_args: SimArgs, _printer: &Printer) -> anyhow::Result<()> {
    anyhow::bail!(
        "this vscope-export was built without the simulator: build it with `cargo build --release --features sim`"
    )
}

#[cfg(feature = "sim")]
pub(super) fn run(args: SimArgs, printer: &Printer) -> anyhow::Result<()> {
    use anyhow::Context;

    use crate::sim::{self, SimConfig, World};

    let addr: std::net::SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}: not an address", args.listen))?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "--listen {addr}: the simulator only listens on loopback addresses"
    );
    let config = SimConfig {
        seed: args.seed,
        services: args.services,
        datacenters: args.datacenters,
        hosts: args.hosts,
        vms: args.vms,
        filers: args.filers,
        point_cap: args.point_cap,
        faults: args.faults,
        ..SimConfig::default()
    };
    let world = std::sync::Arc::new(World::new(config));
    let rt = super::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        let creds = world.credentials();
        printer.line(&format!(
            "vScope simulator on http://{addr} (test-only credentials, public by design)\n\
             \n  APIv6:    http://{addr}/1.0\n  OpenTSDB: http://{addr}\n\
             \n  export OVH_ENDPOINT=http://{addr}/1.0\n  export OVH_APPLICATION_KEY={}\n  export OVH_APPLICATION_SECRET={}\n  export OVH_CONSUMER_KEY={}\n\
             \n  metrics_user = \"{}\"   (or token {} with opentsdb_url = \"http://{addr}\")\n\nCtrl-C stops it.",
            creds.application_key, creds.application_secret, creds.consumer_key, creds.metrics_user, creds.token
        ))?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        sim::serve(listener, world, shutdown).await.context("the simulator stopped")
    })
}
