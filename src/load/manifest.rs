//! The run manifest, `_runs/<run-id>.json`: what one completed run did (job, window, requests,
//! rows and files per partition, pages that failed, outcome). Written last thing in a run, so its
//! presence means the run completed; `vscope-export runs` reads the manifests back.

use std::fs;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::commit::FailedPage;
use super::state::{is_hidden, write_atomic, StateStore, RUNS_DIR};
use super::{LoadError, WrittenFile};

/// `_runs/<run-id>.json`. Fields are in the order the file lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub job: String,
    /// The slice of the job the run did; absent for the whole job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ManifestShard>,
    pub tool_version: String,
    pub started_at: DateTime<Utc>,
    pub duration_secs: f64,
    pub outcome: Outcome,
    pub window: ManifestWindow,
    /// The job's state after the run: everything before it is committed.
    pub committed_until: Option<DateTime<Utc>>,
    pub pages: usize,
    pub requests: u64,
    pub retries: u64,
    pub splits: u64,
    pub points: u64,
    pub bytes_fetched: u64,
    pub rows: u64,
    pub bytes_written: u64,
    pub files: Vec<ManifestFile>,
    /// Partition folders (`<table>/<partition>`) left as they were because a page failed.
    pub partitions_kept_after_failure: Vec<String>,
    pub failed_pages: Vec<ManifestFailure>,
    /// Temporary files of an interrupted earlier run that were removed.
    pub leftovers_removed: usize,
    /// In a Delta output, the version of each table that the run's commit made.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub delta_versions: std::collections::BTreeMap<String, u64>,
}

impl StateStore {
    /// The shards of `job`'s split in `count` whose latest run over `window` computed a split
    /// other than `split` (their inventory snapshot differed), by index.
    pub fn shards_split_otherwise(
        &self,
        job: &str,
        count: u32,
        window: ManifestWindow,
        split: &str,
    ) -> Result<Vec<u32>, LoadError> {
        let mut latest: std::collections::BTreeMap<u32, String> = Default::default();
        for (_, m) in self.manifests()? {
            let Some(shard) = m.shard.filter(|s| s.count == count) else {
                continue;
            };
            if m.job == job && m.window == window {
                // Newest first: the first one seen of each shard is its latest.
                latest.entry(shard.index).or_insert(shard.split);
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, other)| other != split)
            .map(|(index, _)| index)
            .collect())
    }
}

/// How a run that completed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every page was fetched and committed.
    Succeeded,
    /// Some pages failed for good; their partitions kept their previous files.
    Partial,
}

impl Outcome {
    /// As the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Partial => "partial",
        }
    }
}

/// Which shard of how many a run was, and how the planner split the job's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestShard {
    /// 0-based.
    pub index: u32,
    pub count: u32,
    /// The planner's estimate of every shard's points, by index (this run's is at `index`): at
    /// most what each fetches, raw resolution, every series present.
    pub estimated_points: Vec<u64>,
    /// Names the split the shard computed from its inventory snapshot: the shards of one window
    /// must have the same, or some series were fetched twice or not at all.
    pub split: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One file the run committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub table: String,
    /// The partition folder relative to the output root, e.g. `vm_metrics/date=2026-11-24`.
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
}

impl From<&WrittenFile> for ManifestFile {
    fn from(f: &WrittenFile) -> ManifestFile {
        ManifestFile {
            table: f.table.to_string(),
            partition: f.partition.clone(),
            rows: f.rows,
            bytes: f.bytes,
        }
    }
}

/// One page that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFailure {
    pub table: String,
    pub service_name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub error: String,
}

impl From<&FailedPage> for ManifestFailure {
    fn from(f: &FailedPage) -> ManifestFailure {
        ManifestFailure {
            table: f.table.to_string(),
            service_name: f.service_name.clone(),
            start: f.start,
            end: f.end,
            error: f.error.clone(),
        }
    }
}

