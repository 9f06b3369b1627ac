//! What makes re-runs safe beyond the data files: the job state (`_state/<job>.json`, the end of
//! the last fully committed window), the per-(output, job) lock, and the run manifests
//! (`_runs/<run-id>.json`). Names start with `_`, so hive readers skip them.
//!
//! The lock is an OS file lock (`flock`) on `_state/<job>.lock`: the kernel releases it when the
//! process dies, however it dies, so a lock left by a killed run never blocks the next one. The
//! file keeps the holder's pid and start time only to say who holds it.
//!
//! In an object store ([`super::object`]) the same names hold the same things, written with
//! conditional PUTs: the lock is created only if absent (`If-None-Match: *`) and holds a lease
//! its run renews; a lock whose run is gone (its lease ran out, or its process on this host is
//! no more) is taken over only if unchanged since read (`If-Match`). The state is written only if
//! it is still the version this run read (`If-Match`, or `If-None-Match: *` when there was none),
//! so two runs of a job on two machines cannot both move it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LoadError;
use crate::job::Window;

/// Folder of job states and locks, below the output root.
pub const STATE_DIR: &str = "_state";
/// Folder of run manifests, below the output root.
pub const RUNS_DIR: &str = "_runs";

/// `_state/<job>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub job: String,
    /// Everything before this instant (UTC) is committed; `last-run` windows start here.
    pub committed_until: DateTime<Utc>,
    /// The run that moved it last.
    pub run_id: String,
    pub updated_at: DateTime<Utc>,
}

impl JobState {
    /// The job's state after a run over `window` that committed everything before
    /// `committed_until`, or `None` to leave `previous` as it is: the state moves forward to
    /// `committed_until` when the window starts at or before the committed end (so nothing between
    /// is skipped), never back.
    pub fn next(
        previous: Option<&JobState>,
        window: Window,
        committed_until: DateTime<Utc>,
        run_id: &str,
        now: DateTime<Utc>,
        job: &str,
    ) -> Option<JobState> {
        let moves = match previous {
            None => committed_until > window.start,
            Some(p) => window.start <= p.committed_until && committed_until > p.committed_until,
        };
        moves.then(|| JobState {
            job: job.to_string(),
            committed_until,
            run_id: run_id.to_string(),
            updated_at: now,
        })
    }
}

/// Held while a run of a job writes to an output; released on drop or when the process dies.
#[derive(Debug)]
pub struct JobLock {
    _file: Option<File>,
    path: PathBuf,
    #[cfg(feature = "s3")]
    object: Option<super::object::ObjectLock>,
}

impl JobLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails when the lock is no longer this run's (an object-store lock taken over after this
    /// run could not renew it); a file lock is held until the process ends.
    pub fn ensure_held(&self) -> Result<(), LoadError> {
        #[cfg(feature = "s3")]
        if let Some(lock) = &self.object {
            return lock.ensure_held();
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically: a hidden temporary file in the same folder, fsynced,
/// renamed over `path`, and the folder fsynced so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| LoadError::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(io)
}

/// The state and manifests of one output folder.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
    #[cfg(feature = "s3")]
    object: Option<std::sync::Arc<super::object::ObjectOutput>>,
}

impl StateStore {
    pub fn new(root: &Path) -> StateStore {
        StateStore {
            root: root.to_path_buf(),
            #[cfg(feature = "s3")]
            object: None,
        }
    }

    /// The same names in an object store (`root` is then its URL, for messages).
    #[cfg(feature = "s3")]
    pub(super) fn with_object(
        self,
        object: Option<std::sync::Arc<super::object::ObjectOutput>>,
    ) -> StateStore {
        StateStore { object, ..self }
    }

    /// The object store the state lives in, if it does not live in a folder.
    #[cfg(feature = "s3")]
    pub(super) fn object(&self) -> Option<&std::sync::Arc<super::object::ObjectOutput>> {
        self.object.as_ref()
    }

