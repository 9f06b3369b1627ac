//! Sharded runs through the real CLI: N `vscope-export run --shard I/N` processes at once
//! against one `vscope-export sim` process, writing to one output. Their union must be the rows
//! of one unsharded run, each written once; the planner's split must be balanced; another split
//! over the same output must be refused; each shard's state must be its own.
//!
//! [`run_shards`] takes the output location as a string and [`union_equals`] a reader of each
//! output's tables ([`local_tables`] for a folder), so the same checks run against an
//! object-store output (`s3://…`) given a reader for it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, TimestampMillisecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use vscope_export::domain::table::Table;

use crate::common::*;

/// The simulator's estate for whole sharded runs: two services of two datacenters, so that every
/// level of the split is used. (The demo's own estate is split in `the_demo_splits_evenly`;
/// comparing its rows would take minutes.)
pub const ESTATE: [&str; 10] = [
    "--services",
    "2",
    "--datacenters",
    "2",
    "--vms",
    "20",
    "--hosts",
    "2",
    "--filers",
    "2",
];

/// A job reading the simulator process `sim` over one fixed day (or from `last-run`).
pub fn job(sim: &SimProcess, name: &str, window: &str) -> String {
    format!(
        r#"name = "{name}"

[source]
endpoint = "{}"
metrics_user = "{}"

[window]
{window}

[[export]]
table = "vm_metrics"
metrics = "all"

[[export]]
table = "host_metrics"
metrics = "all"

[[export]]
table = "filer_metrics"
metrics = "all"

[output]
path = "out"
"#,
        sim.apiv6_url(),
        sim.metrics_user
    )
}

pub fn credentials(sim: &SimProcess) -> Vec<(&'static str, String)> {
    vec![
        ("OVH_APPLICATION_KEY", sim.application_key.clone()),
        ("OVH_APPLICATION_SECRET", sim.application_secret.clone()),
        ("OVH_CONSUMER_KEY", sim.consumer_key.clone()),
    ]
}

/// Runs `count` shards of the job at `job` at once, all writing to `output` (a folder or a
/// URL), and returns each one's outcome by index.
pub fn run_shards(
    ws: &Workspace,
    job: &Path,
    output: &str,
    count: u32,
    env: &[(&str, String)],
) -> Vec<Output> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let children: Vec<_> = (0..count)
        .map(|index| {
            let shard = format!("{index}/{count}");
            let args = [
                "run",
                job.to_str().unwrap(),
                "--output",
                output,
                "--shard",
                &shard,
                "--progress",
                "never",
            ];
            ws.command(&args, &env)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for a shard"))
        .collect()
}

/// Reads an output's tables: given a table, each of its files' partition folder (relative to
/// the output, e.g. `vm_metrics/date=2026-11-23`) and record batches. [`local_tables`] reads a
/// folder; an object-store output needs only another one of these.
pub type TableReader<'a> = &'a dyn Fn(&str) -> Vec<(String, Vec<RecordBatch>)>;

/// The tables of an output folder, read with the crate's own Parquet reader.
pub fn local_tables(root: &Path) -> impl Fn(&str) -> Vec<(String, Vec<RecordBatch>)> + '_ {
    move |table| {
        parquet_files(&root.join(table))
            .iter()
            .map(|file| {
                let partition = file.parent().unwrap().strip_prefix(root).unwrap();
                (partition.display().to_string(), read_parquet(file))
            })
            .collect()
    }
}

/// Every row of a table as text, with its partition folder and every column but `snapshot_ts`
/// (each run takes its own inventory snapshot), sorted: a multiset to compare.
fn rows(read: TableReader<'_>, table: &str) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for (partition, batches) in read(table) {
        for batch in &batches {
            rows.extend(format_rows(batch, &partition, &options));
        }
    }
    rows.sort();
    rows
}

