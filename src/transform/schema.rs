//! The table contracts: every column of every table (name, Arrow type, nullable, meaning).
//! `schemas/tables/*.json` is what `vscope-export schema TABLE --json` prints from here, and a
//! test checks that the written Parquet has exactly these columns.
//!
//! Conventions that hold for every table:
//! - timestamps are `Timestamp(Millisecond, "UTC")` (DuckDB: `TIMESTAMP WITH TIME ZONE`);
//! - strings are plain `Utf8` in Arrow and dictionary-encoded in Parquet, so every reader sees a
//!   plain string column (no pandas categoricals);
//! - `date` and `month` are not stored in the files: hive readers add them from the partition
//!   path. `service_name` is always a column, also when it is a partition key too, so that a
//!   table has one file schema whatever the job's partitioning;
//! - inventory columns keep the APIv6 model's field names in snake_case; `UnitAndValue` fields
//!   become `<field>_value` and `<field>_unit`, in the unit OVH gave (not normalised).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};

use crate::domain::table::Table;

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: &'static str,
    pub data_type: DataType,
    pub nullable: bool,
    pub description: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub table: Table,
    /// The table's name, `table`'s.
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<ColumnDef>,
}

impl TableDef {
    /// The Arrow schema of the table's batches and files.
    pub fn schema(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        )
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// `Timestamp(Millisecond, "UTC")`: written as a Parquet TIMESTAMP with `isAdjustedToUTC`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// `Map(Utf8 → Utf8)` with the field names Parquet's LogicalTypes.md gives a MAP (`key_value`,
/// `key`, `value`), not arrow-rs' defaults (`entries`, `keys`, `values`): readers are asked to be
/// lenient about those names, but fastparquet is not and reads every map as `None`. DuckDB reads
/// it as `MAP(VARCHAR, VARCHAR)`.
pub fn tags_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

fn col(
    name: &'static str,
    data_type: DataType,
    nullable: bool,
    description: &'static str,
) -> ColumnDef {
    ColumnDef {
        name,
        data_type,
        nullable,
        description,
    }
}

fn utf8(name: &'static str, description: &'static str) -> ColumnDef {
    col(name, DataType::Utf8, true, description)
}

fn int64(name: &'static str, description: &'static str) -> ColumnDef {
    col(name, DataType::Int64, true, description)
}

fn float64(name: &'static str, description: &'static str) -> ColumnDef {
    col(name, DataType::Float64, true, description)
}

fn boolean(name: &'static str, description: &'static str) -> ColumnDef {
    col(name, DataType::Boolean, true, description)
}

/// The columns every metrics table starts with, up to (not including) the entity columns.
fn metric_head() -> Vec<ColumnDef> {
    vec![
        col(
            "ts",
            timestamp_type(),
            false,
            "Time of the point (UTC, milliseconds). The `date` (or `month`) partition is derived from it in UTC.",
        ),
        col(
            "metric",
            DataType::Utf8,
            false,
            "Metric name as OVH names it, e.g. `vm.cpu.usage`.",
        ),
        col(
            "value",
            DataType::Float64,
            true,
            "The point's value; null where the endpoint filled a gap with null or NaN.",
        ),
        utf8(
            "service_name",
            "Hosted Private Cloud service (e.g. `pcc-37-187-228-180`): the series' `servicename` tag when present, else the service whose datacenter matches the `datacenter` tag, else the `datacenter` tag up to its last `_`; null when the series has none of these.",
        ),
        utf8(
            "datacenter",
            "The `datacenter` tag, `{serviceName}_{Datacenter.name}` (e.g. `pcc-37-187-228-180_datacenter869`); null when the series has no such tag (aggregated queries).",
        ),
    ]
}

/// The columns every metrics table ends with.
fn metric_tail() -> Vec<ColumnDef> {
    vec![
        col(
            "snapshot_ts",
            timestamp_type(),
            false,
            "When the inventory snapshot the row was joined with was taken (UTC).",
        ),
        col(
            "tags",
            tags_type(),
            false,
            "Every tag of the series that has no column of its own (e.g. OVH's `env`, `servicetype`); an empty map when there is none. Nothing is dropped.",
        ),
    ]
}

fn datacenter_id_joined() -> ColumnDef {
    int64(
        "datacenter_id",
        "APIv6 `datacenterId` of the datacenter named by the `datacenter` tag; null when it is not in the inventory snapshot.",
    )
}

fn vm_metrics() -> TableDef {
    let mut columns = metric_head();
    columns.extend([
        utf8("vm", "The `vm` tag: the VM's vCenter managed object reference (`Vm.moRef`, e.g. `vm-1254`)."),
        datacenter_id_joined(),
        int64("vm_id", "APIv6 `vmId`. This and the following columns come from the inventory snapshot and are null when the VM is not in it (e.g. deleted since)."),
        utf8("vm_name", "`Vm.name`, the VM's display name."),
        utf8("host_name", "`Vm.hostName`, the host the VM ran on at snapshot time."),
        utf8("cluster_name", "`Vm.clusterName`."),
        utf8("folder_name", "`Vm.folderName`."),
        utf8("power_state", "`Vm.powerState`: deleted | poweredOff | poweredOn | suspended."),
        utf8("guest_os_family", "`Vm.guestOsFamily`."),
        int64("cpu_num", "`Vm.cpuNum`, number of vCPUs."),
        int64("memory_max_mb", "`Vm.memoryMax`, configured memory in MB."),
    ]);
    columns.extend(metric_tail());
    TableDef {
        table: Table::VmMetrics,
        name: Table::VmMetrics.name(),
        description: "One row per VM metric point, joined with the VM's inventory. Sorted by (vm, metric, ts) within a file.",
        columns,
    }
}

fn host_metrics() -> TableDef {
    let mut columns = metric_head();
    columns.extend([
        utf8("host", "The `host` tag: the host's IP address (`Host.name`, e.g. `172.17.86.51`)."),
        utf8("nicname", "The `nicname` tag (physical NIC, e.g. `vmnic0`) for network metrics; null for metrics that have none."),
        datacenter_id_joined(),
        int64("host_id", "APIv6 `hostId`. This and the following columns come from the inventory snapshot and are null when the host is not in it."),
        utf8("cluster_name", "`Host.clusterName`."),
        utf8("profile", "`Host.profile`, the commercial host profile."),
        utf8("state", "`Host.state`: adding | delivered | error | removing | unknown."),
        utf8("connection_state", "`Host.connectionState`: connected | disconnected | notResponding."),
        boolean("in_maintenance", "`Host.inMaintenance`."),
        int64("cpu_num", "`Host.cpuNum`, number of physical CPU cores."),
    ]);
    columns.extend(metric_tail());
    TableDef {
        table: Table::HostMetrics,
        name: Table::HostMetrics.name(),
        description: "One row per host metric point, joined with the host's inventory. Sorted by (host, nicname, metric, ts) within a file.",
        columns,
    }
}

fn filer_metrics() -> TableDef {
    let mut columns = metric_head();
    columns.extend([
        utf8("datastore", "The `datastore` tag: the filer's name (`Filer.name`, e.g. `pcc-000443`)."),
        datacenter_id_joined(),
        int64("filer_id", "APIv6 `filerId`. This and the following columns come from the inventory snapshot (the datacenter's filers, then the service's shared ones) and are null when the filer is not in it."),
        utf8("filer_profile", "`Filer.profile`."),
        utf8("filer_state", "`Filer.state`."),
        int64("size_value", "`Filer.size.value`, the datastore's size in `size_unit`."),
        utf8("size_unit", "`Filer.size.unit`, as OVH gives it (e.g. `GB`, `TB`); not normalised."),
    ]);
    columns.extend(metric_tail());
    TableDef {
        table: Table::FilerMetrics,
        name: Table::FilerMetrics.name(),
        description: "One row per datastore metric point, joined with the filer's inventory. Sorted by (datastore, metric, ts) within a file.",
        columns,
    }
}

/// The columns every inventory table starts with.
fn inventory_head() -> Vec<ColumnDef> {
    vec![
        col(
            "snapshot_ts",
            timestamp_type(),
            false,
            "When the inventory snapshot was taken (UTC); the `date`/`month` partition is its UTC date.",
        ),
        col(
            "service_name",
            DataType::Utf8,
            false,
            "Hosted Private Cloud service name, e.g. `pcc-37-187-228-180`.",
        ),
    ]
}

fn datacenter_inventory() -> TableDef {
    let mut columns = inventory_head();
    columns.extend([
        col(
            "datacenter_id",
            DataType::Int64,
            false,
            "APIv6 `datacenterId`.",
        ),
        col(
            "datacenter",
            DataType::Utf8,
            false,
            "The metrics' `datacenter` tag for this datacenter: `{serviceName}_{name}`.",
        ),
        col(
            "name",
            DataType::Utf8,
            false,
            "`Datacenter.name`, e.g. `datacenter869`.",
        ),
        utf8("commercial_name", "`Datacenter.commercialName`."),
        utf8("commercial_range_name", "`Datacenter.commercialRangeName`."),
        utf8("description", "`Datacenter.description`."),
        utf8("version", "`Datacenter.version`."),
        boolean("is_removable", "`Datacenter.isRemovable`."),
        utf8("horizon_view_name", "`Datacenter.horizonViewName`."),
    ]);
    TableDef {
        table: Table::DatacenterInventory,
        name: Table::DatacenterInventory.name(),
        description: "One row per datacenter per inventory snapshot.",
        columns,
    }
}

fn host_inventory() -> TableDef {
    let mut columns = inventory_head();
    columns.extend([
        col(
            "datacenter_id",
            DataType::Int64,
            false,
            "APIv6 `datacenterId` of the host's datacenter.",
        ),
        col(
            "datacenter",
            DataType::Utf8,
            false,
            "The metrics' `datacenter` tag of the host's datacenter.",
        ),
        col("host_id", DataType::Int64, false, "APIv6 `hostId`."),
        col(
            "name",
            DataType::Utf8,
            false,
            "`Host.name`: the host's IP address, equal to the metrics' `host` tag.",
        ),
        utf8("profile", "`Host.profile`."),
        utf8("profile_code", "`Host.profileCode`."),
        utf8("rack", "`Host.rack`."),
        utf8(
            "state",
            "`Host.state`: adding | delivered | error | removing | unknown.",
        ),
        utf8("billing_type", "`Host.billingType`."),
        float64("cpu_value", "`Host.cpu.value`, in `cpu_unit`."),
        utf8("cpu_unit", "`Host.cpu.unit`, as OVH gives it."),
        int64("ram_value", "`Host.ram.value`, in `ram_unit`."),
        utf8("ram_unit", "`Host.ram.unit`, as OVH gives it."),
        utf8("cluster_name", "`Host.clusterName`."),
        utf8(
            "connection_state",
            "`Host.connectionState`: connected | disconnected | notResponding.",
        ),
        int64("cpu_max", "`Host.cpuMax`, MHz."),
        int64("cpu_max_core", "`Host.cpuMaxCore`, MHz."),
        int64("cpu_used", "`Host.cpuUsed`, MHz."),
        int64("cpu_num", "`Host.cpuNum`."),
        boolean("in_maintenance", "`Host.inMaintenance`."),
        float64("memory_used", "`Host.memoryUsed`, MB."),
        int64("parent_host_id", "`Host.parentHostId`."),
        utf8("resource_name", "`Host.resourceName`."),
        int64("uptime", "`Host.uptime`, seconds."),
        int64("vm_total", "`Host.vmTotal`."),
        int64("vm_vcpu_total", "`Host.vmVcpuTotal`."),
    ]);
    TableDef {
        table: Table::HostInventory,
        name: Table::HostInventory.name(),
        description: "One row per host per inventory snapshot.",
        columns,
    }
}

fn vm_inventory() -> TableDef {
    let mut columns = inventory_head();
    columns.extend([
        col(
            "datacenter_id",
            DataType::Int64,
            false,
            "APIv6 `datacenterId` of the VM's datacenter.",
        ),
        col(
            "datacenter",
            DataType::Utf8,
            false,
            "The metrics' `datacenter` tag of the VM's datacenter.",
        ),
        col("vm_id", DataType::Int64, false, "APIv6 `vmId`."),
        col(
            "mo_ref",
            DataType::Utf8,
            false,
            "`Vm.moRef`, equal to the metrics' `vm` tag.",
        ),
        col(
            "power_state",
            DataType::Utf8,
            false,
            "`Vm.powerState`: deleted | poweredOff | poweredOn | suspended.",
        ),
        utf8("name", "`Vm.name`."),
        utf8("host_name", "`Vm.hostName`."),
        utf8("cluster_name", "`Vm.clusterName`."),
        utf8("folder_name", "`Vm.folderName`."),
        utf8("guest_os_family", "`Vm.guestOsFamily`."),
        utf8("license", "`Vm.license`."),
        float64("cpu_max", "`Vm.cpuMax`, MHz."),
        int64("cpu_used", "`Vm.cpuUsed`, MHz."),
        int64("cpu_num", "`Vm.cpuNum`."),
        float64("cpu_ready", "`Vm.cpuReady`, ms."),
        float64("cpu_ready_percent", "`Vm.cpuReadyPercent`."),
        int64("memory_max", "`Vm.memoryMax`, MB."),
        int64("memory_used", "`Vm.memoryUsed`, MB."),
        utf8("memory_tps", "`Vm.memoryTps`."),
        float64("net_rx", "`Vm.netRx`, KB/s."),
        float64("net_tx", "`Vm.netTx`, KB/s."),
        float64("net_packet_rx", "`Vm.netPacketRx`."),
        float64("net_packet_tx", "`Vm.netPacketTx`."),
        float64("read_rate", "`Vm.readRate`, KB/s."),
        float64("write_rate", "`Vm.writeRate`, KB/s."),
        float64("read_latency", "`Vm.readLatency`, ms."),
        float64("write_latency", "`Vm.writeLatency`, ms."),
        float64("read_per_second", "`Vm.readPerSecond`."),
        float64("write_per_second", "`Vm.writePerSecond`."),
        int64("snapshot_num", "`Vm.snapshotNum`."),
        utf8("vmware_tools", "`Vm.vmwareTools`."),
        utf8("vmware_tools_version", "`Vm.vmwareToolsVersion`."),
    ]);
    TableDef {
        table: Table::VmInventory,
        name: Table::VmInventory.name(),
        description: "One row per VM per inventory snapshot (scalar fields only; nested lists are not exported).",
        columns,
    }
}

fn filer_inventory() -> TableDef {
    let mut columns = inventory_head();
    columns.extend([
        int64("datacenter_id", "APIv6 `datacenterId` of the filer's datacenter; null for a datastore shared by the whole service."),
        utf8("datacenter", "The metrics' `datacenter` tag of the filer's datacenter; null for a shared datastore."),
        col("filer_id", DataType::Int64, false, "APIv6 `filerId`."),
        col("name", DataType::Utf8, false, "`Filer.name`, equal to the metrics' `datastore` tag."),
        utf8("full_profile", "`Filer.fullProfile`."),
        utf8("profile", "`Filer.profile`."),
        utf8("master", "`Filer.master`."),
        utf8("slave", "`Filer.slave`."),
        utf8("state", "`Filer.state`."),
        boolean("is_managed_by_ovh", "`Filer.isManagedByOvh`."),
        int64("size_value", "`Filer.size.value`, in `size_unit`."),
        utf8("size_unit", "`Filer.size.unit`, as OVH gives it; not normalised."),
        utf8("active_node", "`Filer.activeNode`."),
        utf8("billing_type", "`Filer.billingType`."),
        utf8("connection_state", "`Filer.connectionState`: offline | online."),
        utf8("resource_name", "`Filer.resourceName`."),
        float64("space_free", "`Filer.spaceFree`, GB."),
        float64("space_provisionned", "`Filer.spaceProvisionned`, GB (OVH's spelling)."),
        float64("space_used", "`Filer.spaceUsed`, GB."),
        int64("vm_total", "`Filer.vmTotal`."),
    ]);
    TableDef {
        table: Table::FilerInventory,
        name: Table::FilerInventory.name(),
        description: "One row per datastore per inventory snapshot: each datacenter's filers and the service's shared ones.",
        columns,
    }
}

/// Every table, metrics tables first.
pub fn tables() -> Vec<TableDef> {
    Table::ALL.into_iter().map(table).collect()
}

/// The definition of `table`.
pub fn table(table: Table) -> TableDef {
    match table {
        Table::VmMetrics => vm_metrics(),
        Table::HostMetrics => host_metrics(),
        Table::FilerMetrics => filer_metrics(),
        Table::VmInventory => vm_inventory(),
        Table::HostInventory => host_inventory(),
        Table::FilerInventory => filer_inventory(),
        Table::DatacenterInventory => datacenter_inventory(),
    }
}

/// The metrics table of a component.
pub fn metrics_table(component: crate::job::Component) -> TableDef {
    match component {
        crate::job::Component::Vm => vm_metrics(),
        crate::job::Component::Host => host_metrics(),
        crate::job::Component::Filer => filer_metrics(),
    }
}

/// What `vscope-export schema TABLE --json` prints and `schemas/tables/<table>.json` holds.
pub fn to_json(table: &TableDef) -> serde_json::Value {
    serde_json::json!({
        "table": table.name,
        "description": table.description,
        "columns": table
            .columns
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "type": c.data_type.to_string(),
                    "nullable": c.nullable,
                    "description": c.description,
                })
            })
            .collect::<Vec<_>>(),
    })
}

