//! The load stage: hive partition paths, Parquet writers and the atomic commit of a job's files;
//! a run's commit of its partitions ([`commit`]), its manifest ([`manifest`]) and the job's state
//! and lock ([`state`]).
//!
//! Owns every file-system and object-store call the exporter makes on its output, behind
//! [`Destination`]: a local folder, or an S3-compatible store ([`object`], cargo feature `s3`).
//! Never decides what the rows are.
//!
//! A job owns its files: in each partition folder it writes `part-<job>-0.parquet` and nothing
//! else (a Delta output, [`delta`], numbers them by run instead: `part-<job>-<n>.parquet`), so
//! re-running a job replaces exactly its own file and never touches another job's. A file
//! is written under a hidden temporary name in the same folder (readers skip names starting with
//! `.`), fsynced, then renamed over the old one: a reader sees the old file or the new one, never
//! half of either. A partition left with no rows has the job's file removed rather than an empty
//! file written. In an object store, where there is no rename, a file is an object that appears
//! only when its upload completes, replacing the previous one whole (see [`object`]).

pub mod commit;
#[cfg(feature = "delta")]
pub mod delta;
pub(crate) mod encode;
pub(crate) mod footer;
#[cfg(any(feature = "s3", feature = "delta"))]
mod io;
mod layout;
pub mod manifest;
#[cfg(feature = "s3")]
pub mod object;
pub mod state;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::domain::location::Location;
use crate::domain::partition::PartitionBy;
use crate::domain::partition::{PartitionKey, PartitionValueError};
use crate::domain::shard::{self, Shard};
use crate::domain::table::Table;
use crate::job::{OutputFormat, S3Settings};

pub use layout::{layout, TableLayout};

/// Rows per row group: analytic readers (DuckDB, Spark) prefer large row groups, and `value`'s
/// dictionary is shared by more rows than with one million, so the file is smaller, for more
/// memory while a row group is being written (docs/measurements.md has the figures).
pub const ROW_GROUP_ROWS: usize = 1 << 21;

/// Dictionary page limit of [`TableLayout::wide_dictionary_columns`]: room for every distinct
/// value of a row group of `value` (two-decimal values: a few hundred thousand, 8 bytes each), past
/// arrow-rs' default of 1 MiB, since falling back to plain pages half-way through a row group
/// costs more bytes and CPU than it saves (docs/measurements.md).
pub const WIDE_DICTIONARY_BYTES: usize = 4 << 20;

/// The name of the one file a job owns in a partition.
pub fn job_file_name(job: &str) -> String {
    format!("part-{job}-0.parquet")
}

/// The owner and number of a data file's name, `part-<owner>-<n>.parquet`: `<n>` is 0 in the
/// Parquet format, the run's number in a Delta table ([`delta`]).
pub fn data_file_owner(name: &str) -> Option<(&str, u64)> {
    let (owner, number) = name
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .rsplit_once('-')?;
    if owner.is_empty() || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((owner, number.parse().ok()?))
}

/// The number of `name` if it is a data file of exactly `owner`: `part-<owner>-<n>.parquet`.
pub fn owned_file_number(name: &str, owner: &str) -> Option<u64> {
    data_file_owner(name).and_then(|(o, n)| (o == owner).then_some(n))
}

/// Whether `name` is the temporary file of a manifest of `job`: `.<run id>.json.<pid>.tmp`, with
/// run ids `<%Y%m%dT%H%M%SZ>-<job>-<pid>` (job names may hold `-`, so the pid must follow).
fn is_manifest_of(name: &str, job: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.get(17..)) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(job).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest[digits..].starts_with(".json.")
}