    /// The output root this store is under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self, job: &str) -> PathBuf {
        self.root.join(STATE_DIR).join(format!("{job}.json"))
    }

    /// The job's state, or `None` before its first committed run.
    pub fn read(&self, job: &str) -> Result<Option<JobState>, LoadError> {
        let path = self.state_path(job);
        #[cfg(feature = "s3")]
        let text = match &self.object {
            Some(object) => {
                let got = object.get(&state_key(job))?;
                object.set_state_version(job, got.as_ref().map(|(_, v)| v.clone()));
                match got {
                    Some((bytes, _)) => bytes.to_vec(),
                    None => return Ok(None),
                }
            }
            None => match fs::read(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(LoadError::Write { path, source }),
            },
        };
        #[cfg(not(feature = "s3"))]
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LoadError::Write { path, source }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| LoadError::Corrupt {
                path,
                message: source.to_string(),
            })
    }

    pub fn write(&self, state: &JobState) -> Result<(), LoadError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| LoadError::Corrupt {
            path: self.state_path(&state.job),
            message: source.to_string(),
        })?;
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            use object_store::PutMode;
            let key = state_key(&state.job);
            // Only over the version this run read: a state another run wrote since is never
            // overwritten.
            let mode = match object.state_version(&state.job) {
                Some(Some(version)) => PutMode::Update(version),
                Some(None) => PutMode::Create,
                None => PutMode::Overwrite,
            };
            return match object.put(&key, bytes, mode)? {
                Ok(version) => {
                    object.set_state_version(&state.job, Some(version));
                    Ok(())
                }
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => Err(LoadError::StateChanged {
                    url: object.url(&key),
                }),
                Err(source) => Err(LoadError::Store {
                    url: object.url(&key),
                    source: Box::new(source),
                }),
            };
        }
        write_atomic(&self.state_path(&state.job), &bytes)
    }

    /// The names of the files directly in `_state/` (not in its sub-folders).
    fn state_file_names(&self) -> Result<Vec<String>, LoadError> {
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            return Ok(object
                .list(&format!("{STATE_DIR}/"))?
                .into_iter()
                .filter_map(|(rel, _)| {
                    let name = rel.strip_prefix(STATE_DIR)?.strip_prefix('/')?;
                    (!name.contains('/')).then(|| name.to_string())
                })
                .collect());
        }
        let dir = self.root.join(STATE_DIR);
        match fs::read_dir(&dir) {
            Ok(entries) => Ok(entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(LoadError::Write { path: dir, source }),
        }
    }

    /// The names `job`'s states are kept under here: the job's own and its shards' (see
    /// [`crate::domain::shard::owner`]), sorted.
    pub fn owners(&self, job: &str) -> Result<Vec<String>, LoadError> {
        let names = self.state_file_names()?;
        let mut owners: Vec<String> = names
            .iter()
            .filter_map(|name| {
                let owner = name.strip_suffix(".json")?;
                crate::domain::shard::owned_by(owner, job).map(|_| owner.to_string())
            })
            .collect();
        owners.sort();
        Ok(owners)
    }

    /// Forgets the job's state (`vscope-export state reset`): its next `last-run` window starts
    /// at `initial_start` again. Returns whether there was one.
    pub fn reset(&self, job: &str) -> Result<bool, LoadError> {
        let path = self.state_path(job);
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            let key = state_key(job);
            let existed = object.size(&key)?.is_some();
            object.delete(&key)?;
            return Ok(existed);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(LoadError::Write { path, source }),
        }
    }

    /// Fails at once if a run of the job holds its lock now; creates nothing.
    pub fn check_unlocked(&self, job: &str) -> Result<(), LoadError> {
        let path = self.root.join(STATE_DIR).join(format!("{job}.lock"));
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            return match object.lock_holder(&lock_key(job))? {
                None => Ok(()),
                Some(holder) => Err(LoadError::Locked {
                    job: job.to_string(),
                    path,
                    holder,
                }),
            };
        }
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LoadError::Write { path, source }),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(LoadError::Locked {
                    job: job.to_string(),
                    path,
                    holder: holder.trim().to_string(),
                })
            }
            Err(TryLockError::Error(source)) => Err(LoadError::Write { path, source }),
        }
    }

    /// Takes the job's lock, or fails at once naming the run that holds it.
    pub fn lock(&self, job: &str, run_id: &str) -> Result<JobLock, LoadError> {
        let path = self.root.join(STATE_DIR).join(format!("{job}.lock"));
        #[cfg(feature = "s3")]
        if let Some(object) = &self.object {
            use super::object::LockRefused;
            return match object.lock(&lock_key(job), run_id) {
                Ok(lock) => Ok(JobLock {
                    _file: None,
                    path,
                    object: Some(lock),
                }),
                Err(LockRefused::Held(holder)) => Err(LoadError::Locked {
                    job: job.to_string(),
                    path,
                    holder,
                }),
                Err(LockRefused::Error(e)) => Err(e),
            };
        }
        let io = |source| LoadError::Write {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(self.root.join(STATE_DIR)).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LoadError::Locked {
                    job: job.to_string(),
                    path: path.clone(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // Who holds it, for the message a second run prints; the lock itself is the flock.
        let holder = format!(
            "run {run_id} (pid {}) since {}",
            std::process::id(),
            Utc::now().to_rfc3339()
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io)?;
        Ok(JobLock {
            _file: Some(file),
            path,
            #[cfg(feature = "s3")]
            object: None,
        })
    }
}

/// `_state/<job>.json`, as an object store's key below the output's prefix.
#[cfg(feature = "s3")]
fn state_key(job: &str) -> String {
    format!("{STATE_DIR}/{job}.json")
}

/// `_state/<job>.lock`, likewise.
#[cfg(feature = "s3")]
fn lock_key(job: &str) -> String {
    format!("{STATE_DIR}/{job}.lock")
}

pub(super) fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_reset_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert_eq!(store.read("nightly").unwrap(), None);
        let state = JobState {
            job: "nightly".into(),
            committed_until: "2026-11-24T00:00:00Z".parse().unwrap(),
            run_id: "r1".into(),
            updated_at: "2026-11-24T02:00:00Z".parse().unwrap(),
        };
        store.write(&state).unwrap();
        assert_eq!(store.read("nightly").unwrap(), Some(state));
        let leftovers: Vec<_> = fs::read_dir(dir.path().join(STATE_DIR))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, ["nightly.json"], "no temporary file left");
        assert!(store.reset("nightly").unwrap());
        assert!(!store.reset("nightly").unwrap());
        assert_eq!(store.read("nightly").unwrap(), None);
    }

    #[test]
    fn a_corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        fs::write(dir.path().join(STATE_DIR).join("j.json"), "{not json").unwrap();
        let err = StateStore::new(dir.path()).read("j").unwrap_err();
        assert!(err.to_string().contains("j.json"), "{err}");
    }

    #[test]
    fn a_second_lock_fails_at_once_and_a_released_lock_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let held = store.lock("nightly", "run-a").unwrap();
        let err = store.lock("nightly", "run-b").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("nightly") && text.contains("run-a"), "{text}");
        assert!(
            store.lock("other-job", "run-c").is_ok(),
            "locks are per job"
        );
        drop(held);
        assert!(store.lock("nightly", "run-b").is_ok());
    }
}