fn format_rows(batch: &RecordBatch, partition: &str, options: &FormatOptions) -> Vec<String> {
    let schema = batch.schema();
    // Times as their milliseconds: the formatter knows no time zone by name.
    let arrays: Vec<(String, ArrayRef)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| f.name() != "snapshot_ts")
        .map(|(f, c)| match f.data_type() {
            DataType::Timestamp(..) => {
                let ts = c.as_primitive::<TimestampMillisecondType>();
                let ms = Int64Array::new(ts.values().clone(), ts.nulls().cloned());
                (f.name().clone(), Arc::new(ms) as ArrayRef)
            }
            _ => (f.name().clone(), Arc::clone(c)),
        })
        .collect();
    let columns: Vec<(&String, ArrayFormatter)> = arrays
        .iter()
        .map(|(name, c)| (name, ArrayFormatter::try_new(c, options).unwrap()))
        .collect();
    (0..batch.num_rows())
        .map(|i| {
            let mut row = partition.to_string();
            for (name, column) in &columns {
                row.push_str(&format!(" {name}={}", column.value(i)));
            }
            row
        })
        .collect()
}

/// Asserts that the tables `sharded` reads hold exactly the rows of those `whole` reads, each as
/// many times; returns the rows per table.
pub fn union_equals(
    sharded: TableReader<'_>,
    whole: TableReader<'_>,
) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for table in Table::ALL.map(Table::name) {
        let (union, one) = (rows(sharded, table), rows(whole, table));
        assert!(!one.is_empty(), "the whole run wrote {table}");
        assert_eq!(union.len(), one.len(), "{table}: rows of the shards");
        if let Some((u, o)) = union.iter().zip(&one).find(|(u, o)| u != o) {
            panic!("{table}: the shards wrote\n  {u}\nwhere the whole run wrote\n  {o}");
        }
        counts.insert(table, one.len());
    }
    counts
}

