//! Delta Lake output (`[output] format = "delta"`, cargo feature `delta`): each table of the output
//! is a Delta table (`<table>/_delta_log/`), kept through delta-rs. The data files are the ones the
//! Parquet output writes, by the same writers, under the same partition folders; what differs is
//! what makes them visible:
//!
//! - A run writes new files only, named `part-<owner>-<n>.parquet`, `<n>` the run's number for its
//!   owner (the job, or its shard), which no earlier file of the owner has: a reader of an older
//!   version still finds every file that version names.
//! - Nothing the run writes is visible until, at its end, one transaction per table adds the run's
//!   files and removes the owner's earlier files in the partitions the run replaced. The commit's
//!   operation is a `WRITE` in `Overwrite` mode whose predicate names those partitions; the files it
//!   removes are the owner's alone, so a re-run replaces its own rows and never another job's or
//!   shard's. A reader sees a table before the run or after it, never part of it.
//! - Each commit carries an application transaction (`txn`): app id the owner, version `<n>`. The
//!   next run of the owner reads it back: a file of the owner numbered above its table's last
//!   committed `<n>` belongs to a run that never committed, and is removed (the owner's lock makes
//!   sure no run of it is writing one). A transaction already in the log is never committed twice.
//! - Shards of one job commit to the same tables at once. delta-rs, built without DataFusion,
//!   cannot tell that two shards' removes touch different files and reports a conflict whenever a
//!   concurrent commit removed any file; since an owner's files are only ever changed by its own
//!   runs, which its lock serializes, such a conflict is never real: the commit is rebuilt on the
//!   table's new version (its removes read again) and tried again. A commit is built on the
//!   version the run read when it began, so a sibling's commit in between is always met this way.
//!
//! A table that does not exist yet is created by the first commit, with its files in the same
//! version 0: a run killed before it leaves no table behind.

use std::collections::{BTreeMap, BTreeSet};
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow::datatypes::{DataType as ArrowType, Schema};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, DataType, MapType, StructField, StructType, Transaction};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use reqwest::Url;

use super::io::wait;
use super::{layout, owned_file_number, LoadError};
use crate::domain::partition::{PartitionBy, PartitionKey};
use crate::domain::table::Table;

/// Attempts at one table's commit before the run gives up: each lost race against another
/// writer's commit (another shard's) costs one.
const COMMIT_ATTEMPTS: usize = 30;

/// The Delta tables of an output, and what the current run is about to commit to them.
#[derive(Debug)]
pub struct DeltaOutput {
    /// The output's root folder, or its `s3://bucket/prefix` URL; each table is the Delta table
    /// in `<root>/<table>/`.
    root: PathBuf,
    partitioning: Vec<PartitionBy>,
    run: Mutex<Option<RunLog>>,
    /// In an object store: the output (its listings, the lock's lease) and the client delta-rs
    /// keeps the logs through.
    #[cfg(feature = "s3")]
    store: Option<Store>,
}

#[cfg(feature = "s3")]
#[derive(Debug)]
struct Store {
    output: std::sync::Arc<super::object::ObjectOutput>,
    log: std::sync::Arc<dyn object_store_delta::ObjectStore>,
}

/// One run's view of the tables: read when it took its lock, and its pending actions.
#[derive(Debug)]
struct RunLog {
    owner: String,
    /// The run's number for its owner: its files' `<n>` and its transactions' version.
    number: u64,
    tables: BTreeMap<Table, TableLog>,
}

#[derive(Debug, Default)]
struct TableLog {
    /// The table's version when the run began (`None`: no table yet): the run's commit is built
    /// on it, and on the versions other writers commit meanwhile.
    read: Option<DeltaTable>,
    /// The owner's files in the table's current version, by partition folder (relative to the
    /// table, as hive names it): path relative to the table, unescaped.
    owned: BTreeMap<String, String>,
    /// The run's new files.
    adds: Vec<Add>,
    /// Partition folders whose files of the owner this run replaces (by a new file or by none).
    replaced: BTreeSet<String>,
}

/// A failure of the Delta log, as the load stage reports it.
fn delta_err(table: &Path) -> impl FnOnce(DeltaTableError) -> LoadError + '_ {
    move |source| LoadError::Store {
        url: table.display().to_string(),
        source: Box::new(source),
    }
}

