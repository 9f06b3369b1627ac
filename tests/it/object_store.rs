//! Output to an S3-compatible object store (`s3://…`), against a real S3 server (moto) that the
//! tests start on loopback, with the Python environment the interop tests use (`VSCOPE_PYTHON`,
//! or `.venv` as `make test` installs it from `tests/interop/requirements.txt`): the demo job read
//! back with pyarrow's S3 filesystem and polars equals the same job on local disk; a failed part
//! upload and a killed run leave the store consistent; a second run of the job is refused while
//! one runs; credentials are never printed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

const KEY_ID: &str = "AKIDVSCOPETEST";
const SECRET: &str = "sEcReT-vscope-test-0123456789";
const BUCKET: &str = "exports";
const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/check_s3.py");

/// The Python environment with moto, pyarrow and polars, or `None` (and a message) when there is
/// none on this machine.
fn python() -> Option<String> {
    if let Some(python) = python_env() {
        return Some(python);
    }
    eprintln!(
        "skipped: no Python environment for the S3 server: run `make venv` (it installs moto, pyarrow and polars into .venv) or set VSCOPE_PYTHON"
    );
    None
}

/// A moto S3 server on 127.0.0.1, stopped on drop, with one bucket.
struct S3 {
    python: String,
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl S3 {
    fn start() -> Option<S3> {
        let python = python()?;
        let mut child = Command::new(&python)
            .args([CHECK, "serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the S3 server");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the S3 server did not start (is moto installed in {python}?): {line:?}")
        });
        let s3 = S3 {
            python,
            child,
            _stdin: stdin,
            port,
        };
        assert_eq!(s3.check(&["mkbucket", BUCKET]), "ok");
        Some(s3)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS variables a user would set, the endpoint being `endpoint`.
    fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ]
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        S3::env_for(&self.endpoint())
    }

    /// Runs `check_s3.py` and returns its JSON answer.
    fn check(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(&self.python)
            .arg(CHECK)
            .args(args)
            .envs(self.env())
            .output()
            .expect("run check_s3.py");
        assert!(
            out.status.success(),
            "check_s3.py {args:?}: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Asserts that a finished run left no lock and no upload journal among `keys`.
    fn assert_nothing_left(keys: &serde_json::Map<String, serde_json::Value>) {
        assert!(
            !keys
                .keys()
                .any(|k| k.ends_with(".lock") || k.contains("/_state/uploads/")),
            "no lock nor upload journal left: {keys:?}"
        );
    }

    /// Every object below `prefix`, with its size.
    fn keys(&self, prefix: &str) -> serde_json::Map<String, serde_json::Value> {
        self.check(&["keys", BUCKET, prefix])
            .as_object()
            .cloned()
            .unwrap()
    }

    /// The multipart uploads in progress in the bucket.
    fn uploads(&self) -> Vec<serde_json::Value> {
        self.check(&["uploads", BUCKET])
            .as_array()
            .cloned()
            .unwrap()
    }

    /// Checks that the metrics tables under `prefix` equal those of `local`, read with pyarrow
    /// and with polars.
    fn assert_equal_to(&self, prefix: &str, local: &Path) {
        let tables = ["vm_metrics", "host_metrics", "filer_metrics"];
        let mut args = vec!["compare", BUCKET, prefix, local.to_str().unwrap()];
        args.extend(tables);
        let report = self.check(&args);
        for table in tables {
            let t = &report[table];
            assert!(t["rows"].as_u64().unwrap() > 0, "{table}: {t}");
            assert_eq!(t["pyarrow_rows"], t["rows"], "{table}: {t}");
            assert_eq!(t["pyarrow_equal"], true, "{table} through pyarrow: {t}");
            assert_eq!(t["polars_rows"], t["rows"], "{table}: {t}");
            assert_eq!(t["polars_equal"], true, "{table} through polars: {t}");
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo job (a simulated day of ~300 VMs: its `vm_metrics` file is larger than one upload
/// part, so it goes up as a multipart upload), writing to `output`.
fn demo_job(ws: &Workspace, output: &str) -> PathBuf {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/demo.toml"))
        .unwrap()
        .replace("path = \"out\"", &format!("path = \"{output}\""));
    ws.write("demo.toml", &text)
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The demo job run to local disk, to compare with.
fn local_demo(ws: &Workspace) -> PathBuf {
    let job = demo_job(ws, "local");
    let out = ws.run(&["run", job.to_str().unwrap(), "-q"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    ws.path().join("local")
}

/// What a fault proxy does to `UploadPart` requests; every other request goes through.
#[derive(Clone, Copy)]
enum PartFault {
    /// Answers 400 (which no client retries).
    Fail,
    /// Tells the test, then holds the request without answering.
    Stall,
}

/// A loopback proxy in front of the S3 server that spoils every `UploadPart`. Returns its URL
/// and a receiver told of each spoiled part.
fn fault_proxy(upstream: String, fault: PartFault) -> (String, mpsc::Receiver<()>) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        fault: PartFault,
        told: mpsc::SyncSender<()>,
        client: reqwest::Client,
    }

    async fn forward(
        State(p): State<Proxy>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let is_part =
            method == Method::PUT && uri.query().is_some_and(|q| q.contains("partNumber="));
        if is_part {
            let _ = p.told.try_send(());
            match p.fault {
                PartFault::Fail => {
                    return (
                        StatusCode::BAD_REQUEST,
                        "<Error><Code>InvalidRequest</Code><Message>part refused by the test proxy</Message></Error>",
                    )
                        .into_response()
                }
                PartFault::Stall => {
                    // Bounded: the test kills the run long before.
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
        }
        let url = format!(
            "{}{}",
            p.upstream,
            uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
        );
        let head = method == Method::HEAD;
        let mut request = p.client.request(method, url).body(body);
        for (name, value) in &headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status();
                let mut out = HeaderMap::new();
                for (name, value) in answer.headers() {
                    // A HEAD answer's length is the object's size, which the client reads.
                    if (head || name != "content-length") && name != "transfer-encoding" {
                        out.insert(name, value.clone());
                    }
                }
                let bytes = answer.bytes().await.unwrap_or_default();
                (status, out, bytes).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }

    let (told, receiver) = mpsc::sync_channel(16);
    let (port_tx, port_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let proxy = Proxy {
                upstream,
                fault,
                told,
                client: reqwest::Client::new(),
            };
            let app = axum::Router::new()
                .fallback(forward)
                .layer(axum::extract::DefaultBodyLimit::disable())
                .with_state(proxy);
            let _ = axum::serve(listener, app).await;
        });
    });
    let port = port_rx.recv().unwrap();
    (format!("http://127.0.0.1:{port}"), receiver)
}

#[test]
fn the_demo_job_to_s3_reads_back_equal_to_the_same_job_on_local_disk() {
    let Some(s3) = S3::start() else { return };
    let ws = Workspace::new();
    let job = demo_job(&ws, "s3://exports/nightly/vscope");
    let env = s3.env();
    let out = ws.run(&["run", job.to_str().unwrap()], &env_refs(&env));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("output: s3://exports/nightly/vscope"),
        "{}",
        stdout(&out)
    );
    s3.assert_equal_to("nightly/vscope", &local_demo(&ws));

    let keys = s3.keys("nightly/vscope/");
    let vm = keys
        .iter()
        .find(|(k, _)| k.starts_with("nightly/vscope/vm_metrics/date=2026-11-23/part-demo-"))
        .map(|(_, size)| size.as_u64().unwrap())
        .expect("the vm_metrics file");
    assert!(
        vm > 8 << 20,
        "the file went up in several parts: {vm} bytes"
    );
    assert!(
        keys.contains_key("nightly/vscope/_state/demo.json"),
        "{keys:?}"
    );
    assert!(
        keys.keys()
            .any(|k| k.starts_with("nightly/vscope/_runs/") && k.ends_with(".json")),
        "the manifest: {keys:?}"
    );
    S3::assert_nothing_left(&keys);
    assert!(s3.uploads().is_empty(), "no upload left in progress");

    // The report reads the store as it reads a folder: the same report as over a copy of it.
    let copy = ws.path().join("copy");
    s3.check(&["download", BUCKET, "nightly/vscope", copy.to_str().unwrap()]);
    let report = |source: &str, to: &str| {
        let out = ws.run(
            &["report", source, "--format", "json", "--output", to],
            &env_refs(&env),
        );
        assert!(out.status.success(), "report {source}: {}", stderr(&out));
        let text = std::fs::read_to_string(ws.path().join(to)).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json.as_object_mut().unwrap().remove("source");
        json
    };
    let from_store = report("s3://exports/nightly/vscope", "store.json");
    let from_copy = report(copy.to_str().unwrap(), "copy.json");
    assert_same_report(&from_store, &from_copy, "$");

    // The job's state lives in the store: a second run reads it and moves it again.
    let again = ws.run(&["run", job.to_str().unwrap(), "-q"], &env_refs(&env));
    assert!(again.status.success(), "{}", stderr(&again));
    let state = ws.run(&["state", "show", job.to_str().unwrap()], &env_refs(&env));
    assert!(
        stdout(&state).contains("\"committed_until\": \"2026-11-24T00:00:00Z\""),
        "{}{}",
        stdout(&state),
        stderr(&state)
    );
}

/// Two reports are the same: every value equal, floating-point figures to their last few bits
/// (polars sums in parallel, in an order that may differ from one scan to the next).
fn assert_same_report(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, v) in x {
                assert_same_report(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_same_report(v, w, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{at}: {x} != {y}"
            );
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn a_failed_part_upload_keeps_the_previous_file_and_leaves_no_upload_behind() {
    let Some(s3) = S3::start() else { return };
    let ws = Workspace::new();
    let job = demo_job(&ws, "s3://exports/out");
    let env = s3.env();
    let first = ws.run(&["run", job.to_str().unwrap(), "-q"], &env_refs(&env));
    assert!(first.status.success(), "{}", stderr(&first));
    let before = s3.keys("out/vm_metrics/");

    let (proxy, spoiled) = fault_proxy(s3.endpoint(), PartFault::Fail);
    let failing = S3::env_for(&proxy);
    let out = ws.run(&["run", job.to_str().unwrap()], &env_refs(&failing));
    assert!(!out.status.success(), "the run fails");
    assert!(
        spoiled.try_recv().is_ok(),
        "a part upload was refused: {}",
        stderr(&out)
    );
    let text = stderr(&out);
    assert!(
        text.contains("s3://exports/out/vm_metrics/date=2026-11-23/part-demo-0.parquet"),
        "the error names the object: {text}"
    );
    assert_eq!(
        s3.keys("out/vm_metrics/"),
        before,
        "the previous file stays"
    );
    assert!(s3.uploads().is_empty(), "the failed upload was aborted");
    assert!(
        s3.keys("out/_state/uploads/").is_empty(),
        "its journal entry was removed"
    );
    s3.assert_equal_to("out", &local_demo(&ws));
}

#[test]
fn a_second_run_is_refused_while_one_runs_and_a_killed_runs_upload_is_cleaned_up_by_the_next() {
    let Some(s3) = S3::start() else { return };
    let ws = Workspace::new();
    let job = demo_job(&ws, "s3://exports/out");
    let (proxy, stalled) = fault_proxy(s3.endpoint(), PartFault::Stall);
    let stalling = S3::env_for(&proxy);
    let mut first = ws
        .command(&["run", job.to_str().unwrap(), "-q"], &env_refs(&stalling))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while stalled.try_recv().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first run reached its first part upload"
        );
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first run ended before uploading a part: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // The first run is mid-upload and holds the lock: a second one (another machine, for all
    // the store knows) is refused before it writes anything.
    let env = s3.env();
    let second = ws.run(&["run", job.to_str().unwrap()], &env_refs(&env));
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("already running"),
        "{}",
        stderr(&second)
    );
    assert!(
        !s3.keys("out/")
            .keys()
            .any(|k| k.starts_with("out/vm_metrics/")),
        "no partial object is visible"
    );
    assert_eq!(
        s3.uploads().len(),
        1,
        "the first run's upload is in progress"
    );

    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(s3.uploads().len(), 1, "a killed run leaves its upload");
    assert_eq!(
        s3.keys("out/_state/uploads/").len(),
        1,
        "and its journal entry"
    );

    let next = ws.run(&["run", job.to_str().unwrap(), "-v"], &env_refs(&env));
    assert!(next.status.success(), "{}", stderr(&next));
    assert!(
        stderr(&next).contains("Removed what an interrupted run left"),
        "{}",
        stderr(&next)
    );
    assert!(
        s3.uploads().is_empty(),
        "the killed run's upload was aborted"
    );
    assert!(s3.keys("out/_state/uploads/").is_empty());
    assert!(!s3.keys("out/_state/").contains_key("out/_state/demo.lock"));
    s3.assert_equal_to("out", &local_demo(&ws));
}

#[test]
fn credentials_are_never_printed_even_at_trace_level() {
    let Some(s3) = S3::start() else { return };
    let ws = Workspace::new();
    let sizes = "seed = 5\nservices = 1\ndatacenters = 1\nhosts = 1\nvms = 3\nfilers = 1";
    let job = ws.write(
        "small.toml",
        &sim_job(
            "small",
            sizes,
            "2026-11-01T00:00:00Z",
            "2026-11-01T02:00:00Z",
            "1h",
        )
        .replace("path = \"out\"", "path = \"s3://exports/small\""),
    );
    let mut env = s3.env();
    env.push(("VSCOPE_LOG", "trace".to_string()));
    let ok = ws.run(&["run", job.to_str().unwrap()], &env_refs(&env));
    assert!(ok.status.success(), "{}", stderr(&ok));
    // A failing one: the bucket does not exist.
    let missing = ws.run(
        &[
            "run",
            job.to_str().unwrap(),
            "--output",
            "s3://no-such-bucket/x",
        ],
        &env_refs(&env),
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("s3://no-such-bucket/x"),
        "the error names the output: {}",
        stderr(&missing)
    );
    for out in [&ok, &missing] {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(!text.is_empty());
        assert!(!text.contains(SECRET), "the secret key was printed");
        assert!(!text.contains(KEY_ID), "the access key id was printed");
    }
}

#[test]
fn a_job_file_with_credentials_in_output_s3_is_refused() {
    let ws = Workspace::new();
    let job = ws.write(
        "leaky.toml",
        &sim_job("leaky", "seed = 1", "2026-11-01", "2026-11-02", "1h").replace(
            "path = \"out\"",
            "path = \"s3://exports/x\"\n\n[output.s3]\nendpoint = \"http://s3.gra.io.cloud.ovh.net\"\nsecret_access_key = \"sEcReT\"",
        ),
    );
    let out = ws.run(&["validate", job.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("output.s3.secret_access_key")
            && text.contains("AWS_SECRET_ACCESS_KEY")
            && text.contains("output.s3.endpoint")
            && text.contains("plain http"),
        "{text}"
    );
    assert!(
        !text.contains("sEcReT"),
        "the secret is not repeated: {text}"
    );
}

#[test]
fn four_shards_at_once_to_s3_equal_one_run_on_local_disk() {
    let Some(s3) = S3::start() else { return };
    let sim = SimProcess::start(&crate::shard::ESTATE);
    let ws = Workspace::new();
    let window = "start = \"2026-11-23T00:00:00Z\"\nend = \"2026-11-23T06:00:00Z\"";
    let job = ws.write("nightly.toml", &crate::shard::job(&sim, "nightly", window));
    let mut env = crate::shard::credentials(&sim);
    env.extend(s3.env());

    let outcomes = crate::shard::run_shards(&ws, &job, "s3://exports/sharded", 4, &env);
    for (index, o) in outcomes.iter().enumerate() {
        assert!(o.status.success(), "shard {index}: {}", stderr(o));
    }
    let whole = ws.run(
        &["run", "nightly.toml", "--output", "whole", "-q"],
        &env_refs(&env),
    );
    assert!(whole.status.success(), "{}", stderr(&whole));

    // The objects as they are in the store, read with the same reader as the folder.
    let copy = ws.path().join("sharded-copy");
    s3.check(&["download", BUCKET, "sharded", copy.to_str().unwrap()]);
    let counts = crate::shard::union_equals(
        &crate::shard::local_tables(&copy),
        &crate::shard::local_tables(&ws.path().join("whole")),
    );
    assert!(counts["vm_metrics"] > 10_000, "{counts:?}");

    // Each shard its own files and state; no lock, journal or upload left behind.
    let keys = s3.keys("sharded/");
    for index in 0..4 {
        let file = format!("/part-nightly-s{index}of4-0.parquet");
        assert!(
            keys.keys()
                .any(|k| k.starts_with("sharded/vm_metrics/") && k.ends_with(&file)),
            "shard {index}'s vm_metrics file: {keys:?}"
        );
        let state = format!("sharded/_state/nightly-s{index}of4.json");
        assert!(keys.contains_key(&state), "{state}: {keys:?}");
    }
    S3::assert_nothing_left(&keys);
    assert!(s3.uploads().is_empty(), "no upload left in progress");

    // Another split over the same store is refused before it writes anything.
    let other = ws.run(
        &[
            "run",
            "nightly.toml",
            "--output",
            "s3://exports/sharded",
            "--shard",
            "0/2",
            "-q",
        ],
        &env_refs(&env),
    );
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(stderr(&other).contains("4 shards"), "{}", stderr(&other));
    assert_eq!(s3.keys("sharded/").len(), keys.len(), "nothing written");
}

/// A Delta output in the store: four shards commit to the same tables at once, twice (racing to
/// create each table, then each removing its own files while its siblings commit). The store's
/// objects, copied to a folder, read through `deltalake` and polars as one Parquet run does.
#[cfg(feature = "delta")]
#[test]
fn four_shards_commit_to_delta_tables_in_s3_at_once() {
    let Some(s3) = S3::start() else { return };
    let sim = SimProcess::start(&crate::shard::ESTATE);
    let ws = Workspace::new();
    let window = "start = \"2026-11-23T00:00:00Z\"\nend = \"2026-11-23T06:00:00Z\"";
    let parquet = crate::shard::job(&sim, "nightly", window);
    ws.write("parquet.toml", &parquet);
    let delta = ws.write("delta.toml", &format!("{parquet}format = \"delta\"\n"));
    let mut env = crate::shard::credentials(&sim);
    env.extend(s3.env());
    let whole = ws.run(
        &["run", "parquet.toml", "--output", "whole", "-q"],
        &env_refs(&env),
    );
    assert!(whole.status.success(), "{}", stderr(&whole));
    for round in 1..=2 {
        let outcomes = crate::shard::run_shards(&ws, &delta, "s3://exports/delta", 4, &env);
        for (index, o) in outcomes.iter().enumerate() {
            assert!(
                o.status.success(),
                "round {round}, shard {index}: {}",
                stderr(o)
            );
        }
        let copy = ws.path().join(format!("copy-{round}"));
        s3.check(&["download", BUCKET, "delta", copy.to_str().unwrap()]);
        crate::delta::assert_reads_as(&copy, &ws.path().join("whole"), &format!("round {round}"));
        let vm = &crate::delta::delta_tables(&copy)["vm_metrics"];
        assert_eq!(vm["version"], 4 * round - 1, "round {round}: {vm}");
        let files: Vec<String> = (0..4)
            .map(|i| format!("date=2026-11-23/part-nightly-s{i}of4-{round}.parquet"))
            .collect();
        assert_eq!(vm["files"], serde_json::json!(files), "round {round}");
    }
    S3::assert_nothing_left(&s3.keys("delta/"));
    assert!(s3.uploads().is_empty(), "no upload left in progress");

    // The report reads the tables' current version from the store, as from the Parquet run.
    #[cfg(feature = "report")]
    {
        let report = |out: &str| -> serde_json::Value {
            let o = ws.run(&["report", out, "--format", "json"], &env_refs(&env));
            assert!(o.status.success(), "report {out}: {}", stderr(&o));
            let mut json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            json["source"] = serde_json::Value::Null;
            json
        };
        crate::delta::assert_close(&report("s3://exports/delta"), &report("whole"), "report");
    }
}