/// The run manifests of an output.
fn manifests(out: &Path) -> Vec<serde_json::Value> {
    all_files(&out.join("_runs"))
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn four_shards_at_once_equal_one_run_and_another_split_is_refused() {
    let sim = SimProcess::start(&ESTATE);
    let ws = Workspace::new();
    let path = ws.write(
        "nightly.toml",
        &job(
            &sim,
            "nightly",
            "start = \"2026-11-23T00:00:00Z\"\nend = \"2026-11-23T06:00:00Z\"",
        ),
    );
    let env = credentials(&sim);
    let outcomes = run_shards(&ws, &path, "sharded", 4, &env);
    for (index, o) in outcomes.iter().enumerate() {
        assert!(o.status.success(), "shard {index}: {}", stderr(o));
        assert!(!stdout(o).contains("WARNING"), "{}", stdout(o));
        assert!(
            stdout(o).contains(&format!("job nightly (shard {index}/4)")),
            "{}",
            stdout(o)
        );
    }
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let whole = ws.run(
        &[
            "run",
            "nightly.toml",
            "--output",
            "whole",
            "--progress",
            "never",
        ],
        &envs,
    );
    assert!(whole.status.success(), "{}", stderr(&whole));

    let (sharded, whole) = (ws.path().join("sharded"), ws.path().join("whole"));
    let counts = union_equals(&local_tables(&sharded), &local_tables(&whole));
    assert!(counts["vm_metrics"] > 10_000, "{counts:?}");

    // Each shard wrote its own file in each metrics partition; the first alone the inventory.
    for table in Table::ALL.map(Table::name) {
        let mut names: Vec<String> = parquet_files(&ws.path().join("sharded").join(table))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        let expected: Vec<String> = if table.ends_with("_inventory") {
            vec!["part-nightly-s0of4-0.parquet".into()]
        } else {
            (0..4)
                .map(|i| format!("part-nightly-s{i}of4-0.parquet"))
                .collect()
        };
        assert_eq!(names, expected, "{table}");
    }

    // The manifests say which shard ran and carry the planner's split; what each fetched is
    // balanced too.
    let manifests = manifests(&ws.path().join("sharded"));
    assert_eq!(manifests.len(), 4);
    let split = &manifests[0]["shard"]["estimated_points"];
    let points: Vec<u64> = split
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(points.len(), 4);
    let mut indexes: Vec<u64> = manifests
        .iter()
        .map(|m| {
            assert_eq!(&m["shard"]["estimated_points"], split, "one split for all");
            assert_eq!(m["shard"]["split"], manifests[0]["shard"]["split"]);
            assert_eq!(m["shard"]["count"], 4);
            assert_eq!(m["job"], "nightly");
            m["shard"]["index"].as_u64().unwrap()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, [0, 1, 2, 3]);
    let mean = points.iter().sum::<u64>() as f64 / 4.0;
    for (index, p) in points.iter().enumerate() {
        assert!(
            (*p as f64) <= 2.0 * mean && *p > 0,
            "shard {index} has {p} of a mean {mean} points: {points:?}"
        );
    }
    let fetched: Vec<u64> = manifests
        .iter()
        .map(|m| m["points"].as_u64().unwrap())
        .collect();
    let mean = fetched.iter().sum::<u64>() as f64 / 4.0;
    assert!(
        fetched.iter().all(|&p| p as f64 <= 2.0 * mean),
        "{fetched:?}"
    );

    // Another split over the same output is refused before any request, and writes nothing.
    let before = tree(&ws.path().join("sharded"));
    for (args, found) in [
        (vec!["--shard", "1/2"], "2 shards"),
        (vec![], "the whole job (no --shard)"),
    ] {
        let mut run = vec!["run", "nightly.toml", "--output", "sharded"];
        run.extend(args);
        let refused = ws.run(&run, &envs);
        let err = stderr(&refused);
        assert_eq!(refused.status.code(), Some(2), "{err}");
        for said in [
            "job nightly was run here as 4 shards",
            found,
            "part-nightly-s*of4-0.parquet",
        ] {
            assert!(err.contains(said), "{said:?} in {err}");
        }
        assert_eq!(tree(&ws.path().join("sharded")), before, "nothing written");
    }
    // And the whole job's output refuses shards.
    let refused = ws.run(
        &["run", "nightly.toml", "--output", "whole", "--shard", "0/4"],
        &envs,
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("as the whole job (no --shard)"));
}

/// The numbers `plan --shard I/N` prints of every shard: `every shard's: 0: 1,234 (25.1%) …`.
fn planned_split(text: &str) -> Vec<u64> {
    let line = text
        .lines()
        .find(|l| l.contains("every shard's:"))
        .unwrap_or_else(|| panic!("no split in {text}"));
    let list = line.split("every shard's:").nth(1).unwrap();
    list.split(')')
        .filter_map(|part| part.split(':').nth(1))
        .map(|n| {
            n.split('(')
                .next()
                .unwrap()
                .trim()
                .replace(',', "")
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_demo_splits_evenly() {
    let ws = Workspace::new();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/demo.toml");
    let demo = demo.to_str().unwrap();
    let whole = stdout(&ws.run(&["plan", demo], &[]));
    let at_most = |text: &str| -> u64 {
        let after = text.split("at most ").nth(1).unwrap();
        after
            .split(' ')
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap()
    };
    for count in [2u64, 4, 7] {
        let mut seen = None;
        for index in 0..count {
            let shard = format!("{index}/{count}");
            let o = ws.run(&["plan", demo, "--shard", &shard], &[]);
            assert!(o.status.success(), "{}", stderr(&o));
            let text = stdout(&o);
            let split = planned_split(&text);
            assert_eq!(split.len() as u64, count, "{text}");
            assert_eq!(
                at_most(&text),
                split[index as usize],
                "this shard's own plan"
            );
            assert_eq!(
                *seen.get_or_insert(split.clone()),
                split,
                "one split for all"
            );
        }
        let split = seen.unwrap();
        assert_eq!(
            split.iter().sum::<u64>(),
            at_most(&whole),
            "the shards add up to the job"
        );
        let mean = split.iter().sum::<u64>() as f64 / count as f64;
        for points in &split {
            assert!((*points as f64) <= 2.0 * mean, "{count} shards: {split:?}");
        }
    }
}

#[test]
fn each_shard_keeps_its_own_state() {
    let sim = SimProcess::start(&[
        "--datacenters",
        "2",
        "--vms",
        "6",
        "--hosts",
        "1",
        "--filers",
        "1",
    ]);
    let ws = Workspace::new();
    ws.write(
        "inc.toml",
        &job(
            &sim,
            "inc",
            "start = \"last-run\"\ninitial_start = \"2026-11-23T00:00:00Z\"\nend = \"2026-11-23T06:00:00Z\"\npage = \"1h\"",
        ),
    );
    let mut env = credentials(&sim);
    let state = |owner: &str| -> Option<serde_json::Value> {
        let path = ws.out().join("_state").join(format!("{owner}.json"));
        std::fs::read(path)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    };
    let run = |env: &[(&str, String)], args: &[&str]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = vec!["run", "inc.toml", "--progress", "never"];
        all.extend(args);
        let o = ws.run(&all, &env);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };

    // Shard 0 from the command line; shard 1 as a Kubernetes Indexed Job's pod runs it.
    run(&env, &["--shard", "0/2"]);
    env.push(("VSCOPE_SHARD", "auto/2".into()));
    env.push(("JOB_COMPLETION_INDEX", "1".into()));
    run(&env, &[]);
    for owner in ["inc-s0of2", "inc-s1of2"] {
        assert_eq!(
            state(owner).unwrap()["committed_until"],
            "2026-11-23T06:00:00Z",
            "{owner}"
        );
    }
    assert_eq!(state("inc"), None, "no state of the whole job");

    // Shard 1 runs on alone; shard 0 stays where it was.
    run(&env, &["--end", "2026-11-23T09:00:00Z"]);
    assert_eq!(
        state("inc-s1of2").unwrap()["committed_until"],
        "2026-11-23T09:00:00Z"
    );
    assert_eq!(
        state("inc-s0of2").unwrap()["committed_until"],
        "2026-11-23T06:00:00Z"
    );
    let credentials = credentials(&sim);
    let envs: Vec<(&str, &str)> = credentials.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // `state show` lists both, `--shard` one; `state reset --shard` forgets one, `state reset`
    // every state of the job.
    let shown = ws.run(&["state", "show", "inc.toml"], &envs);
    let text = stdout(&shown);
    assert!(
        text.contains("\"job\": \"inc-s0of2\"") && text.contains("\"job\": \"inc-s1of2\""),
        "{text}"
    );
    let one = stdout(&ws.run(&["state", "show", "inc.toml", "--shard", "1/2"], &envs));
    assert!(
        one.contains("2026-11-23T09:00:00Z") && !one.contains("inc-s0of2"),
        "{one}"
    );
    let reset = ws.run(&["state", "reset", "inc.toml", "--shard", "1/2"], &envs);
    assert!(
        stdout(&reset).contains("job inc shard 1/2: state removed"),
        "{}",
        stdout(&reset)
    );
    assert_eq!(state("inc-s1of2"), None);
    assert!(state("inc-s0of2").is_some());
    ws.run(&["state", "reset", "inc.toml"], &envs);
    assert_eq!(state("inc-s0of2"), None);

    // `runs` lists every shard's runs, each with its shard.
    let runs = stdout(&ws.run(&["runs", "inc.toml"], &envs));
    assert_eq!(runs.matches("1/2").count(), 2, "{runs}");
    assert_eq!(runs.matches("0/2").count(), 1, "{runs}");
}

#[test]
fn a_sharded_run_refuses_an_export_that_filters_datacenters_itself() {
    let ws = Workspace::new();
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/demo.toml"))
        .unwrap()
        .replacen(
            "table = \"vm_metrics\"\nmetrics = \"all\"",
            "table = \"vm_metrics\"\nmetrics = \"all\"\ntags = { datacenter = \"pcc-1_datacenter1\" }",
            1,
        );
    assert!(demo.contains("tags = { datacenter"), "the demo job changed");
    let job = ws.write("demo.toml", &demo);
    let out = ws.run(&["run", job.to_str().unwrap(), "--shard", "1/2", "-q"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("vm_metrics export filters on the `datacenter` tag"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.path().join("out").exists(), "nothing written");
}
