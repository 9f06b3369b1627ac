//! Parsing, validating and resolving whole job files: the examples in `jobs/`, the resolution
//! rules, every problem with its key and line, and the schema kept in step with the structs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::file::JobFile;
use super::*;

/// A valid job; the table-driven tests below change one thing at a time. Line numbers matter.
const BASE: &str = r#"name = "t"

[source]
endpoint = "ovh-eu"
metrics_user = "reader"

[window]
start = "2026-11-01"
end = "2026-11-02"
page = "1h"

[[export]]
table = "vm_metrics"
metrics = ["vscope.vm.cpu.usage.perc"]

[[export]]
table = "host_metrics"
metrics = "all"

[output]
path = "out"
"#;

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

fn parse_text(text: &str) -> Result<Job, JobError> {
    parse(Path::new("t.toml"), text)
}

fn problems(text: &str) -> Vec<Problem> {
    match parse_text(text) {
        Err(JobError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(job) => panic!("expected problems, the job is valid: {job:?}\n{text}"),
    }
}

/// `BASE` with `from` (which must occur once) replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "{from:?} occurs once in BASE"
    );
    BASE.replacen(from, to, 1)
}

fn jobs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs")
}

#[test]
fn the_base_job_resolves_with_defaults() {
    let job = parse_text(BASE).unwrap();
    assert_eq!(job.name, "t");
    assert_eq!(job.path, Path::new("t.toml"));
    assert_eq!(
        job.source,
        Source {
            api: Api::Ovh {
                endpoint: Some("ovh-eu".into())
            },
            services: Services::All,
            datacenters: None,
            token: TokenSource::MetricsUser("reader".into()),
            retry: crate::domain::retry::RetryPolicy::default(),
        }
    );
    assert_eq!(
        job.window,
        WindowSpec {
            start: TimeExpr::Absolute(at("2026-11-01T00:00:00Z")),
            end: TimeExpr::Absolute(at("2026-11-02T00:00:00Z")),
            page: Some(Duration::from_secs(3_600)),
            lookback: Duration::ZERO,
            initial_start: None,
        }
    );
    assert_eq!(job.exports.len(), 2);
    assert_eq!(
        job.exports[0],
        Export {
            component: Component::Vm,
            metrics: vec!["vscope.vm.cpu.usage.perc".into()],
            aggregator: "none".into(),
            downsample: None,
            tags: Default::default(),
        }
    );
    let catalog = Catalog::builtin();
    let host_metrics: Vec<String> = catalog
        .for_component(Component::Host)
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(job.exports[1].component, Component::Host);
    assert_eq!(
        job.exports[1].metrics, host_metrics,
        "all = the catalog's, in order"
    );
    assert_eq!(
        job.output,
        Output {
            path: "out".into(),
            partitioning: vec![PartitionBy::Date],
            compression_level: 1,
            s3: Default::default(),
            format: OutputFormat::Parquet,
        }
    );
    assert!(job.warnings.is_empty());
}

#[test]
fn the_least_a_job_needs() {
    let text = r#"
        name = "min"
        [source]
        metrics_user = "reader"
        [window]
        start = "yesterday"
        [[export]]
        table = "filer_metrics"
        metrics = "all"
        [output]
        path = "out"
    "#;
    let job = parse_text(text).unwrap();
    assert_eq!(job.source.api, Api::Ovh { endpoint: None });
    assert_eq!(job.window.end, TimeExpr::Now);
    assert_eq!(job.window.page, None, "page defaults to auto");
    assert_eq!(
        job.exports[0].metrics,
        ["vscope.filer.datastore.diskspace.used"]
    );
}

#[test]
fn every_example_job_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(jobs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let job = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                job.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                job.warnings
            );
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("#:schema ../schemas/job.schema.json\n"),
                "{} names the schema for editors on its first line",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "demo, nightly and backfill at least");
}

