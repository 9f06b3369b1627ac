//! The inventory snapshot: every service, datacenter, host, VM and filer the job covers, read once
//! per run from APIv6 and joined onto the metric series by the transform stage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Datacenter, Filer, Host, Vm};

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
