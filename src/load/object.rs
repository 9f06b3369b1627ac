//! The output in an S3-compatible object store (`s3://bucket/prefix`, cargo feature `s3`): the
//! connection, streamed uploads, reads, listings and conditional writes, through `object_store`.
//! The load stage decides what to write; this module only says how a store does what a folder
//! does with temporary names and renames.
//!
//! - An object appears only when its upload completes: a file that fits in one part is one PUT;
//!   a larger one is a multipart upload whose parts hold no visible object until the upload is
//!   completed, and completing it replaces the previous object whole.
//! - Each multipart upload's id is journaled (`_state/uploads/<job>/<name>.json`) before its first
//!   part is sent, and the journal entry removed once the upload is completed or aborted. A failed
//!   upload is aborted at once; one left by a killed run is aborted by the job's next run, which
//!   reads the journal (S3 itself offers no way to list one's own uploads through this client).
//! - Job state, the lock and manifests are small objects written with one PUT; the state and
//!   the lock use conditional writes (`If-None-Match: *`, `If-Match: <e-tag>`).
//!
//! Every call runs on the load stage's own runtime ([`super::io::wait`]): the load stage is
//! synchronous, called from blocking tasks and from the run's async code alike, and a store's
//! connections stay on the runtime that opened them.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, MultipartId, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::io::{runtime, wait};
use super::LoadError;
use crate::domain::url;
use crate::job::S3Settings;

/// Bytes of one uploaded part. S3 needs 5 MiB at least for every part but the last; one part
/// fills while the one before is sent, so a file being written holds at most two parts (and its
/// footer) in memory, whatever its size, and may grow to 10,000 parts (80 GiB).
pub const PART_BYTES: usize = 8 << 20;

/// Folder of the upload journal, below the state folder.
const UPLOADS_DIR: &str = "uploads";

/// A connected object-store output: a bucket and the key prefix the output lives under.
#[derive(Debug)]
pub struct ObjectOutput {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    /// The e-tag (or version) each job's state had when this run read or wrote it: the next write
    /// of the state must find it unchanged.
    versions: Mutex<HashMap<String, Option<UpdateVersion>>>,
    /// The lease of the lock this run holds on the output, if it holds one: every upload checks
    /// it before it makes an object visible.
    lease: Mutex<Option<Lease>>,
    connection: Connection,
}

/// How the store is reached, as [`ObjectOutput::connect`] resolved it from the job and the
/// environment; credentials stay in the environment. A Delta output's log client connects the
/// same way.
#[derive(Debug, Clone)]
pub struct Connection {
    pub bucket: String,
    /// `None`: `AWS_REGION`, then the client's default.
    pub region: Option<String>,
    /// `None`: `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, then path-style.
    pub virtual_hosted: Option<bool>,
    /// The endpoint the bucket is reached at, its name in the host for virtual-hosted addressing.
    pub endpoint: Option<String>,
    /// Plain http, to a loopback endpoint only.
    pub allow_http: bool,
}

/// How long a held lock is known to last: until a renewal was refused, or until the lease the
/// last successful write of the lock gave, less [`LEASE_MARGIN`].
#[derive(Debug, Clone)]
struct Lease {
    url: String,
    lost: Arc<std::sync::atomic::AtomicBool>,
    /// Milliseconds since the epoch.
    until_ms: Arc<std::sync::atomic::AtomicI64>,
}

/// Time kept in hand before a lease runs out: a run stops making objects visible this long
/// before another run may take its lock over.
const LEASE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

impl Lease {
    fn check(&self) -> Result<(), LoadError> {
        use std::sync::atomic::Ordering;
        let margin = i64::try_from(LEASE_MARGIN.as_millis()).unwrap_or(i64::MAX);
        let now = chrono::Utc::now().timestamp_millis();
        if self.lost.load(Ordering::SeqCst)
            || now.saturating_add(margin) >= self.until_ms.load(Ordering::SeqCst)
        {
            return Err(LoadError::LockLost {
                url: self.url.clone(),
            });
        }
        Ok(())
    }
}

fn store_err(url: String) -> impl FnOnce(object_store::Error) -> LoadError {
    move |source| LoadError::Store {
        url,
        source: Box::new(source),
    }
}