#[test]
fn the_example_jobs_resolve_as_documented() {
    let demo = load(&jobs_dir().join("demo.toml")).unwrap();
    let Api::Simulator(sim) = &demo.source.api else {
        panic!("the demo runs against the simulator: {:?}", demo.source.api)
    };
    assert_eq!(
        (
            sim.services,
            sim.datacenters,
            sim.hosts,
            sim.vms,
            sim.filers
        ),
        (1, 2, 4, 150, 3)
    );
    assert_eq!(
        demo.source.token,
        TokenSource::MetricsUser(crate::domain::simulator::METRICS_USER.into())
    );
    assert_eq!(
        demo.window.start,
        TimeExpr::Absolute(at("2026-11-23T00:00:00Z")),
        "an absolute day keeps the demo reproducible"
    );
    let components: Vec<Component> = demo.exports.iter().map(|e| e.component).collect();
    assert_eq!(components, Component::ALL);
    assert_eq!(
        demo.exports.iter().map(|e| e.metrics.len()).sum::<usize>(),
        20
    );

    let nightly = load(&jobs_dir().join("nightly.toml")).unwrap();
    assert_eq!(nightly.window.start, TimeExpr::LastRun);
    assert_eq!(nightly.window.lookback, Duration::from_secs(7_200));
    assert_eq!(nightly.window.initial_start, Some(TimeExpr::Yesterday));
    assert_eq!(nightly.window.end, TimeExpr::Today);
    assert!(matches!(nightly.source.token, TokenSource::MetricsUser(_)));
    assert_eq!(nightly.source.services, Services::All);

    let backfill = load(&jobs_dir().join("backfill.toml")).unwrap();
    assert_eq!(
        backfill.source.token,
        TokenSource::Direct {
            token_env: "VSCOPE_METRICS_TOKEN".into(),
            opentsdb_url: "https://opentsdb.gra1-ovh.metrics.ovh.net".into(),
        }
    );
    assert_eq!(
        backfill.output.partitioning,
        [PartitionBy::ServiceName, PartitionBy::Month]
    );
    let window = Window::resolve(&backfill.window, at("2026-11-25T15:00:00Z"), None).unwrap();
    assert_eq!(window.duration(), chrono::TimeDelta::days(365));
    let to_s3 = load(&jobs_dir().join("ovh-object-storage.toml")).unwrap();
    assert_eq!(to_s3.output.path, "s3://vscope-exports/nightly/vscope");
    assert_eq!(
        to_s3.output.s3,
        S3Settings {
            endpoint: Some("https://s3.gra.io.cloud.ovh.net".into()),
            region: Some("gra".into()),
            virtual_hosted: Some(true),
        }
    );
}

#[test]
fn the_simulator_takes_its_table_and_a_default_user() {
    let text = with(
        "endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"\n",
        "endpoint = \"simulator\"\n\n[source.simulator]\nseed = 7\nvms = 10\n",
    );
    let job = parse_text(&text).unwrap();
    assert_eq!(
        job.source.api,
        Api::Simulator(crate::job::Simulator {
            seed: 7,
            vms: 10,
            ..Default::default()
        })
    );
    assert_eq!(
        job.source.token,
        TokenSource::MetricsUser(crate::domain::simulator::METRICS_USER.into())
    );

    // Without the table: the defaults. With a direct token: that token.
    let text = with(
        "endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"\n",
        "endpoint = \"simulator\"\ntoken_env = \"SIM_TOKEN\"\nopentsdb_url = \"http://127.0.0.1:4242\"\n",
    );
    let job = parse_text(&text).unwrap();
    assert_eq!(job.source.api, Api::Simulator(Default::default()));
    assert_eq!(
        job.source.token,
        TokenSource::Direct {
            token_env: "SIM_TOKEN".into(),
            opentsdb_url: "http://127.0.0.1:4242".into()
        }
    );
}

