//! What the user types and reads around a run: counts that make no sense are usage errors, and
//! the summary's counts are grouped by thousands.

use crate::common::*;

#[test]
fn zero_concurrency_and_other_zero_counts_are_usage_errors() {
    let ws = Workspace::new();
    let job = ws.write(
        "job.toml",
        &sim_job(
            "zero",
            "vms = 2",
            "2026-11-01T00:00:00Z",
            "2026-11-01T01:00:00Z",
            "1h",
        ),
    );
    let job = job.to_str().unwrap();
    for (args, flag) in [
        (vec!["run", job, "--concurrency", "0"], "--concurrency"),
        (vec!["runs", job, "--limit", "0"], "--limit"),
        (vec!["sim", "--point-cap", "0"], "--point-cap"),
    ] {
        let out = ws.run(&args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: exit 2\n{err}");
        assert!(
            err.contains(&format!("invalid value '0' for '{flag}")) && err.contains("1.."),
            "{args:?}: the message names the flag and the range:\n{err}"
        );
        assert!(!ws.out().exists(), "{args:?}: nothing written");
    }
    let one = ws.run(
        &["run", job, "--concurrency", "1", "--progress", "never"],
        &[],
    );
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
}

#[test]
fn the_summary_groups_counts_by_thousands() {
    let ws = Workspace::new();
    // A day of 4 VMs: 1,440 points a series, tens of thousands of rows.
    let job = ws.write(
        "job.toml",
        &sim_job(
            "day",
            "seed = 4\nservices = 1\ndatacenters = 1\nhosts = 1\nvms = 4\nfilers = 1",
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "1d",
        ),
    );
    let out = ws.run(&["run", job.to_str().unwrap(), "--progress", "never"], &[]);
    let summary = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let requests_line = summary
        .lines()
        .find(|l| l.contains(" points, "))
        .unwrap_or_else(|| panic!("{summary}"));
    let points = requests_line
        .split(" points, ")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    assert!(
        is_grouped(points) && points.contains(','),
        "{points:?} in {requests_line:?}"
    );

    let vm_row = summary
        .lines()
        .find(|l| l.trim_start().starts_with("vm_metrics "))
        .unwrap_or_else(|| panic!("{summary}"));
    let cells: Vec<&str> = vm_row.split_whitespace().collect();
    let (rows, bytes) = (cells[2], cells[3]);
    for count in [rows, bytes] {
        assert!(
            is_grouped(count) && count.contains(','),
            "{count:?} in {vm_row:?}"
        );
    }
    let rows: u64 = rows.replace(',', "").parse().unwrap();
    let total_rows: usize = parquet_files(&ws.out().join("vm_metrics"))
        .iter()
        .flat_map(|f| read_parquet(f))
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, total_rows as u64, "the grouped count is the count");
}

/// `1,234,567`: digits in groups of three from the right, the first of one to three.
fn is_grouped(text: &str) -> bool {
    let groups: Vec<&str> = text.split(',').collect();
    groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
}
