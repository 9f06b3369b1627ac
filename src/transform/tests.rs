//! Tests of the transform stage with series and an inventory built by hand.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use chrono::{DateTime, Utc};

use super::*;
use crate::domain::partition::PartitionKey;
use crate::domain::table::Table;
use crate::job::{Component, PartitionBy};
use crate::load::layout;
use crate::ovh::inventory::{DatacenterInventory, Inventory, ServiceInventory};
use crate::ovh::model::{Filer, Host, UnitAndValue, Vm};
use crate::points::cents::ValuesSlice;
use crate::points::{PointsAt, Times, TsAt, ValuesAt};
use crate::tsdb::{OwnedSeries, Series};

pub(crate) const SN: &str = "pcc-1-2-3-4";
pub(crate) const DC: &str = "pcc-1-2-3-4_datacenter869";

pub(crate) fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn snapshot() -> DateTime<Utc> {
    "2026-11-24T06:00:00Z".parse().unwrap()
}

fn vm(id: i64, mo_ref: &str, name: &str) -> Vm {
    let mut vm: Vm = serde_json::from_value(serde_json::json!({
        "vmId": id, "moRef": mo_ref, "powerState": "poweredOn"
    }))
    .unwrap();
    vm.name = Some(name.into());
    vm.host_name = Some("172.17.86.51".into());
    vm.cluster_name = Some("Cluster1".into());
    vm.guest_os_family = Some("linuxGuest".into());
    vm.cpu_num = Some(4);
    vm.memory_max = Some(8192);
    vm
}

fn filer(id: i64, name: &str) -> Filer {
    let mut f: Filer = serde_json::from_value(serde_json::json!({
        "filerId": id, "name": name
    }))
    .unwrap();
    f.profile = Some("3t-hybrid".into());
    f.size = Some(UnitAndValue {
        unit: "GB".into(),
        value: 3000,
    });
    f
}

/// One service with one datacenter (869): a host, two VMs, a filer, and a shared filer.
pub(crate) fn inventory() -> Inventory {
    let mut host: Host = serde_json::from_value(serde_json::json!({
        "hostId": 51, "name": "172.17.86.51"
    }))
    .unwrap();
    host.cluster_name = Some("Cluster1".into());
    host.profile = Some("L".into());
    host.connection_state = Some("connected".into());
    host.in_maintenance = Some(false);
    host.ram = Some(UnitAndValue {
        unit: "GB".into(),
        value: 256,
    });
    Inventory {
        snapshot_ts: snapshot(),
        services: vec![ServiceInventory {
            service_name: SN.into(),
            datacenters: vec![DatacenterInventory {
                datacenter: serde_json::from_value(serde_json::json!({
                    "datacenterId": 869, "name": "datacenter869", "commercialName": "Premier"
                }))
                .unwrap(),
                hosts: vec![host],
                vms: vec![vm(1254, "vm-1254", "web-1"), vm(7, "vm-7", "db-1")],
                filers: vec![filer(443, "pcc-000443")],
            }],
            filers: vec![filer(999, "pcc-000999")],
        }],
    }
}

fn owned(metric: &str, tags: &[(&str, &str)], points: &[(i64, f64)]) -> OwnedSeries {
    let mut tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tags.sort();
    OwnedSeries {
        metric: metric.into(),
        tags,
        timestamps_ms: points.iter().map(|p| p.0).collect(),
        values: points.iter().map(|p| p.1).collect(),
        ..OwnedSeries::default()
    }
}

fn borrow(s: &OwnedSeries) -> Series<'_> {
    Series {
        metric: &s.metric,
        tags: &s.tags,
        aggregate_tags: &s.aggregate_tags,
        query_index: s.query_index,
        timestamps_ms: &s.timestamps_ms,
        values: ValuesSlice::doubles(&s.values),
    }
}

fn vm_tags(vm: &str) -> Vec<(&str, &str)> {
    vec![
        ("datacenter", DC),
        ("vm", vm),
        ("env", "prod"),
        ("servicename", SN),
        ("servicetype", "dedicatedCloud"),
    ]
}

fn table(component: Component, partitioning: &[PartitionBy]) -> MetricsTable {
    MetricsTable::new(
        component,
        partitioning,
        Arc::new(InventoryIndex::new(&inventory())),
    )
}

/// Pushes every series over `[start, end)` and returns the finished partitions.
fn run(
    component: Component,
    partitioning: &[PartitionBy],
    series: &[OwnedSeries],
    start: i64,
    end: i64,
) -> Vec<(PartitionKey, RecordBatch)> {
    let mut t = table(component, partitioning);
    for s in series {
        t.push_series(&borrow(s), start, end);
    }
    t.finish().unwrap()
}

fn strs(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).unwrap();
    let col = arrow::compute::cast(col, &DataType::Utf8).unwrap();
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

fn i64s(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect()
}

fn f64s(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let col = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect()
}

fn times(batch: &RecordBatch, name: &str) -> Vec<i64> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<TimestampMillisecondType>()
        .values()
        .to_vec()
}