#[test]
fn values_resolve_as_written() {
    let text = with("start = \"2026-11-01\"", "start = \"2026-11-01T01:30:00+02:00\"")
        .replace("endpoint = \"ovh-eu\"", "endpoint = \"http://[::1]:8080/1.0\"\nservices = [\"pcc-1\", \"pcc-2\"]\ndatacenters = [\"datacenter869\"]")
        .replace(
            "metrics = [\"vscope.vm.cpu.usage.perc\"]",
            "metrics = [\"vscope.vm.cpu.usage.perc\"]\naggregator = \"avg\"\ndownsample = \"5m-avg-nan\"\ntags = { vm = \"vm-1254|vm-1300\" }",
        )
        .replace(
            "path = \"out\"",
            "path = \"file:///srv/out\"\npartitioning = [\"service_name\", \"date\"]\ncompression_level = 22",
        );
    let job = parse_text(&text).unwrap();
    assert_eq!(
        job.window.start,
        TimeExpr::Absolute(at("2026-10-31T23:30:00Z"))
    );
    assert_eq!(
        job.source.api,
        Api::Ovh {
            endpoint: Some("http://[::1]:8080/1.0".into())
        }
    );
    assert_eq!(
        job.source.services,
        Services::Named(vec!["pcc-1".into(), "pcc-2".into()])
    );
    assert_eq!(job.source.datacenters, Some(vec!["datacenter869".into()]));
    let export = &job.exports[0];
    assert_eq!(export.aggregator, "avg");
    assert_eq!(export.downsample.as_deref(), Some("5m-avg-nan"));
    assert_eq!(export.tags["vm"], "vm-1254|vm-1300");
    assert_eq!(
        job.output.partitioning,
        [PartitionBy::ServiceName, PartitionBy::Date]
    );
    assert_eq!(job.output.compression_level, 22);
}

#[test]
fn a_metric_missing_from_the_catalog_is_a_warning_with_a_suggestion() {
    let text = with(
        "\"vscope.vm.cpu.usage.perc\"]",
        "\"vscope.vm.cpu.usage.pct\"]",
    );
    let job = parse_text(&text).unwrap();
    assert_eq!(job.exports[0].metrics, ["vscope.vm.cpu.usage.pct"]);
    let [warning] = job.warnings.as_slice() else {
        panic!("{:?}", job.warnings)
    };
    assert_eq!(warning.key, "export[0].metrics[0]");
    assert_eq!(warning.line, Some(14));
    assert!(
        warning
            .message
            .contains("did you mean vscope.vm.cpu.usage.perc?"),
        "{}",
        warning.message
    );
}

