//! The inventory snapshot: every service, datacenter, host, VM and filer the job covers, read once
//! per run from APIv6 and joined onto the metric series by the transform stage. Reading it
//! ([`Client::snapshot`]) is here; the requests themselves are the client's.
//!
//! The snapshot is deterministic: services by name, datacenters and objects by id.

use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};

use super::client::{escape, Client};
use super::model::{Datacenter, Filer, Host, Vm};
use super::OvhError;
use crate::job::Services;

/// What APIv6 said at `snapshot_ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub snapshot_ts: DateTime<Utc>,
    pub services: Vec<ServiceInventory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInventory {
    pub service_name: String,
    pub datacenters: Vec<DatacenterInventory>,
    /// Datastores shared by all datacenters (`GET /dedicatedCloud/{sn}/filer`).
    pub filers: Vec<Filer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatacenterInventory {
    pub datacenter: Datacenter,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    pub filers: Vec<Filer>,
}

/// The metrics' `datacenter` tag for a datacenter: `{serviceName}_{Datacenter.name}`
/// (inferred from the product guide's example `pcc-37-187-228-180_datacenter869`).
pub fn datacenter_tag(service_name: &str, datacenter_name: &str) -> String {
    format!("{service_name}_{datacenter_name}")
}

impl Inventory {
    pub fn vm_count(&self) -> usize {
        self.datacenters().map(|(_, dc)| dc.vms.len()).sum()
    }

    pub fn host_count(&self) -> usize {
        self.datacenters().map(|(_, dc)| dc.hosts.len()).sum()
    }

    pub fn filer_count(&self) -> usize {
        self.services
            .iter()
            .map(|s| s.filers.len() + s.datacenters.iter().map(|d| d.filers.len()).sum::<usize>())
            .sum()
    }

    /// Every datacenter with the service it belongs to.
    pub fn datacenters(&self) -> impl Iterator<Item = (&ServiceInventory, &DatacenterInventory)> {
        self.services
            .iter()
            .flat_map(|s| s.datacenters.iter().map(move |d| (s, d)))
    }
}

impl Client {
    /// Every service/datacenter/host/VM/filer the job covers, read now. A `datacenters` filter
    /// (by `Datacenter.name`) naming a datacenter that no service has is an error listing the
    /// existing ones.
    pub async fn snapshot(
        &self,
        services: &Services,
        datacenters: Option<&[String]>,
        snapshot_ts: DateTime<Utc>,
    ) -> Result<Inventory, OvhError> {
        let mut names = match services {
            Services::All => {
                self.get_json::<Vec<String>>("/dedicatedCloud", "list of service names")
                    .await?
            }
            Services::Named(names) => names.clone(),
        };
        names.sort();
        names.dedup();
        if names.is_empty() {
            tracing::warn!("No Hosted Private Cloud service to read: the inventory is empty.");
        }

        let all_datacenters = try_join_all(names.iter().map(|sn| self.datacenters(sn))).await?;

        if let Some(wanted) = datacenters {
            for name in wanted {
                let exists = all_datacenters.iter().flatten().any(|dc| &dc.name == name);
                if !exists {
                    let existing = names
                        .iter()
                        .zip(&all_datacenters)
                        .flat_map(|(sn, dcs)| dcs.iter().map(move |dc| format!("{sn}/{}", dc.name)))
                        .collect();
                    return Err(OvhError::UnknownDatacenter {
                        name: name.clone(),
                        services: names.join(", "),
                        existing,
                    });
                }
            }
        }

        let reads = names.iter().zip(all_datacenters).map(|(sn, dcs)| {
            let chosen: Vec<Datacenter> = dcs
                .into_iter()
                .filter(|dc| datacenters.is_none_or(|wanted| wanted.contains(&dc.name)))
                .collect();
            self.service_inventory(sn, chosen)
        });
        let services = try_join_all(reads).await?;
        let inventory = Inventory {
            snapshot_ts,
            services,
        };
        tracing::info!(
            services = inventory.services.len(),
            hosts = inventory.host_count(),
            vms = inventory.vm_count(),
            filers = inventory.filer_count(),
            "Read the inventory snapshot."
        );
        Ok(inventory)
    }

    /// The service's datacenters, by id.
    async fn datacenters(&self, service_name: &str) -> Result<Vec<Datacenter>, OvhError> {
        let path = format!("/dedicatedCloud/{}/datacenter", escape(service_name));
        let ids: Vec<i64> = self.get_json(&path, "list of datacenter ids").await?;
        self.read_objects(&path, &ids, "Datacenter").await
    }

    async fn service_inventory(
        &self,
        service_name: &str,
        datacenters: Vec<Datacenter>,
    ) -> Result<ServiceInventory, OvhError> {
        let filers_path = format!("/dedicatedCloud/{}/filer", escape(service_name));
        let shared_filers = async {
            let ids: Vec<i64> = self.get_json(&filers_path, "list of filer ids").await?;
            self.read_objects::<Filer>(&filers_path, &ids, "Filer")
                .await
        };
        let per_datacenter = try_join_all(
            datacenters
                .into_iter()
                .map(|dc| self.datacenter_inventory(service_name, dc)),
        );
        let (filers, datacenters) = tokio::try_join!(shared_filers, per_datacenter)?;
        Ok(ServiceInventory {
            service_name: service_name.to_string(),
            datacenters,
            filers,
        })
    }

    async fn datacenter_inventory(
        &self,
        service_name: &str,
        datacenter: Datacenter,
    ) -> Result<DatacenterInventory, OvhError> {
        let base = format!(
            "/dedicatedCloud/{}/datacenter/{}",
            escape(service_name),
            datacenter.datacenter_id
        );
        let (host_path, vm_path, filer_path) = (
            format!("{base}/host"),
            format!("{base}/vm"),
            format!("{base}/filer"),
        );
        let hosts = async {
            let ids: Vec<i64> = self.get_json(&host_path, "list of host ids").await?;
            self.read_objects::<Host>(&host_path, &ids, "Host").await
        };
        let vms = async {
            let ids: Vec<i64> = self.get_json(&vm_path, "list of VM ids").await?;
            self.read_objects::<Vm>(&vm_path, &ids, "Vm").await
        };
        let filers = async {
            let ids: Vec<i64> = self.get_json(&filer_path, "list of filer ids").await?;
            self.read_objects::<Filer>(&filer_path, &ids, "Filer").await
        };
        let (hosts, vms, filers) = tokio::try_join!(hosts, vms, filers)?;
        Ok(DatacenterInventory {
            datacenter,
            hosts,
            vms,
            filers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovh::fake::{estate, manual_clock, start, SERVICE};

    fn ts() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_holds_every_object_sorted_by_id() {
        let fake = start(estate(45)).await;
        let client = fake.signed_client(manual_clock(0).0).await;
        let inventory = client.snapshot(&Services::All, None, ts()).await.unwrap();

        assert_eq!(inventory.snapshot_ts, ts());
        assert_eq!(inventory.services.len(), 1);
        let service = &inventory.services[0];
        assert_eq!(service.service_name, SERVICE);
        let dcs: Vec<&str> = service
            .datacenters
            .iter()
            .map(|d| d.datacenter.name.as_str())
            .collect();
        assert_eq!(dcs, ["datacenter10", "datacenter20"]);
        assert_eq!(inventory.vm_count(), 45);
        assert_eq!(inventory.host_count(), 4);
        assert_eq!(inventory.filer_count(), 4);
        let shared: Vec<i64> = service.filers.iter().map(|f| f.filer_id).collect();
        assert_eq!(shared, [1, 2]);
        let hosts: Vec<&str> = service.datacenters[0]
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(hosts, ["172.17.10.1", "172.17.10.2"]);
        let vms = &service.datacenters[0].vms;
        assert!(vms.windows(2).all(|w| w[0].vm_id < w[1].vm_id));
        assert_eq!(
            datacenter_tag(
                &service.service_name,
                &service.datacenters[0].datacenter.name
            ),
            "pcc-37-187-228-180_datacenter10"
        );

        // Same estate, same snapshot.
        let again = client
            .snapshot(&Services::Named(vec![SERVICE.into()]), None, ts())
            .await
            .unwrap();
        assert_eq!(again, inventory);
    }

    #[tokio::test]
    async fn a_datacenter_filter_keeps_only_those_datacenters() {
        let fake = start(estate(5)).await;
        let client = fake.signed_client(manual_clock(0).0).await;
        fake.clear_seen();
        let only = ["datacenter20".to_string()];
        let inventory = client
            .snapshot(&Services::All, Some(&only), ts())
            .await
            .unwrap();
        let dcs: Vec<i64> = inventory
            .datacenters()
            .map(|(_, d)| d.datacenter.datacenter_id)
            .collect();
        assert_eq!(dcs, [20]);
        assert_eq!(inventory.vm_count(), 0);
        assert!(
            fake.calls().iter().all(|c| !c.contains("/datacenter/10/")),
            "{:?}",
            fake.calls()
        );
    }

    #[tokio::test]
    async fn a_datacenter_filter_naming_a_missing_datacenter_lists_the_existing_ones() {
        let fake = start(estate(1)).await;
        let client = fake.signed_client(manual_clock(0).0).await;
        let wanted = ["datacenter10".to_string(), "datacenter869".to_string()];
        let err = client
            .snapshot(&Services::All, Some(&wanted), ts())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "datacenter 'datacenter869' not found in {SERVICE}; existing datacenters: \
                 {SERVICE}/datacenter10, {SERVICE}/datacenter20"
            )
        );
    }

    #[tokio::test]
    async fn an_unknown_service_is_the_apis_404() {
        let fake = start(estate(1)).await;
        let client = fake.signed_client(manual_clock(0).0).await;
        let err = client
            .snapshot(&Services::Named(vec!["pcc-nope".into()]), None, ts())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert!(
            err.to_string()
                .contains("/dedicatedCloud/pcc-nope/datacenter"),
            "{err}"
        );
    }
}
