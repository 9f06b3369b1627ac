//! The inventory snapshot indexed for the join onto metric series: datacenter tag → datacenter,
//! then entity tag → object within it.
//!
//! Keys follow `reference/ovh-apiv6.md` ("How metric tags map onto the models"): the
//! `datacenter` tag is `{serviceName}_{Datacenter.name}`, `host` is `Host.name` (the IP), `vm` is
//! `Vm.moRef` and `datastore` is `Filer.name`, looked up among the datacenter's filers first and
//! then among the service's shared filers. When two objects share a key within one datacenter the
//! first one in the snapshot wins.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::ovh::inventory::{datacenter_tag, Inventory};
use crate::ovh::model::{Filer, Host, Vm};

/// The inventory, indexed for the join: (datacenter tag, entity tag value) → object.
#[derive(Debug)]
pub struct InventoryIndex {
    pub snapshot_ts: DateTime<Utc>,
    datacenters: HashMap<String, DatacenterEntry>,
}

#[derive(Debug)]
struct DatacenterEntry {
    service_name: String,
    datacenter_id: i64,
    vms: HashMap<String, Vm>,
    hosts: HashMap<String, Host>,
    filers: HashMap<String, Filer>,
}

impl InventoryIndex {
    pub fn new(inventory: &Inventory) -> InventoryIndex {
        let mut datacenters = HashMap::new();
        for (service, dc) in inventory.datacenters() {
            let tag = datacenter_tag(&service.service_name, &dc.datacenter.name);
            let mut entry = DatacenterEntry {
                service_name: service.service_name.clone(),
                datacenter_id: dc.datacenter.datacenter_id,
                vms: HashMap::with_capacity(dc.vms.len()),
                hosts: HashMap::with_capacity(dc.hosts.len()),
                filers: HashMap::with_capacity(dc.filers.len() + service.filers.len()),
            };
            for vm in &dc.vms {
                entry
                    .vms
                    .entry(vm.mo_ref.clone())
                    .or_insert_with(|| vm.clone());
            }
            for host in &dc.hosts {
                entry
                    .hosts
                    .entry(host.name.clone())
                    .or_insert_with(|| host.clone());
            }
            // The datacenter's own filers first: a shared filer never hides one of them.
            for filer in dc.filers.iter().chain(&service.filers) {
                entry
                    .filers
                    .entry(filer.name.clone())
                    .or_insert_with(|| filer.clone());
            }
            datacenters.entry(tag).or_insert(entry);
        }
        InventoryIndex {
            snapshot_ts: inventory.snapshot_ts,
            datacenters,
        }
    }

    /// An index of an empty snapshot taken at `snapshot_ts`: every join comes back empty.
    pub fn empty(snapshot_ts: DateTime<Utc>) -> InventoryIndex {
        InventoryIndex {
            snapshot_ts,
            datacenters: HashMap::new(),
        }
    }

    /// `datacenterId` of the datacenter a `datacenter` tag names.
    pub fn datacenter_id(&self, datacenter_tag: &str) -> Option<i64> {
        self.datacenters
            .get(datacenter_tag)
            .map(|d| d.datacenter_id)
    }

    pub fn vm(&self, datacenter_tag: &str, mo_ref: &str) -> Option<&Vm> {
        self.datacenters.get(datacenter_tag)?.vms.get(mo_ref)
    }

    pub fn host(&self, datacenter_tag: &str, name: &str) -> Option<&Host> {
        self.datacenters.get(datacenter_tag)?.hosts.get(name)
    }

    pub fn filer(&self, datacenter_tag: &str, name: &str) -> Option<&Filer> {
        self.datacenters.get(datacenter_tag)?.filers.get(name)
    }

    /// The service a series belongs to: its `servicename` tag when present (OVH adds it), else
    /// the service whose datacenter the `datacenter` tag names, else that tag up to its last `_`
    /// (the tag is `{serviceName}_{Datacenter.name}`, and datacenter names carry no `_`), else
    /// none.
    pub fn service_name<'a>(
        &'a self,
        servicename_tag: Option<&'a str>,
        datacenter_tag: Option<&'a str>,
    ) -> Option<&'a str> {
        if let Some(sn) = servicename_tag.filter(|s| !s.is_empty()) {
            return Some(sn);
        }
        let dc = datacenter_tag?;
        if let Some(entry) = self.datacenters.get(dc) {
            return Some(&entry.service_name);
        }
        dc.rsplit_once('_')
            .map(|(sn, _)| sn)
            .filter(|sn| !sn.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::inventory;
    use super::*;

    #[test]
    fn joins_by_datacenter_tag_and_entity() {
        let index = InventoryIndex::new(&inventory());
        let dc = "pcc-1-2-3-4_datacenter869";
        assert_eq!(index.datacenter_id(dc), Some(869));
        assert_eq!(index.vm(dc, "vm-1254").unwrap().vm_id, 1254);
        assert!(index.vm(dc, "vm-404").is_none());
        assert!(index.vm("pcc-other_datacenter869", "vm-1254").is_none());
        assert_eq!(index.host(dc, "172.17.86.51").unwrap().host_id, 51);
        // A datacenter filer, and one shared by the whole service.
        assert_eq!(index.filer(dc, "pcc-000443").unwrap().filer_id, 443);
        assert_eq!(index.filer(dc, "pcc-000999").unwrap().filer_id, 999);
    }

    #[test]
    fn service_name_rule() {
        let index = InventoryIndex::new(&inventory());
        let dc = Some("pcc-1-2-3-4_datacenter869");
        assert_eq!(index.service_name(Some("pcc-tag"), dc), Some("pcc-tag"));
        assert_eq!(index.service_name(None, dc), Some("pcc-1-2-3-4"));
        assert_eq!(
            index.service_name(None, Some("pcc-9-9-9-9_datacenter1")),
            Some("pcc-9-9-9-9"),
            "unknown datacenter: the tag's prefix"
        );
        assert_eq!(index.service_name(None, Some("nounderscore")), None);
        assert_eq!(index.service_name(None, None), None);
    }
}
