//! Hostile names: with the simulator's `hostile_names`, service names, inventory names and tag
//! values carry `/`, `..`, `=`, `%`, newlines, non-ASCII and very long strings. Partitioned by
//! service and date, the export must keep every file inside the output folder, and every value
//! must come back exactly: in the Parquet columns, and through the hive folder names once
//! percent-decoded as readers do.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use chrono::Utc;
use vscope_export::job::{Catalog, Component};
use vscope_export::sim::{SimConfig, World};

const SIZES: &str =
    "seed = 11\nservices = 2\ndatacenters = 1\nhosts = 2\nvms = 10\nfilers = 2\nhostile_names = true";
const START: &str = "2026-11-01T23:00:00Z";
const END: &str = "2026-11-02T01:00:00Z";

fn config() -> SimConfig {
    SimConfig {
        seed: 11,
        services: 2,
        datacenters: 1,
        hosts: 2,
        vms: 10,
        filers: 2,
        hostile_names: true,
        ..SimConfig::default()
    }
}

/// What the simulator serves for `[start, end)`, keyed like [`exported_points`].
fn expected_points(world: &World, component: Component) -> Points {
    let entity = component.entity_tag();
    let mut points = Points::new();
    for metric in Catalog::builtin().for_component(component) {
        for series in world.series(&metric.name) {
            let mut e = series.tags.get(entity).cloned().unwrap_or_default();
            if let Some(n) = series.tags.get("nicname") {
                e = format!("{e}/{n}");
            }
            for (ts, v) in world.points(&series, ms(START), ms(END) - 1) {
                points.insert((metric.name.clone(), e.clone(), ts), Some(v));
            }
        }
    }
    points
}

/// Every path below `dir`, folders included.
fn all_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// `column=value` of a folder name, the value percent-decoded as hive readers do.
fn decode_segment(segment: &str) -> (String, Option<String>) {
    let (column, raw) = segment
        .split_once('=')
        .unwrap_or_else(|| panic!("folder {segment:?} is not column=value"));
    let value = (raw != "__HIVE_DEFAULT_PARTITION__").then(|| {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .unwrap_or_else(|e| panic!("{segment:?} does not decode to UTF-8: {e}"))
            .into_owned()
    });
    (column.to_string(), value)
}

