//! The output read by the real DuckDB (installed into `.venv` by `make test`): types, partition
//! column, row counts, no duplicates, inventory columns filled.

use std::process::Command;

use crate::common::*;

#[test]
fn duckdb_reads_the_export_with_the_right_types_and_no_duplicates() {
    let ws = Workspace::new();
    let sizes = "seed = 3\nservices = 1\ndatacenters = 1\nhosts = 2\nvms = 8\nfilers = 2";
    let job = ws.write(
        "duck.toml",
        &sim_job(
            "duck",
            sizes,
            "2026-11-01T22:00:00Z",
            "2026-11-02T02:00:00Z",
            "1h",
        ),
    );
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let checked = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/check_duckdb.py"
        ))
        .arg(ws.out())
        .output()
        .expect("run python");
    assert!(
        checked.status.success(),
        "DuckDB check failed: {}",
        stderr(&checked)
    );
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout).expect("json report");

    for table in ["vm_metrics", "host_metrics", "filer_metrics"] {
        let t = &report[table];
        let exported = exported_points(
            &ws.out(),
            table,
            if table == "vm_metrics" {
                "vm"
            } else if table == "host_metrics" {
                "host"
            } else {
                "datastore"
            },
        );
        assert_eq!(
            t["rows"].as_u64().unwrap() as usize,
            exported.len(),
            "{table}: DuckDB sees every row"
        );
        assert_eq!(t["types"]["ts"], "TIMESTAMP WITH TIME ZONE", "{table}");
        assert_eq!(
            t["types"]["snapshot_ts"], "TIMESTAMP WITH TIME ZONE",
            "{table}"
        );
        assert_eq!(
            t["types"]["date"], "DATE",
            "{table}: the partition column is read"
        );
        assert_eq!(t["types"]["value"], "DOUBLE", "{table}");
        assert_eq!(t["types"]["metric"], "VARCHAR", "{table}");
        assert!(
            t["types"]["tags"]
                .as_str()
                .unwrap()
                .starts_with("MAP(VARCHAR, VARCHAR)"),
            "{table}: {}",
            t["types"]["tags"]
        );
        assert_eq!(t["dates"], 2, "{table}: the window spans two dates");
        assert_eq!(t["duplicates"], 0, "{table}");
        assert!(
            t["inventory_filled"].as_u64().unwrap() > 0,
            "{table}: inventory columns are filled"
        );
    }
    assert!(report["vm_inventory"]["rows"].as_u64().unwrap() > 0);
}