/// Every file below `dir` (none if it does not exist), depth first.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LoadError::Folder { path: d, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Folder {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => files.push(path),
                Err(source) => return Err(LoadError::Folder { path, source }),
            }
        }
    }
    Ok(files)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path} is not what this tool wrote: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("job {job} is already running on this output ({holder}); lock file {path}")]
    Locked {
        job: String,
        path: PathBuf,
        holder: String,
    },
    #[error("{}", other_split_message(job, *wanted, found))]
    OtherSplit {
        job: String,
        /// The shard count of the run refused (1: the whole job).
        wanted: u32,
        /// Each other shard count the job has files or states of here, with one of them.
        found: Vec<(u32, PathBuf)>,
    },
    #[error("output {path} is not a folder")]
    NotADirectory { path: PathBuf },
    #[error("cannot use output folder {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write to {url}: this build has no object-storage support (cargo feature `s3`)"
    )]
    Unsupported { url: String },
    /// A Delta output's commit that failed after committing some of the run's tables: readers
    /// see those.
    #[error("the run committed {files} files to some of its tables, then stopped")]
    PartlyCommitted {
        /// Files in the tables committed.
        files: usize,
        source: Box<LoadError>,
    },
    #[error("output {path}: this build has no Delta Lake support (build with the cargo feature `delta`)")]
    NoDelta { path: PathBuf },
    #[error("output {path} holds {found}, and this job writes {wanted}: {advice}")]
    OtherFormat {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
        advice: &'static str,
    },
    #[error("output {url}: {message}")]
    Config { url: String, message: String },
    #[error(
        "the job's state {url} changed since this run read it: another run of the job wrote it"
    )]
    StateChanged { url: String },
    #[error("this run lost the job's lock {url} to another run (it could not renew it in time)")]
    LockLost { url: String },
    #[error("object-store request on {url} failed")]
    Store {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    PartitionValue(#[from] PartitionValueError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode Parquet for {path}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{ENCODER_ENV}={value:?} is not an encoder: use `runs` (the default) or `arrow`")]
    Encoder { value: String },
    #[error("cannot settle the Parquet footer of {path}")]
    Footer {
        path: PathBuf,
        #[source]
        source: footer::FooterError,
    },
    #[error("cannot produce the rows of {path}")]
    Rows {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot read the existing file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

/// What to say when a run's split differs from the one the job has in the output.
fn other_split_message(job: &str, wanted: u32, found: &[(u32, PathBuf)]) -> String {
    let split = |count: u32| match count {
        1 => "the whole job (no --shard)".to_string(),
        n => format!("{n} shards"),
    };
    let there: Vec<String> = found
        .iter()
        .map(|(count, path)| format!("{} (e.g. {})", split(*count), path.display()))
        .collect();
    let pattern = |count: u32| match count {
        1 => format!("part-{job}-0.parquet"),
        n => format!("part-{job}-s*of{n}-0.parquet"),
    };
    let patterns: Vec<String> = found.iter().map(|(count, _)| pattern(*count)).collect();
    let as_before = match found {
        [(1, _)] => "run it without --shard as before".to_string(),
        [(n, _)] => format!("run it with --shard I/{n} as before"),
        _ => "run it as before".to_string(),
    };
    format!(
        "job {job} was run here as {}, and this run is {}: one output keeps one split of a job, \
         or a partition would hold the same rows twice. To go on, {as_before}, write to another \
         output, or remove what the other split left: its files ({}) and its states \
         (`vscope-export state reset` forgets every state of the job)",
        there.join(" and "),
        split(wanted),
        patterns.join(", "),
    )
}

/// Provenance written into every file's key-value metadata.
#[derive(Debug, Clone)]
pub struct FileProvenance {
    pub job: String,
    /// The slice of the job the run did; its files go under the shard's name.
    pub shard: Option<Shard>,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
}

impl FileProvenance {
    /// The name the run's files go under: `part-<owner>-0.parquet`.
    pub fn owner(&self) -> String {
        shard::owner(&self.job, self.shard)
    }
}

/// What one commit wrote, for the run summary and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub table: &'static str,
    /// The partition folder relative to the output root, e.g. `vm_metrics/date=2026-11-24`.
    pub partition: String,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

/// The environment variable that chooses the [`Encoder`]: `runs` (the default) or `arrow`.
pub const ENCODER_ENV: &str = "VSCOPE_EXPORT_ENCODER";

/// Which writer encodes the metrics tables' files. Both write the same rows, schema, settings and
/// statistics; the inventory tables and partial re-runs always go through arrow-rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoder {
    /// Column chunks encoded from runs of series ([`runs`]): the fast path.
    #[default]
    Runs,
    /// arrow-rs' own `ArrowWriter` for every table: the reference the fast path is tested
    /// against, and a way out should a reader ever reject the fast path's files.
    Arrow,
}

impl Encoder {
    /// The encoder named by [`ENCODER_ENV`], [`Encoder::Runs`] when it is unset.
    pub fn from_env() -> Result<Encoder, LoadError> {
        match std::env::var(ENCODER_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Encoder::Runs),
            Ok(v) if v == "runs" || v.is_empty() => Ok(Encoder::Runs),
            Ok(v) if v == "arrow" => Ok(Encoder::Arrow),
            Ok(v) => Err(LoadError::Encoder { value: v }),
            Err(std::env::VarError::NotUnicode(v)) => Err(LoadError::Encoder {
                value: v.to_string_lossy().into_owned(),
            }),
        }
    }
}

/// Where a Parquet file's bytes go while it is written, and what is told when only its page
/// indexes and footer are left to write: the part [`footer::settle`] rewrites once it is done.
pub(crate) trait ParquetSink: Write + Send {
    fn footer_follows(&mut self);
}

/// Bytes in memory: the encoders' tests write there.
impl ParquetSink for Vec<u8> {
    fn footer_follows(&mut self) {}
}

/// A file being written: a hidden temporary file beside its final name, or an upload.
enum Sink {
    File {
        temp: PathBuf,
        out: BufWriter<File>,
    },
    #[cfg(feature = "s3")]
    Object(object::Upload),
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File { out, .. } => out.write(data),
            #[cfg(feature = "s3")]
            Sink::Object(upload) => upload.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File { out, .. } => out.flush(),
            #[cfg(feature = "s3")]
            Sink::Object(upload) => upload.flush(),
        }
    }
}

impl ParquetSink for Sink {
    fn footer_follows(&mut self) {
        #[cfg(feature = "s3")]
        if let Sink::Object(upload) = self {
            upload.footer_follows();
        }
    }
}

impl Sink {
    /// Where the bytes go, for messages.
    fn path(&self) -> PathBuf {
        match self {
            Sink::File { temp, .. } => temp.clone(),
            #[cfg(feature = "s3")]
            Sink::Object(upload) => PathBuf::from(upload.url()),
        }
    }

    /// Settles the footer and makes the bytes durable (a file, fsynced) or visible (an object);
    /// returns the size.
    fn finish(self) -> Result<u64, LoadError> {
        match self {
            Sink::File { temp, out } => finish_file(&temp, out),
            #[cfg(feature = "s3")]
            Sink::Object(upload) => upload.finish(),
        }
    }
}

/// An output: a local folder, or a bucket prefix of an object store.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The folder; for an object store, its `s3://bucket/prefix` URL, for messages only.
    root: PathBuf,
    encoder: Encoder,
    #[cfg(feature = "s3")]
    object: Option<Arc<object::ObjectOutput>>,
    /// The output's Delta tables, when its format is Delta Lake.
    #[cfg(feature = "delta")]
    delta: Option<Arc<delta::DeltaOutput>>,
}