/// The `tags` map of each row as sorted (key, value) pairs.
fn tag_maps(batch: &RecordBatch) -> Vec<Vec<(String, String)>> {
    let map = batch.column_by_name("tags").unwrap().as_map();
    (0..map.len())
        .map(|i| {
            let entries = map.value(i);
            let k = entries.column(0).as_string::<i32>();
            let v = entries.column(1).as_string::<i32>();
            (0..k.len())
                .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
                .collect()
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn date_key(date: &str) -> PartitionKey {
    PartitionKey::new(vec![("date", s(date))])
}

const T0: &str = "2026-11-24T10:00:00Z";

#[test]
fn vm_points_are_joined_with_the_inventory() {
    let t0 = ms(T0);
    let series = [owned(
        "vm.cpu.usage",
        &vm_tags("vm-1254"),
        &[(t0, 12.5), (t0 + 20_000, 13.0)],
    )];
    let parts = run(
        Component::Vm,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 3_600_000,
    );
    assert_eq!(parts.len(), 1);
    let (key, b) = &parts[0];
    assert_eq!(key, &date_key("2026-11-24"));
    assert_eq!(b.num_rows(), 2);
    assert_eq!(
        b.schema().as_ref(),
        &schema::table(Table::VmMetrics).schema()
    );
    assert_eq!(times(b, "ts"), vec![t0, t0 + 20_000]);
    assert_eq!(strs(b, "metric"), vec![s("vm.cpu.usage"); 2]);
    assert_eq!(f64s(b, "value"), vec![Some(12.5), Some(13.0)]);
    assert_eq!(strs(b, "service_name"), vec![s(SN); 2]);
    assert_eq!(strs(b, "datacenter"), vec![s(DC); 2]);
    assert_eq!(strs(b, "vm"), vec![s("vm-1254"); 2]);
    assert_eq!(i64s(b, "datacenter_id"), vec![Some(869); 2]);
    assert_eq!(i64s(b, "vm_id"), vec![Some(1254); 2]);
    assert_eq!(strs(b, "vm_name"), vec![s("web-1"); 2]);
    assert_eq!(strs(b, "host_name"), vec![s("172.17.86.51"); 2]);
    assert_eq!(strs(b, "cluster_name"), vec![s("Cluster1"); 2]);
    assert_eq!(strs(b, "power_state"), vec![s("poweredOn"); 2]);
    assert_eq!(strs(b, "guest_os_family"), vec![s("linuxGuest"); 2]);
    assert_eq!(strs(b, "folder_name"), vec![None; 2]);
    assert_eq!(i64s(b, "cpu_num"), vec![Some(4); 2]);
    assert_eq!(i64s(b, "memory_max_mb"), vec![Some(8192); 2]);
    assert_eq!(
        times(b, "snapshot_ts"),
        vec![snapshot().timestamp_millis(); 2]
    );
    // OVH's extra tags are kept; the ones with a column of their own are not repeated.
    let expected = vec![
        ("env".to_string(), "prod".to_string()),
        ("servicetype".to_string(), "dedicatedCloud".to_string()),
    ];
    assert_eq!(tag_maps(b), vec![expected.clone(), expected]);
}

#[test]
fn a_deleted_vm_keeps_its_points_with_null_inventory_columns() {
    let t0 = ms(T0);
    let mut tags = vm_tags("vm-404");
    tags.retain(|(k, _)| *k != "servicename");
    let series = [owned("vm.mem.usage", &tags, &[(t0, 1.0)])];
    let parts = run(Component::Vm, &[PartitionBy::Date], &series, t0, t0 + 1000);
    let b = &parts[0].1;
    assert_eq!(b.num_rows(), 1);
    assert_eq!(strs(b, "vm"), vec![s("vm-404")]);
    for c in ["vm_id", "cpu_num", "memory_max_mb"] {
        assert_eq!(i64s(b, c), vec![None], "{c}");
    }
    for c in ["vm_name", "host_name", "cluster_name", "power_state"] {
        assert_eq!(strs(b, c), vec![None], "{c}");
    }
    // Its datacenter is still known, and without a servicename tag the service comes from it.
    assert_eq!(i64s(b, "datacenter_id"), vec![Some(869)]);
    assert_eq!(strs(b, "service_name"), vec![s(SN)]);
}

#[test]
fn gaps_become_null_values() {
    let t0 = ms(T0);
    let series = [owned(
        "vm.cpu.ready",
        &vm_tags("vm-7"),
        &[(t0, 1.0), (t0 + 20_000, f64::NAN), (t0 + 40_000, 3.0)],
    )];
    let parts = run(
        Component::Vm,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 60_000,
    );
    assert_eq!(f64s(&parts[0].1, "value"), vec![Some(1.0), None, Some(3.0)]);
}

#[test]
fn a_point_on_a_page_boundary_is_kept_once() {
    let t0 = ms(T0);
    let hour = 3_600_000;
    // OpenTSDB ranges are inclusive at both ends: both pages receive the boundary point.
    let page1 = owned(
        "vm.cpu.usage",
        &vm_tags("vm-7"),
        &[(t0, 1.0), (t0 + hour, 2.0)],
    );
    let page2 = owned(
        "vm.cpu.usage",
        &vm_tags("vm-7"),
        &[(t0 + hour, 2.0), (t0 + 2 * hour, 3.0)],
    );
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    assert_eq!(t.push_series(&borrow(&page1), t0, t0 + hour), 1);
    assert_eq!(t.push_series(&borrow(&page2), t0 + hour, t0 + 2 * hour), 1);
    assert_eq!(t.rows(), 2);
    let parts = t.finish().unwrap();
    assert_eq!(times(&parts[0].1, "ts"), vec![t0, t0 + hour]);
}

#[test]
fn points_are_routed_to_their_utc_date_across_midnight() {
    let before = ms("2026-11-24T23:59:40Z");
    let midnight = ms("2026-11-25T00:00:00Z");
    let series = [owned(
        "vm.cpu.usage",
        &vm_tags("vm-7"),
        &[(before, 1.0), (midnight, 2.0), (midnight + 20_000, 3.0)],
    )];
    let parts = run(
        Component::Vm,
        &[PartitionBy::Date],
        &series,
        before,
        midnight + 60_000,
    );
    let keys: Vec<_> = parts.iter().map(|p| p.0.clone()).collect();
    assert_eq!(keys, vec![date_key("2026-11-24"), date_key("2026-11-25")]);
    assert_eq!(times(&parts[0].1, "ts"), vec![before]);
    assert_eq!(times(&parts[1].1, "ts"), vec![midnight, midnight + 20_000]);
}

#[test]
fn month_and_service_partitions_follow_the_job_order() {
    let nov = ms("2026-11-30T23:59:40Z");
    let dec = ms("2026-12-01T00:00:00Z");
    let mut other = vm_tags("vm-9");
    other.retain(|(k, _)| *k != "servicename");
    other[0] = ("datacenter", "pcc-9-9-9-9_datacenter1");
    let series = [
        owned("vm.cpu.usage", &vm_tags("vm-7"), &[(nov, 1.0), (dec, 2.0)]),
        owned("vm.cpu.usage", &other, &[(dec, 5.0)]),
    ];
    let parts = run(
        Component::Vm,
        &[PartitionBy::ServiceName, PartitionBy::Month],
        &series,
        nov,
        dec + 1,
    );
    let keys: Vec<_> = parts.iter().map(|p| p.0.values().to_vec()).collect();
    let key = |sn: &str, m: &str| vec![("service_name", s(sn)), ("month", s(m))];
    assert_eq!(
        keys,
        vec![
            key(SN, "2026-11"),
            key(SN, "2026-12"),
            // Unknown datacenter: the service is the tag's prefix.
            key("pcc-9-9-9-9", "2026-12"),
        ]
    );
    assert_eq!(f64s(&parts[2].1, "value"), vec![Some(5.0)]);
    assert_eq!(i64s(&parts[2].1, "vm_id"), vec![None]);
}

#[test]
fn rows_are_sorted_by_entity_metric_and_time_whatever_the_push_order() {
    let t0 = ms(T0);
    let pts = |o: i64| [(t0 + o, 1.0), (t0 + o + 20_000, 2.0)];
    // Pages pushed out of order (as concurrent extraction delivers them), entities interleaved.
    let series = [
        owned("vm.mem.usage", &vm_tags("vm-7"), &pts(60_000)),
        owned("vm.cpu.usage", &vm_tags("vm-7"), &pts(60_000)),
        owned("vm.cpu.usage", &vm_tags("vm-1254"), &pts(0)),
        owned("vm.cpu.usage", &vm_tags("vm-7"), &pts(0)),
        owned("vm.cpu.usage", &vm_tags("vm-1254"), &pts(60_000)),
    ];
    let parts = run(
        Component::Vm,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 3_600_000,
    );
    let b = &parts[0].1;
    let rows: Vec<(String, String, i64)> = strs(b, "vm")
        .into_iter()
        .zip(strs(b, "metric"))
        .zip(times(b, "ts"))
        .map(|((v, m), t)| (v.unwrap(), m.unwrap(), t))
        .collect();
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0], ("vm-1254".into(), "vm.cpu.usage".into(), t0));
    // The joined columns moved with their rows.
    assert_eq!(i64s(b, "vm_id")[0], Some(1254));
    assert_eq!(i64s(b, "vm_id")[9], Some(7));
}

#[test]
fn series_of_one_entity_that_overlap_in_time_are_merged_by_time() {
    let t0 = ms(T0);
    // The same moRef in two datacenters (moRefs are only unique per vCenter).
    let mut other = vm_tags("vm-7");
    other[0] = ("datacenter", "pcc-9-9-9-9_datacenter1");
    let series = [
        owned(
            "vm.cpu.usage",
            &other,
            &[(t0 + 10_000, 9.0), (t0 + 30_000, 9.0)],
        ),
        owned(
            "vm.cpu.usage",
            &vm_tags("vm-7"),
            &[(t0, 1.0), (t0 + 20_000, 1.0)],
        ),
    ];
    let parts = run(
        Component::Vm,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 60_000,
    );
    let b = &parts[0].1;
    assert_eq!(
        times(b, "ts"),
        vec![t0, t0 + 10_000, t0 + 20_000, t0 + 30_000]
    );
    assert_eq!(
        f64s(b, "value"),
        vec![Some(1.0), Some(9.0), Some(1.0), Some(9.0)]
    );
    assert_eq!(
        i64s(b, "vm_id"),
        vec![Some(7), None, Some(7), None],
        "each point keeps its own series' join"
    );
}

#[test]
fn host_metrics_split_nicname_and_sort_it_nulls_first() {
    let t0 = ms(T0);
    let host = |nic: Option<&'static str>| {
        let mut t = vec![
            ("datacenter", DC),
            ("host", "172.17.86.51"),
            ("env", "prod"),
        ];
        if let Some(n) = nic {
            t.push(("nicname", n));
        }
        t
    };
    let series = [
        owned("host.net.rx", &host(Some("vmnic1")), &[(t0, 1.0)]),
        owned("host.net.rx", &host(Some("vmnic0")), &[(t0, 2.0)]),
        owned("host.cpu.usage", &host(None), &[(t0, 3.0)]),
        owned(
            "host.cpu.usage",
            &[("datacenter", DC), ("host", "10.0.0.1")],
            &[(t0, 4.0)],
        ),
    ];
    let parts = run(
        Component::Host,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 1000,
    );
    let b = &parts[0].1;
    assert_eq!(
        strs(b, "host"),
        vec![
            s("10.0.0.1"),
            s("172.17.86.51"),
            s("172.17.86.51"),
            s("172.17.86.51")
        ]
    );
    assert_eq!(
        strs(b, "nicname"),
        vec![None, None, s("vmnic0"), s("vmnic1")]
    );
    assert_eq!(i64s(b, "host_id"), vec![None, Some(51), Some(51), Some(51)]);
    assert_eq!(strs(b, "profile")[1], s("L"));
    assert_eq!(strs(b, "connection_state")[1], s("connected"));
    assert_eq!(
        tag_maps(b)[2],
        vec![("env".to_string(), "prod".to_string())],
        "nicname has its own column, not a map entry"
    );
    assert!(
        tag_maps(b)[0].is_empty(),
        "no extra tags: an empty map, not null"
    );
}