/// The endpoint object_store is to use for `bucket`, and whether it is plain http (allowed to a
/// loopback host only, as every URL secrets travel to). Virtual-hosted addressing puts the bucket
/// before the service endpoint's host, as OVHcloud and AWS document it
/// (`https://<bucket>.s3.gra.io.cloud.ovh.net`); object_store expects it there already.
fn bucket_endpoint(
    endpoint: &str,
    bucket: &str,
    virtual_hosted: bool,
) -> Result<(String, bool), String> {
    let mut parsed =
        reqwest::Url::parse(endpoint).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    if url::check(&parsed).is_err() {
        return Err("the endpoint must be https (http only to a loopback host)".to_string());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the endpoint holds credentials: give them in the environment".to_string());
    }
    if virtual_hosted {
        let host = parsed.host_str().unwrap_or_default().to_string();
        if !host.starts_with(&format!("{bucket}.")) {
            parsed
                .set_host(Some(&format!("{bucket}.{host}")))
                .map_err(|e| format!("no virtual-hosted endpoint: {e}"))?;
        }
    }
    let http = parsed.scheme() == "http";
    Ok((parsed.as_str().trim_end_matches('/').to_string(), http))
}

/// An entry of the upload journal: which multipart upload to abort should its run die.
#[derive(Debug, Serialize, Deserialize)]
struct Journaled {
    key: String,
    upload_id: String,
}

