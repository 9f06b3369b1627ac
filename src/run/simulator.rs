//! The in-process simulator of a job with `endpoint = "simulator"`: its configuration from the
//! job's `[source.simulator]`, started on loopback for the run. In a build without the `sim`
//! feature, such a job stops before it connects.

use chrono::{DateTime, Utc};

use crate::job;
use crate::ovh::clock::VirtualClock;
use crate::ovh::inventory::Inventory;
use crate::ovh::Auth;

#[cfg(feature = "sim")]
pub(super) use built_in::Running;
#[cfg(not(feature = "sim"))]
pub(super) use missing::Running;

/// The inventory the simulator of `section` serves at `at`; `None` in a build without it.
pub(super) fn inventory(section: &job::Simulator, at: DateTime<Utc>) -> Option<Inventory> {
    #[cfg(feature = "sim")]
    return Some(crate::sim::World::new(built_in::config(section)).inventory(at));
    #[cfg(not(feature = "sim"))]
    {
        let _ = (section, at);
        None
    }
}

#[cfg(feature = "sim")]
mod built_in {
    use std::sync::Arc;

    use anyhow::Context;

    use super::*;
    use crate::secret::Secret;
    use crate::sim::{self, World};

    /// The simulator's configuration for a job's `[source.simulator]`.
    pub(super) fn config(section: &job::Simulator) -> sim::SimConfig {
        let job::Simulator {
            seed,
            services,
            datacenters,
            hosts,
            vms,
            filers,
            resolution_secs,
            point_cap,
            flavor,
            gaps_per_mille,
            clock_offset_secs,
            timestamp_tolerance_secs,
            batch_reads,
            virtual_time,
            ref faults,
            hostile_names,
        } = *section;
        sim::SimConfig {
            seed,
            services,
            datacenters,
            hosts,
            vms,
            filers,
            resolution_secs,
            point_cap,
            flavor,
            gaps_per_mille,
            clock_offset_secs,
            timestamp_tolerance_secs,
            batch_reads,
            virtual_time,
            faults: faults.clone(),
            hostile_names,
        }
    }

    /// The simulator serving a run; stops when dropped.
    pub struct Running {
        addr: std::net::SocketAddr,
        world: Arc<World>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    impl Running {
        /// Starts the simulator of `section` on a free loopback port.
        pub async fn start(section: &job::Simulator) -> anyhow::Result<Running> {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot start the built-in simulator on 127.0.0.1")?;
            let addr = listener.local_addr()?;
            let world = Arc::new(World::new(config(section)));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let served = Arc::clone(&world);
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = sim::serve(listener, served, shutdown).await {
                    tracing::error!(error = %e, "The built-in simulator stopped.");
                }
            });
            Ok(Running {
                addr,
                world,
                _stop: stop,
            })
        }

        /// Its APIv6 base URL and the public, test-only credentials it accepts.
        pub fn apiv6(&self) -> (String, Auth) {
            let creds = self.world.credentials();
            let auth = Auth::Signed {
                application_key: creds.application_key,
                application_secret: Secret::new(creds.application_secret),
                consumer_key: Secret::new(creds.consumer_key),
            };
            (format!("http://{}/1.0", self.addr), auth)
        }

        /// The virtual clock it shares with its APIv6 client, with `virtual_time`.
        pub fn virtual_clock(&self) -> Option<VirtualClock> {
            self.world.virtual_clock().cloned()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_default_simulator_section_is_the_default_simulator() {
            assert_eq!(
                config(&job::Simulator::default()),
                sim::SimConfig::default()
            );
        }
    }
}

#[cfg(not(feature = "sim"))]
mod missing {
    use super::*;

    /// Never built: this build has no simulator.
    pub enum Running {}

    impl Running {
        pub async fn start(_: &job::Simulator) -> anyhow::Result<Running> {
            anyhow::bail!(
                "endpoint = \"simulator\": this vscope-export was built without the simulator \
                 (cargo feature `sim`)"
            )
        }

        pub fn apiv6(&self) -> (String, Auth) {
            match *self {}
        }

        pub fn virtual_clock(&self) -> Option<VirtualClock> {
            match *self {}
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn a_simulator_job_says_the_build_has_no_simulator() {
            let Err(error) = Running::start(&job::Simulator::default()).await;
            assert!(error.to_string().contains("feature `sim`"), "{error}");
        }
    }
}