#[test]
fn filers_join_datacenter_and_shared_datastores() {
    let t0 = ms(T0);
    let series = [
        owned(
            "filer.space.used",
            &[("datacenter", DC), ("datastore", "pcc-000999")],
            &[(t0, 1.0)],
        ),
        owned(
            "filer.space.used",
            &[("datacenter", DC), ("datastore", "pcc-000443")],
            &[(t0, 2.0)],
        ),
    ];
    let parts = run(
        Component::Filer,
        &[PartitionBy::Date],
        &series,
        t0,
        t0 + 1000,
    );
    let b = &parts[0].1;
    assert_eq!(strs(b, "datastore"), vec![s("pcc-000443"), s("pcc-000999")]);
    assert_eq!(i64s(b, "filer_id"), vec![Some(443), Some(999)]);
    assert_eq!(i64s(b, "size_value"), vec![Some(3000); 2]);
    assert_eq!(strs(b, "size_unit"), vec![s("GB"); 2]);
    assert_eq!(strs(b, "filer_profile"), vec![s("3t-hybrid"); 2]);
}

#[test]
fn series_without_the_usual_tags_keep_their_points() {
    // An aggregated query (e.g. `sum` over all VMs) comes back without vm or datacenter tags.
    let t0 = ms(T0);
    let series = [owned("vm.cpu.usage", &[("env", "prod")], &[(t0, 42.0)])];
    let parts = run(
        Component::Vm,
        &[PartitionBy::ServiceName, PartitionBy::Date],
        &series,
        t0,
        t0 + 1,
    );
    let (key, b) = &parts[0];
    assert_eq!(key.values()[0], ("service_name", None));
    assert_eq!(strs(b, "vm"), vec![None]);
    assert_eq!(strs(b, "service_name"), vec![None]);
    assert_eq!(f64s(b, "value"), vec![Some(42.0)]);
}

#[test]
fn an_empty_table_finishes_with_no_partitions() {
    let t0 = ms(T0);
    let series = [owned("vm.cpu.usage", &vm_tags("vm-7"), &[(t0, 1.0)])];
    let parts = run(Component::Vm, &[PartitionBy::Date], &series, t0 + 1, t0 + 2);
    assert!(parts.is_empty());
}

#[test]
fn merge_keeps_rows_outside_the_window_and_replaces_those_inside() {
    let t0 = ms(T0);
    let hour = 3_600_000;
    let first = [owned(
        "vm.cpu.usage",
        &vm_tags("vm-7"),
        &[(t0, 1.0), (t0 + hour, 1.0), (t0 + 2 * hour, 1.0)],
    )];
    let old = run(
        Component::Vm,
        &[PartitionBy::Date],
        &first,
        t0,
        t0 + 3 * hour,
    );
    // A re-run of the middle hour, with a corrected value and a new series.
    let second = [
        owned("vm.cpu.usage", &vm_tags("vm-7"), &[(t0 + hour, 2.0)]),
        owned("vm.cpu.usage", &vm_tags("vm-1254"), &[(t0 + hour, 5.0)]),
    ];
    let new = run(
        Component::Vm,
        &[PartitionBy::Date],
        &second,
        t0 + hour,
        t0 + 2 * hour,
    );
    let merged = merge_outside_window(
        Table::VmMetrics,
        &[old[0].1.clone()],
        t0 + hour,
        t0 + 2 * hour,
        &new[0].1,
    )
    .unwrap();
    assert_eq!(
        strs(&merged, "vm"),
        vec![s("vm-1254"), s("vm-7"), s("vm-7"), s("vm-7")]
    );
    assert_eq!(
        times(&merged, "ts"),
        vec![t0 + hour, t0, t0 + hour, t0 + 2 * hour]
    );
    assert_eq!(
        f64s(&merged, "value"),
        vec![Some(5.0), Some(1.0), Some(2.0), Some(1.0)]
    );
    assert_eq!(merged.schema(), new[0].1.schema());
}