impl ObjectOutput {
    /// Connects to `s3://bucket/prefix` with the AWS environment variables, `settings` taking
    /// precedence for the endpoint, region and addressing style. Makes no request.
    pub fn connect(
        bucket: &str,
        prefix: &str,
        settings: &S3Settings,
    ) -> Result<ObjectOutput, LoadError> {
        let location = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let refused = |message: String| LoadError::Config {
            url: location.clone(),
            message,
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(virtual_hosted) = settings.virtual_hosted {
            builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        }
        let virtual_hosted = builder
            .get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest)
            .is_some_and(|v| v == "true");
        let endpoint = settings.endpoint.clone().or_else(|| {
            builder
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .filter(|e| !e.is_empty())
        });
        let mut connection = Connection {
            bucket: bucket.to_string(),
            region: settings.region.clone(),
            virtual_hosted: settings.virtual_hosted,
            endpoint: None,
            allow_http: false,
        };
        if let Some(endpoint) = &endpoint {
            let (url, http) = bucket_endpoint(endpoint, bucket, virtual_hosted).map_err(refused)?;
            connection.allow_http = http;
            connection.endpoint = Some(url.clone());
            builder = builder.with_endpoint(url);
        }
        let allow_http = connection.allow_http;
        // Some S3-compatible servers stall on an upload without a Content-Type.
        let options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_default_content_type("application/octet-stream")
            .with_content_type_for_suffix("parquet", "application/vnd.apache.parquet")
            .with_content_type_for_suffix("json", "application/json");
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| refused(e.to_string()))?;
        Ok(ObjectOutput {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            versions: Mutex::new(HashMap::new()),
            lease: Mutex::new(None),
            connection,
        })
    }

    /// How the store is reached.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// `s3://bucket/prefix/<rel>`, for messages and the run's summary.
    pub fn url(&self, rel: &str) -> String {
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, true) => format!("s3://{}", self.bucket),
            (true, false) => format!("s3://{}/{rel}", self.bucket),
            (false, true) => format!("s3://{}/{}", self.bucket, self.prefix),
            (false, false) => format!("s3://{}/{}/{rel}", self.bucket, self.prefix),
        }
    }

    fn key(&self, rel: &str) -> Result<Key, LoadError> {
        let full = if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        Key::parse(&full).map_err(|e| LoadError::Config {
            url: self.url(rel),
            message: e.to_string(),
        })
    }

    /// The object at `rel` and its version, or `None` when there is none.
    pub fn get(&self, rel: &str) -> Result<Option<(Bytes, UpdateVersion)>, LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        let got = wait(async move {
            let result = store.get(&key).await?;
            let version = UpdateVersion {
                e_tag: result.meta.e_tag.clone(),
                version: result.meta.version.clone(),
            };
            Ok::<_, object_store::Error>((result.bytes().await?, version))
        })?;
        match got {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(self.url(rel))(e)),
        }
    }

    /// Bytes `range` of the object at `rel`.
    pub fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes, LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        wait(async move { store.get_range(&key, range).await })?.map_err(store_err(self.url(rel)))
    }

    /// The size of the object at `rel`, or `None` when there is none.
    pub fn size(&self, rel: &str) -> Result<Option<u64>, LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        match wait(async move { store.head(&key).await })? {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(self.url(rel))(e)),
        }
    }

    /// Writes `bytes` to `rel` in one PUT, under `mode`. The store's precondition errors come
    /// back as they are, for the caller to name.
    pub fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<Result<UpdateVersion, object_store::Error>, LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        wait(async move {
            let done = store
                .put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode))
                .await?;
            Ok(UpdateVersion {
                e_tag: done.e_tag,
                version: done.version,
            })
        })
    }

    /// Writes `bytes` to `rel`, replacing what was there.
    pub fn overwrite(&self, rel: &str, bytes: Vec<u8>) -> Result<(), LoadError> {
        self.put(rel, bytes, PutMode::Overwrite)?
            .map(drop)
            .map_err(store_err(self.url(rel)))
    }

    /// Removes the object at `rel`; one that is not there is no error.
    pub fn delete(&self, rel: &str) -> Result<(), LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        match wait(async move { store.delete(&key).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(self.url(rel))(e)),
        }
    }

    /// Every object below `rel` (a folder-like prefix), as paths relative to the output's prefix,
    /// with their sizes.
    pub fn list(&self, rel: &str) -> Result<Vec<(String, u64)>, LoadError> {
        let (store, key) = (Arc::clone(&self.store), self.key(rel)?);
        let listed = wait(async move {
            let mut stream = store.list(Some(&key));
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                out.push((meta.location.to_string(), meta.size));
            }
            Ok::<_, object_store::Error>(out)
        })?
        .map_err(store_err(self.url(rel)))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        Ok(listed
            .into_iter()
            .filter_map(|(k, size)| k.strip_prefix(&strip).map(|k| (k.to_string(), size)))
            .collect())
    }

    /// The version of the job's state this run last saw (`None`: it saw none), if it read it.
    pub(super) fn state_version(&self, job: &str) -> Option<Option<UpdateVersion>> {
        self.versions.lock().ok()?.get(job).cloned()
    }

    pub(super) fn set_state_version(&self, job: &str, version: Option<UpdateVersion>) {
        if let Ok(mut versions) = self.versions.lock() {
            versions.insert(job.to_string(), version);
        }
    }

    /// Starts writing the object at `rel` for `job`: nothing is visible until
    /// [`Upload::finish`]; dropping the upload unfinished aborts it.
    pub fn upload(self: &Arc<Self>, rel: &str, job: &str) -> Result<Upload, LoadError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static UPLOADS: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id(),
            UPLOADS.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Upload {
            output: Arc::clone(self),
            rel: rel.to_string(),
            key: self.key(rel)?,
            journal: journal_dir(job) + &name,
            multipart: None,
            in_flight: None,
            buf: Vec::new(),
            sent: 0,
            footer_follows: false,
            done: false,
        })
    }

    /// Aborts the multipart uploads a killed run of `job` left (as its journal says) and clears
    /// their journal entries. Returns how many there were.
    pub fn abort_leftover_uploads(&self, job: &str) -> Result<usize, LoadError> {
        let dir = journal_dir(job);
        let entries = self.list(&dir)?;
        for (rel, _) in &entries {
            if let Some((bytes, _)) = self.get(rel)? {
                let entry: Journaled =
                    serde_json::from_slice(&bytes).map_err(|e| LoadError::Corrupt {
                        path: PathBuf::from(self.url(rel)),
                        message: e.to_string(),
                    })?;
                let key = Key::parse(&entry.key).map_err(|e| LoadError::Corrupt {
                    path: PathBuf::from(self.url(rel)),
                    message: e.to_string(),
                })?;
                let store = Arc::clone(&self.store);
                let id: MultipartId = entry.upload_id;
                match wait(async move { store.abort_multipart(&key, &id).await })? {
                    // An upload that no longer exists (completed, or aborted before its journal
                    // entry was removed) is what aborting wants.
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_err(self.url(rel))(e)),
                }
            }
            self.delete(rel)?;
        }
        Ok(entries.len())
    }
}

