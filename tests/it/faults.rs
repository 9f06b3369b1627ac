//! The same export with and without injected faults (5xx, 429, resets, truncated bodies, slow
//! answers, a point cap that forces splits, APIv6 failures) writes the same rows: retries and
//! splits never lose, duplicate or change a point.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

const SIZES: &str = "seed = 5\nservices = 1\ndatacenters = 1\nhosts = 2\nvms = 6\nfilers = 2";
const START: &str = "2026-11-01T22:00:00Z";
const END: &str = "2026-11-02T01:00:00Z";

/// Heavy enough that most requests fail at least once. `invalid-json` is a proxy's HTML page
/// with status 200, retried like any transient failure once the run is under way.
/// `429` asks for 1 s, which the retry settings below cap at their 20 ms.
const FAULTS: &str =
    "5xx=0.3,429=0.1,reset=0.05,truncate=0.05,slow=0.05:20ms,invalid-json=0.05,cap=200,\
                      apiv6-5xx=0.1,apiv6-429=0.05:0s,apiv6-reset=0.05,seed=9";

/// Fast retries, and enough of them that a request failing 55 % of the time always gets through.
const RETRY: &str =
    "[source.retry]\nmax_retries = 40\nmin_delay = \"1ms\"\nmax_delay = \"20ms\"\nbudget = \"30s\"";

fn export(name: &str, simulator: &str) -> (Workspace, String) {
    let ws = Workspace::new();
    let job = ws.write("job.toml", &sim_job(name, simulator, START, END, "1h"));
    let out = ws.run(&["run", job.to_str().unwrap(), "--progress", "never"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: exit 0\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    (ws, stdout(&out))
}

/// `(requests, retried, split)` from the summary's `N requests (R retried, S split)`.
fn request_counts(summary: &str) -> (u64, u64, u64) {
    // Counts are grouped by thousands (`1,234`).
    let numbers = |text: &str| -> Vec<u64> {
        text.split(|c: char| !c.is_ascii_digit() && c != ',')
            .map(|n| n.trim_matches(',').replace(',', ""))
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let line = summary
        .lines()
        .find(|l| l.contains(" requests (") && l.contains(" retried, ") && l.contains(" split)"))
        .unwrap_or_else(|| panic!("no request counts in the summary:\n{summary}"));
    let (before, after) = line.split_once(" requests (").unwrap();
    let requests = *numbers(before).last().unwrap();
    let counts = numbers(after.split_once(')').unwrap().0);
    (requests, counts[0], counts[1])
}

/// Ids of every row of an inventory table, sorted.
fn inventory_ids(out: &Path, table: &str, id: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = parquet_files(&out.join(table))
        .iter()
        .flat_map(|f| read_parquet(f))
        .flat_map(|b| i64s(&b, id))
        .map(|v| v.unwrap_or_else(|| panic!("{table}.{id} is never null")))
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn an_export_through_heavy_faults_writes_exactly_the_clean_rows() {
    let (clean, clean_summary) = export("clean", SIZES);
    let (faulty, faulty_summary) = export(
        "faulty",
        &format!("{SIZES}\nfaults = \"{FAULTS}\"\n\n{RETRY}"),
    );

    let (_, clean_retried, clean_split) = request_counts(&clean_summary);
    assert_eq!((clean_retried, clean_split), (0, 0), "{clean_summary}");
    let (requests, retried, split) = request_counts(&faulty_summary);
    assert!(retried > 0, "the faults were retried: {faulty_summary}");
    assert!(split > 0, "the lower cap split requests: {faulty_summary}");
    assert!(requests > retried, "{faulty_summary}");

    let mut compared = BTreeMap::new();
    for (table, entity) in [
        ("vm_metrics", "vm"),
        ("host_metrics", "host"),
        ("filer_metrics", "datastore"),
    ] {
        let want = exported_points(&clean.out(), table, entity);
        let got = exported_points(&faulty.out(), table, entity);
        assert!(!want.is_empty(), "{table} has rows");
        assert_eq!(got.len(), want.len(), "{table} row count");
        assert!(got == want, "{table}: the rows differ");
        compared.insert(table, want.len());
    }
    for (table, id) in [
        ("vm_inventory", "vm_id"),
        ("host_inventory", "host_id"),
        ("filer_inventory", "filer_id"),
        ("datacenter_inventory", "datacenter_id"),
    ] {
        let want = inventory_ids(&clean.out(), table, id);
        assert!(!want.is_empty(), "{table} has rows");
        assert_eq!(inventory_ids(&faulty.out(), table, id), want, "{table}");
    }
    // Both runs wrote the same partitions of every table.
    let layout = |out: &Path| -> Vec<String> {
        parquet_files(out)
            .iter()
            .map(|f| {
                let rel = f.parent().unwrap().strip_prefix(out).unwrap();
                rel.to_string_lossy().into_owned()
            })
            .collect()
    };
    assert_eq!(layout(&faulty.out()), layout(&clean.out()), "{compared:?}");
}
