//! The table contracts: `schemas/tables/*.json` equals what `vscope-export schema --json` prints,
//! and the Parquet the exporter writes has exactly those columns and types.

use std::fs;

use crate::common::*;
use vscope_export::transform::schema;

#[test]
fn schema_files_are_what_the_tool_prints() {
    let ws = Workspace::new();
    for table in schema::tables() {
        let out = ws.run(&["schema", table.name, "--json"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let path = format!(
            "{}/schemas/tables/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            table.name
        );
        let file = fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} is missing"));
        let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let stored: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(
            printed, stored,
            "{path} is out of date: regenerate it with `vscope-export schema {} --json`",
            table.name
        );
    }
}

// Writes its files with a run against the simulator.
#[cfg(feature = "sim")]
#[test]
fn written_files_have_exactly_the_documented_columns() {
    let ws = Workspace::new();
    let sizes = "seed = 5\nservices = 1\ndatacenters = 1\nhosts = 2\nvms = 4\nfilers = 2";
    let job = ws.write(
        "s.toml",
        &sim_job(
            "s",
            sizes,
            "2026-11-01T00:00:00Z",
            "2026-11-01T01:00:00Z",
            "auto",
        ),
    );
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for table in schema::tables() {
        let files = parquet_files(&ws.out().join(table.name));
        assert!(!files.is_empty(), "{} was written", table.name);
        for file in files {
            let batches = read_parquet(&file);
            let written = batches[0].schema();
            let documented: Vec<(String, String, bool)> = table
                .columns
                .iter()
                .map(|c| (c.name.to_string(), c.data_type.to_string(), c.nullable))
                .collect();
            let actual: Vec<(String, String, bool)> = written
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                .collect();
            assert_eq!(actual, documented, "{}", file.display());
        }
    }
}