#[test]
fn hostile_names_stay_inside_the_output_and_round_trip_exactly() {
    let world = World::new(config());
    let inventory = world.inventory(Utc::now());

    // The simulator really is hostile, or this test proves nothing.
    let mut names: Vec<String> = Vec::new();
    for s in &inventory.services {
        names.push(s.service_name.clone());
        names.extend(s.filers.iter().map(|f| f.name.clone()));
        for d in &s.datacenters {
            names.push(d.datacenter.name.clone());
            names.extend(d.hosts.iter().map(|h| h.name.clone()));
            names.extend(d.vms.iter().filter_map(|v| v.name.clone()));
            names.extend(d.filers.iter().map(|f| f.name.clone()));
        }
    }
    let mut tag_values: BTreeSet<String> = BTreeSet::new();
    for component in [Component::Vm, Component::Host, Component::Filer] {
        for metric in Catalog::builtin().for_component(component) {
            for series in world.series(&metric.name) {
                tag_values.extend(series.tags.values().cloned());
            }
        }
    }
    let hostile: Vec<&String> = names.iter().chain(tag_values.iter()).collect();
    for (what, test) in [
        (
            "a slash",
            &(|s: &str| s.contains('/')) as &dyn Fn(&str) -> bool,
        ),
        ("..", &|s: &str| s.contains("..")),
        ("=", &|s: &str| s.contains('=')),
        ("%", &|s: &str| s.contains('%')),
        ("a newline", &|s: &str| s.contains('\n')),
        ("non-ASCII", &|s: &str| !s.is_ascii()),
        ("more than 255 bytes", &|s: &str| s.len() > 255),
    ] {
        assert!(
            hostile.iter().any(|s| test(s)),
            "hostile_names gives some name or tag value with {what}: {names:?}"
        );
    }
    let services: BTreeSet<String> = inventory
        .services
        .iter()
        .map(|s| s.service_name.clone())
        .collect();
    // Service names are the only partition values that come from the estate; where the
    // simulator keeps them plain, escaping is checked by the unit tests of `load` only.
    if services
        .iter()
        .all(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        eprintln!("note: no service name needs escaping: {services:?}");
    }

    let ws = Workspace::new();
    let mut text = sim_job("hostile", SIZES, START, END, "1h");
    text.push_str("partitioning = [\"service_name\", \"date\"]\n");
    let job = ws.write("hostile.toml", &text);
    let out = ws.run(&["run", job.to_str().unwrap(), "--progress", "never"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Nothing outside the output folder: the workspace holds the job and `out`, and every path
    // below `out` resolves inside it (no `..` folder, no symbolic link).
    let top: BTreeSet<String> = fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        BTreeSet::from(["hostile.toml".to_string(), "out".to_string()]),
        "nothing written beside the output folder"
    );
    let root = ws.out().canonicalize().unwrap();
    for entry in all_entries(&ws.out()) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "symbolic link {}",
            entry.display()
        );
        let real = entry.canonicalize().unwrap();
        assert!(
            real.starts_with(&root),
            "{} resolves outside the output folder",
            entry.display()
        );
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name != ".." && name != "." && !name.contains('\n') && name.len() <= 255,
            "unsafe name {name:?}"
        );
    }

    // Points and entity columns (vm, host/nicname, datastore) equal what the simulator serves.
    for component in [Component::Vm, Component::Host, Component::Filer] {
        let table = component.table_name();
        let expected = expected_points(&world, component);
        let actual = exported_points(&ws.out(), table, component.entity_tag());
        assert!(!expected.is_empty(), "the simulator serves {table}");
        assert_eq!(actual.len(), expected.len(), "{table} row count");
        let wrong: Vec<_> = actual
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .take(3)
            .collect();
        assert!(
            wrong.is_empty(),
            "{table}: rows the simulator never served: {wrong:?}"
        );
        assert!(
            actual == expected,
            "{table}: values differ from the simulator"
        );
    }

    // Inventory names joined onto the metrics come back exactly.
    let vm_names: BTreeMap<(String, String), Option<String>> = inventory
        .services
        .iter()
        .flat_map(|s| {
            s.datacenters.iter().flat_map(move |d| {
                d.vms
                    .iter()
                    .map(move |v| ((s.service_name.clone(), v.mo_ref.clone()), v.name.clone()))
            })
        })
        .collect();
    let filer_names: BTreeSet<(String, String)> = inventory
        .services
        .iter()
        .flat_map(|s| {
            s.filers
                .iter()
                .chain(s.datacenters.iter().flat_map(|d| d.filers.iter()))
                .map(move |f| (s.service_name.clone(), f.name.clone()))
        })
        .collect();
    let mut joined_vms = 0;
    let mut seen_datastores = BTreeSet::new();
    let mut seen_services = BTreeSet::new();
    for file in parquet_files(&ws.out()) {
        let rel = file.strip_prefix(ws.out()).unwrap();
        let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
        let table = parts.next().unwrap();
        let folders: Vec<String> = parts.filter(|p| p.contains('=')).collect();
        let decoded: Vec<(String, Option<String>)> =
            folders.iter().map(|f| decode_segment(f)).collect();
        let columns: Vec<&str> = decoded.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(columns, ["service_name", "date"], "{}", rel.display());
        let service = decoded[0].1.clone();
        for batch in read_parquet(&file) {
            let service_col = strings(&batch, "service_name");
            assert!(
                service_col.iter().all(|s| *s == service),
                "{}: the folder decodes to {service:?}, the rows say {:?}",
                rel.display(),
                service_col.iter().collect::<BTreeSet<_>>()
            );
            seen_services.extend(service_col.iter().flatten().cloned());
            if table == "vm_metrics" {
                let vms = strings(&batch, "vm");
                let names = strings(&batch, "vm_name");
                for i in 0..batch.num_rows() {
                    let key = (service.clone().unwrap_or_default(), vms[i].clone().unwrap());
                    if let Some(name) = vm_names.get(&key) {
                        assert_eq!(&names[i], name, "vm_name of {key:?}");
                        joined_vms += 1;
                    }
                }
            }
            if table == "filer_metrics" {
                for d in strings(&batch, "datastore").into_iter().flatten() {
                    let key = (service.clone().unwrap_or_default(), d);
                    assert!(
                        filer_names.contains(&key),
                        "datastore {key:?} is no filer of the inventory"
                    );
                    seen_datastores.insert(key);
                }
            }
            if table == "vm_inventory" {
                let vms = strings(&batch, "mo_ref");
                let names = strings(&batch, "name");
                for i in 0..batch.num_rows() {
                    let key = (service.clone().unwrap_or_default(), vms[i].clone().unwrap());
                    assert_eq!(vm_names.get(&key), Some(&names[i]), "vm_inventory {key:?}");
                }
            }
        }
    }
    assert!(joined_vms > 0, "some metrics rows carry their VM's name");
    assert_eq!(seen_services, services, "every service has its partition");
    assert!(!seen_datastores.is_empty());
}