#[test]
fn a_file_written_with_arrow_rs_map_field_names_is_merged_not_refused() {
    // Files from before the `tags` map took the specification's names (`key_value`, `key`,
    // `value`) carry arrow-rs' (`entries`, `keys`, `values`); a re-run over part of their
    // partition keeps their rows.
    let t0 = ms(T0);
    let hour = 3_600_000;
    let mut tags = vm_tags("vm-7");
    tags.push(("unit", "percent"));
    let old = run(
        Component::Vm,
        &[PartitionBy::Date],
        &[owned("vm.cpu.usage", &tags, &[(t0, 1.0), (t0 + hour, 1.0)])],
        t0,
        t0 + 2 * hour,
    );
    let old = &old[0].1;
    let legacy_tags = DataType::Map(
        Arc::new(arrow::datatypes::Field::new(
            "entries",
            DataType::Struct(arrow::datatypes::Fields::from(vec![
                arrow::datatypes::Field::new("keys", DataType::Utf8, false),
                arrow::datatypes::Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    );
    let tags_at = old.schema().index_of("tags").unwrap();
    let mut fields: Vec<arrow::datatypes::Field> = old
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[tags_at] = fields[tags_at].clone().with_data_type(legacy_tags.clone());
    let mut columns = old.columns().to_vec();
    columns[tags_at] = arrow::compute::cast(&columns[tags_at], &legacy_tags).unwrap();
    let legacy =
        RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).unwrap();
    assert_ne!(legacy.schema(), old.schema());

    let new = run(
        Component::Vm,
        &[PartitionBy::Date],
        &[owned("vm.cpu.usage", &tags, &[(t0 + hour, 2.0)])],
        t0 + hour,
        t0 + 2 * hour,
    );
    let merged = merge_outside_window(
        Table::VmMetrics,
        &[legacy],
        t0 + hour,
        t0 + 2 * hour,
        &new[0].1,
    )
    .unwrap();
    assert_eq!(merged.schema(), new[0].1.schema());
    assert_eq!(times(&merged, "ts"), vec![t0, t0 + hour]);
    assert_eq!(f64s(&merged, "value"), vec![Some(1.0), Some(2.0)]);
    let kept = &tag_maps(&merged)[0];
    assert!(
        kept.contains(&("unit".to_string(), "percent".to_string())),
        "{kept:?}"
    );
}

#[test]
fn merge_refuses_a_file_with_another_schema() {
    let t0 = ms(T0);
    let new = run(
        Component::Vm,
        &[PartitionBy::Date],
        &[owned("vm.cpu.usage", &vm_tags("vm-7"), &[(t0, 1.0)])],
        t0,
        t0 + 1,
    );
    let batch = &new[0].1;
    let old = batch.project(&[0, 1, 2]).unwrap();
    let err = merge_outside_window(Table::VmMetrics, &[old], t0, t0 + 1, batch).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TransformError::SchemaMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("existing file lacks `service_name Utf8`"),
        "{msg}"
    );
}

#[test]
fn inventory_replaces_rather_than_merges() {
    let inv = inventory_tables(&inventory(), &[PartitionBy::Date]).unwrap();
    let (_, _, vms) = inv.iter().find(|t| t.0 == Table::VmInventory).unwrap();
    let merged =
        merge_outside_window(Table::VmInventory, std::slice::from_ref(vms), 0, 1, vms).unwrap();
    assert_eq!(merged.num_rows(), vms.num_rows());
}

#[test]
fn inventory_tables_hold_every_object_of_the_snapshot() {
    let inv = inventory_tables(&inventory(), &[PartitionBy::Date]).unwrap();
    let tables: Vec<Table> = inv.iter().map(|t| t.0).collect();
    assert_eq!(
        tables,
        [
            Table::VmInventory,
            Table::HostInventory,
            Table::FilerInventory,
            Table::DatacenterInventory
        ]
    );
    for (table, key, batch) in &inv {
        assert_eq!(key, &date_key("2026-11-24"), "{table}: the snapshot's date");
        assert_eq!(
            batch.schema().as_ref(),
            &schema::table(*table).schema(),
            "{table}"
        );
        assert_eq!(
            times(batch, "snapshot_ts"),
            vec![snapshot().timestamp_millis(); batch.num_rows()]
        );
    }
    let get = |name: &str| &inv.iter().find(|t| t.0.name() == name).unwrap().2;
    let vms = get("vm_inventory");
    assert_eq!(
        strs(vms, "mo_ref"),
        vec![s("vm-7"), s("vm-1254")],
        "sorted by id"
    );
    assert_eq!(i64s(vms, "memory_max"), vec![Some(8192); 2]);
    assert_eq!(strs(vms, "datacenter"), vec![s(DC); 2]);
    let filers = get("filer_inventory");
    assert_eq!(i64s(filers, "filer_id"), vec![Some(999), Some(443)]);
    assert_eq!(
        i64s(filers, "datacenter_id"),
        vec![None, Some(869)],
        "a shared datastore has no datacenter"
    );
    assert_eq!(strs(filers, "size_unit"), vec![s("GB"); 2]);
    let hosts = get("host_inventory");
    assert_eq!(strs(hosts, "name"), vec![s("172.17.86.51")]);
    assert_eq!(i64s(hosts, "ram_value"), vec![Some(256)]);
    assert_eq!(strs(hosts, "ram_unit"), vec![s("GB")]);
    let dcs = get("datacenter_inventory");
    assert_eq!(strs(dcs, "commercial_name"), vec![s("Premier")]);
    assert_eq!(strs(dcs, "service_name"), vec![s(SN)]);

    let by_service = inventory_tables(
        &inventory(),
        &[PartitionBy::ServiceName, PartitionBy::Month],
    )
    .unwrap();
    assert_eq!(
        by_service[0].1,
        PartitionKey::new(vec![("service_name", s(SN)), ("month", s("2026-11"))])
    );
}

#[test]
fn every_table_has_a_layout_whose_columns_exist() {
    for def in schema::tables() {
        let layout = layout(def.table);
        assert_eq!(layout.name, def.name);
        assert_eq!(layout.schema.as_ref(), &def.schema());
        for c in layout.sorted_by.iter().chain(&layout.delta_columns) {
            assert!(def.column(c).is_some(), "{}: {c}", def.name);
        }
    }
}

#[test]
fn written_parquet_reads_back_with_the_exact_schema_and_rows() {
    use crate::load::{Destination, FileProvenance};
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let provenance = FileProvenance {
        job: "t".into(),
        shard: None,
        run_id: "r1".into(),
        window_start: "2026-11-24T00:00:00Z".into(),
        window_end: "2026-11-25T00:00:00Z".into(),
    };
    let t0 = ms(T0);
    let mut nic = vec![
        ("datacenter", DC),
        ("host", "172.17.86.51"),
        ("nicname", "vmnic0"),
    ];
    nic.push(("env", "prod"));
    let metrics = [
        (
            Component::Vm,
            owned(
                "vm.cpu.usage",
                &vm_tags("vm-7"),
                &[(t0, 1.0), (t0 + 20_000, f64::NAN)],
            ),
        ),
        (Component::Host, owned("host.net.rx", &nic, &[(t0, 2.0)])),
        (
            Component::Filer,
            owned(
                "filer.space.used",
                &[("datacenter", DC), ("datastore", "pcc-000443")],
                &[(t0, 3.0)],
            ),
        ),
    ];
    let mut written: Vec<(Table, PartitionKey, RecordBatch)> = Vec::new();
    for (component, series) in &metrics {
        for (key, batch) in run(
            *component,
            &[PartitionBy::Date],
            std::slice::from_ref(series),
            t0,
            t0 + 60_000,
        ) {
            written.push((Table::metrics(*component), key, batch));
        }
    }
    written.extend(inventory_tables(&inventory(), &[PartitionBy::Date]).unwrap());
    assert_eq!(written.len(), 7, "every table");
    for (table, key, batch) in &written {
        let layout = layout(*table);
        let file = dest
            .replace_job_partition(&layout, key, &provenance, 3, std::slice::from_ref(batch))
            .unwrap()
            .unwrap();
        assert!(file
            .path
            .ends_with(format!("{table}/date=2026-11-24/part-t-0.parquet")));
        let back = dest.read_job_partition(table.name(), key, "t").unwrap();
        assert_eq!(back.len(), 1);
        let documented = schema::table(*table).schema();
        assert_eq!(back[0].schema().fields(), documented.fields(), "{table}");
        assert_eq!(
            back[0].columns(),
            batch.columns(),
            "{table}: the same rows come back"
        );

        // The sorting columns recorded in the footer name the right columns.
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&file.path).unwrap(),
        )
        .unwrap();
        use parquet::file::reader::FileReader;
        let meta = reader.metadata();
        let rg = meta.row_group(0);
        let sorting = rg.sorting_columns().unwrap();
        let leaf_names: Vec<String> = sorting
            .iter()
            .map(|s| rg.column(s.column_idx as usize).column_path().string())
            .collect();
        assert_eq!(leaf_names, layout.sorted_by, "{table}");
    }
}

#[test]
fn a_day_of_many_series_comes_out_whole_and_sorted() {
    let t0 = ms("2026-11-24T00:00:00Z");
    let points: Vec<(i64, f64)> = (0..4320).map(|i| (t0 + i * 20_000, i as f64)).collect();
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    let mut total = 0;
    for vm in 0..50 {
        let name = format!("vm-{vm}");
        let series = owned("vm.cpu.usage", &vm_tags(&name), &points);
        total += t.push_series(&borrow(&series), t0, t0 + 86_400_000);
    }
    assert_eq!(total, 50 * 4320);
    let parts = t.finish().unwrap();
    assert_eq!(parts.len(), 1);
    let b = &parts[0].1;
    assert_eq!(b.num_rows(), 50 * 4320);
    let vms = strs(b, "vm");
    assert!(vms.windows(2).all(|w| w[0] <= w[1]), "sorted by vm");
    assert_eq!(times(b, "ts")[..2], [t0, t0 + 20_000]);
}

/// Every row of `batches` concatenated into one batch.
fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

/// Pages of a day and a half over many VMs and metrics, pushed out of order, with a VM whose
/// series in two datacenters overlap in time and a page delivered twice.
fn busy_pages() -> Vec<(i64, i64, Vec<OwnedSeries>)> {
    let t0 = ms("2026-11-24T00:00:00Z");
    let hour = 3_600_000;
    let mut other = vm_tags("vm-7");
    other[0] = ("datacenter", "pcc-9-9-9-9_datacenter1");
    let mut pages = Vec::new();
    for page in [3i64, 0, 1, 5, 2, 4, 1] {
        let (start, end) = (t0 + page * 6 * hour, t0 + (page + 1) * 6 * hour);
        let mut series = Vec::new();
        for vm in ["vm-7", "vm-1254", "vm-3", "vm-40"] {
            for (m, metric) in ["vm.cpu.usage", "vm.mem.usage", "vm.net.rx"]
                .iter()
                .enumerate()
            {
                // One VM's series have gaps: a grid with breaks.
                let points: Vec<(i64, f64)> = (0..36)
                    .filter(|i| vm != "vm-3" || ![10, 11, 20].contains(i))
                    .map(|i| (start + i * 600_000, (page * 100 + i + m as i64) as f64))
                    .collect();
                series.push(owned(metric, &vm_tags(vm), &points));
            }
        }
        let shifted: Vec<(i64, f64)> = (0..36)
            .map(|i| (start + i * 600_000 + 300_000, -(i as f64)))
            .collect();
        series.push(owned("vm.cpu.usage", &other, &shifted));
        pages.push((start, end, series));
    }
    pages
}

fn push_pages(t: &mut MetricsTable, pages: &[(i64, i64, Vec<OwnedSeries>)]) {
    for (start, end, series) in pages {
        for s in series {
            t.push_series(&borrow(s), *start, *end);
        }
    }
}

#[test]
fn spilled_partitions_come_out_sorted_and_equal_to_unspilled_ones() {
    let pages = busy_pages();
    let expected = {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, &pages);
        t.finish().unwrap()
    };
    assert_eq!(expected.len(), 2, "a day and a half");

    let dir = tempfile::tempdir().unwrap();
    let mut t = table(Component::Vm, &[PartitionBy::Date])
        .with_budget(200)
        .with_spill_dir(dir.path());
    push_pages(&mut t, &pages);
    assert!(t.spills() >= 10, "{} spills", t.spills());
    let parts = t.take_all();
    assert_eq!(parts.len(), 2);
    for ((key, rows), (expected_key, expected)) in parts.into_iter().zip(&expected) {
        assert_eq!(&key, expected_key);
        assert_eq!(rows.rows(), expected.num_rows() as u64);
        let batches: Vec<RecordBatch> = rows.into_batches(37).collect::<Result<_, _>>().unwrap();
        assert!(batches.iter().all(|b| b.num_rows() <= 37));
        assert!(batches.len() > 10, "built in several batches");
        let got = concat(&batches);
        assert_eq!(got.columns(), expected.columns(), "{key:?}");
        // The sort order, checked independently of the no-spill path.
        let rows: Vec<(Option<String>, Option<String>, i64)> = strs(&got, "vm")
            .into_iter()
            .zip(strs(&got, "metric"))
            .zip(times(&got, "ts"))
            .map(|((v, m), t)| (v, m, t))
            .collect();
        assert!(rows.windows(2).all(|w| w[0] <= w[1]), "sorted");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no spill file is left"
    );
}

