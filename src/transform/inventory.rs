//! The inventory tables: one row per datacenter, host, VM and filer of a snapshot, partitioned
//! like the metrics by the snapshot's UTC date (or month, and service when asked), sorted by
//! (service_name, datacenter_id, id).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;

use super::columns::{Cell, ColumnBuilder};
use super::schema::{self, TableDef};
use super::{ColumnError, TransformError};
use crate::domain::partition::PartitionKey;
use crate::domain::table::Table;
use crate::job::PartitionBy;
use crate::ovh::inventory::{datacenter_tag, Inventory};
use crate::ovh::model::{Datacenter, Filer, Host, Vm};

/// Where a row sits in its file: (service_name, datacenter_id, object id).
type SortKey = (String, Option<i64>, i64);

/// The rows of one table, grouped by partition.
type Rows = BTreeMap<PartitionKey, Vec<(SortKey, Vec<Cell>)>>;

/// The four inventory tables of a snapshot: (table, partition, batch), partitioned like the
/// metrics by the snapshot's date.
pub fn inventory_tables(
    inventory: &Inventory,
    partitioning: &[PartitionBy],
) -> Result<Vec<(Table, PartitionKey, RecordBatch)>, TransformError> {
    let snapshot_ms = inventory.snapshot_ts.timestamp_millis();
    let mut out = Vec::new();
    let tables = Table::ALL.into_iter().filter(|t| t.component().is_none());
    for table in tables {
        let def = schema::table(table);
        let mut rows = Rows::new();
        let mut add = |service: &str, sort: SortKey, value: &dyn Fn(&str) -> Option<Cell>| {
            let cells = def
                .columns
                .iter()
                .map(|c| {
                    let cell = match c.name {
                        "snapshot_ts" => Some(Cell::Ts(snapshot_ms)),
                        "service_name" => Some(Cell::str(Some(service))),
                        other => value(other),
                    };
                    cell.ok_or(TransformError::NoSource {
                        table: def.name,
                        column: c.name,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let key = crate::domain::partition::key(partitioning, Some(service), snapshot_ms);
            rows.entry(key).or_default().push((sort, cells));
            Ok::<(), TransformError>(())
        };
        for service in &inventory.services {
            let sn = service.service_name.as_str();
            for dc in &service.datacenters {
                let d = &dc.datacenter;
                let tag = datacenter_tag(sn, &d.name);
                let at = |c: &str| dc_columns(c, d, &tag);
                match table {
                    Table::DatacenterInventory => {
                        add(sn, (sn.into(), Some(d.datacenter_id), 0), &|c| {
                            at(c).or_else(|| datacenter_cell(c, d))
                        })?
                    }
                    Table::HostInventory => {
                        for h in &dc.hosts {
                            add(sn, (sn.into(), Some(d.datacenter_id), h.host_id), &|c| {
                                at(c).or_else(|| host_cell(c, h))
                            })?;
                        }
                    }
                    Table::VmInventory => {
                        for v in &dc.vms {
                            add(sn, (sn.into(), Some(d.datacenter_id), v.vm_id), &|c| {
                                at(c).or_else(|| vm_cell(c, v))
                            })?;
                        }
                    }
                    Table::FilerInventory => {
                        for f in &dc.filers {
                            add(sn, (sn.into(), Some(d.datacenter_id), f.filer_id), &|c| {
                                at(c).or_else(|| filer_cell(c, f))
                            })?;
                        }
                    }
                    Table::VmMetrics | Table::HostMetrics | Table::FilerMetrics => {}
                }
            }
            if table == Table::FilerInventory {
                // Shared datastores belong to the service, not to one datacenter.
                for f in &service.filers {
                    add(sn, (sn.into(), None, f.filer_id), &|c| match c {
                        "datacenter_id" => Some(Cell::I64(None)),
                        "datacenter" => Some(Cell::Str(None)),
                        c => filer_cell(c, f),
                    })?;
                }
            }
        }
        for (key, mut rows) in rows {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            out.push((table, key, build(&def, rows)?));
        }
    }
    Ok(out)
}

/// Writes rows (already in order) into a batch of `def`.
fn build(def: &TableDef, rows: Vec<(SortKey, Vec<Cell>)>) -> Result<RecordBatch, TransformError> {
    let table = def.name;
    let mut columns = Vec::with_capacity(def.columns.len());
    for (i, c) in def.columns.iter().enumerate() {
        let err = |source| TransformError::Column {
            table,
            column: c.name,
            source,
        };
        let mut builder = ColumnBuilder::for_type(&c.data_type, rows.len()).ok_or(err(
            ColumnError::Mismatch {
                expected: "a supported type",
            },
        ))?;
        for (_, cells) in &rows {
            builder.repeat(&cells[i], 1).map_err(err)?;
        }
        columns.push(builder.finish(&c.data_type).map_err(err)?);
    }
    RecordBatch::try_new(Arc::new(def.schema()), columns)
        .map_err(|source| TransformError::Arrow { table, source })
}

/// The columns every per-datacenter row carries.
fn dc_columns(column: &str, d: &Datacenter, tag: &str) -> Option<Cell> {
    Some(match column {
        "datacenter_id" => Cell::I64(Some(d.datacenter_id)),
        "datacenter" => Cell::str(Some(tag)),
        _ => return None,
    })
}

fn datacenter_cell(column: &str, d: &Datacenter) -> Option<Cell> {
    Some(match column {
        "name" => Cell::str(Some(&d.name)),
        "commercial_name" => Cell::str(d.commercial_name.as_deref()),
        "commercial_range_name" => Cell::str(d.commercial_range_name.as_deref()),
        "description" => Cell::str(d.description.as_deref()),
        "version" => Cell::str(d.version.as_deref()),
        "is_removable" => Cell::Bool(d.is_removable),
        "horizon_view_name" => Cell::str(d.horizon_view_name.as_deref()),
        _ => return None,
    })
}

fn host_cell(column: &str, h: &Host) -> Option<Cell> {
    Some(match column {
        "host_id" => Cell::I64(Some(h.host_id)),
        "name" => Cell::str(Some(&h.name)),
        "profile" => Cell::str(h.profile.as_deref()),
        "profile_code" => Cell::str(h.profile_code.as_deref()),
        "rack" => Cell::str(h.rack.as_deref()),
        "state" => Cell::str(h.state.as_deref()),
        "billing_type" => Cell::str(h.billing_type.as_deref()),
        "cpu_value" => Cell::F64(h.cpu.as_ref().map(|u| u.value)),
        "cpu_unit" => Cell::str(h.cpu.as_ref().map(|u| u.unit.as_str())),
        "ram_value" => Cell::I64(h.ram.as_ref().map(|u| u.value)),
        "ram_unit" => Cell::str(h.ram.as_ref().map(|u| u.unit.as_str())),
        "cluster_name" => Cell::str(h.cluster_name.as_deref()),
        "connection_state" => Cell::str(h.connection_state.as_deref()),
        "cpu_max" => Cell::I64(h.cpu_max),
        "cpu_max_core" => Cell::I64(h.cpu_max_core),
        "cpu_used" => Cell::I64(h.cpu_used),
        "cpu_num" => Cell::I64(h.cpu_num),
        "in_maintenance" => Cell::Bool(h.in_maintenance),
        "memory_used" => Cell::F64(h.memory_used),
        "parent_host_id" => Cell::I64(h.parent_host_id),
        "resource_name" => Cell::str(h.resource_name.as_deref()),
        "uptime" => Cell::I64(h.uptime),
        "vm_total" => Cell::I64(h.vm_total),
        "vm_vcpu_total" => Cell::I64(h.vm_vcpu_total),
        _ => return None,
    })
}

fn vm_cell(column: &str, v: &Vm) -> Option<Cell> {
    Some(match column {
        "vm_id" => Cell::I64(Some(v.vm_id)),
        "mo_ref" => Cell::str(Some(&v.mo_ref)),
        "power_state" => Cell::str(Some(&v.power_state)),
        "name" => Cell::str(v.name.as_deref()),
        "host_name" => Cell::str(v.host_name.as_deref()),
        "cluster_name" => Cell::str(v.cluster_name.as_deref()),
        "folder_name" => Cell::str(v.folder_name.as_deref()),
        "guest_os_family" => Cell::str(v.guest_os_family.as_deref()),
        "license" => Cell::str(v.license.as_deref()),
        "cpu_max" => Cell::F64(v.cpu_max),
        "cpu_used" => Cell::I64(v.cpu_used),
        "cpu_num" => Cell::I64(v.cpu_num),
        "cpu_ready" => Cell::F64(v.cpu_ready),
        "cpu_ready_percent" => Cell::F64(v.cpu_ready_percent),
        "memory_max" => Cell::I64(v.memory_max),
        "memory_used" => Cell::I64(v.memory_used),
        "memory_tps" => Cell::str(v.memory_tps.as_deref()),
        "net_rx" => Cell::F64(v.net_rx),
        "net_tx" => Cell::F64(v.net_tx),
        "net_packet_rx" => Cell::F64(v.net_packet_rx),
        "net_packet_tx" => Cell::F64(v.net_packet_tx),
        "read_rate" => Cell::F64(v.read_rate),
        "write_rate" => Cell::F64(v.write_rate),
        "read_latency" => Cell::F64(v.read_latency),
        "write_latency" => Cell::F64(v.write_latency),
        "read_per_second" => Cell::F64(v.read_per_second),
        "write_per_second" => Cell::F64(v.write_per_second),
        "snapshot_num" => Cell::I64(v.snapshot_num),
        "vmware_tools" => Cell::str(v.vmware_tools.as_deref()),
        "vmware_tools_version" => Cell::str(v.vmware_tools_version.as_deref()),
        _ => return None,
    })
}

fn filer_cell(column: &str, f: &Filer) -> Option<Cell> {
    Some(match column {
        "filer_id" => Cell::I64(Some(f.filer_id)),
        "name" => Cell::str(Some(&f.name)),
        "full_profile" => Cell::str(f.full_profile.as_deref()),
        "profile" => Cell::str(f.profile.as_deref()),
        "master" => Cell::str(f.master.as_deref()),
        "slave" => Cell::str(f.slave.as_deref()),
        "state" => Cell::str(f.state.as_deref()),
        "is_managed_by_ovh" => Cell::Bool(f.is_managed_by_ovh),
        "size_value" => Cell::I64(f.size.as_ref().map(|u| u.value)),
        "size_unit" => Cell::str(f.size.as_ref().map(|u| u.unit.as_str())),
        "active_node" => Cell::str(f.active_node.as_deref()),
        "billing_type" => Cell::str(f.billing_type.as_deref()),
        "connection_state" => Cell::str(f.connection_state.as_deref()),
        "resource_name" => Cell::str(f.resource_name.as_deref()),
        "space_free" => Cell::F64(f.space_free),
        "space_provisionned" => Cell::F64(f.space_provisionned),
        "space_used" => Cell::F64(f.space_used),
        "vm_total" => Cell::I64(f.vm_total),
        _ => return None,
    })
}