/// A path below the output root as an object store's key (or a Delta log's path): `/`-separated.
#[cfg(any(feature = "s3", feature = "delta"))]
fn rel_key(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Destination {
    /// Opens the output at `location` (a folder, `file://` or `s3://bucket/prefix`, reached with
    /// `s3` and the AWS environment variables), with the encoder [`ENCODER_ENV`] names. A folder
    /// is created only when the run is about to write; nothing is sent to a store yet.
    pub fn open(location: &str, s3: &S3Settings) -> Result<Destination, LoadError> {
        let encoder = Encoder::from_env()?;
        let parsed = Location::parse(location).map_err(|message| LoadError::Config {
            url: location.to_string(),
            message,
        })?;
        let root = match parsed {
            Location::Folder(root) => root,
            #[cfg(feature = "s3")]
            Location::S3 { bucket, prefix } => {
                let object = object::ObjectOutput::connect(&bucket, &prefix, s3)?;
                return Ok(Destination {
                    root: PathBuf::from(object.url("")),
                    encoder,
                    object: Some(Arc::new(object)),
                    #[cfg(feature = "delta")]
                    delta: None,
                });
            }
            #[cfg(not(feature = "s3"))]
            Location::S3 { .. } => {
                let _ = s3;
                return Err(LoadError::Unsupported {
                    url: location.to_string(),
                });
            }
        };
        // Checked now, created only when the run is about to write: a run that fails before
        // (bad credentials, unreachable API) leaves nothing behind.
        let mut existing = root.as_path();
        loop {
            match fs::metadata(existing) {
                Ok(meta) if meta.is_dir() => break,
                Ok(_) => {
                    return Err(LoadError::NotADirectory {
                        path: existing.to_path_buf(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match existing.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
                    _ => break,
                },
                Err(source) => {
                    return Err(LoadError::Folder {
                        path: existing.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Ok(Destination {
            root,
            encoder,
            #[cfg(feature = "s3")]
            object: None,
            #[cfg(feature = "delta")]
            delta: None,
        })
    }

    /// The same output, its tables kept in `format` and partitioned by `partitioning`.
    pub fn with_format(
        self,
        format: OutputFormat,
        partitioning: &[PartitionBy],
    ) -> Result<Destination, LoadError> {
        match format {
            OutputFormat::Parquet => Ok(self),
            #[cfg(feature = "delta")]
            OutputFormat::Delta => {
                #[cfg(feature = "s3")]
                let delta = match &self.object {
                    Some(object) => delta::DeltaOutput::in_store(Arc::clone(object), partitioning)?,
                    None => delta::DeltaOutput::new(&self.root, partitioning),
                };
                #[cfg(not(feature = "s3"))]
                let delta = delta::DeltaOutput::new(&self.root, partitioning);
                Ok(Destination {
                    delta: Some(Arc::new(delta)),
                    ..self
                })
            }
            #[cfg(not(feature = "delta"))]
            OutputFormat::Delta => {
                let _ = partitioning;
                Err(LoadError::NoDelta { path: self.root })
            }
        }
    }

    /// The Delta tables of the output, when its format is Delta Lake.
    #[cfg(feature = "delta")]
    fn delta(&self) -> Option<&delta::DeltaOutput> {
        self.delta.as_deref()
    }

    /// How `table` is laid out in this output: [`layout`], in a Delta output with microsecond
    /// times ([`TableLayout::in_microseconds`]).
    pub fn layout(&self, table: Table) -> TableLayout {
        if self.is_transactional() {
            return layout(table).in_microseconds();
        }
        layout(table)
    }

    /// Whether the run's files become visible only when [`Self::publish`] commits them (a Delta
    /// output), rather than each as its writer finishes it.
    pub fn is_transactional(&self) -> bool {
        #[cfg(feature = "delta")]
        return self.delta.is_some();
        #[cfg(not(feature = "delta"))]
        false
    }

    /// Makes what the run wrote visible: in a Delta output, one transaction per table it
    /// touched (see [`delta`]); in the Parquet format every file already is. Returns each
    /// committed table's new version.
    pub fn publish(&self, run_id: &str) -> Result<Vec<(Table, u64)>, LoadError> {
        #[cfg(feature = "delta")]
        if let Some(delta) = self.delta() {
            return delta.commit(run_id);
        }
        let _ = run_id;
        Ok(Vec::new())
    }

    /// Refuses an output whose tables are kept in the other format, from its `files`
    /// ([`Self::files`]): Parquet files are not a Delta table's, and a Delta table read as plain
    /// Parquet shows every version's files at once.
    pub fn check_format(&self, files: &[PathBuf]) -> Result<(), LoadError> {
        let mut delta_tables = Vec::new();
        let mut parquet_files = Vec::new();
        for rel in files {
            let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
            let Some(table) = parts.next() else { continue };
            if Table::from_name(&table).is_none() {
                continue;
            }
            let name = rel.file_name().map(|n| n.to_string_lossy());
            if parts.next().is_some_and(|p| p == "_delta_log") {
                delta_tables.push(self.root.join(table.as_ref()));
            } else if name.is_some_and(|n| data_file_owner(&n).is_some_and(|(_, n)| n == 0)) {
                // The Parquet format's own file name; a Delta run's files are numbered from 1,
                // and those of one killed before its table's first commit lie here without a log.
                parquet_files.push(self.root.join(table.as_ref()));
            }
        }
        if self.is_transactional() {
            if let Some(dir) = parquet_files.iter().find(|d| !delta_tables.contains(d)) {
                return Err(LoadError::OtherFormat {
                    path: dir.clone(),
                    found: "Parquet files but no Delta table (no _delta_log)",
                    wanted: "Delta Lake tables",
                    advice: "write the Delta tables to another output (`delta` readers would not see the Parquet files, hive readers would see both)",
                });
            }
        } else if let Some(dir) = delta_tables.first() {
            return Err(LoadError::OtherFormat {
                path: dir.clone(),
                found: "a Delta table (_delta_log)",
                wanted: "plain Parquet",
                advice: "set `format = \"delta\"` in [output] to go on with it, or write to another output",
            });
        }
        Ok(())
    }

    /// Whether the output is in an object store.
    pub fn is_object_store(&self) -> bool {
        #[cfg(feature = "s3")]
        return self.object.is_some();
        #[cfg(not(feature = "s3"))]
        false
    }

    /// A local folder for the run's spill files: the output folder, or the system's temporary
    /// folder for an object store.
    pub fn spill_dir(&self) -> PathBuf {
        if self.is_object_store() {
            std::env::temp_dir()
        } else {
            self.root.clone()
        }
    }

    /// The same output, written with `encoder`.
    pub fn with_encoder(self, encoder: Encoder) -> Destination {
        Destination { encoder, ..self }
    }

    /// Creates the output folder (and its parents) if it does not exist yet; an object store's
    /// prefix needs no creating.
    pub fn create(&self) -> Result<(), LoadError> {
        if self.is_object_store() {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(|source| LoadError::Folder {
            path: self.root.clone(),
            source,
        })
    }

    /// The job states, lock and run manifests of this output.
    pub fn state(&self) -> state::StateStore {
        let store = state::StateStore::new(&self.root);
        #[cfg(feature = "s3")]
        let store = store.with_object(self.object.clone());
        store
    }

    /// Removes what a killed run of `job` left: its hidden temporary files, anywhere in the
    /// output, or in an object store its unfinished multipart uploads. Never touches another
    /// job's files. Returns how many were removed.
    pub fn remove_leftovers(&self, job: &str) -> Result<usize, LoadError> {
        let removed = self.remove_temporaries(job)?;
        #[cfg(feature = "delta")]
        let removed = removed + self.remove_uncommitted(job)?;
        Ok(removed)
    }

    /// A Delta output's run starts here, under the lock: it reads the tables, and the files of
    /// the job's runs that never committed go. Returns how many were removed.
    #[cfg(feature = "delta")]
    fn remove_uncommitted(&self, job: &str) -> Result<usize, LoadError> {
        let Some(delta) = self.delta() else {
            return Ok(0);
        };
        let files = self.files()?;
        let uncommitted = delta.begin(job, files.iter().map(PathBuf::as_path))?;
        for rel in &uncommitted {
            #[cfg(feature = "s3")]
            if let Some(object) = &self.object {
                object.delete(&rel_key(rel))?;
                continue;
            }
            remove_if_present(&self.root.join(rel))?;
        }
        Ok(uncommitted.len())
    }

    /// The temporary files of a killed run of `job` (in an object store, its unfinished
    /// uploads); returns how many were removed.
    fn remove_temporaries(&self, job: &str) -> Result<usize, LoadError> {
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            return object.abort_leftover_uploads(job);
        }
        // The job's Parquet files (`.<file>.<pid>.tmp`), its state and its run manifests, each as
        // `replace_job_partition` and `state::write_atomic` name their temporary files.
        let state_prefix = format!(".{job}.json.");
        let mut removed = 0;
        for path in walk(&self.root)? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some(temp) = name.strip_suffix(".tmp") else {
                continue;
            };
            let data_file = temp
                .strip_prefix('.')
                .and_then(|t| t.rsplit_once('.'))
                .is_some_and(|(file, pid)| {
                    pid.bytes().all(|b| b.is_ascii_digit())
                        && owned_file_number(file, job).is_some()
                });
            let in_runs = path.parent().is_some_and(|d| d.ends_with(state::RUNS_DIR));
            if data_file
                || name.starts_with(&state_prefix)
                || (in_runs && is_manifest_of(&name, job))
            {
                remove_if_present(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every file of the output, as paths relative to its root: walked in a folder, listed in an
    /// object store.
    pub fn files(&self) -> Result<Vec<PathBuf>, LoadError> {
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            return Ok(object
                .list("")?
                .into_iter()
                .map(|(rel, _)| PathBuf::from(rel))
                .collect());
        }
        Ok(walk(&self.root)?
            .into_iter()
            .filter_map(|path| path.strip_prefix(&self.root).ok().map(Path::to_path_buf))
            .collect())
    }

    /// How `job` is split in this output, from the files and states it has here: per shard count
    /// (1 for the whole job), the first file found. A job's runs over one output keep one split,
    /// or a partition would hold the same rows in two files.
    pub fn job_splits(
        &self,
        job: &str,
        files: &[PathBuf],
    ) -> Result<BTreeMap<u32, PathBuf>, LoadError> {
        let mut splits = BTreeMap::new();
        for rel in files {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let in_state = rel.parent() == Some(Path::new(state::STATE_DIR));
            let path = self.root.join(rel);
            let owner = if in_state {
                name.strip_suffix(".json")
            } else {
                data_file_owner(&name).map(|(owner, _)| owner)
            };
            if let Some(split) = owner.and_then(|o| shard::owned_by(o, job)) {
                splits.entry(split.map_or(1, |s| s.count)).or_insert(path);
            }
        }
        Ok(splits)
    }

    /// The partitions of `table` in which `job` has a file, read back from the folder names.
    pub fn job_partitions(&self, table: &str, job: &str) -> Result<Vec<PartitionKey>, LoadError> {
        #[cfg(feature = "delta")]
        if let (Some(delta), Some(t)) = (self.delta(), Table::from_name(table)) {
            return Ok(delta
                .owned_partitions(t)?
                .iter()
                .map(|dir| PartitionKey::from_relative_dir(Path::new(dir)))
                .collect());
        }
        let table_dir = self.root.join(table);
        let file_name = job_file_name(job);
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let mut keys: Vec<PartitionKey> = object
                .list(&format!("{table}/"))?
                .into_iter()
                .filter_map(|(rel, _)| {
                    let dir = rel.strip_prefix(&format!("{table}/"))?;
                    let dir = dir.strip_suffix(&format!("/{file_name}"))?;
                    Some(PartitionKey::from_relative_dir(Path::new(dir)))
                })
                .collect();
            keys.sort();
            return Ok(keys);
        }
        let mut keys = Vec::new();
        for path in walk(&table_dir)? {
            if path.file_name().is_none_or(|n| n != file_name.as_str()) {
                continue;
            }
            let Some(dir) = path.parent().and_then(|d| d.strip_prefix(&table_dir).ok()) else {
                continue;
            };
            keys.push(PartitionKey::from_relative_dir(dir));
        }
        keys.sort();
        Ok(keys)
    }
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a job owns in a partition: in a Delta table, the one its current version names
    /// (`None` when there is none); in the Parquet format, the one file the job ever has there,
    /// which may not exist.
    pub fn job_file(
        &self,
        table: &str,
        key: &PartitionKey,
        job: &str,
    ) -> Result<Option<PathBuf>, LoadError> {
        let dir = key.relative_dir()?;
        #[cfg(feature = "delta")]
        if let (Some(delta), Some(t)) = (self.delta(), Table::from_name(table)) {
            return Ok(delta
                .current(t, &rel_key(&dir))?
                .map(|rel| self.root.join(table).join(rel)));
        }
        Ok(Some(
            self.root.join(table).join(dir).join(job_file_name(job)),
        ))
    }

    /// Where the run's new file of a partition goes: over the job's file in the Parquet format,
    /// beside it, under the run's own name, in a Delta table.
    fn new_job_file(
        &self,
        table: &str,
        key: &PartitionKey,
        job: &str,
    ) -> Result<PathBuf, LoadError> {
        let dir = self.root.join(table).join(key.relative_dir()?);
        #[cfg(feature = "delta")]
        if let Some(delta) = self.delta() {
            return Ok(dir.join(delta.file_name(job)?));
        }
        Ok(dir.join(job_file_name(job)))
    }

    /// The rows the job wrote to this partition before, or nothing when it has no file there;
    /// times in the rows' unit, milliseconds, whatever the file's.
    pub fn read_job_partition(
        &self,
        table: &str,
        key: &PartitionKey,
        job: &str,
    ) -> Result<Vec<RecordBatch>, LoadError> {
        let batches = self.read_job_file(table, key, job)?;
        let Some(t) = Table::from_name(table) else {
            return Ok(batches);
        };
        let schema = layout(t).schema;
        batches
            .iter()
            .map(|b| conform(b, &schema))
            .collect::<Result<_, _>>()
            .map_err(|source| LoadError::Read {
                path: self.root.join(table),
                source: source.into(),
            })
    }

    fn read_job_file(
        &self,
        table: &str,
        key: &PartitionKey,
        job: &str,
    ) -> Result<Vec<RecordBatch>, LoadError> {
        let Some(path) = self.job_file(table, key, job)? else {
            return Ok(Vec::new());
        };
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let rel = self.object_key(&path);
            let Some((bytes, _)) = object.get(&rel)? else {
                return Ok(Vec::new());
            };
            let read_err = |source| LoadError::Read {
                path: path.clone(),
                source,
            };
            return ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(read_err)?
                .build()
                .map_err(read_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| read_err(e.into()));
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LoadError::Write { path, source }),
        };
        let read_err = |source| LoadError::Read {
            path: path.clone(),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(read_err)?
            .build()
            .map_err(read_err)?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| read_err(e.into()))
    }

    /// Whether the job's file in a partition has no row outside `[start_ms, end_ms)` (or there is
    /// no file), judged from its row groups' `ts` statistics without reading the rows: a run that
    /// covers that window then replaces the file whole. `false` when the statistics cannot tell.
    pub fn job_partition_within(
        &self,
        table: &str,
        key: &PartitionKey,
        job: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<bool, LoadError> {
        let Some(path) = self.job_file(table, key, job)? else {
            return Ok(true);
        };
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let rel = self.object_key(&path);
            let Some(file) = object::ObjectFile::open(object, &rel)? else {
                return Ok(true);
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|source| LoadError::Read { path, source })?;
            return Ok(within(&builder, start_ms, end_ms));
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(source) => return Err(LoadError::Write { path, source }),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|source| LoadError::Read { path, source })?;
        Ok(within(&builder, start_ms, end_ms))
    }

    /// Removes the job's file of a partition, if there is one: at once in the Parquet format, with
    /// the run's commit in a Delta table (whose earlier versions still name it).
    fn remove_job_file(
        &self,
        layout: &TableLayout,
        key: &PartitionKey,
        job: &str,
    ) -> Result<(), LoadError> {
        #[cfg(feature = "delta")]
        if let Some(delta) = self.delta() {
            return delta.emptied(layout.table, &rel_key(&key.relative_dir()?));
        }
        let Some(path) = self.job_file(layout.name, key, job)? else {
            return Ok(());
        };
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            return object.delete(&self.object_key(&path));
        }
        remove_if_present(&path)
    }

    /// The key below an object store's prefix of a path below [`Self::root`].
    #[cfg(feature = "s3")]
    fn object_key(&self, path: &Path) -> String {
        rel_key(path.strip_prefix(&self.root).unwrap_or(path))
    }

    /// Atomically replaces the job's file in a partition with `batches` (already sorted), or
    /// removes it when `batches` hold no rows. Returns what was written.
    pub fn replace_job_partition(
        &self,
        layout: &TableLayout,
        key: &PartitionKey,
        provenance: &FileProvenance,
        compression_level: i32,
        batches: &[RecordBatch],
    ) -> Result<Option<WrittenFile>, LoadError> {
        self.replace_job_partition_stream(
            layout,
            key,
            provenance,
            compression_level,
            batches
                .iter()
                .cloned()
                .map(Ok::<_, std::convert::Infallible>),
        )
    }

    /// Atomically replaces the job's file in a partition with the rows of `batches` (already
    /// sorted), written batch by batch: a row group is flushed each time [`ROW_GROUP_ROWS`] rows
    /// have been written, so memory holds one batch and one row group's encoded pages, whatever
    /// the partition's size. When `batches` yield no rows the job's file is removed instead. When
    /// one fails, the temporary file is removed and the previous file stays as it was.
    pub fn replace_job_partition_stream<E>(
        &self,
        layout: &TableLayout,
        key: &PartitionKey,
        provenance: &FileProvenance,
        compression_level: i32,
        batches: impl Iterator<Item = Result<RecordBatch, E>>,
    ) -> Result<Option<WrittenFile>, LoadError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let path = self.new_job_file(layout.name, key, &provenance.owner())?;
        let rows_err = |source: E| LoadError::Rows {
            path: path.clone(),
            source: Box::new(source),
        };
        // Nothing is created until there is a row to write: no empty files.
        let mut batches = batches.filter(|b| !matches!(b, Ok(b) if b.num_rows() == 0));
        let first = match batches.next() {
            None => {
                self.remove_job_file(layout, key, &provenance.owner())?;
                return Ok(None);
            }
            Some(first) => first.map_err(rows_err)?,
        };
        self.commit(layout, key, &path, &provenance.owner(), |sink| {
            write_parquet(
                sink,
                layout,
                provenance,
                compression_level,
                std::iter::once(Ok(first)).chain(batches),
            )
            .map_err(|e| match e {
                WriteError::Load(e) => e,
                WriteError::Rows(e) => rows_err(e),
            })
        })
    }

    /// Atomically replaces the job's file in a partition of a metrics table with `rows`, encoded
    /// from their runs of series (see `runs`): the fast path of a partition this run covers
    /// whole. Like [`Self::replace_job_partition_stream`] otherwise.
    pub fn replace_job_partition_runs(
        &self,
        layout: &TableLayout,
        key: &PartitionKey,
        provenance: &FileProvenance,
        compression_level: i32,
        rows: crate::transform::PartitionRows,
    ) -> Result<Option<WrittenFile>, LoadError> {
        let path = self.new_job_file(layout.name, key, &provenance.owner())?;
        if rows.rows() == 0 {
            self.remove_job_file(layout, key, &provenance.owner())?;
            return Ok(None);
        }
        let props = writer_properties(layout, provenance, compression_level).map_err(|source| {
            LoadError::Parquet {
                path: path.clone(),
                source,
            }
        })?;
        // The fast path writes only the codec it knows; any other goes through arrow-rs, so no
        // page ever says it is compressed otherwise than it is.
        if self.encoder == Encoder::Arrow || !encode::encodes(&layout.schema, &props) {
            let batches = rows.into_batches(crate::transform::BATCH_ROWS);
            return self.replace_job_partition_stream(
                layout,
                key,
                provenance,
                compression_level,
                batches,
            );
        }
        self.commit(layout, key, &path, &provenance.owner(), |sink| {
            let at = sink.path();
            let batches = rows.into_runs(crate::transform::BATCH_ROWS);
            let (sink, rows) = encode::write_as(
                sink,
                Arc::clone(&layout.schema),
                props,
                ROW_GROUP_ROWS,
                batches,
            )
            .map_err(|e| match e {
                encode::RunsError::Parquet(source) => LoadError::Parquet { path: at, source },
                encode::RunsError::Rows(source) => LoadError::Rows {
                    path: path.clone(),
                    source: Box::new(source),
                },
            })?;
            sink.finish().map(|bytes| (rows, bytes))
        })
    }

    /// Writes the job's file of a partition through `write` (given where the bytes go, it
    /// returns the rows and bytes written) and puts it in place: renamed over `path` and made
    /// durable, or in an object store, its upload completed. When `write` fails the temporary
    /// file is removed (the upload aborted) and the previous file stays.
    fn commit(
        &self,
        layout: &TableLayout,
        key: &PartitionKey,
        path: &Path,
        job: &str,
        write: impl FnOnce(Sink) -> Result<(u64, u64), LoadError>,
    ) -> Result<Option<WrittenFile>, LoadError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let rel = self.object_key(path);
            let (rows, bytes) = write(Sink::Object(object.upload(&rel, job)?))?;
            #[cfg(feature = "delta")]
            if let Some(delta) = self.delta() {
                delta.added(layout.table, key, &file_name, rows, bytes)?;
            }
            return Ok(Some(WrittenFile {
                table: layout.name,
                partition: rel_key(&Path::new(layout.name).join(key.relative_dir()?)),
                path: path.to_path_buf(),
                rows,
                bytes,
            }));
        }
        #[cfg(not(feature = "s3"))]
        let _ = job;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        create_dir_durably(&dir)?;
        let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = create_file(&temp).map_err(|source| LoadError::Write {
            path: temp.clone(),
            source,
        })?;
        let sink = Sink::File {
            temp: temp.clone(),
            out: BufWriter::with_capacity(1 << 20, file),
        };
        let (rows, bytes) = write(sink).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })?;
        fs::rename(&temp, path).map_err(|source| {
            let _ = fs::remove_file(&temp);
            LoadError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
        sync_dir(&dir)?;
        #[cfg(feature = "delta")]
        if let Some(delta) = self.delta() {
            delta.added(layout.table, key, &file_name, rows, bytes)?;
        }
        let partition = Path::new(layout.name)
            .join(key.relative_dir()?)
            .to_string_lossy()
            .into_owned();
        Ok(Some(WrittenFile {
            table: layout.name,
            partition,
            path: path.to_path_buf(),
            rows,
            bytes,
        }))
    }
}

/// A new Parquet file, open for reading too: its footer is read back and settled before it is
/// made durable ([`finish_file`]).
fn create_file(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Flushes a written Parquet file, settles its footer for every reader ([`footer::settle`]) and
/// fsyncs it; returns its size in bytes.
fn finish_file(path: &Path, buffered: BufWriter<File>) -> Result<u64, LoadError> {
    let io_err = |source| LoadError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = buffered.into_inner().map_err(|e| io_err(e.into_error()))?;
    footer::settle(&mut file).map_err(|source| LoadError::Footer {
        path: path.to_path_buf(),
        source,
    })?;
    file.sync_all().map_err(io_err)?;
    Ok(file.metadata().map_err(io_err)?.len())
}

fn remove_if_present(path: &Path) -> Result<(), LoadError> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LoadError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates `dir` and the folders above it that are missing, and fsyncs the parent of each one it
/// created: after a power cut, a committed partition's folder is still there.
fn create_dir_durably(dir: &Path) -> Result<(), LoadError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    fs::create_dir_all(dir).map_err(|source| LoadError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Makes a rename durable: the directory entry itself must reach the disk.
fn sync_dir(dir: &Path) -> Result<(), LoadError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LoadError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// The writer named in every file, in the form parquet-java parses (`<app> version <semver>
/// (build <hash>)`): a form it cannot parse makes it distrust some statistics.
pub fn created_by() -> String {
    format!(
        "vscope-export version {} (build {})",
        crate::VERSION,
        env!("VSCOPE_EXPORT_BUILD")
    )
}

/// Writer settings: ZSTD, dictionary strings, delta timestamps, statistics, provenance.
pub fn writer_properties(
    layout: &TableLayout,
    provenance: &FileProvenance,
    compression_level: i32,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let metadata = vec![
        KeyValue::new("vscope_export.table".into(), layout.name.to_string()),
        KeyValue::new("vscope_export.job".into(), provenance.job.clone()),
        KeyValue::new("vscope_export.run_id".into(), provenance.run_id.clone()),
        KeyValue::new(
            "vscope_export.window_start".into(),
            provenance.window_start.clone(),
        ),
        KeyValue::new(
            "vscope_export.window_end".into(),
            provenance.window_end.clone(),
        ),
        KeyValue::new("vscope_export.version".into(), crate::VERSION.to_string()),
    ];
    let mut metadata = metadata;
    if let Some(shard) = provenance.shard {
        metadata.push(KeyValue::new(
            "vscope_export.shard".into(),
            shard.to_string(),
        ));
    }
    // Parquet numbers leaf columns, not Arrow fields: a nested column (the `tags` map has two
    // leaves) before a sort column shifts its index. The list stops at the first column that is
    // missing or nested, because a sort order with a hole in it would be a false promise.
    let sorting = layout
        .sorted_by
        .iter()
        .map_while(|name| parquet_leaf_index(&layout.schema, name))
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(compression_level)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(created_by())
        .set_key_value_metadata(Some(metadata))
        .set_sorting_columns(Some(sorting));
    for column in &layout.delta_columns {
        let path = ColumnPath::from(*column);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
    }
    for column in &layout.split_columns {
        let path = ColumnPath::from(*column);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
    }
    for column in &layout.wide_dictionary_columns {
        builder = builder.set_column_dictionary_page_size_limit(
            ColumnPath::from(*column),
            WIDE_DICTIONARY_BYTES,
        );
    }
    for column in &layout.no_stats_columns {
        let path = ColumnPath::new(column.split('.').map(str::to_string).collect());
        builder = builder.set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    Ok(builder.build())
}

/// How both writers (arrow-rs' and the runs encoder, which starts from arrow-rs') are set up:
/// with `props`, and without the Arrow schema embedded in the footer (`ARROW:schema`). polars
/// before 1.x fails on a MAP column (`tags`) whose embedded Arrow type is a Map, whoever wrote
/// the file; without it every reader takes the types from the Parquet schema alone, which says
/// the same (a UTC timestamp, a map with the specification's field names), and arrow-rs reads
/// back exactly the table's schema.
pub(crate) fn arrow_writer_options(
    props: WriterProperties,
) -> parquet::arrow::arrow_writer::ArrowWriterOptions {
    parquet::arrow::arrow_writer::ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(true)
}

/// Whether no row group of a file has a `ts` outside `[start_ms, end_ms)`, by its statistics;
/// `false` when they cannot tell.
fn within<T>(
    builder: &parquet::arrow::arrow_reader::ArrowReaderBuilder<T>,
    start_ms: i64,
    end_ms: i64,
) -> bool {
    let Some(ts) = parquet_leaf_index(builder.schema(), "ts") else {
        return false;
    };
    // The statistics are in the file's unit.
    let Some(per_ms) = builder
        .parquet_schema()
        .columns()
        .get(ts)
        .map(|c| encode::per_millisecond(c))
    else {
        return false;
    };
    let (start, end) = (
        start_ms.saturating_mul(per_ms),
        end_ms.saturating_mul(per_ms),
    );
    builder.metadata().row_groups().iter().all(|rg| {
        match rg.columns().get(ts).and_then(|c| c.statistics()) {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                matches!((s.min_opt(), s.max_opt()), (Some(&min), Some(&max)) if min >= start && max < end)
            }
            _ => false,
        }
    })
}

/// `batch` as rows of `schema`: its timestamp columns cast to `schema`'s unit (the rows hold
/// milliseconds, a Delta table's files microseconds); as it is when they agree already.
fn conform(
    batch: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match (column.data_type(), field.data_type()) {
                (DataType::Timestamp(..), to @ DataType::Timestamp(..))
                    if column.data_type() != to =>
                {
                    arrow::compute::cast(column, to)
                }
                _ => Ok(Arc::clone(column)),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The Parquet leaf index of a top-level, non-nested Arrow column.
fn parquet_leaf_index(schema: &Schema, name: &str) -> Option<usize> {
    let index = schema.index_of(name).ok()?;
    let field = schema.field(index);
    if leaf_count(field.data_type()) != 1 || field.data_type().is_nested() {
        return None;
    }
    Some(
        schema.fields()[..index]
            .iter()
            .map(|f| leaf_count(f.data_type()))
            .sum(),
    )
}

/// How many Parquet leaf columns an Arrow type becomes.
fn leaf_count(data_type: &DataType) -> usize {
    match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| leaf_count(f.data_type())).sum(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => leaf_count(f.data_type()),
        _ => 1,
    }
}

/// Why writing a file stopped: the writer, or the rows it was given.
enum WriteError<E> {
    Load(LoadError),
    Rows(E),
}

/// Writes `batches` to `sink`, finishes it (see [`Sink::finish`]) and returns its rows and size
/// in bytes.
fn write_parquet<E>(
    sink: Sink,
    layout: &TableLayout,
    provenance: &FileProvenance,
    compression_level: i32,
    batches: impl Iterator<Item = Result<RecordBatch, E>>,
) -> Result<(u64, u64), WriteError<E>> {
    let path = sink.path();
    let pq_err = |source| {
        WriteError::Load(LoadError::Parquet {
            path: path.clone(),
            source,
        })
    };
    let props = writer_properties(layout, provenance, compression_level).map_err(pq_err)?;
    // The writer cuts row groups at `ROW_GROUP_ROWS` itself, also within a batch, and frees each
    // one's pages once it is flushed to the file.
    let mut writer = ArrowWriter::try_new_with_options(
        sink,
        Arc::clone(&layout.schema),
        arrow_writer_options(props),
    )
    .map_err(pq_err)?;
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch.map_err(WriteError::Rows)?;
        rows += batch.num_rows() as u64;
        let batch = conform(&batch, &layout.schema).map_err(|e| pq_err(e.into()))?;
        writer.write(&batch).map_err(pq_err)?;
    }
    // The last row group is written; what follows is the page indexes and footer.
    writer.flush().map_err(pq_err)?;
    writer.inner_mut().footer_follows();
    let sink = writer.into_inner().map_err(pq_err)?;
    let bytes = sink.finish().map_err(WriteError::Load)?;
    Ok((rows, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_columns_use_parquet_leaf_indexes() {
        use arrow::datatypes::Field;
        let map = crate::transform::schema::tags_type();
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("tags", map, false),
            Field::new("b", DataType::Utf8, true),
        ]);
        assert_eq!(parquet_leaf_index(&schema, "a"), Some(0));
        // The map's two leaves come before `b`.
        assert_eq!(parquet_leaf_index(&schema, "b"), Some(3));
        assert_eq!(parquet_leaf_index(&schema, "tags"), None);
        assert_eq!(parquet_leaf_index(&schema, "nope"), None);
    }

    #[test]
    fn leftovers_of_a_killed_run_are_removed_and_other_jobs_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let part = root.join("vm_metrics/date=2026-11-24");
        fs::create_dir_all(&part).unwrap();
        fs::create_dir_all(root.join("_state")).unwrap();
        fs::create_dir_all(root.join("_runs")).unwrap();
        let ours = [
            part.join(".part-a-0.parquet.123.tmp"),
            root.join("_state/.a.json.123.tmp"),
            root.join("_runs/.20261124T000000Z-a-123.json.123.tmp"),
        ];
        let theirs = [
            part.join(".part-a-b-0.parquet.123.tmp"),
            part.join("part-a-0.parquet"),
            root.join("_state/.a-b.json.123.tmp"),
            root.join("_runs/.20261124T000000Z-a-b-123.json.123.tmp"),
            root.join("_runs/20261124T000000Z-a-123.json"),
        ];
        for f in ours.iter().chain(&theirs) {
            fs::write(f, b"x").unwrap();
        }
        let destination = Destination::open(root.to_str().unwrap(), &Default::default()).unwrap();
        assert_eq!(destination.remove_leftovers("a").unwrap(), ours.len());
        for f in &ours {
            assert!(!f.exists(), "{} removed", f.display());
        }
        for f in &theirs {
            assert!(f.exists(), "{} kept", f.display());
        }
    }

    #[test]
    fn a_jobs_splits_are_read_from_its_files_and_states_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let part = root.join("vm_metrics/date=2026-11-24");
        fs::create_dir_all(&part).unwrap();
        fs::create_dir_all(root.join("_state")).unwrap();
        let destination = Destination::open(root.to_str().unwrap(), &Default::default()).unwrap();
        assert!(destination
            .job_splits("a", &destination.files().unwrap())
            .unwrap()
            .is_empty());
        for other in [
            "part-a-b-0.parquet",
            "part-a-s4of4-0.parquet",
            ".part-a-s1of2-0.parquet.7.tmp",
            "part-ab-s1of2-0.parquet",
        ] {
            fs::write(part.join(other), b"x").unwrap();
        }
        fs::write(root.join("_state/a-s0of3.lock"), b"x").unwrap();
        assert!(
            destination
                .job_splits("a", &destination.files().unwrap())
                .unwrap()
                .is_empty(),
            "none is a's"
        );
        fs::write(part.join("part-a-0.parquet"), b"x").unwrap();
        fs::write(root.join("_state/a-s2of3.json"), b"{}").unwrap();
        let splits = destination
            .job_splits("a", &destination.files().unwrap())
            .unwrap();
        assert_eq!(splits.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(splits[&3], root.join("_state/a-s2of3.json"));
        let message = LoadError::OtherSplit {
            job: "a".into(),
            wanted: 4,
            found: splits.into_iter().collect(),
        }
        .to_string();
        for said in [
            "the whole job",
            "3 shards",
            "4 shards",
            "part-a-s*of3-0.parquet",
            "state reset",
        ] {
            assert!(message.contains(said), "{said:?} in {message}");
        }
    }

    #[test]
    fn output_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        fs::write(&file, b"not a folder").unwrap();
        let err = Destination::open(file.to_str().unwrap(), &Default::default()).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        assert!(matches!(
            Destination::open("gs://bucket/prefix", &Default::default()),
            Err(LoadError::Config { .. })
        ));
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn an_s3_output_needs_the_s3_feature() {
        let err = Destination::open("s3://bucket/prefix", &Default::default()).unwrap_err();
        assert!(err.to_string().contains("cargo feature `s3`"), "{err}");
    }
}
