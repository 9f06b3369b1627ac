//! Connecting a run: the in-process simulator when the job asks for it, APIv6 with the job's
//! credentials, the inventory snapshot, one metrics client per service, and a probe of each
//! metrics endpoint before anything is written.

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};

use super::simulator;
use crate::extract;
use crate::job::{Api, Job, TokenSource, Window};
use crate::ovh::{self, inventory::Inventory};
use crate::secret::Secret;
use crate::tsdb;

/// What connecting produced: the inventory and one metrics client per service.
pub(super) struct Connected {
    /// Keeps the in-process simulator alive for the run.
    _simulator: Option<simulator::Running>,
    pub inventory: Inventory,
    pub clients: Vec<tsdb::Client>,
}

/// Connects to APIv6 (the simulator's public credentials, or the user's), snapshots the
/// inventory and gets the metrics clients. Touches no file.
pub(super) async fn connect(
    job: &Job,
    now: DateTime<Utc>,
    window: Window,
) -> anyhow::Result<Connected> {
    let simulator = match &job.source.api {
        Api::Simulator(section) => Some(simulator::Running::start(section).await?),
        Api::Ovh { .. } => None,
    };
    let (base_url, auth) = match (&job.source.api, &simulator) {
        (_, Some(sim)) => sim.apiv6(),
        (Api::Ovh { endpoint }, None) => {
            ovh::credentials::load(endpoint.as_deref(), &|k| std::env::var(k).ok())?
        }
        (Api::Simulator(_), None) => unreachable!("the simulator was started above"),
    };
    let options = ovh::client::ClientOptions {
        retry: job.source.retry,
        // A simulator on virtual time shares it with its client (`virtual_time`).
        virtual_clock: simulator
            .as_ref()
            .and_then(simulator::Running::virtual_clock),
        ..Default::default()
    };
    let api = ovh::Client::connect_with(&base_url, auth, options)
        .await
        .with_context(|| format!("cannot connect to APIv6 at {base_url}"))?;
    let inventory = api
        .snapshot(&job.source.services, job.source.datacenters.as_deref(), now)
        .await
        .context("cannot read the inventory from APIv6")?;
    if inventory.services.is_empty() {
        bail!("APIv6 at {base_url} lists no Hosted Private Cloud service for this account");
    }
    let clients = metrics_clients(&api, &job.source.token, &inventory).await?;
    // One tiny query per endpoint before anything is written: a refused token or an endpoint
    // that does not speak OpenTSDB fails the run here, leaving the output untouched.
    if let Some(metric) = job.exports.first().and_then(|e| e.metrics.first()) {
        for client in &clients {
            extract::probe(
                client,
                metric,
                window.start.timestamp_millis(),
                job.source.retry,
            )
            .await
            .with_context(|| {
                format!(
                    "the metrics endpoint {} does not answer queries",
                    client.base_url()
                )
            })?;
        }
    }
    Ok(Connected {
        _simulator: simulator,
        inventory,
        clients,
    })
}

/// Reads one metrics client per service of the plan: the service's own token (the guide's flow)
/// or one token given directly for all.
async fn metrics_clients(
    api: &ovh::Client,
    token: &TokenSource,
    inventory: &Inventory,
) -> anyhow::Result<Vec<tsdb::Client>> {
    let mut clients = Vec::new();
    match token {
        TokenSource::MetricsUser(user) => {
            for service in &inventory.services {
                let token = api
                    .metrics_token(&service.service_name, user)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot get the metrics read token of user '{user}' on {}",
                            service.service_name
                        )
                    })?;
                clients.push(tsdb::Client::new(
                    &token.opentsdb_endpoint,
                    Secret::new(token.token),
                )?);
            }
        }
        TokenSource::Direct {
            token_env,
            opentsdb_url,
        } => {
            let value = std::env::var(token_env).ok().filter(|v| !v.is_empty()).with_context(|| {
                format!("the metrics read token is missing: set the environment variable {token_env} (named by source.token_env)")
            })?;
            let client = tsdb::Client::new(opentsdb_url, Secret::new(value))?;
            clients = vec![client; inventory.services.len()];
        }
    }
    Ok(clients)
}