/// How long a lock holds without being renewed: a run on another machine that died holding it
/// blocks the job's next runs this long at most. A live run renews it every [`LOCK_RENEW`].
pub const LOCK_LEASE: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// How often a live run renews its lock: well within [`LOCK_LEASE`], so a slow request or two
/// does not lose it.
const LOCK_RENEW: std::time::Duration = std::time::Duration::from_secs(2 * 60);

/// The lock object's content: who holds it, and until when unless renewed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    pub since: chrono::DateTime<chrono::Utc>,
    pub expires: chrono::DateTime<chrono::Utc>,
}

impl LockHolder {
    fn new(run_id: &str) -> LockHolder {
        let now = chrono::Utc::now();
        LockHolder {
            run_id: run_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            since: now,
            expires: lease_end(now),
        }
    }

    /// Whether the holder is gone: its lease ran out, or it ran on this host and its process
    /// is no more (a killed run, seen by the next run on the same machine at once).
    fn is_stale(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.expires < now || (self.host == host_name() && !process_alive(self.pid))
    }

    fn describe(&self) -> String {
        format!(
            "run {} (host {}, pid {}) since {}, lease until {}",
            self.run_id,
            self.host,
            self.pid,
            self.since.to_rfc3339(),
            self.expires.to_rfc3339()
        )
    }
}