/// One change to `BASE` → the problem it must cause: its key, line and a word of its message.
#[test]
fn every_problem_names_its_key_and_line() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, Option<usize>, &str)] = &[
        // Syntax, reported with the position and no key.
        ("name = \"t\"", "name = \"t", "", Some(1), ""),
        ("name = \"t\"", "name = \"t\"\nname = \"u\"", "", Some(2), "duplicate"),
        // The top level.
        ("name = \"t\"", "name = \"a b\"", "name", Some(1), "not a job name"),
        ("name = \"t\"", &format!("name = \"{}\"", "x".repeat(65)), "name", Some(1), "not a job name"),
        ("name = \"t\"", "name = 7", "name", Some(1), "invalid type"),
        ("name = \"t\"", "name = \"t\"\ncolour = \"red\"", "colour", Some(2), "unknown key"),
        ("name = \"t\"", "name = \"t-s1of2\"", "name", Some(1), "ends like the name of a shard"),
        ("name = \"t\"", "name = \"t\"\nshard = \"4/4\"", "shard", Some(2), "0-based"),
        ("name = \"t\"", "name = \"t\"\nshard = \"1/0\"", "shard", Some(2), "at least 1"),
        ("name = \"t\"", "name = \"t\"\nshard = \"half\"", "shard", Some(2), "not a shard"),
        ("name = \"t\"", "name = \"t\"\nshard = \"auto/4\"", "shard", Some(2), "run --shard"),
        ("name = \"t\"", "name = \"t\"\nshard = 2", "shard", Some(2), "invalid type"),
        ("[output]\npath = \"out\"\n", "", "output", None, "missing"),
        ("name = \"t\"\n", "", "name", None, "missing"),
        // [source]
        ("metrics_user = \"reader\"", "metrics_user = \"reader\"\ncolour = 1", "source.colour", Some(6), "unknown key"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"ovh-xx\"", "source.endpoint", Some(4), "not an endpoint"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"http://api.example.com/1.0\"", "source.endpoint", Some(4), "https"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"https//eu.api.ovh.com\"", "source.endpoint", Some(4), "not an endpoint"),
        ("metrics_user = \"reader\"", "metrics_user = \"reader\"\n\n[source.simulator]\nseed = 1", "source.simulator", Some(7), "only applies"),
        ("endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"", "endpoint = \"simulator\"\n\n[source.simulator]\nvm = 3", "source.simulator.vm", Some(7), "unknown key"),
        ("endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"", "endpoint = \"simulator\"\n\n[source.simulator]\nvms = \"many\"", "source.simulator.vms", Some(7), "invalid type"),
        ("metrics_user = \"reader\"", "metrics_user = \"reader\"\ntoken_env = \"T\"\nopentsdb_url = \"https://x.example\"", "source.metrics_user", Some(5), "two ways"),
        ("metrics_user = \"reader\"", "", "source", Some(3), "token"),
        ("metrics_user = \"reader\"", "metrics_user = \"\"", "source.metrics_user", Some(5), "empty"),
        ("metrics_user = \"reader\"", "token_env = \"T\"", "source.token_env", Some(5), "needs opentsdb_url"),
        ("metrics_user = \"reader\"", "opentsdb_url = \"https://x.example\"", "source.opentsdb_url", Some(5), "needs token_env"),
        ("metrics_user = \"reader\"", "token_env = \"T\"\nopentsdb_url = \"http://metrics.example.com\"", "source.opentsdb_url", Some(6), "https"),
        ("metrics_user = \"reader\"", "token_env = \"T\"\nopentsdb_url = \"not a url\"", "source.opentsdb_url", Some(6), "not a URL"),
        ("metrics_user = \"reader\"", "token_env = \"1-TOKEN\"\nopentsdb_url = \"https://x.example\"", "source.token_env", Some(5), "environment variable"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"ovh-eu\"\nservices = []", "source.services", Some(5), "empty"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"ovh-eu\"\nservices = \"some\"", "source.services", Some(5), "\"all\""),
        ("endpoint = \"ovh-eu\"", "endpoint = \"ovh-eu\"\nservices = 3", "source.services", Some(5), "\"all\" or a list"),
        ("endpoint = \"ovh-eu\"", "endpoint = \"ovh-eu\"\ndatacenters = [\"dc1\", \"dc1\"]", "source.datacenters[1]", Some(5), "twice"),
        ("[source]\nendpoint = \"ovh-eu\"\nmetrics_user = \"reader\"\n", "", "source", None, "missing"),
        // [window]
        ("start = \"2026-11-01\"", "start = \"tomorrow\"", "window.start", Some(8), "not a time"),
        ("start = \"2026-11-01\"", "start = \"2026-11-01T00:00:00\"", "window.start", Some(8), "offset"),
        ("start = \"2026-11-01\"", "start = 2026-11-01", "window.start", Some(8), "write times as strings: start = \"2026-11-01\""),
        ("start = \"2026-11-01\"\n", "", "window.start", Some(7), "missing"),
        ("end = \"2026-11-02\"", "end = \"last-run\"", "window.end", Some(9), "last-run"),
        ("end = \"2026-11-02\"", "end = \"2026-10-31\"", "window.end", Some(9), "before it starts"),
        ("end = \"2026-11-02\"", "end = \"2026-11-01\"", "window.end", Some(9), "before it starts"),
        ("page = \"1h\"", "page = \"2d\"", "window.page", Some(10), "longer than the whole window"),
        ("page = \"1h\"", "page = \"fast\"", "window.page", Some(10), "not a duration"),
        ("page = \"1h\"", "page = \"0h\"", "window.page", Some(10), "not a duration"),
        ("page = \"1h\"", "pages = \"1h\"", "window.pages", Some(10), "unknown key"),
        ("page = \"1h\"", "page = \"1h\"\nlookback = \"2h\"", "window.lookback", Some(11), "only applies"),
        ("page = \"1h\"", "page = \"1h\"\ninitial_start = \"7d-ago\"", "window.initial_start", Some(11), "only applies"),
        ("start = \"2026-11-01\"", "start = \"last-run\"", "window.initial_start", Some(7), "needs initial_start"),
        ("start = \"2026-11-01\"", "start = \"last-run\"\ninitial_start = \"7d-ago\"\nlookback = \"2 hours\"", "window.lookback", Some(10), "not a duration"),
        ("start = \"2026-11-01\"", "start = \"last-run\"\ninitial_start = \"last-run\"", "window.initial_start", Some(9), "cannot be last-run"),
        ("start = \"2026-11-01\"", "start = \"last-run\"\ninitial_start = \"soon\"", "window.initial_start", Some(9), "not a time"),
        ("start = \"2026-11-01\"\nend = \"2026-11-02\"", "start = \"today\"\nend = \"yesterday\"", "window.start", Some(8), "always empty"),
        ("start = \"2026-11-01\"\nend = \"2026-11-02\"", "start = \"1h-ago\"\nend = \"2h-ago\"", "window.start", Some(8), "always empty"),
        ("[window]\nstart = \"2026-11-01\"\nend = \"2026-11-02\"\npage = \"1h\"\n", "", "window", None, "missing"),
        // [[export]]
        ("table = \"vm_metrics\"", "table = \"vm_metric\"", "export[0].table", Some(13), "did you mean vm_metrics?"),
        ("table = \"vm_metrics\"", "table = \"datastores\"", "export[0].table", Some(13), "did you mean filer_metrics?"),
        ("table = \"vm_metrics\"\n", "", "export[0].table", Some(12), "missing"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = []", "export[0].metrics", Some(14), "empty"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = \"every\"", "export[0].metrics", Some(14), "\"all\""),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = 3", "export[0].metrics", Some(14), "invalid type"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.host.cpu.usage.perc\"]", "export[0].metrics[0]", Some(14), "vscope.host.cpu.usage.perc is a host metric; export it to host_metrics"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.filer.new.metric\"]", "export[0].metrics[0]", Some(14), "export it to filer_metrics"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\", \"vscope.vm.cpu.usage.perc\"]", "export[0].metrics[1]", Some(14), "twice"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"\"]", "export[0].metrics[0]", Some(14), "empty"),
        ("table = \"host_metrics\"", "table = \"vm_metrics\"", "export[1].metrics", Some(18), "export[0] already exports vscope.vm.cpu.usage.perc to vm_metrics"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\naggregator = \"median\"", "export[0].aggregator", Some(15), "not an aggregator"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\ndownsample = \"5m-none\"", "export[0].downsample", Some(15), "downsampling aggregator"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\ndownsample = \"5m-avg-zeros\"", "export[0].downsample", Some(15), "fill"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\ndownsample = \"5x-avg\"", "export[0].downsample", Some(15), "interval"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\ndownsample = \"avg\"", "export[0].downsample", Some(15), "5m-avg-nan"),
        ("metrics = [\"vscope.vm.cpu.usage.perc\"]", "metrics = [\"vscope.vm.cpu.usage.perc\"]\ntags = { vm = \"\" }", "export[0].tags.vm", Some(15), "empty filter"),
        ("metrics = \"all\"", "metrics = \"all\"\ncolour = 1", "export[1].colour", Some(19), "unknown key"),
        // [output]
        ("path = \"out\"", "path = \"gs://bucket/out\"", "output.path", Some(21), "not supported"),
        ("path = \"out\"", "path = \"\"", "output.path", Some(21), "empty"),
        ("path = \"out\"", "path = \"out\"\npartitioning = [\"date\", \"service_name\"]", "output.partitioning", Some(22), "not a partitioning"),
        ("path = \"out\"", "path = \"out\"\npartitioning = [\"day\"]", "output.partitioning", Some(22), "not a partitioning"),
        ("path = \"out\"", "path = \"out\"\ncompression_level = 0", "output.compression_level", Some(22), "1 to 22"),
        ("path = \"out\"", "path = \"out\"\ncompression_level = 23", "output.compression_level", Some(22), "1 to 22"),
        ("path = \"out\"", "path = \"out\"\ncompression_level = \"high\"", "output.compression_level", Some(22), "invalid type"),
    ];
    let mut failures = Vec::new();
    for (from, to, key, line, words) in cases {
        let text = with(from, to);
        let found = problems(&text);
        let matching = found
            .iter()
            .any(|p| p.key == *key && p.line == *line && p.message.contains(words));
        if !matching || found.len() != 1 {
            failures.push(format!(
                "{to:?}: expected only {key} at {line:?} ({words}), got {found:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_shard_resolves_and_0_of_1_is_the_whole_job() {
    let shard = |text: &str| {
        parse_text(&with(
            "name = \"t\"",
            &format!("name = \"t\"\nshard = \"{text}\""),
        ))
        .unwrap()
        .shard
    };
    assert_eq!(
        shard("2/4"),
        Some(crate::domain::shard::Shard { index: 2, count: 4 })
    );
    assert_eq!(shard("0/1"), None);
    assert_eq!(parse_text(BASE).unwrap().shard, None);
    // A name that merely contains such a part is fine.
    assert!(parse_text(&with("name = \"t\"", "name = \"t-s1of2-x\"")).is_ok());
}

#[test]
fn exports_must_be_an_array_of_tables_and_not_empty() {
    let text = with(
        "[[export]]\ntable = \"vm_metrics\"\nmetrics = [\"vscope.vm.cpu.usage.perc\"]\n\n[[export]]\ntable = \"host_metrics\"\nmetrics = \"all\"\n",
        "[export]\ntable = \"vm_metrics\"\nmetrics = \"all\"\n",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].key.as_str(), found[0].line), ("export", Some(12)));

    let text = with(
        "[[export]]\ntable = \"vm_metrics\"\nmetrics = [\"vscope.vm.cpu.usage.perc\"]\n\n[[export]]\ntable = \"host_metrics\"\nmetrics = \"all\"\n",
        "",
    )
    .replace("name = \"t\"\n", "name = \"t\"\nexport = []\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "export");
}

#[test]
fn every_problem_is_reported_at_once_in_document_order() {
    let text = r#"name = "no spaces allowed"
colour = "red"

[source]
endpoint = "ovh-xx"
metrics_user = "reader"
token_env = "T"
shade = 1

[window]
start = "tomorrow"
end = "last-run"
lookback = "2h"

[[export]]
table = "vm_metric"
metrics = []

[[export]]
table = "host_metrics"
metrics = ["vscope.vm.cpu.usage.perc"]
aggregator = "median"

[output]
path = "gs://bucket"
compression_level = 99
partitioning = ["hour"]
"#;
    let found = problems(text);
    let keys: Vec<(&str, Option<usize>)> = found.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        keys,
        [
            ("name", Some(1)),
            ("colour", Some(2)),
            ("source.endpoint", Some(5)),
            ("source.metrics_user", Some(6)),
            ("source.shade", Some(8)),
            ("window.start", Some(11)),
            ("window.end", Some(12)),
            // (`lookback` without `last-run` is not reported: the start is unknown.)
            ("export[0].table", Some(16)),
            ("export[0].metrics", Some(17)),
            ("export[1].metrics[0]", Some(21)),
            ("export[1].aggregator", Some(22)),
            ("output.path", Some(25)),
            ("output.compression_level", Some(26)),
            ("output.partitioning", Some(27)),
        ]
    );
    // Rendered as `path:line:column: key: message`, one per line.
    let rendered = JobError::Invalid {
        path: "jobs/x.toml".into(),
        problems: found,
    }
    .to_string();
    assert!(
        rendered.starts_with("job file jobs/x.toml has 14 problem(s):"),
        "{rendered}"
    );
    assert!(
        rendered.contains("\n  jobs/x.toml:8:1: source.shade: unknown key `shade`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("\n  jobs/x.toml:11:9: window.start: 'tomorrow' is not a time"),
        "{rendered}"
    );
}

#[test]
fn a_file_that_cannot_be_read_says_which() {
    let err = load(Path::new("/nonexistent/job.toml")).unwrap_err();
    assert!(matches!(err, JobError::Read { .. }));
    assert_eq!(
        err.to_string(),
        "cannot read job file /nonexistent/job.toml"
    );
}

/// `schemas/job.schema.json` as the job file's structs make it: their keys, which are required,
/// their doc comments as descriptions, and the constraints their `schemars` attributes add.
fn generated_job_schema() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let mut schema = settings.into_generator().into_root_schema_for::<JobFile>();
    schema.insert(
        "$id".into(),
        "https://github.com/vscope-export/vscope-export/schemas/job.schema.json".into(),
    );
    schema.insert("title".into(), "vscope-export job".into());
    canonical(schema.to_value())
}

/// `value` without the `null`s that serde lets an `Option` take (a TOML file has no null: a key
/// is there or not), and with every object's keys sorted, so that the file is the same whichever
/// features the test was built with.
fn canonical(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("type", Value::Array(types)) => {
                        let mut types: Vec<Value> =
                            types.into_iter().filter(|t| t != "null").collect();
                        let types = match types.len() {
                            1 => types.remove(0),
                            _ => Value::Array(types),
                        };
                        entries.push((key, types));
                    }
                    ("anyOf", Value::Array(options)) => {
                        let mut options: Vec<Value> = options
                            .into_iter()
                            .filter(|o| o.get("type").is_none_or(|t| t != "null"))
                            .collect();
                        // An `Option` of a schema of its own: that schema, in place.
                        match (options.len(), options.first()) {
                            (1, Some(Value::Object(_))) => {
                                if let Value::Object(only) = options.remove(0) {
                                    entries.extend(only);
                                }
                            }
                            _ => entries.push((key, Value::Array(options))),
                        }
                    }
                    // A doc comment's lines, joined into its paragraphs.
                    ("description", Value::String(text)) => {
                        let paragraphs: Vec<String> = text
                            .split("\n\n")
                            .map(|p| p.split('\n').collect::<Vec<_>>().join(" "))
                            .collect();
                        entries.push((key, Value::String(paragraphs.join("\n\n"))));
                    }
                    (_, value) => entries.push((key, value)),
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let out: serde_json::Map<String, Value> = entries
                .into_iter()
                .map(|(key, value)| (key, canonical(value)))
                .collect();
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Every property of `schema`, at any depth, with its path.
fn properties<'a>(
    path: &str,
    schema: &'a serde_json::Value,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for (key, property) in props {
            let path = format!("{path}.{key}");
            out.push((path.clone(), property));
            properties(&path, property, out);
            if let Some(items) = property.get("items") {
                properties(&format!("{path}[]"), items, out);
            }
        }
    }
}