#[test]
fn points_left_in_spool_files_come_out_equal_to_pushed_ones() {
    use std::io::Write;
    let pages = busy_pages();
    let expected = {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, &pages);
        t.finish().unwrap()
    };
    // Each page in a file of its own, as a spool writes it: some header bytes, then a series'
    // timestamps, then its values. Every other page goes through memory instead. With a small
    // budget the table spills memory and file runs alike; with a middling one, the three kinds
    // of source meet in one partition; with a large one, nothing spills.
    for (budget, spills) in [(100, 10..1000), (1_500, 1..10), (1_000_000, 0..1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = table(Component::Vm, &[PartitionBy::Date])
            .with_budget(budget)
            .with_spill_dir(dir.path());
        for (p, (start, end, series)) in pages.iter().enumerate() {
            if p % 2 == 1 {
                for s in series {
                    t.push_series(&borrow(s), *start, *end);
                }
                continue;
            }
            let mut file = tempfile::tempfile_in(dir.path()).unwrap();
            let mut at = 0u64;
            let mut places = Vec::new();
            for (i, s) in series.iter().enumerate() {
                file.write_all(b"header").unwrap();
                at += 6;
                // A series on a grid, with breaks or without, keeps its timestamps out of the
                // file, as do every third series and the next; the others' are in it.
                let deltas = || s.timestamps_ms.windows(2).map(|w| w[1] - w[0]);
                let step = deltas().min().unwrap_or(0);
                let ts = if i % 3 == 0 && deltas().all(|d| d == step) {
                    TsAt::Grid { step }
                } else if i % 3 < 2 && step > 0 {
                    TsAt::Broken { step }
                } else {
                    for t in &s.timestamps_ms {
                        file.write_all(&t.to_le_bytes()).unwrap();
                    }
                    at += 8 * s.timestamps_ms.len() as u64;
                    TsAt::At(at - 8 * s.timestamps_ms.len() as u64)
                };
                let values_at = at;
                for v in &s.values {
                    file.write_all(&v.to_le_bytes()).unwrap();
                }
                at = values_at + 8 * s.values.len() as u64;
                places.push(PointsAt {
                    ts,
                    values: ValuesAt::Doubles(values_at),
                });
            }
            assert!(places.iter().any(|p| matches!(p.ts, TsAt::Grid { .. })));
            assert!(places.iter().any(|p| matches!(p.ts, TsAt::At(_))));
            assert!(
                places.iter().zip(series).any(|(p, s)| {
                    let breaks = s
                        .timestamps_ms
                        .windows(2)
                        .filter(|w| w[1] - w[0] != 600_000);
                    matches!(p.ts, TsAt::Broken { .. }) && breaks.count() == 2
                }),
                "a series read back between its breaks"
            );
            let file = Arc::new(file);
            for (s, at) in series.iter().zip(places) {
                let without_points = Series {
                    timestamps_ms: &[],
                    values: ValuesSlice::doubles(&[]),
                    ..borrow(s)
                };
                let mut breaks = Vec::new();
                let times = Times::of(&s.timestamps_ms, at.ts, &mut breaks);
                t.push_spooled(&without_points, times, *start, *end, &file, at);
            }
        }
        assert!(
            spills.contains(&t.spills()),
            "{} spills at {budget}",
            t.spills()
        );
        let parts = t.take_all();
        assert_eq!(parts.len(), expected.len());
        for ((key, rows), (expected_key, expected)) in parts.into_iter().zip(&expected) {
            assert_eq!(&key, expected_key);
            assert_eq!(rows.rows(), expected.num_rows() as u64);
            let batches: Vec<RecordBatch> =
                rows.into_batches(41).collect::<Result<_, _>>().unwrap();
            assert_eq!(
                concat(&batches).columns(),
                expected.columns(),
                "{key:?} at {budget}"
            );
        }
    }
}

#[test]
fn dropping_spilled_rows_unbuilt_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = table(Component::Vm, &[PartitionBy::Date])
        .with_budget(100)
        .with_spill_dir(dir.path());
    push_pages(&mut t, &busy_pages());
    assert!(t.spills() > 0);
    let mut parts = t.take_all();
    let mut batches = parts.remove(0).1.into_batches(10);
    assert!(batches.next().unwrap().is_ok());
    drop(batches);
    drop(parts);
    drop(t);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn take_complete_returns_exactly_the_finished_partitions() {
    let day = 86_400_000;
    let t0 = ms("2026-11-24T00:00:00Z");
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    let pts = |d: i64| [(t0 + d * day, 1.0), (t0 + d * day + day - 1, 2.0)];
    for d in 0..3 {
        t.push_series(
            &borrow(&owned("vm.cpu.usage", &vm_tags("vm-7"), &pts(d))),
            t0,
            t0 + 3 * day,
        );
    }
    assert!(t.take_complete(t0 + day - 1).is_empty(), "day 1 not over");
    let done = t.take_complete(t0 + day);
    assert_eq!(
        done.iter().map(|d| d.0.clone()).collect::<Vec<_>>(),
        vec![date_key("2026-11-24")]
    );
    assert_eq!(done[0].1.rows(), 2);
    assert!(t.take_complete(t0 + day).is_empty(), "taken once");
    let done = t.take_complete(t0 + 2 * day + 1);
    assert_eq!(done[0].0, date_key("2026-11-25"));
    assert_eq!(t.rows(), 6, "pushed, including what was taken");
    let rest = t.take_all();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0, date_key("2026-11-26"));
    assert!(t.take_all().is_empty());

    // Months end on the calendar, and a table without a time partition never completes.
    let mut m = table(Component::Vm, &[PartitionBy::Month]);
    m.push_series(
        &borrow(&owned("vm.cpu.usage", &vm_tags("vm-7"), &pts(0))),
        t0,
        t0 + day,
    );
    assert!(m.take_complete(ms("2026-11-30T23:59:59Z")).is_empty());
    assert_eq!(m.take_complete(ms("2026-12-01T00:00:00Z")).len(), 1);
    let mut s = table(Component::Vm, &[PartitionBy::ServiceName]);
    s.push_series(
        &borrow(&owned("vm.cpu.usage", &vm_tags("vm-7"), &pts(0))),
        t0,
        t0 + day,
    );
    assert!(s.take_complete(i64::MAX - 1).is_empty());
    assert_eq!(s.take_all().len(), 1);
}

