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
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
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
    let mut points = Points::new();
    for file in parquet_files(&out.join(table)) {
        for batch in read_parquet(&file) {
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