#[test]
fn the_committed_job_schema_is_the_one_the_job_structs_generate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/job.schema.json");
    let generated = generated_job_schema();
    let mut described = Vec::new();
    properties("", &generated, &mut described);
    assert!(described.len() > 40, "the schema reaches every section");
    for (key, property) in described {
        assert!(
            property["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{key} needs a doc comment: it is the key's description in editors"
        );
    }
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("VSCOPE_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schemas/job.schema.json differs from what the job file's structs generate; \
         regenerate it with `VSCOPE_WRITE_SCHEMA=1 cargo test --lib job::tests::the_committed_job_schema` \
         and commit it"
    );
}

#[test]
fn values_of_the_wrong_type_do_not_hide_each_other() {
    // A bad value is reported and set aside, and the rest of its section still checked (a
    // required key with a bad value is the exception: its section cannot be read without it).
    let text = with(
        "path = \"out\"",
        "path = \"gs://bucket\"\ncompression_level = \"high\"\npartitioning = [\"hour\"]",
    )
    .replace("endpoint = \"ovh-eu\"", "endpoint = \"ovh-xx\"")
    .replace(
        "metrics_user = \"reader\"",
        "metrics_user = \"reader\"\n\n[source.simulator]\nvms = \"lots\"",
    );
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "source.endpoint",
            "source.simulator",
            "source.simulator.vms",
            "output.path",
            "output.compression_level",
            "output.partitioning",
        ],
        "{found:#?}"
    );
}