#[test]
fn streaming_merge_equals_the_whole_merge() {
    let pages = busy_pages();
    let hour = 3_600_000;
    let t0 = ms("2026-11-24T00:00:00Z");
    let (start, end) = (t0 + 7 * hour, t0 + 15 * hour);
    let old = {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, &pages);
        t.finish().unwrap().remove(0).1
    };
    // A re-run over part of the day, with different values and one VM fewer.
    let rerun = |t: &mut MetricsTable| {
        for (_, _, series) in &pages {
            for s in series
                .iter()
                .filter(|s| !s.tags.iter().any(|t| t.1 == "vm-3"))
            {
                let mut s = s.clone();
                s.values.iter_mut().for_each(|v| *v += 0.5);
                t.push_series(&borrow(&s), start, end);
            }
        }
    };
    let mut whole = table(Component::Vm, &[PartitionBy::Date]);
    rerun(&mut whole);
    let new = whole.finish().unwrap().remove(0).1;
    let expected = merge_outside_window(
        Table::VmMetrics,
        std::slice::from_ref(&old),
        start,
        end,
        &new,
    )
    .unwrap();

    let mut t = table(Component::Vm, &[PartitionBy::Date]).with_budget(300);
    rerun(&mut t);
    let rows = t.take_all().remove(0).1;
    let old_in_two = vec![old.slice(0, 100), old.slice(100, old.num_rows() - 100)];
    let batches: Vec<RecordBatch> =
        merge_outside_window_rows(Table::VmMetrics, old_in_two, start, end, rows)
            .collect::<Result<_, _>>()
            .unwrap();
    let got = concat(&batches);
    assert_eq!(got.num_rows(), expected.num_rows());
    assert_eq!(got.columns(), expected.columns());

    // Nothing kept from the old file: the new rows as they are.
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    rerun(&mut t);
    let rows = t.take_all().remove(0).1;
    let got: Vec<RecordBatch> =
        merge_outside_window_rows(Table::VmMetrics, vec![], start, end, rows)
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(concat(&got).columns(), new.columns());

    // A file with another schema is refused, as by the whole merge.
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    rerun(&mut t);
    let rows = t.take_all().remove(0).1;
    let mut it = merge_outside_window_rows(
        Table::VmMetrics,
        vec![old.project(&[0, 1, 2]).unwrap()],
        start,
        end,
        rows,
    );
    assert!(matches!(
        it.next(),
        Some(Err(TransformError::SchemaMismatch { .. }))
    ));
    assert!(it.next().is_none());
}

#[test]
fn a_streamed_write_that_fails_midway_keeps_the_previous_file() {
    use crate::load::{Destination, FileProvenance, LoadError};
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let provenance = FileProvenance {
        job: "t".into(),
        shard: None,
        run_id: "r1".into(),
        window_start: "2026-11-24T00:00:00Z".into(),
        window_end: "2026-11-25T00:00:00Z".into(),
    };
    let layout = layout(Table::VmMetrics);
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    push_pages(&mut t, &busy_pages());
    let (key, rows) = t.take_all().remove(0);
    let n = rows.rows();
    let file = dest
        .replace_job_partition_stream(&layout, &key, &provenance, 3, rows.into_batches(100))
        .unwrap()
        .unwrap();
    assert_eq!(file.rows, n);
    let before = std::fs::read(&file.path).unwrap();

    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    push_pages(&mut t, &busy_pages());
    let (_, rows) = t.take_all().remove(0);
    let failing = rows.into_batches(100).enumerate().map(|(i, b)| {
        if i == 3 {
            Err(TransformError::Spill {
                table: "vm_metrics",
                source: std::io::Error::other("boom"),
            })
        } else {
            b
        }
    });
    let err = dest
        .replace_job_partition_stream(&layout, &key, &provenance, 3, failing)
        .unwrap_err();
    assert!(matches!(err, LoadError::Rows { .. }), "{err}");
    assert!(err.to_string().contains("part-t-0.parquet"), "{err}");
    let folder = file.path.parent().unwrap();
    let names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["part-t-0.parquet"], "no temporary file left");
    assert_eq!(
        std::fs::read(&file.path).unwrap(),
        before,
        "the old file is intact"
    );

    // No rows at all: the job's file goes away rather than an empty one being written.
    let none = std::iter::empty::<Result<RecordBatch, TransformError>>();
    assert!(dest
        .replace_job_partition_stream(&layout, &key, &provenance, 3, none)
        .unwrap()
        .is_none());
    assert!(!file.path.exists());
}

#[test]
fn descriptive_strings_are_written_without_statistics_and_keys_with() {
    use crate::load::{Destination, FileProvenance};
    use parquet::file::reader::FileReader;
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let provenance = FileProvenance {
        job: "t".into(),
        shard: None,
        run_id: "r1".into(),
        window_start: "2026-11-24T00:00:00Z".into(),
        window_end: "2026-11-25T00:00:00Z".into(),
    };
    let mut t = table(Component::Vm, &[PartitionBy::Date]);
    push_pages(&mut t, &busy_pages());
    let (key, rows) = t.take_all().remove(0);
    let layout = layout(Table::VmMetrics);
    let file = dest
        .replace_job_partition_stream(&layout, &key, &provenance, 3, rows.into_batches(1000))
        .unwrap()
        .unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(&file.path).unwrap(),
    )
    .unwrap();
    let rg = reader.metadata().row_group(0);
    let has_stats = |path: &str| {
        (0..rg.num_columns())
            .find(|&i| rg.column(i).column_path().string() == path)
            .map(|i| {
                rg.column(i)
                    .statistics()
                    .is_some_and(|s| s.min_bytes_opt().is_some())
            })
            .unwrap_or_else(|| panic!("no column {path}"))
    };
    for kept in [
        "ts",
        "metric",
        "value",
        "service_name",
        "datacenter",
        "vm",
        "vm_id",
    ] {
        assert!(has_stats(kept), "{kept} keeps its statistics");
    }
    for dropped in [
        "vm_name",
        "host_name",
        "power_state",
        "tags.key_value.key",
        "tags.key_value.value",
    ] {
        assert!(!has_stats(dropped), "{dropped} has no statistics");
    }
}