/// The text of `schemas/tables/<table>.json`.
pub fn to_json_file(table: &TableDef) -> String {
    // Serializing a `serde_json::Value` cannot fail: its map keys are strings.
    let mut text = serde_json::to_string_pretty(&to_json(table)).unwrap_or_default();
    text.push('\n');
    text
}

/// A type as people read it: the Arrow name, with a map shortened to `Map(Utf8, Utf8)` (the JSON
/// form keeps Arrow's full spelling).
fn short_type(data_type: &DataType) -> String {
    if let DataType::Map(entries, _) = data_type {
        if let DataType::Struct(fields) = entries.data_type() {
            if let [k, v] = &fields[..] {
                return format!("Map({}, {})", k.data_type(), v.data_type());
            }
        }
    }
    data_type.to_string()
}

/// A table for people: one aligned line per column (name, type, null/not null, meaning).
pub fn to_text(table: &TableDef) -> String {
    let types: Vec<String> = table
        .columns
        .iter()
        .map(|c| short_type(&c.data_type))
        .collect();
    let name_w = table
        .columns
        .iter()
        .map(|c| c.name.len())
        .chain(["column".len()])
        .max()
        .unwrap_or(0);
    let type_w = types
        .iter()
        .map(String::len)
        .chain(["type".len()])
        .max()
        .unwrap_or(0);
    let null_w = "not null".len();
    let mut out = format!("{}: {}\n\n", table.name, table.description);
    out.push_str(&format!(
        "{:name_w$}  {:type_w$}  {:null_w$}  description\n",
        "column", "type", "nullable"
    ));
    for (c, t) in table.columns.iter().zip(&types) {
        let null = if c.nullable { "null" } else { "not null" };
        out.push_str(&format!(
            "{:name_w$}  {:type_w$}  {:null_w$}  {}\n",
            c.name, t, null, c.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_are_up_to_date() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/tables");
        let regenerate = std::env::var_os("VSCOPE_UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for t in tables() {
            let path = format!("{dir}/{}.json", t.name);
            let expected = to_json_file(&t);
            if regenerate {
                std::fs::create_dir_all(dir).unwrap();
                std::fs::write(&path, &expected).unwrap();
                continue;
            }
            if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path);
            }
        }
        assert!(
            stale.is_empty(),
            "out of date: {stale:?}; regenerate with `VSCOPE_UPDATE_SCHEMAS=1 cargo test --lib schema_files`"
        );
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut names: Vec<String> = tables()
            .iter()
            .map(|t| format!("{}.json", t.name))
            .collect();
        names.sort();
        assert_eq!(files, names, "one file per table and no stale ones");
    }

    #[test]
    fn every_table_is_listed_once_with_unique_columns() {
        for t in tables() {
            assert_eq!(t.name, t.table.name());
        }
        for t in tables() {
            let mut cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            cols.sort();
            cols.dedup();
            assert_eq!(
                cols.len(),
                t.columns.len(),
                "{} has a duplicate column",
                t.name
            );
            assert!(
                t.column("date").is_none() && t.column("month").is_none(),
                "{}: partition columns live in the path only",
                t.name
            );
        }
    }

    #[test]
    fn json_and_text_show_types_as_readers_know_them() {
        let t = table(Table::HostMetrics);
        let json = to_json(&t);
        assert_eq!(json["table"], "host_metrics");
        let ts = &json["columns"][0];
        assert_eq!(ts["name"], "ts");
        assert_eq!(ts["type"], "Timestamp(ms, \"UTC\")");
        assert_eq!(ts["nullable"], false);
        let tags = json["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tags")
            .unwrap();
        assert_eq!(
            tags["type"],
            "Map(\"key_value\": non-null Struct(\"key\": non-null Utf8, \"value\": Utf8), unsorted)"
        );
        let text = to_text(&t);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("host_metrics: "));
        let header = lines[2];
        let desc_at = header.find("description").unwrap();
        for line in &lines[3..] {
            assert!(line.len() > desc_at, "{line}");
            assert_eq!(&line[desc_at - 2..desc_at], "  ", "aligned: {line}");
        }
        assert!(lines.iter().any(|l| l.starts_with("nicname ")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("tags ") && l.contains(" Map(Utf8, Utf8) ")));
    }
}
