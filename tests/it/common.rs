//! Shared helpers of the integration tests: run the real binary in a temporary folder with a
//! cleared environment, write job files, and read the Parquet output back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const BIN: &str = env!("CARGO_BIN_EXE_vscope-export");

/// A temporary working folder; the exporter runs with it as current directory and HOME.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::write(&path, text).expect("write file");
        path
    }

    /// Runs the binary with only PATH kept from the environment, plus `env`.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run vscope-export")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A simulator job over `[start, end)`.
pub fn sim_job(name: &str, sizes: &str, start: &str, end: &str, page: &str) -> String {
    format!(
        r#"name = "{name}"

[source]
endpoint = "simulator"

[source.simulator]
{sizes}

[window]
start = "{start}"
end = "{end}"
page = "{page}"

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
"#
    )
}

/// Every Parquet file below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect()
}

/// Unix milliseconds of an RFC 3339 time.
pub fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .timestamp_millis()
}

pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = fs::File::open(path).expect("open parquet");
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet metadata")
        .build()
        .expect("parquet reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("parquet batches")
}

/// A column as strings (dictionary or plain), None for nulls.
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let col = arrow::compute::cast(col, &DataType::Utf8).expect("cast to utf8");
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

pub fn i64s(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let col = col.as_primitive::<Int64Type>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect()
}

pub fn timestamps(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    col.as_primitive::<TimestampMillisecondType>()
        .values()
        .to_vec()
}

pub fn f64s(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let col = col.as_primitive::<Float64Type>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect()
}

/// (metric, entity, ts) → value for every row of a metrics table, failing on duplicates.
pub type Points = BTreeMap<(String, String, i64), Option<f64>>;

pub fn exported_points(out: &Path, table: &str, entity: &str) -> Points {
    points_of_files(&parquet_files(&out.join(table)), table, entity)
}

/// [`exported_points`] of some files of `table` only (e.g. one partition's).
pub fn points_of_files(files: &[PathBuf], table: &str, entity: &str) -> Points {
    let mut points = Points::new();
    for file in files {
        for batch in read_parquet(file) {
            let metric = strings(&batch, "metric");
            let ent = strings(&batch, entity);
            let ts = timestamps(&batch, "ts");
            let value = f64s(&batch, "value");
            let nic = if table == "host_metrics" {
                strings(&batch, "nicname")
            } else {
                vec![None; ts.len()]
            };
            for i in 0..ts.len() {
                let mut e = ent[i].clone().unwrap_or_default();
                if let Some(n) = &nic[i] {
                    e = format!("{e}/{n}");
                }
                let key = (metric[i].clone().unwrap_or_default(), e, ts[i]);
                assert!(
                    points.insert(key.clone(), value[i]).is_none(),
                    "duplicate row {key:?} in {}",
                    file.display()
                );
            }
        }
    }
    points
}

impl Workspace {
    /// The command [`Workspace::run`] runs, for tests that spawn it and watch it (kills, locks).
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Every file below `dir` (not folders), sorted; nothing when `dir` does not exist.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => files.push(p),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

/// What a folder holds: every path below it (relative) with the bytes of files (`None` for
/// folders). A missing `dir` gives an empty map, a file gives one entry with an empty path.
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    match fs::symlink_metadata(dir) {
        Err(_) => return out,
        Ok(m) if !m.is_dir() => {
            out.insert(PathBuf::new(), fs::read(dir).ok());
            return out;
        }
        Ok(_) => {}
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out
}

/// A `vscope-export sim` child process on a free loopback port, with the test-only credentials
/// it prints. Killed when dropped.
pub struct SimProcess {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    pub metrics_user: String,
    pub token: String,
}

impl SimProcess {
    /// Starts `vscope-export sim --listen 127.0.0.1:0 <args>` and reads what it prints.
    pub fn start(args: &[&str]) -> SimProcess {
        use std::io::BufRead;
        let mut cmd = Command::new(BIN);
        cmd.args(["sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("start vscope-export sim");
        let stdout = child.stdout.take().expect("sim stdout");
        let mut sim = SimProcess {
            child,
            addr: String::new(),
            application_key: String::new(),
            application_secret: String::new(),
            consumer_key: String::new(),
            metrics_user: String::new(),
            token: String::new(),
        };
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("read sim output");
            let line = line.trim();
            let after = |prefix: &str| line.strip_prefix(prefix).map(str::to_string);
            if let Some(url) = after("export OVH_ENDPOINT=http://") {
                sim.addr = url.trim_end_matches("/1.0").to_string();
            } else if let Some(v) = after("export OVH_APPLICATION_KEY=") {
                sim.application_key = v;
            } else if let Some(v) = after("export OVH_APPLICATION_SECRET=") {
                sim.application_secret = v;
            } else if let Some(v) = after("export OVH_CONSUMER_KEY=") {
                sim.consumer_key = v;
            } else if let Some(rest) = after("metrics_user = \"") {
                let (user, rest) = rest.split_once('"').expect("metrics user");
                sim.metrics_user = user.to_string();
                let token = rest.split("token ").nth(1).expect("token");
                sim.token = token
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            } else if line.starts_with("Ctrl-C") {
                break;
            }
        }
        assert!(
            !sim.addr.is_empty() && !sim.application_secret.is_empty() && !sim.token.is_empty(),
            "the simulator printed its address and credentials"
        );
        sim
    }

    /// `http://127.0.0.1:<port>/1.0`.
    pub fn apiv6_url(&self) -> String {
        format!("http://{}/1.0", self.addr)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn opentsdb_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTP server that answers every request with `status` (e.g. `200 OK`), the given
/// content type and body, whatever was asked. Returns `127.0.0.1:<port>`; serves until the test
/// process ends.
pub fn canned_server(status: &str, content_type: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                // Read the request head and as much of a body as arrives, then answer.
                let mut buf = [0u8; 65536];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

/// The Python environment of the interop tests: `VSCOPE_PYTHON`, or `.venv` as `make test`
/// installs it from `tests/interop/requirements.txt` (DuckDB, pyarrow, polars, deltalake, moto).
/// `None` when there is none on this machine.
pub fn python_env() -> Option<String> {
    if let Ok(p) = std::env::var("VSCOPE_PYTHON") {
        return Some(p);
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    Path::new(venv).exists().then(|| venv.to_string())
}

/// [`python_env`], which the test cannot do without.
pub fn python() -> String {
    python_env().expect(
        "the interop tests' Python environment is not installed: run `make venv` (it installs it into .venv) or set VSCOPE_PYTHON",
    )
}