#[test]
fn retry_settings_resolve_with_defaults_for_what_is_left_out() {
    let text = with(
        "metrics_user = \"reader\"\n",
        "metrics_user = \"reader\"\n\n[source.retry]\nmax_retries = 20\nmin_delay = \"1ms\"\nmax_delay = \"2s\"\n",
    );
    let job = parse_text(&text).unwrap();
    assert_eq!(
        job.source.retry,
        crate::domain::retry::RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(2),
            max_retries: 20,
            total_delay: Duration::from_secs(300),
        }
    );
}

#[test]
fn bad_retry_settings_are_reported_with_their_key_and_line() {
    let text = with(
        "metrics_user = \"reader\"\n",
        "metrics_user = \"reader\"\n\n[source.retry]\nmax_retries = 500\nmin_delay = \"1 second\"\nmax_delay = \"2x\"\nbudget = \"5m\"\npatience = 3\n",
    );
    let found_problems = problems(&text);
    let found: Vec<(&str, Option<usize>)> = found_problems
        .iter()
        .map(|p| (p.key.as_str(), p.line))
        .collect();
    assert_eq!(
        found,
        vec![
            ("source.retry.max_retries", Some(8)),
            ("source.retry.min_delay", Some(9)),
            ("source.retry.max_delay", Some(10)),
            ("source.retry.patience", Some(12)),
        ],
        "{found_problems:#?}"
    );
    assert!(
        found_problems[1].message.contains("ms s m h"),
        "{found_problems:#?}"
    );

    let text = with(
        "metrics_user = \"reader\"\n",
        "metrics_user = \"reader\"\n\n[source.retry]\nmin_delay = \"40s\"\n",
    );
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "source.retry.min_delay");
    assert_eq!(
        problems[0].message,
        "the first wait (40s) is longer than max_delay (30s)"
    );
}

