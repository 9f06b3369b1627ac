//! The command line as users and scripts see it: help, plan output, validation messages, error
//! format and exit codes. Stable text is snapshotted with insta (`cargo insta review` to update).

use crate::common::*;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(r"\d+\.\d+s", "[SECS]");
    s
}

#[test]
fn help_lists_the_commands() {
    let ws = Workspace::new();
    let out = ws.run(&["--help"], &[]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
    let out = ws.run(&["run", "--help"], &[]);
    assert!(out.status.success());
    insta::assert_snapshot!("run_help", stdout(&out));
}

#[test]
fn plan_shows_pages_and_requests_without_network() {
    let ws = Workspace::new();
    let sizes = "seed = 1\nservices = 1\ndatacenters = 1\nhosts = 4\nvms = 200\nfilers = 2";
    let job = ws.write(
        "p.toml",
        &sim_job(
            "p",
            sizes,
            "2026-11-01T00:00:00Z",
            "2026-11-03T00:00:00Z",
            "auto",
        ),
    );
    let out = ws.run(&["plan", job.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    settings().bind(|| insta::assert_snapshot!(stdout(&out)));
}

/// A job file with three problems: an unknown key, a window that ends before it starts, and a
/// table that does not exist.
const BAD_JOB: &str = r#"name = "bad"
[source]
endpoint = "simulator"
colour = "blue"
[window]
start = "2026-11-02"
end = "2026-11-01"
[[export]]
table = "vms"
metrics = "all"
[output]
path = "out"
"#;

#[test]
fn a_bad_job_file_names_every_problem_and_exits_2() {
    let ws = Workspace::new();
    let job = ws.write("bad.toml", BAD_JOB);
    for cmd in ["validate", "run"] {
        let out = ws.run(&[cmd, job.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{cmd}: {err}");
        assert!(err.contains("colour"), "{cmd}: unknown key named: {err}");
        assert!(err.contains("vms"), "{cmd}: bad table named: {err}");
        assert!(!ws.out().exists(), "{cmd}: nothing written");
    }
}

#[test]
fn validate_names_each_problem_with_its_file_key_and_line() {
    let ws = Workspace::new();
    let job = ws.write("bad.toml", BAD_JOB);
    let out = ws.run(&["validate", job.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "", "problems go to standard error");
    settings().bind(|| insta::assert_snapshot!(stderr(&out)));
}

#[test]
fn the_run_summary_says_what_was_fetched_and_written() {
    let ws = Workspace::new();
    let sizes = "seed = 1\nservices = 1\ndatacenters = 1\nhosts = 1\nvms = 2\nfilers = 1";
    let job = ws.write(
        "s.toml",
        &sim_job(
            "s",
            sizes,
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "auto",
        ),
    );
    let out = ws.run(&["run", job.to_str().unwrap(), "--progress", "never"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut settings = settings();
    // File sizes change with the build (the writer's version is in every file's footer).
    settings.add_filter(r"(?m)^(  [a-z_]+ +[\d,]+ +[\d,]+ +)[\d,]+$", "$1[BYTES]");
    settings.bind(|| insta::assert_snapshot!(stdout(&out)));
}

#[test]
fn malformed_toml_gives_line_and_column() {
    let ws = Workspace::new();
    let job = ws.write("broken.toml", "name = \"x\"\n[source\nendpoint = 1\n");
    let out = ws.run(&["validate", job.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("broken.toml") && err.contains(":2"), "{err}");
}

#[test]
fn output_that_is_a_file_is_refused_before_any_work() {
    let ws = Workspace::new();
    let sizes = "seed = 1\nservices = 1\ndatacenters = 1\nhosts = 1\nvms = 2\nfilers = 1";
    let job = ws.write(
        "f.toml",
        &sim_job(
            "f",
            sizes,
            "2026-11-01T00:00:00Z",
            "2026-11-01T01:00:00Z",
            "auto",
        ),
    );
    ws.write("out", "a file, not a folder");
    let out = ws.run(&["run", job.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a folder"), "{}", stderr(&out));
}

#[test]
fn schema_prints_every_table() {
    let ws = Workspace::new();
    let out = ws.run(&["schema"], &[]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
    let out = ws.run(&["schema", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("vm_metrics"),
        "lists the tables: {}",
        stderr(&out)
    );
}

#[test]
fn every_example_job_validates() {
    let ws = Workspace::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs");
    let mut jobs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    jobs.sort();
    assert!(jobs.len() >= 3);
    let mut args = vec!["validate"];
    args.extend(jobs.iter().map(String::as_str));
    let out = ws.run(&args, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn an_error_after_partitions_were_committed_exits_3_and_keeps_them() {
    let ws = Workspace::new();
    let job = ws.write(
        "two.toml",
        &sim_job(
            "two",
            "datacenters = 1\nhosts = 1\nvms = 3\nfilers = 1",
            "2026-11-01T00:00:00Z",
            "2026-11-03T00:00:00Z",
            "1d",
        ),
    );
    // The second day's folder of vm_metrics is taken by a file: that partition cannot be
    // written, after the first day's were.
    let table = ws.out().join("vm_metrics");
    std::fs::create_dir_all(&table).unwrap();
    std::fs::write(table.join("date=2026-11-02"), "not a folder").unwrap();
    let out = ws.run(
        &[
            "run",
            job.to_str().unwrap(),
            "--concurrency",
            "1",
            "--progress",
            "never",
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("date=2026-11-02"),
        "the partition is named: {err}"
    );
    assert!(
        table.join("date=2026-11-01/part-two-0.parquet").is_file(),
        "the first day stays committed"
    );
    assert!(
        !ws.out().join("_state/two.json").exists(),
        "the state did not move"
    );
    assert!(
        std::fs::read_dir(ws.out().join("_runs")).map_or(true, |mut d| d.next().is_none()),
        "no manifest"
    );
}