#[test]
fn a_file_encoded_from_runs_reads_back_as_the_batches_and_keeps_statistics() {
    use crate::load::Destination;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let provenance = provenance();
    let layout = layout(Table::VmMetrics);
    let rows_of = || {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, &busy_pages());
        t.take_all().remove(0)
    };
    let (key, rows) = rows_of();
    let expected: Vec<RecordBatch> = rows.into_batches(1000).collect::<Result<_, _>>().unwrap();
    let expected = concat(&expected);

    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let file = dest
        .replace_job_partition_runs(&layout, &key, &provenance, 3, rows_of().1)
        .unwrap()
        .unwrap();
    assert_eq!(file.rows, expected.num_rows() as u64);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file.path).unwrap()).unwrap();
    let metadata = reader.metadata().clone();
    let got: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
    let got = concat(&got);
    assert_eq!(
        got.schema(),
        expected.schema(),
        "the Arrow schema round-trips"
    );
    assert_eq!(got.columns(), expected.columns());

    // The columns readers prune on have exact min/max; the entity's is the first and last VM.
    let rg = metadata.row_group(0);
    let descr = rg.schema_descr();
    let index = |name: &str| {
        (0..descr.num_columns())
            .find(|&i| descr.column(i).path().string() == name)
            .unwrap()
    };
    let vms = strs(&expected, "vm");
    match rg.column(index("vm")).statistics() {
        Some(parquet::file::statistics::Statistics::ByteArray(s)) => {
            assert_eq!(
                s.min_opt().map(|b| b.as_utf8().unwrap()),
                vms.iter().flatten().min().map(String::as_str)
            );
            assert_eq!(
                s.max_opt().map(|b| b.as_utf8().unwrap()),
                vms.iter().flatten().max().map(String::as_str)
            );
            assert_eq!(s.null_count_opt(), Some(0));
        }
        other => panic!("vm statistics: {other:?}"),
    }
    assert!(
        rg.column(index("vm_name")).statistics().is_none(),
        "descriptive strings have none"
    );
    assert!(rg
        .column(index("metric"))
        .encodings()
        .any(|e| e == parquet::basic::Encoding::RLE_DICTIONARY));
    // The page index is there for every column.
    assert!(rg
        .columns()
        .iter()
        .all(|c| c.offset_index_offset().is_some()));
}

#[test]
fn a_file_encoded_from_runs_in_many_row_groups_reads_back_whole() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let provenance = provenance();
    let layout = layout(Table::VmMetrics);
    let rows_of = || {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, &busy_pages());
        t.take_all().remove(0).1
    };
    let expected: Vec<RecordBatch> = rows_of()
        .into_batches(1000)
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = concat(&expected);
    let props = crate::load::writer_properties(&layout, &provenance, 3).unwrap();
    // Row groups of 100 rows, built from batches of at most 30 (ending where a group of series
    // does): cuts fall inside series' runs.
    let (bytes, rows) =
        crate::load::encode::write(Vec::new(), props, 100, rows_of().into_runs(30)).unwrap();
    assert_eq!(rows, expected.num_rows() as u64);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    let groups = reader.metadata().row_groups();
    assert!(groups.len() > 5, "{} row groups", groups.len());
    let (last, full) = groups.split_last().unwrap();
    assert!(full.iter().all(|g| g.num_rows() == 100));
    assert!((1..=100).contains(&last.num_rows()));
    let got: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(concat(&got).columns(), expected.columns());
}

#[test]
fn value_pages_past_the_dictionary_limit_and_with_gaps_read_back_exactly() {
    use parquet::basic::Encoding;
    use parquet::file::statistics::Statistics;
    let provenance = provenance();
    let layout = layout(Table::VmMetrics);
    // Gaps (NaN is null) and a negative zero among the values.
    let mut pages = busy_pages();
    for (_, _, series) in &mut pages {
        for (n, s) in series.iter_mut().enumerate() {
            for (i, v) in s.values.iter_mut().enumerate() {
                if (i + n) % 11 == 0 {
                    *v = f64::NAN;
                } else if (i + n) % 17 == 0 {
                    *v = -0.0;
                }
            }
        }
    }
    let (rows, expected) = one_partition(&pages);
    let value = parquet::schema::types::ColumnPath::from("value");
    // A dictionary of at most 50 values and pages of 37 rows: most of each row group's values
    // go to PLAIN pages after the dictionary fills, and pages are cut inside batches.
    let props = crate::load::writer_properties(&layout, &provenance, 3)
        .unwrap()
        .into_builder()
        .set_column_dictionary_page_size_limit(value.clone(), 8 * 50)
        .set_column_data_page_row_count_limit(value, 37)
        .build();
    let (bytes, written) =
        crate::load::encode::write(Vec::new(), props, 2_000, rows.into_runs(300)).unwrap();
    assert_eq!(written, expected.num_rows() as u64);
    let (got, metadata) = read_back(bytes.clone());
    assert_eq!(got.columns(), expected.columns());

    let values = expected
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap()
        .clone();
    assert!(values.null_count() > 0);
    let mut nulls = 0;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for rg in metadata.row_groups() {
        let c = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "value")
            .unwrap();
        let encodings: Vec<Encoding> = c.encodings().collect();
        assert!(
            encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
        let Some(Statistics::Double(s)) = c.statistics() else {
            panic!("value statistics: {:?}", c.statistics());
        };
        nulls += s.null_count_opt().unwrap();
        lo = lo.min(*s.min_opt().unwrap());
        hi = hi.max(*s.max_opt().unwrap());
    }
    // Both kinds of data page are there: dictionary indices, then PLAIN past the limit.
    let file = parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(
        bytes.clone(),
    ))
    .unwrap();
    let column = (0..metadata.file_metadata().schema_descr().num_columns())
        .find(|&i| metadata.file_metadata().schema_descr().column(i).name() == "value")
        .unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for g in 0..metadata.num_row_groups() {
        use parquet::file::reader::FileReader;
        let mut pages = file
            .get_row_group(g)
            .unwrap()
            .get_column_page_reader(column)
            .unwrap();
        while let Some(page) = pages.get_next_page().unwrap() {
            kinds.insert(format!("{:?} {:?}", page.page_type(), page.encoding()));
            if let parquet::column::page::Page::DictionaryPage { buf, .. } = &page {
                // The dictionary is written sorted, in IEEE total order.
                let entries: Vec<f64> = buf
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                assert!(!entries.is_empty());
                assert!(
                    entries.windows(2).all(|w| w[0].total_cmp(&w[1]).is_lt()),
                    "{entries:?}"
                );
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "DATA_PAGE PLAIN",
            "DATA_PAGE RLE_DICTIONARY",
            "DICTIONARY_PAGE PLAIN"
        ]
    );
    assert_eq!(nulls as usize, values.null_count());
    let present = values.iter().flatten();
    assert_eq!(lo, present.clone().fold(f64::INFINITY, f64::min));
    assert_eq!(hi, present.fold(f64::NEG_INFINITY, f64::max));
}

/// The provenance of the files the load tests write.
fn provenance() -> crate::load::FileProvenance {
    crate::load::FileProvenance {
        job: "t".into(),
        shard: None,
        run_id: "r1".into(),
        window_start: "2026-11-24T00:00:00Z".into(),
        window_end: "2026-11-26T00:00:00Z".into(),
    }
}

#[test]
fn a_row_group_whose_values_are_all_null_reads_back() {
    let layout = layout(Table::VmMetrics);
    let mut pages = busy_pages();
    for (_, _, series) in &mut pages {
        for s in series.iter_mut() {
            s.values.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }
    let (rows, expected) = one_partition(&pages);
    let props = crate::load::writer_properties(&layout, &provenance(), 3).unwrap();
    let (bytes, _) =
        crate::load::encode::write(Vec::new(), props, 100, rows.into_runs(64)).unwrap();
    let (got, _) = read_back(bytes);
    assert_eq!(got.columns(), expected.columns());
    let value = got.column_by_name("value").unwrap();
    assert_eq!(value.null_count(), value.len());
}

/// The rows `pages` make in a `vm_metrics` table of one date partition, and those rows as one
/// batch, the way the Arrow path builds them: what a file written from runs must read back as.
fn one_partition(pages: &[(i64, i64, Vec<OwnedSeries>)]) -> (PartitionRows, RecordBatch) {
    let rows_of = || {
        let mut t = table(Component::Vm, &[PartitionBy::Date]);
        push_pages(&mut t, pages);
        t.take_all().remove(0).1
    };
    let expected = concat(
        &rows_of()
            .into_batches(1000)
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
    );
    (rows_of(), expected)
}

/// A Parquet file's batches, concatenated, with its metadata.
fn read_back(
    bytes: Vec<u8>,
) -> (
    RecordBatch,
    std::sync::Arc<parquet::file::metadata::ParquetMetaData>,
) {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap();
    let metadata = reader.metadata().clone();
    let batches = reader
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (concat(&batches), metadata)
}

/// A file written by `write` into a temporary file, its footer settled as every committed file's
/// is, and read back.
fn settled(
    write: impl FnOnce(&mut std::fs::File),
) -> (
    RecordBatch,
    std::sync::Arc<parquet::file::metadata::ParquetMetaData>,
) {
    use std::io::{Read, Seek};
    let mut file = tempfile::tempfile().unwrap();
    write(&mut file);
    crate::load::footer::settle(&mut file).unwrap();
    let mut bytes = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut bytes).unwrap();
    read_back(bytes)
}