impl StateStore {
    /// Writes a run's manifest, last thing in a run: its presence means the run completed.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<PathBuf, LoadError> {
        let path = self
            .root()
            .join(RUNS_DIR)
            .join(format!("{}.json", manifest.run_id));
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|source| LoadError::Corrupt {
            path: path.clone(),
            message: source.to_string(),
        })?;
        #[cfg(feature = "s3")]
        if let Some(object) = self.object() {
            object.overwrite(&format!("{RUNS_DIR}/{}.json", manifest.run_id), bytes)?;
            return Ok(path);
        }
        write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// The manifests of past runs, newest first (run ids start with a UTC timestamp).
    pub fn manifests(&self) -> Result<Vec<(PathBuf, Manifest)>, LoadError> {
        let dir = self.root().join(RUNS_DIR);
        #[cfg(feature = "s3")]
        if let Some(object) = self.object() {
            let mut keys: Vec<String> = object
                .list(&format!("{RUNS_DIR}/"))?
                .into_iter()
                .map(|(rel, _)| rel)
                .filter(|rel| rel.ends_with(".json"))
                .collect();
            keys.sort();
            keys.reverse();
            let mut out = Vec::new();
            for rel in keys {
                let path = PathBuf::from(object.url(&rel));
                let Some((bytes, _)) = object.get(&rel)? else {
                    continue;
                };
                let manifest =
                    serde_json::from_slice(&bytes).map_err(|source| LoadError::Corrupt {
                        path: path.clone(),
                        message: source.to_string(),
                    })?;
                out.push((path, manifest));
            }
            return Ok(out);
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(LoadError::Write { path: dir, source }),
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !is_hidden(p))
            .collect();
        paths.sort();
        paths.reverse();
        let mut out = Vec::new();
        for path in paths {
            let text = fs::read(&path).map_err(|source| LoadError::Write {
                path: path.clone(),
                source,
            })?;
            let manifest = serde_json::from_slice(&text).map_err(|source| LoadError::Corrupt {
                path: path.clone(),
                message: source.to_string(),
            })?;
            out.push((path, manifest));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn manifest(run_id: &str, outcome: Outcome) -> Manifest {
        Manifest {
            run_id: run_id.into(),
            job: "nightly".into(),
            shard: None,
            tool_version: crate::VERSION.into(),
            started_at: at("2026-11-25T02:00:00Z"),
            duration_secs: 12.375,
            outcome,
            window: ManifestWindow {
                start: at("2026-11-24T00:00:00Z"),
                end: at("2026-11-25T00:00:00Z"),
            },
            committed_until: Some(at("2026-11-24T06:00:00Z")),
            pages: 3,
            requests: 4,
            retries: 1,
            splits: 0,
            points: 1_000_000,
            bytes_fetched: 12_345_678,
            rows: 999_000,
            bytes_written: 2_000_000,
            files: vec![ManifestFile {
                table: "vm_metrics".into(),
                partition: "vm_metrics/date=2026-11-24".into(),
                rows: 999_000,
                bytes: 2_000_000,
            }],
            partitions_kept_after_failure: vec!["host_metrics/date=2026-11-24".into()],
            failed_pages: vec![ManifestFailure {
                table: "host_metrics".into(),
                service_name: "pcc-1".into(),
                start: at("2026-11-24T06:00:00Z"),
                end: at("2026-11-24T12:00:00.500Z"),
                error: "HTTP 500".into(),
            }],
            leftovers_removed: 2,
            delta_versions: Default::default(),
        }
    }

    #[test]
    fn manifests_round_trip_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert!(store.manifests().unwrap().is_empty(), "no _runs folder yet");
        let older = manifest("20261124T020000Z-nightly-7", Outcome::Succeeded);
        let newer = manifest("20261125T020000Z-nightly-8", Outcome::Partial);
        for m in [&newer, &older] {
            let path = store.write_manifest(m).unwrap();
            assert_eq!(
                path,
                dir.path().join(RUNS_DIR).join(format!("{}.json", m.run_id))
            );
        }
        let read: Vec<Manifest> = store
            .manifests()
            .unwrap()
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(read, [newer.clone(), older]);

        // The file says what readers other than this tool (jq, a scheduler) look for.
        let text = fs::read_to_string(
            dir.path()
                .join(RUNS_DIR)
                .join(format!("{}.json", newer.run_id)),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["outcome"], "partial");
        assert_eq!(value["window"]["start"], "2026-11-24T00:00:00Z");
        assert_eq!(value["failed_pages"][0]["end"], "2026-11-24T12:00:00.500Z");
        assert_eq!(value["files"][0]["partition"], "vm_metrics/date=2026-11-24");
    }

    #[test]
    fn shards_of_one_window_that_split_otherwise_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let shard = |run: &str, index: u32, split: &str| {
            let mut m = manifest(run, Outcome::Succeeded);
            m.shard = Some(ManifestShard {
                index,
                count: 3,
                estimated_points: vec![1, 1, 1],
                split: split.into(),
            });
            store.write_manifest(&m).unwrap();
            m.window
        };
        let window = shard("20261125T020000Z-nightly-s0of3-1", 0, "a");
        shard("20261125T020001Z-nightly-s1of3-1", 1, "b");
        // Shard 2 ran twice; its latest run agrees.
        shard("20261125T020000Z-nightly-s2of3-1", 2, "b");
        shard("20261125T030000Z-nightly-s2of3-1", 2, "a");
        assert_eq!(
            store
                .shards_split_otherwise("nightly", 3, window, "a")
                .unwrap(),
            [1]
        );
        assert_eq!(
            store
                .shards_split_otherwise("nightly", 3, window, "b")
                .unwrap(),
            [0, 2]
        );
        let other_window = ManifestWindow {
            start: at("2026-11-20T00:00:00Z"),
            end: at("2026-11-21T00:00:00Z"),
        };
        assert!(store
            .shards_split_otherwise("nightly", 3, other_window, "a")
            .unwrap()
            .is_empty());
        assert!(store
            .shards_split_otherwise("nightly", 4, window, "a")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_manifest_that_is_not_one_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(RUNS_DIR)).unwrap();
        fs::write(
            dir.path().join(RUNS_DIR).join("x.json"),
            r#"{"run_id": "x"}"#,
        )
        .unwrap();
        let err = StateStore::new(dir.path()).manifests().unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
    }
}
