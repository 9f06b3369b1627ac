//! The output side of a run: opening the output and checking it before any request, taking the
//! job's lock (and removing what an interrupted run left), and recording a run that completed:
//! its manifest, then the job's state.

use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{resolve_window, RunReport};
use crate::domain::shard;
use crate::extract::PageStats;
use crate::job::{Job, Window};
use crate::load::commit::Committed;
use crate::load::manifest::{Manifest, ManifestShard, ManifestWindow, Outcome};
use crate::load::state::{JobLock, JobState, StateStore};
use crate::load::{Destination, FileProvenance, LoadError};
use crate::plan::Plan;

/// The output a run writes to, and what names the run in it.
pub(super) struct Output {
    pub(super) destination: Destination,
    store: StateStore,
    /// The name the run's files, state and lock go under: the job's, or its shard's.
    pub(super) owner: String,
    pub(super) run_id: String,
    now: DateTime<Utc>,
    started: Instant,
}

/// What holding the job's lock gave the run.
pub(super) struct Locked {
    _lock: JobLock,
    /// The job's state when the run took the lock.
    previous: Option<JobState>,
    pub(super) window: Window,
    leftovers_removed: usize,
}

impl Output {
    pub(super) fn open(job: &Job, now: DateTime<Utc>) -> anyhow::Result<Output> {
        let destination = Destination::open(&job.output.path, &job.output.s3)
            .and_then(|d| d.with_format(job.output.format, &job.output.partitioning))
            .with_context(|| format!("job {}: output.path", job.name))?;
        let owner = shard::owner(&job.name, job.shard);
        Ok(Output {
            store: destination.state(),
            destination,
            // With the shard in it: the pods of a scheduler all run as pid 1, often in the same
            // second.
            run_id: format!(
                "{}-{}-{}",
                now.format("%Y%m%dT%H%M%SZ"),
                owner,
                std::process::id()
            ),
            owner,
            now,
            started: Instant::now(),
        })
    }

    /// The window as the job's state stands now, once it is sure that no run of the job holds
    /// the lock and that the job has no files here of another split. Creates nothing.
    pub(super) fn check(&self, job: &Job) -> anyhow::Result<Window> {
        let window = resolve_window(job, self.now, self.store.read(&self.owner)?.as_ref())?;
        self.store.check_unlocked(&self.owner)?;
        // One listing of the output for both checks.
        let files = self.destination.files()?;
        self.destination.check_format(&files)?;
        let wanted = job.shard.map_or(1, |s| s.count);
        let found: Vec<_> = self
            .destination
            .job_splits(&job.name, &files)?
            .into_iter()
            .filter(|(count, _)| *count != wanted)
            .collect();
        if !found.is_empty() {
            return Err(LoadError::OtherSplit {
                job: job.name.clone(),
                wanted,
                found,
            }
            .into());
        }
        Ok(window)
    }

    /// Creates the output, takes the job's lock, removes what an interrupted run left, and
    /// resolves the window again: under the lock, the state is the one to go by.
    pub(super) fn lock(&self, job: &Job) -> anyhow::Result<Locked> {
        self.destination.create()?;
        let lock = self.store.lock(&self.owner, &self.run_id)?;
        let leftovers = self.destination.remove_leftovers(&self.owner)?;
        if leftovers > 0 {
            tracing::info!(job = %self.owner, files = leftovers, "Removed what an interrupted run left: temporary files, unfinished uploads.");
        }
        let previous = self.store.read(&self.owner)?;
        let window = resolve_window(job, self.now, previous.as_ref())?;
        Ok(Locked {
            _lock: lock,
            previous,
            window,
            leftovers_removed: leftovers,
        })
    }

    pub(super) fn provenance(&self, job: &Job, window: Window) -> FileProvenance {
        FileProvenance {
            job: job.name.clone(),
            shard: job.shard,
            run_id: self.run_id.clone(),
            window_start: window.start.to_rfc3339(),
            window_end: window.end.to_rfc3339(),
        }
    }