fn lease_end(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now + chrono::TimeDelta::from_std(LOCK_LEASE).unwrap_or_default()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Whether a process of this host is alive; `true` where that cannot be told.
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Why a lock could not be taken.
pub enum LockRefused {
    /// A live run holds it.
    Held(String),
    Error(LoadError),
}

impl From<LoadError> for LockRefused {
    fn from(e: LoadError) -> Self {
        LockRefused::Error(e)
    }
}

/// A job's lock in the store, held while this value lives: renewed in the background, removed on
/// drop.
#[derive(Debug)]
pub struct ObjectLock {
    output: Arc<ObjectOutput>,
    rel: String,
    lease: Lease,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl ObjectLock {
    /// Fails when the lock may no longer be this run's: a renewal was refused (another run took
    /// it over), or none succeeded for so long that the lease is about to run out. What the run
    /// writes after that could race another run's.
    pub fn ensure_held(&self) -> Result<(), LoadError> {
        self.lease.check()
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
        if let Ok(mut lease) = self.output.lease.lock() {
            *lease = None;
        }
        // A lock this run may have lost is left alone: it may be another run's by now, and a
        // lease that ran out is taken over by the next run anyway.
        if self.lease.check().is_ok() {
            if let Err(e) = self.output.delete(&self.rel) {
                tracing::warn!(lock = %self.output.url(&self.rel), error = %e, "Could not remove the job's lock; its lease runs out by itself.");
            }
        }
    }
}

impl ObjectOutput {
    /// Fails when this run holds the output's lock no longer for sure (see [`Lease`]); passes
    /// when it holds none (`state reset` and tests write without one).
    pub(super) fn check_lease(&self) -> Result<(), LoadError> {
        match self.lease.lock() {
            Ok(lease) => lease.as_ref().map_or(Ok(()), Lease::check),
            Err(_) => Ok(()),
        }
    }

    /// Who holds the lock at `rel`, if a live run does.
    pub fn lock_holder(&self, rel: &str) -> Result<Option<String>, LoadError> {
        let Some((bytes, _)) = self.get(rel)? else {
            return Ok(None);
        };
        let holder: LockHolder =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::Corrupt {
                path: PathBuf::from(self.url(rel)),
                message: e.to_string(),
            })?;
        Ok((!holder.is_stale(chrono::Utc::now())).then(|| holder.describe()))
    }

    /// Takes the lock at `rel` for `run_id`: creates it only if there is none
    /// (`If-None-Match: *`), or takes over a stale one only if it is still the one read
    /// (`If-Match`). Two runs racing for it cannot both win.
    pub fn lock(self: &Arc<Self>, rel: &str, run_id: &str) -> Result<ObjectLock, LockRefused> {
        let holder = LockHolder::new(run_id);
        let body = |h: &LockHolder| serde_json::to_vec_pretty(h).unwrap_or_default();
        let url = self.url(rel);
        let version = match self.put(rel, body(&holder), PutMode::Create)? {
            Ok(version) => version,
            Err(object_store::Error::AlreadyExists { .. }) => {
                let Some((bytes, seen)) = self.get(rel)? else {
                    return Err(LockRefused::Held(
                        "another run, which just released it".to_string(),
                    ));
                };
                let current: LockHolder =
                    serde_json::from_slice(&bytes).map_err(|e| LoadError::Corrupt {
                        path: PathBuf::from(&url),
                        message: e.to_string(),
                    })?;
                if !current.is_stale(chrono::Utc::now()) {
                    return Err(LockRefused::Held(current.describe()));
                }
                tracing::info!(lock = %url, holder = %current.describe(), "Taking over a lock whose run is gone.");
                match self.put(rel, body(&holder), PutMode::Update(seen))? {
                    Ok(version) => version,
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => {
                        return Err(LockRefused::Held(
                            "another run, which took it over first".to_string(),
                        ))
                    }
                    Err(e) => return Err(store_err(url)(e).into()),
                }
            }
            Err(e) => return Err(store_err(url)(e).into()),
        };
        let version = Arc::new(Mutex::new(version));
        let lease = Lease {
            url: url.clone(),
            lost: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            until_ms: Arc::new(std::sync::atomic::AtomicI64::new(
                holder.expires.timestamp_millis(),
            )),
        };
        if let Ok(mut held) = self.lease.lock() {
            *held = Some(lease.clone());
        }
        let renewal = {
            let (output, rel, version, lost, until_ms) = (
                Arc::clone(self),
                rel.to_string(),
                Arc::clone(&version),
                Arc::clone(&lease.lost),
                Arc::clone(&lease.until_ms),
            );
            let key = self.key(rel.as_str()).map_err(LockRefused::Error)?;
            runtime()?.spawn(async move {
                let mut holder = holder;
                loop {
                    tokio::time::sleep(LOCK_RENEW).await;
                    holder.expires = lease_end(chrono::Utc::now());
                    let seen = match version.lock() {
                        Ok(v) => v.clone(),
                        Err(_) => return,
                    };
                    let put = output
                        .store
                        .put_opts(
                            &key,
                            PutPayload::from(body(&holder)),
                            PutOptions::from(PutMode::Update(seen)),
                        )
                        .await;
                    match put {
                        Ok(done) => {
                            until_ms.store(
                                holder.expires.timestamp_millis(),
                                std::sync::atomic::Ordering::SeqCst,
                            );
                            if let Ok(mut v) = version.lock() {
                                *v = UpdateVersion {
                                    e_tag: done.e_tag,
                                    version: done.version,
                                };
                            }
                        }
                        Err(object_store::Error::Precondition { .. }) => {
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            tracing::error!(lock = %output.url(&rel), "The job's lock was taken over by another run; this run stops before recording anything.");
                            return;
                        }
                        // Tried again at the next renewal, well within the lease.
                        Err(e) => {
                            tracing::warn!(lock = %output.url(&rel), error = %e, "Could not renew the job's lock.")
                        }
                    }
                }
            })
        };
        Ok(ObjectLock {
            output: Arc::clone(self),
            rel: rel.to_string(),
            lease,
            renewal: Some(renewal),
        })
    }
}

/// `_state/uploads/<job>/`: the journal of one job's multipart uploads.
fn journal_dir(job: &str) -> String {
    format!("{}/{UPLOADS_DIR}/{job}/", super::state::STATE_DIR)
}

type PartTask = tokio::task::JoinHandle<Result<PartId, object_store::Error>>;

/// An object being written: bytes are buffered into parts and sent while the next part fills.
/// The bytes after [`Upload::footer_follows`] stay in memory until [`Upload::finish`] settles the
/// footer ([`super::footer::settle`]) and sends them as the last part.
#[derive(Debug)]
pub struct Upload {
    output: Arc<ObjectOutput>,
    rel: String,
    key: Key,
    /// Where the multipart upload's id is journaled, relative to the output's prefix.
    journal: String,
    multipart: Option<(MultipartId, Vec<PartId>)>,
    in_flight: Option<PartTask>,
    buf: Vec<u8>,
    /// Bytes handed to parts so far: the file offset of `buf`'s first byte.
    sent: u64,
    footer_follows: bool,
    done: bool,
}

impl Upload {
    /// The object's URL, for messages.
    pub fn url(&self) -> String {
        self.output.url(&self.rel)
    }

    /// From now on only the page indexes and footer follow: keep them for [`Upload::finish`].
    pub fn footer_follows(&mut self) {
        self.footer_follows = true;
    }

    /// Sends the buffer as the next part, once the part before it is done.
    fn send_part(&mut self) -> Result<(), LoadError> {
        let url = self.url();
        if self.multipart.is_none() {
            let (store, key) = (Arc::clone(&self.output.store), self.key.clone());
            let id = wait(async move { store.create_multipart(&key).await })?
                .map_err(store_err(url.clone()))?;
            let entry = serde_json::to_vec(&Journaled {
                key: self.key.to_string(),
                upload_id: id.clone(),
            })
            .map_err(|e| LoadError::Corrupt {
                path: PathBuf::from(&url),
                message: e.to_string(),
            })?;
            // Journaled before the first part: from here on, a run that dies leaves the next
            // one what it needs to abort this upload.
            let journaled = self.output.overwrite(&self.journal, entry);
            self.multipart = Some((id, Vec::new()));
            journaled?;
        }
        self.wait_in_flight()?;
        let Some((id, parts)) = &self.multipart else {
            return Ok(());
        };
        let part = std::mem::take(&mut self.buf);
        self.sent += part.len() as u64;
        let (store, key, id, index) = (
            Arc::clone(&self.output.store),
            self.key.clone(),
            id.clone(),
            parts.len(),
        );
        let task = runtime()?.spawn(async move {
            store
                .put_part(&key, &id, index, PutPayload::from(part))
                .await
        });
        self.in_flight = Some(task);
        Ok(())
    }

    fn wait_in_flight(&mut self) -> Result<(), LoadError> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let part = wait(task)?
            .map_err(|e| LoadError::Store {
                url: self.url(),
                source: Box::new(e),
            })?
            .map_err(store_err(self.url()))?;
        if let Some((_, parts)) = &mut self.multipart {
            parts.push(part);
        }
        Ok(())
    }

    /// Settles the footer, sends what is left and makes the object visible. Returns its size.
    pub fn finish(mut self) -> Result<u64, LoadError> {
        let url = self.url();
        let mut tail = Tail {
            base: self.sent,
            bytes: std::mem::take(&mut self.buf),
            at: 0,
        };
        super::footer::settle(&mut tail).map_err(|source| LoadError::Footer {
            path: PathBuf::from(&url),
            source,
        })?;
        let size = self.sent + tail.bytes.len() as u64;
        // Made visible only while this run surely holds the job's lock.
        self.output.check_lease()?;
        if self.multipart.is_none() {
            self.output
                .put(&self.rel, tail.bytes, PutMode::Overwrite)?
                .map_err(store_err(url))?;
            self.done = true;
            return Ok(size);
        }
        self.buf = tail.bytes;
        self.send_part()?;
        self.wait_in_flight()?;
        let Some((id, parts)) = self.multipart.clone() else {
            return Ok(size);
        };
        let (store, key) = (Arc::clone(&self.output.store), self.key.clone());
        wait(async move { store.complete_multipart(&key, &id, parts).await })?
            .map_err(store_err(url))?;
        self.done = true;
        // The object is complete and visible; a journal entry left by a failure here only makes
        // the next run abort an upload that no longer exists.
        if let Err(e) = self.output.delete(&self.journal) {
            tracing::warn!(entry = %self.output.url(&self.journal), error = %e, "Could not remove a finished upload's journal entry; the next run removes it.");
        }
        Ok(size)
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if !self.footer_follows && self.buf.len() >= PART_BYTES {
            self.send_part().map_err(std::io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    /// An upload dropped unfinished (its file failed) is aborted, and its journal entry removed:
    /// nothing of it stays in the store.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(task) = self.in_flight.take() {
            let _ = wait(task);
        }
        let Some((id, _)) = self.multipart.take() else {
            return;
        };
        let (store, key) = (Arc::clone(&self.output.store), self.key.clone());
        match wait(async move { store.abort_multipart(&key, &id).await }) {
            Ok(Ok(())) => {
                let _ = self.output.delete(&self.journal);
            }
            Ok(Err(e)) => {
                tracing::warn!(object = %self.url(), error = %e, "Could not abort an unfinished upload; the job's next run aborts it.");
            }
            Err(e) => {
                tracing::warn!(object = %self.url(), error = %e, "Could not abort an unfinished upload; the job's next run aborts it.");
            }
        }
    }
}

/// The end of a file held in memory, read and written at the whole file's offsets: what
/// [`super::footer::settle`] rewrites in an upload's last part.
struct Tail {
    base: u64,
    bytes: Vec<u8>,
    /// Position within `bytes`.
    at: usize,
}

impl Read for Tail {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Tail {
    /// Overwrites bytes in place; the tail never grows.
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let end = self.at + data.len();
        let Some(place) = self.bytes.get_mut(self.at..end) else {
            return Err(std::io::Error::other("a write past the end of the file"));
        };
        place.copy_from_slice(data);
        self.at = end;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Tail {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.base + self.bytes.len() as u64;
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(back) => len.checked_add_signed(back),
            SeekFrom::Current(by) => (self.base + self.at as u64).checked_add_signed(by),
        };
        match target {
            Some(at) if at >= self.base && at <= len => {
                self.at = (at - self.base) as usize;
                Ok(at)
            }
            _ => Err(std::io::Error::other(
                "the footer refers to bytes already uploaded",
            )),
        }
    }
}

/// An object of the store read in ranges, for the Parquet reader: the footer and the column
/// chunks it needs, never the whole object at once.
pub struct ObjectFile {
    output: Arc<ObjectOutput>,
    rel: String,
    size: u64,
}

impl ObjectFile {
    /// The object at `rel`, or `None` when there is none.
    pub fn open(output: &Arc<ObjectOutput>, rel: &str) -> Result<Option<ObjectFile>, LoadError> {
        Ok(output.size(rel)?.map(|size| ObjectFile {
            output: Arc::clone(output),
            rel: rel.to_string(),
            size,
        }))
    }
}

impl parquet::file::reader::Length for ObjectFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl parquet::file::reader::ChunkReader for ObjectFile {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        Ok(self
            .get_bytes(start, (self.size - start.min(self.size)) as usize)?
            .reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.output
            .get_range(&self.rel, start..start + length as u64)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_for_path_style_and_virtual_hosted_buckets() {
        let ovh = "https://s3.gra.io.cloud.ovh.net";
        assert_eq!(
            bucket_endpoint(ovh, "exports", false).unwrap(),
            ("https://s3.gra.io.cloud.ovh.net".to_string(), false)
        );
        assert_eq!(
            bucket_endpoint(ovh, "exports", true).unwrap(),
            ("https://exports.s3.gra.io.cloud.ovh.net".to_string(), false)
        );
        assert_eq!(
            bucket_endpoint("https://exports.s3.sbg.io.cloud.ovh.net/", "exports", true).unwrap(),
            ("https://exports.s3.sbg.io.cloud.ovh.net".to_string(), false),
            "a bucket already in the host is kept as it is"
        );
        assert_eq!(
            bucket_endpoint("http://127.0.0.1:9000", "exports", false).unwrap(),
            ("http://127.0.0.1:9000".to_string(), true)
        );
        assert!(bucket_endpoint("http://s3.gra.io.cloud.ovh.net", "exports", false).is_err());
        assert!(
            bucket_endpoint("https://key:secret@s3.example", "exports", false)
                .is_err_and(|e| !e.contains("secret"))
        );
    }

    #[test]
    fn a_tail_reads_and_writes_at_the_whole_files_offsets_only() {
        let mut tail = Tail {
            base: 100,
            bytes: b"abcdef".to_vec(),
            at: 0,
        };
        assert_eq!(tail.seek(SeekFrom::End(-2)).unwrap(), 104);
        let mut two = [0u8; 2];
        tail.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ef");
        tail.seek(SeekFrom::Start(101)).unwrap();
        tail.write_all(b"XY").unwrap();
        assert_eq!(tail.bytes, b"aXYdef");
        assert!(tail.seek(SeekFrom::Start(99)).is_err(), "before the tail");
        tail.seek(SeekFrom::Start(105)).unwrap();
        assert!(tail.write_all(b"long").is_err(), "the tail never grows");
    }
}