/// Splits a path relative to a table into its partition folder and file name.
fn split_path(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

impl DeltaOutput {
    /// The Delta tables below the folder `root`, partitioned by `partitioning`. Reads nothing yet.
    pub fn new(root: &Path, partitioning: &[PartitionBy]) -> DeltaOutput {
        DeltaOutput {
            root: root.to_path_buf(),
            partitioning: partitioning.to_vec(),
            run: Mutex::new(None),
            #[cfg(feature = "s3")]
            store: None,
        }
    }

    /// The Delta tables of an output in an object store. Makes no request yet.
    #[cfg(feature = "s3")]
    pub fn in_store(
        output: std::sync::Arc<super::object::ObjectOutput>,
        partitioning: &[PartitionBy],
    ) -> Result<DeltaOutput, LoadError> {
        let root = PathBuf::from(output.url(""));
        let log = s3_log_client(output.connection()).map_err(|e| LoadError::Config {
            url: root.display().to_string(),
            message: e.to_string(),
        })?;
        register_s3_log_stores();
        Ok(DeltaOutput {
            store: Some(Store { output, log }),
            ..DeltaOutput::new(&root, partitioning)
        })
    }

    fn table_dir(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// Whether the table has a log yet: delta-rs' own test, which stops at the log's first
    /// entry rather than listing a log that grows by a commit a night.
    fn exists(&self, table: Table) -> Result<bool, LoadError> {
        let dir = self.table_dir(table);
        let log = self
            .builder(table)?
            .build_storage()
            .map_err(delta_err(&dir))?;
        wait(async move { log.is_delta_table_location().await })?.map_err(delta_err(&dir))
    }

    /// What opens the table: its URL, and in an object store, the client to reach it with.
    fn builder(&self, table: Table) -> Result<DeltaTableBuilder, LoadError> {
        let url = self.table_url(table)?;
        let builder =
            DeltaTableBuilder::from_url(url.clone()).map_err(delta_err(&self.table_dir(table)))?;
        #[cfg(feature = "s3")]
        if let Some(store) = &self.store {
            return Ok(builder.with_storage_backend(std::sync::Arc::clone(&store.log), url));
        }
        Ok(builder)
    }

    fn table_url(&self, table: Table) -> Result<Url, LoadError> {
        let dir = self.table_dir(table);
        #[cfg(feature = "s3")]
        if let Some(store) = &self.store {
            let url = format!("{}/", store.output.url(table.name()));
            return Url::parse(&url).map_err(|e| LoadError::Config {
                url,
                message: e.to_string(),
            });
        }
        let absolute = std::path::absolute(&dir).map_err(|source| LoadError::Folder {
            path: dir.clone(),
            source,
        })?;
        Url::from_directory_path(&absolute).map_err(|()| LoadError::Config {
            url: dir.display().to_string(),
            message: "not an absolute folder path".to_string(),
        })
    }

    /// The table's current version, or `None` when there is no table yet.
    fn load(&self, table: Table) -> Result<Option<DeltaTable>, LoadError> {
        let dir = self.table_dir(table);
        if !self.exists(table)? {
            return Ok(None);
        }
        let builder = self.builder(table)?;
        wait(async move {
            match builder.load().await {
                Ok(table) => Ok(Some(table)),
                Err(DeltaTableError::NotATable(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })?
        .map_err(delta_err(&dir))
    }

    /// The files of the table's current version, relative to its folder (unescaped, e.g.
    /// `date=2026-11-23/part-nightly-2.parquet`); `None` when the table has no log.
    pub fn current_files(&self, table: Table) -> Result<Option<Vec<String>>, LoadError> {
        let Some(delta) = self.load(table)? else {
            return Ok(None);
        };
        let snapshot = delta
            .snapshot()
            .map_err(delta_err(&self.table_dir(table)))?;
        let mut files: Vec<String> = snapshot
            .log_data()
            .iter()
            .map(|f| f.path().into_owned())
            .collect();
        files.sort();
        Ok(Some(files))
    }

    /// Starts `owner`'s run: reads each table's current version (the owner's files in it and its
    /// last committed run) and numbers the run past every earlier one. Of `files`, the output's
    /// (relative to its root), returns those of the owner's runs that never committed, for the
    /// caller to remove. Call under the owner's lock.
    pub fn begin<'f>(
        &self,
        owner: &str,
        files: impl IntoIterator<Item = &'f Path>,
    ) -> Result<Vec<&'f Path>, LoadError> {
        let mut tables = BTreeMap::new();
        let mut last = 0;
        let mut committed = BTreeMap::new();
        for table in Table::ALL {
            let mut log = TableLog::default();
            let mut table_last = 0;
            if let Some(delta) = self.load(table)? {
                // A table this run could not commit to fails the run now, before any request.
                self.check(table, &delta)?;
                log.read = Some(delta.clone());
                let dir = self.table_dir(table);
                let snapshot = delta.snapshot().map_err(delta_err(&dir))?;
                for file in snapshot.log_data().iter() {
                    let path = file.path().into_owned();
                    let (partition, name) = split_path(&path);
                    if owned_file_number(name, owner).is_some() {
                        log.owned.insert(partition.to_string(), path.clone());
                    }
                }
                let store = delta.log_store();
                let app = owner.to_string();
                let state = snapshot.clone();
                table_last = wait(async move { state.transaction_version(&*store, app).await })?
                    .map_err(delta_err(&dir))?
                    .map_or(0, |v| u64::try_from(v).unwrap_or(0));
            }
            last = last.max(table_last);
            committed.insert(table, table_last);
            tables.insert(table, log);
        }
        let uncommitted = files
            .into_iter()
            .filter(|rel| {
                let table = rel
                    .components()
                    .next()
                    .and_then(|c| Table::from_name(&c.as_os_str().to_string_lossy()));
                let name = rel.file_name().map(|n| n.to_string_lossy());
                match (table, name) {
                    (Some(table), Some(name)) => {
                        owned_file_number(&name, owner).is_some_and(|n| n > committed[&table])
                    }
                    _ => false,
                }
            })
            .collect();
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        *run = Some(RunLog {
            owner: owner.to_string(),
            number: last + 1,
            tables,
        });
        Ok(uncommitted)
    }

    /// `f` on the run [`Self::begin`] started; an error when none was: no file of a Delta output
    /// is read or written before its tables are.
    fn with_run<T>(&self, f: impl FnOnce(&mut RunLog) -> T) -> Result<T, LoadError> {
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        match run.as_mut() {
            Some(run) => Ok(f(run)),
            None => Err(LoadError::Config {
                url: self.root.display().to_string(),
                message: "the Delta tables were not read before the run used them".to_string(),
            }),
        }
    }

    /// The name the run's file of a partition goes under.
    pub fn file_name(&self, owner: &str) -> Result<String, LoadError> {
        let number = self.with_run(|run| run.number)?;
        Ok(format!("part-{owner}-{number}.parquet"))
    }

    /// The owner's file of a partition in the table's current version, relative to the table.
    pub fn current(&self, table: Table, partition: &str) -> Result<Option<String>, LoadError> {
        self.with_run(|run| {
            run.tables
                .get(&table)
                .and_then(|log| log.owned.get(partition).cloned())
        })
    }

    /// The partitions in which the owner has a file in the table's current version.
    pub fn owned_partitions(&self, table: Table) -> Result<Vec<String>, LoadError> {
        self.with_run(|run| {
            run.tables
                .get(&table)
                .map(|log| log.owned.keys().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// The run wrote `name` into a partition: added at commit, replacing the owner's file there.
    pub fn added(
        &self,
        table: Table,
        key: &PartitionKey,
        name: &str,
        rows: u64,
        bytes: u64,
    ) -> Result<(), LoadError> {
        let partition = super::rel_key(&key.relative_dir()?);
        let rel = if partition.is_empty() {
            name.to_string()
        } else {
            format!("{partition}/{name}")
        };
        let add = Add {
            // The path on disk, hive escapes and all: delta-rs escapes it for the log (a `%`
            // becomes `%25`), and readers unescape it once.
            path: rel,
            partition_values: key
                .values()
                .iter()
                .map(|(column, value)| (column.to_string(), value.clone()))
                .collect(),
            size: i64::try_from(bytes).unwrap_or(i64::MAX),
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(format!("{{\"numRecords\":{rows}}}")),
            ..Default::default()
        };
        self.with_run(|run| {
            let log = run.tables.entry(table).or_default();
            log.adds.push(add);
            log.replaced.insert(partition);
        })
    }

    /// The run leaves a partition without a file of the owner: the owner's file there is removed
    /// at commit.
    pub fn emptied(&self, table: Table, partition: &str) -> Result<(), LoadError> {
        self.with_run(|run| {
            run.tables
                .entry(table)
                .or_default()
                .replaced
                .insert(partition.to_string());
        })
    }

    /// Whether `delta` is a table this output may commit to: its schema and partition columns.
    fn check(&self, table: Table, delta: &DeltaTable) -> Result<(), LoadError> {
        check_table(delta, &self.schema(table)?, &self.partition_columns()).map_err(|message| {
            LoadError::Corrupt {
                path: self.table_dir(table),
                message,
            }
        })
    }

    /// The table's schema in Delta's terms: the layout's columns, then the partition columns the
    /// files do not hold (`date`, `month`).
    fn schema(&self, table: Table) -> Result<Vec<StructField>, LoadError> {
        let layout = layout(table);
        let mut fields = delta_fields(&layout.schema).map_err(|message| LoadError::Config {
            url: self.table_dir(table).display().to_string(),
            message,
        })?;
        for column in self.partition_columns() {
            if !fields.iter().any(|f| *f.name() == column) {
                let data_type = if column == "date" {
                    DataType::DATE
                } else {
                    DataType::STRING
                };
                fields.push(StructField::new(column, data_type, true));
            }
        }
        Ok(fields)
    }

    fn partition_columns(&self) -> Vec<String> {
        self.partitioning
            .iter()
            .map(|p| p.column().to_string())
            .collect()
    }

    /// Commits what the run wrote: per table it touched, one transaction adding its files and
    /// removing the owner's earlier ones in the partitions it replaced. Returns each table's new
    /// version. A table already holding this run's transaction is left as it is.
    pub fn commit(&self, run_id: &str) -> Result<Vec<(Table, u64)>, LoadError> {
        let pending: Vec<(Table, Option<DeltaTable>, Commit)> = self.with_run(|run| {
            let (owner, number) = (run.owner.clone(), run.number);
            run.tables
                .iter_mut()
                .filter(|(_, log)| !log.adds.is_empty() || !log.replaced.is_empty())
                .map(|(table, log)| {
                    let replaced = std::mem::take(&mut log.replaced);
                    let commit = Commit {
                        owner: owner.clone(),
                        number,
                        run_id: run_id.to_string(),
                        predicate: predicate(&replaced),
                        adds: std::mem::take(&mut log.adds),
                        replaced,
                    };
                    (*table, log.read.take(), commit)
                })
                .collect()
        })?;
        let mut versions = Vec::new();
        let mut files = 0;
        for (table, read, commit) in pending {
            let adds = commit.adds.len();
            match self.commit_table(table, read, commit) {
                Ok(version) => versions.push((table, version)),
                // Readers see the tables committed before: the run stopped after committing.
                Err(error) if !versions.is_empty() => {
                    return Err(LoadError::PartlyCommitted {
                        files,
                        source: Box::new(error),
                    })
                }
                Err(error) => return Err(error),
            }
            files += adds;
        }
        Ok(versions)
    }

    fn commit_table(
        &self,
        table: Table,
        read: Option<DeltaTable>,
        commit: Commit,
    ) -> Result<u64, LoadError> {
        let dir = self.table_dir(table);
        let fields = self.schema(table)?;
        let partition_columns = self.partition_columns();
        let mut current = read;
        for _ in 0..COMMIT_ATTEMPTS {
            // In an object store, a commit is made only while the run surely holds its lock, as
            // an object is made visible (`object`).
            #[cfg(feature = "s3")]
            if let Some(store) = &self.store {
                store.output.check_lease()?;
            }
            let attempt = match current.take() {
                None => {
                    let create = CreateBuilder::new()
                        .with_log_store(
                            self.builder(table)?
                                .build_storage()
                                .map_err(delta_err(&dir))?,
                        )
                        .with_columns(fields.clone())
                        .with_partition_columns(partition_columns.clone())
                        .with_actions(commit.adds.iter().cloned().map(Action::Add))
                        .with_save_mode(SaveMode::ErrorIfExists)
                        .with_commit_properties(commit.properties());
                    match wait(create.into_future())? {
                        Ok(created) => return Ok(created.version().unwrap_or(0)),
                        // Another writer (a sibling shard) created it first: commit on top.
                        Err(_) if self.exists(table)? => Attempt::Lost,
                        Err(e) => return Err(delta_err(&dir)(e)),
                    }
                }
                Some(delta) => {
                    self.check(table, &delta)?;
                    let commit = commit.clone();
                    wait(async move { commit.onto(delta).await })?.map_err(delta_err(&dir))?
                }
            };
            match attempt {
                Attempt::Done(version) => return Ok(version),
                Attempt::Lost => current = self.load(table)?,
            }
        }
        Err(LoadError::Store {
            url: dir.display().to_string(),
            source: format!(
                "the table's log kept moving: {COMMIT_ATTEMPTS} commits of other writers won over this run's"
            )
            .into(),
        })
    }
}

/// One table's transaction of a run.
#[derive(Debug, Clone)]
struct Commit {
    owner: String,
    number: u64,
    run_id: String,
    predicate: String,
    adds: Vec<Add>,
    replaced: BTreeSet<String>,
}

/// How one commit attempt ended.
enum Attempt {
    Done(u64),
    /// Another writer's commit came first: try again on the table's new version.
    Lost,
}

impl Commit {
    fn properties(&self) -> CommitProperties {
        CommitProperties::default()
            .with_application_transaction(Transaction::new(
                &self.owner,
                i64::try_from(self.number).unwrap_or(i64::MAX),
            ))
            .with_metadata([
                (
                    "vscope_export.run_id".to_string(),
                    serde_json::Value::String(self.run_id.clone()),
                ),
                (
                    "vscope_export.owner".to_string(),
                    serde_json::Value::String(self.owner.clone()),
                ),
            ])
            // delta-rs commits on top of other writers' versions that touched none of the files
            // this commit read; a conflict it reports is never real here (see the module's
            // comment), and the commit is then rebuilt on the new version.
            .with_max_retries(COMMIT_ATTEMPTS)
    }

    /// Commits on top of `delta`'s current version.
    async fn onto(self, delta: DeltaTable) -> Result<Attempt, DeltaTableError> {
        let snapshot = delta.snapshot()?.clone();
        let store = delta.log_store();
        let committed = snapshot.transaction_version(&*store, &self.owner).await?;
        if committed.is_some_and(|v| u64::try_from(v).is_ok_and(|v| v >= self.number)) {
            // Committed already (by an attempt whose answer was lost): never twice.
            return Ok(Attempt::Done(snapshot.version()));
        }
        let mut actions: Vec<Action> = self.adds.iter().cloned().map(Action::Add).collect();
        for file in snapshot.log_data().iter() {
            let path = file.path().into_owned();
            let (partition, name) = split_path(&path);
            if owned_file_number(name, &self.owner).is_some() && self.replaced.contains(partition) {
                actions.push(Action::Remove(file.remove_action(true)));
            }
        }
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(snapshot.metadata().partition_columns().to_vec()),
            predicate: Some(self.predicate.clone()),
        };
        let result = CommitBuilder::from(self.properties())
            .with_actions(actions)
            .build(Some(&snapshot), store, operation)
            .await;
        match result {
            Ok(done) => Ok(Attempt::Done(done.version())),
            Err(DeltaTableError::VersionAlreadyExists(_))
            | Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
            }) => Ok(Attempt::Lost),
            Err(e) => Err(e),
        }
    }
}

/// The client delta-rs reaches an S3-compatible store with: its own object_store version's, connected
/// as the output's data files are (`object`), credentials from the environment.
#[cfg(feature = "s3")]
fn s3_log_client(
    c: &super::object::Connection,
) -> Result<std::sync::Arc<dyn object_store_delta::ObjectStore>, object_store_delta::Error> {
    use object_store_delta::aws::AmazonS3Builder;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&c.bucket);
    if let Some(region) = &c.region {
        builder = builder.with_region(region);
    }
    if let Some(virtual_hosted) = c.virtual_hosted {
        builder = builder.with_virtual_hosted_style_request(virtual_hosted);
    }
    if let Some(endpoint) = &c.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let options = object_store_delta::ClientOptions::new()
        .with_allow_http(c.allow_http)
        .with_default_content_type("application/json");
    Ok(std::sync::Arc::new(
        builder.with_client_options(options).build()?,
    ))
}

/// delta-rs' log store for `s3://` tables: its default one, which commits a version with a
/// put-if-absent (`If-None-Match: *`), the conditional write S3 honours and the job's lock already
/// relies on. (delta-rs' own S3 integration would bring the AWS SDK and a DynamoDB lock table.)
#[cfg(feature = "s3")]
fn register_s3_log_stores() {
    use deltalake::logstore::{
        default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef,
        StorageConfig,
    };

    #[derive(Debug)]
    struct S3LogStores;

    impl LogStoreFactory for S3LogStores {
        fn with_options(
            &self,
            prefixed_store: ObjectStoreRef,
            root_store: ObjectStoreRef,
            location: &Url,
            options: &StorageConfig,
        ) -> deltalake::DeltaResult<std::sync::Arc<dyn LogStore>> {
            Ok(default_logstore(
                prefixed_store,
                root_store,
                location,
                options,
            ))
        }
    }

    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        if let Ok(scheme) = Url::parse("s3://") {
            logstore_factories().insert(scheme, std::sync::Arc::new(S3LogStores));
        }
    });
}

/// The predicate a commit's partitions make, as its `WRITE` operation records it: which partitions
/// the run replaced its owner's files in, e.g. `date = '2026-11-23' OR date = '2026-11-24'`.
fn predicate(partitions: &BTreeSet<String>) -> String {
    let sql = |value: &str| format!("'{}'", value.replace('\'', "''"));
    partitions
        .iter()
        .map(|dir| {
            let key = PartitionKey::from_relative_dir(Path::new(dir));
            let terms: Vec<String> = key
                .values()
                .iter()
                .map(|(column, value)| match value {
                    Some(v) => format!("{column} = {}", sql(v)),
                    None => format!("{column} IS NULL"),
                })
                .collect();
            match terms.len() {
                0 => "true".to_string(),
                1 => terms.join(""),
                _ => format!("({})", terms.join(" AND ")),
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Whether a table is one this run may commit to: the schema and partition columns it writes.
fn check_table(
    delta: &DeltaTable,
    fields: &[StructField],
    partition_columns: &[String],
) -> Result<(), String> {
    let snapshot = delta.snapshot().map_err(|e| e.to_string())?;
    let metadata = snapshot.metadata();
    if metadata.partition_columns() != partition_columns {
        return Err(format!(
            "the Delta table is partitioned by {:?} and the job by {:?}: write to another output, or keep the table's partitioning",
            metadata.partition_columns(),
            partition_columns
        ));
    }
    let schema = snapshot.schema();
    let expected = StructType::try_new(fields.iter().cloned()).map_err(|e| e.to_string())?;
    if schema.as_ref() != &expected {
        let have: Vec<&String> = schema.fields().map(|f| f.name()).collect();
        let want: Vec<&String> = expected.fields().map(|f| f.name()).collect();
        return Err(format!(
            "the Delta table's columns are not the ones this version writes (table: {have:?}; this version: {want:?}): write to another output"
        ));
    }
    Ok(())
}

/// Delta's types for an Arrow schema of this tool's tables.
fn delta_fields(schema: &Schema) -> Result<Vec<StructField>, String> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let data_type = delta_type(field.data_type()).ok_or_else(|| {
                format!(
                    "column {} ({}) has no Delta Lake type",
                    field.name(),
                    field.data_type()
                )
            })?;
            Ok(StructField::new(
                field.name(),
                data_type,
                field.is_nullable(),
            ))
        })
        .collect()
}

fn delta_type(data_type: &ArrowType) -> Option<DataType> {
    Some(match data_type {
        ArrowType::Utf8 | ArrowType::LargeUtf8 => DataType::STRING,
        ArrowType::Int64 => DataType::LONG,
        ArrowType::Int32 => DataType::INTEGER,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Date32 => DataType::DATE,
        // Delta's `timestamp` is a UTC instant; its readers read the files' milliseconds as
        // such (microseconds being the type's own precision).
        ArrowType::Timestamp(_, Some(_)) => DataType::TIMESTAMP,
        ArrowType::Map(entries, _) => {
            let ArrowType::Struct(kv) = entries.data_type() else {
                return None;
            };
            let [key, value] = kv.iter().collect::<Vec<_>>()[..] else {
                return None;
            };
            MapType::new(
                delta_type(key.data_type())?,
                delta_type(value.data_type())?,
                value.is_nullable(),
            )
            .into()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_the_owners_only_by_its_exact_name() {
        assert_eq!(owned_file_number("part-demo-3.parquet", "demo"), Some(3));
        assert_eq!(owned_file_number("part-demo-s1of4-3.parquet", "demo"), None);
        assert_eq!(
            owned_file_number("part-demo-s1of4-3.parquet", "demo-s1of4"),
            Some(3)
        );
        assert_eq!(owned_file_number("part-demo-2-5.parquet", "demo"), None);
        assert_eq!(owned_file_number("part-demo-.parquet", "demo"), None);
        assert_eq!(
            owned_file_number(".part-demo-3.parquet.12.tmp", "demo"),
            None
        );
    }

    #[test]
    fn the_predicate_names_the_replaced_partitions_and_escapes_quotes() {
        let partitions: BTreeSet<String> = [
            "service_name=pcc%27s/date=2026-11-23".to_string(),
            "service_name=__HIVE_DEFAULT_PARTITION__/date=2026-11-24".to_string(),
        ]
        .into();
        assert_eq!(
            predicate(&partitions),
            "(service_name IS NULL AND date = '2026-11-24') OR (service_name = 'pcc''s' AND date = '2026-11-23')"
        );
    }

    fn day(date: &str) -> PartitionKey {
        PartitionKey::new(vec![("date", Some(date.to_string()))])
    }

    /// The files a table's current version names.
    fn live(output: &DeltaOutput, table: Table) -> (u64, BTreeSet<String>) {
        let delta = output.load(table).unwrap().expect("a table");
        let snapshot = delta.snapshot().unwrap();
        let files = snapshot
            .log_data()
            .iter()
            .map(|f| f.path().into_owned())
            .collect();
        (snapshot.version(), files)
    }

    #[test]
    fn two_shards_committing_at_once_both_land_and_each_replaces_only_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let shards = ["nightly-s0of2", "nightly-s1of2"]
            .map(|owner| (owner, DeltaOutput::new(dir.path(), &[PartitionBy::Date])));
        for round in 1..=2 {
            // Both read the table before either commits: the second commit always finds the
            // first one's version in its way (in the first round, the table it would create).
            for (owner, output) in &shards {
                output.begin(owner, []).unwrap();
            }
            for (owner, output) in &shards {
                let name = output.file_name(owner).unwrap();
                assert_eq!(name, format!("part-{owner}-{round}.parquet"));
                output
                    .added(Table::VmMetrics, &day("2026-11-23"), &name, 10, 100)
                    .unwrap();
            }
            let versions: Vec<u64> = shards
                .iter()
                .map(|(_, output)| output.commit("run").unwrap()[0].1)
                .collect();
            assert_eq!(versions, [2 * round - 2, 2 * round - 1], "round {round}");
            let (version, files) = live(&shards[0].1, Table::VmMetrics);
            assert_eq!(version, 2 * round - 1);
            let expected: BTreeSet<String> = shards
                .iter()
                .map(|(owner, _)| format!("date=2026-11-23/part-{owner}-{round}.parquet"))
                .collect();
            assert_eq!(
                files, expected,
                "round {round}: each shard's newest file, once"
            );
        }
    }

    #[test]
    fn every_table_has_delta_types() {
        for table in Table::ALL {
            let fields = delta_fields(&layout(table).schema).unwrap();
            assert_eq!(fields.len(), layout(table).schema.fields().len());
        }
    }

    #[test]
    fn a_hive_escaped_partition_folder_is_the_same_file_in_the_log_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let partitioning = [PartitionBy::ServiceName, PartitionBy::Date];
        let key = PartitionKey::new(vec![
            ("service_name", Some("pcc's 1/2%".to_string())),
            ("date", Some("2026-11-23".to_string())),
        ]);
        let folder = super::super::rel_key(&key.relative_dir().unwrap());
        assert!(folder.contains('%'), "{folder}");
        for round in 1..=2 {
            let output = DeltaOutput::new(dir.path(), &partitioning);
            output.begin("job", []).unwrap();
            let previous = output.current(Table::VmMetrics, &folder).unwrap();
            let expected_previous = (round > 1).then(|| format!("{folder}/part-job-1.parquet"));
            assert_eq!(
                previous, expected_previous,
                "round {round}: the file on disk"
            );
            let name = output.file_name("job").unwrap();
            output.added(Table::VmMetrics, &key, &name, 1, 1).unwrap();
            output.commit("run").unwrap();
            let (_, files) = live(&output, Table::VmMetrics);
            let expected: BTreeSet<String> = [format!("{folder}/{name}")].into();
            assert_eq!(
                files, expected,
                "round {round}: the new file replaced the old one"
            );
        }
    }
}