    /// Records a run that completed: its manifest, then the job's state, which moves only over
    /// what is committed and never leaves a gap behind it. The lock goes last.
    pub(super) fn record(
        &self,
        job: &Job,
        locked: Locked,
        plan: &Plan,
        stats: PageStats,
        committed: Committed,
    ) -> anyhow::Result<RunReport> {
        let state = JobState::next(
            locked.previous.as_ref(),
            locked.window,
            committed.until,
            &self.run_id,
            self.now,
            &self.owner,
        );
        let mut report = RunReport {
            job: job.name.clone(),
            shard: plan.shard.clone(),
            run_id: self.run_id.clone(),
            window: locked.window,
            output: self.destination.root().display().to_string(),
            pages: plan.pages.len(),
            stats,
            files: committed.files,
            skipped_partitions: committed.skipped,
            failed: committed.failed,
            committed_until: state
                .as_ref()
                .or(locked.previous.as_ref())
                .map(|s| s.committed_until),
            leftovers_removed: locked.leftovers_removed,
            delta_versions: committed.table_versions,
            elapsed: self.started.elapsed(),
            split_otherwise: Vec::new(),
        };
        // A manifest's presence means the run completed; the state moves after it, so that the
        // run the state names always has its manifest (a run killed between the two leaves the
        // state where it was, and the next run reads that window again).
        // A run that lost its lock (an object store's, taken over) records nothing: the run that
        // took it over owns the job's state now.
        locked._lock.ensure_held()?;
        let manifest = manifest(&report, self.now);
        self.store.write_manifest(&manifest)?;
        if let Some(state) = &state {
            self.store.write(state)?;
        }
        if let Some(share) = &report.shard {
            // Each shard splits the job from its own inventory snapshot; should an object have
            // come or gone between two shards' starts, their splits differ and some series were
            // fetched twice or not at all. The shard that ends last sees it.
            // The run is recorded: a manifest that cannot be read here only costs the check.
            match self.store.shards_split_otherwise(
                &job.name,
                share.shard.count,
                manifest.window,
                &share.split,
            ) {
                Ok(otherwise) => report.split_otherwise = otherwise,
                Err(error) => tracing::warn!(
                    error = %error,
                    "Cannot compare this shard's split with its siblings' manifests."
                ),
            }
            if !report.split_otherwise.is_empty() {
                tracing::error!(
                    job = %job.name,
                    shards = ?report.split_otherwise,
                    "Shards of this window split the job otherwise (the inventory changed between their starts): run every shard of the window again."
                );
            }
        }
        Ok(report)
    }
}

/// The manifest of a run that completed.
fn manifest(r: &RunReport, started_at: DateTime<Utc>) -> Manifest {
    Manifest {
        run_id: r.run_id.clone(),
        job: r.job.clone(),
        shard: r.shard.as_ref().map(|share| ManifestShard {
            index: share.shard.index,
            count: share.shard.count,
            estimated_points: share.shard_points.clone(),
            split: share.split.clone(),
        }),
        tool_version: crate::VERSION.to_string(),
        started_at,
        duration_secs: r.elapsed.as_secs_f64(),
        outcome: if r.succeeded() {
            Outcome::Succeeded
        } else {
            Outcome::Partial
        },
        window: ManifestWindow {
            start: r.window.start,
            end: r.window.end,
        },
        committed_until: r.committed_until,
        pages: r.pages,
        requests: r.stats.requests,
        retries: r.stats.retries,
        splits: r.stats.splits,
        points: r.stats.points,
        bytes_fetched: r.stats.bytes,
        rows: r.files.iter().map(|f| f.rows).sum(),
        bytes_written: r.files.iter().map(|f| f.bytes).sum(),
        files: r.files.iter().map(Into::into).collect(),
        partitions_kept_after_failure: r.skipped_partitions.clone(),
        failed_pages: r.failed.iter().map(Into::into).collect(),
        leftovers_removed: r.leftovers_removed,
        delta_versions: r.delta_versions.clone(),
    }
}