#[test]
fn the_runs_encoder_and_arrow_rs_write_the_same_rows_footer_and_statistics() {
    use parquet::file::statistics::Statistics;
    use std::io::Write;
    let provenance = provenance();
    let layout = layout(Table::VmMetrics);
    // A fixed pseudo-random sequence (xorshift): gaps in time, nulls, both zeros, values that are
    // not hundredths, and more distinct values than the dictionary holds.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut pages = busy_pages();
    for (_, _, series) in &mut pages {
        for (n, s) in series.iter_mut().enumerate() {
            // Each series has zeros of one sign, so some row groups hold only one of them.
            let zero = if n % 2 == 0 { 0.0 } else { -0.0 };
            let keep: Vec<bool> = s.values.iter().map(|_| next() % 13 != 0).collect();
            let mut k = keep.iter();
            s.timestamps_ms.retain(|_| *k.next().unwrap());
            let mut k = keep.iter();
            s.values.retain(|_| *k.next().unwrap());
            for v in &mut s.values {
                *v = match next() % 20 {
                    0 => f64::NAN,
                    1 | 2 => zero,
                    3 | 4 => *v + (next() % 10_000) as f64 / 7_919.0,
                    _ => *v,
                };
            }
        }
    }
    let value = parquet::schema::types::ColumnPath::from("value");
    let props = crate::load::writer_properties(&layout, &provenance, 3)
        .unwrap()
        .into_builder()
        .set_max_row_group_row_count(Some(100))
        .set_column_dictionary_page_size_limit(value, 8 * 40)
        .build();

    let (rows, expected) = one_partition(&pages);
    let (fast, fast_meta) = settled(|file| {
        let (bytes, _) =
            crate::load::encode::write(Vec::new(), props.clone(), 100, rows.into_runs(30)).unwrap();
        file.write_all(&bytes).unwrap();
    });
    let (rows, _) = one_partition(&pages);
    let (arrow, arrow_meta) = settled(|file| {
        let mut writer = parquet::arrow::ArrowWriter::try_new_with_options(
            file.try_clone().unwrap(),
            Arc::clone(&layout.schema),
            crate::load::arrow_writer_options(props.clone()),
        )
        .unwrap();
        for batch in rows.into_batches(37) {
            writer.write(&batch.unwrap()).unwrap();
        }
        writer.close().unwrap();
    });

    // The same rows, to the bit (`-0.0` and `0.0` compare equal as doubles, not as bits).
    assert_eq!(fast.columns(), expected.columns());
    assert_eq!(arrow.columns(), expected.columns());
    let bits = |b: &RecordBatch| -> Vec<Option<u64>> {
        f64s(b, "value")
            .iter()
            .map(|v| v.map(f64::to_bits))
            .collect()
    };
    assert_eq!(bits(&fast), bits(&expected));
    assert_eq!(bits(&arrow), bits(&expected));
    assert!(f64s(&fast, "value").iter().any(Option::is_none), "nulls");
    assert!(bits(&fast).contains(&Some((-0.0f64).to_bits())), "-0.0");

    // The same footer: column orders (the type-defined one for every leaf, which every reader
    // knows), row groups, codecs, statistics.
    let orders = fast_meta.file_metadata().column_orders().unwrap();
    assert!(orders
        .iter()
        .all(|o| matches!(o, parquet::basic::ColumnOrder::TYPE_DEFINED_ORDER(_))));
    assert_eq!(Some(orders), arrow_meta.file_metadata().column_orders());
    assert_eq!(
        fast_meta.file_metadata().created_by(),
        arrow_meta.file_metadata().created_by()
    );
    assert_eq!(fast_meta.num_row_groups(), arrow_meta.num_row_groups());
    assert!(fast_meta.num_row_groups() > 5);
    let value_dictionary_full = fast_meta.row_groups().iter().any(|rg| {
        let descr = rg.schema_descr();
        let v = (0..descr.num_columns())
            .find(|&i| descr.column(i).name() == "value")
            .unwrap();
        rg.column(v)
            .encodings()
            .any(|e| e == parquet::basic::Encoding::PLAIN)
    });
    assert!(value_dictionary_full, "some value chunk fell back to PLAIN");
    let mut zero_bounds = 0;
    for (f, a) in fast_meta.row_groups().iter().zip(arrow_meta.row_groups()) {
        assert_eq!(f.num_rows(), a.num_rows());
        for (fc, ac) in f.columns().iter().zip(a.columns()) {
            let path = fc.column_path().string();
            assert_eq!(fc.compression(), ac.compression(), "{path}");
            let (fs, as_) = (fc.statistics(), ac.statistics());
            assert_eq!(fs.is_some(), as_.is_some(), "{path}: statistics or none");
            let (Some(fs), Some(as_)) = (fs, as_) else {
                continue;
            };
            assert_eq!(fs.min_bytes_opt(), as_.min_bytes_opt(), "{path} min");
            assert_eq!(fs.max_bytes_opt(), as_.max_bytes_opt(), "{path} max");
            assert_eq!(fs.null_count_opt(), as_.null_count_opt(), "{path} nulls");
            assert_eq!(fs.nan_count_opt(), as_.nan_count_opt(), "{path} NaNs");
            assert_eq!(
                fs.is_min_max_backwards_compatible(),
                as_.is_min_max_backwards_compatible(),
                "{path} legacy min/max"
            );
            if let Statistics::Double(s) = fs {
                // The type-defined order's rule: a zero bound is -0.0 below, +0.0 above.
                if let (Some(lo), Some(hi)) = (s.min_opt(), s.max_opt()) {
                    assert!(*lo != 0.0 || lo.is_sign_negative(), "{path} min {lo:?}");
                    assert!(*hi != 0.0 || hi.is_sign_positive(), "{path} max {hi:?}");
                    zero_bounds += usize::from(*lo == 0.0) + usize::from(*hi == 0.0);
                }
            }
        }
    }
    assert!(zero_bounds > 0, "some row group's value bounds are a zero");
}

#[test]
fn a_codec_other_than_zstd_is_never_claimed_by_zstd_pages() {
    let provenance = provenance();
    let layout = layout(Table::VmMetrics);
    let (rows, expected) = one_partition(&busy_pages());
    for codec in [
        parquet::basic::Compression::UNCOMPRESSED,
        parquet::basic::Compression::SNAPPY,
    ] {
        let props = crate::load::writer_properties(&layout, &provenance, 3)
            .unwrap()
            .into_builder()
            .set_compression(codec)
            .build();
        assert!(
            !crate::load::encode::encodes(&layout.schema, &props),
            "{codec:?} is left to arrow-rs"
        );
    }
    let props = crate::load::writer_properties(&layout, &provenance, 3)
        .unwrap()
        .into_builder()
        .set_compression(parquet::basic::Compression::UNCOMPRESSED)
        .build();
    assert!(crate::load::encode::write(Vec::new(), props, 100, rows.into_runs(30)).is_err());

    // The level comes from the same properties (a file records the codec, not its level): a
    // destination's file at level 7 says ZSTD in every chunk and reads back whole.
    let (rows, _) = one_partition(&busy_pages());
    let dir = tempfile::tempdir().unwrap();
    let dest =
        crate::load::Destination::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let key = date_key("2026-11-24");
    let file = dest
        .replace_job_partition_runs(&layout, &key, &provenance, 7, rows)
        .unwrap()
        .unwrap();
    let (got, meta) = read_back(std::fs::read(&file.path).unwrap());
    assert_eq!(got.columns(), expected.columns());
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), parquet::basic::Compression::ZSTD(_)),
                "{}: {:?}",
                c.column_path(),
                c.compression()
            );
        }
    }
}