#[test]
fn a_bad_fault_spec_is_reported_at_its_key() {
    let text = with(
        "endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"",
        "endpoint = \"simulator\"\n\n[source.simulator]\nfaults = \"5xx=0.2,oops=1\"\nhostile_names = true",
    );
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "source.simulator.faults");
    assert_eq!(problems[0].line, Some(7));
    assert!(
        problems[0].message.contains("fault `oops=1`: unknown kind"),
        "{problems:#?}"
    );

    let text = with(
        "endpoint = \"ovh-eu\"\nmetrics_user = \"reader\"",
        "endpoint = \"simulator\"\n\n[source.simulator]\nfaults = \"5xx=0.2,cap=1000\"\nhostile_names = true",
    );
    let job = parse_text(&text).unwrap();
    let Api::Simulator(config) = job.source.api else {
        panic!("{:?}", job.source.api)
    };
    assert!(config.hostile_names);
    assert_eq!(config.faults.unwrap().cap, Some(1000));
}

#[test]
fn an_s3_output_takes_endpoint_region_and_addressing_and_never_a_secret() {
    let job = parse_text(&with(
        "path = \"out\"",
        "path = \"s3://vscope-exports/nightly\"\n\n[output.s3]\nendpoint = \"https://s3.gra.io.cloud.ovh.net\"\nregion = \"gra\"\naddressing = \"virtual-hosted\"",
    ))
    .unwrap();
    assert_eq!(
        job.output.s3,
        S3Settings {
            endpoint: Some("https://s3.gra.io.cloud.ovh.net".into()),
            region: Some("gra".into()),
            virtual_hosted: Some(true),
        }
    );

    let found = problems(&with(
        "path = \"out\"",
        "path = \"s3://vscope-exports/nightly\"\n\n[output.s3]\nendpoint = \"http://s3.gra.io.cloud.ovh.net\"\nregion = \"g r a\"\naddressing = \"dns\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s3cr3t\"",
    ));
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "output.s3.endpoint",
            "output.s3.region",
            "output.s3.addressing",
            "output.s3.access_key_id",
            "output.s3.secret_access_key",
        ],
        "in document order"
    );
    assert!(found.iter().all(|p| !p.message.contains("s3cr3t")));
    assert!(
        found[4].message.contains("AWS_SECRET_ACCESS_KEY"),
        "{:?}",
        found[4]
    );

    let found = problems(&with("path = \"out\"", "path = \"gs://bucket/x\""));
    assert_eq!(found[0].key, "output.path");
    assert!(found[0].message.contains("s3://"), "{:?}", found[0]);
}
