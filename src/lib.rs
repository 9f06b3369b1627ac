//! # vscope-export
//!
//! Exports OVHcloud vScope monitoring history into hive-partitioned Parquet.
//!
//! A run flows one way through the stages below; each stage is a module with one job:
//!
//! ```text
//! jobs/*.toml ─► job ─► plan ─► extract ─► transform ─► load ─► OUT/<table>/date=…/part-<job>-<n>.parquet
//!                         ▲
//!  APIv6 (ovh) ─► inventory snapshot ─┘ (also written as the *_inventory tables)
//! ```
//!
//! | module        | owns                                                                                  | never does                    |
//! |---------------|---------------------------------------------------------------------------------------|-------------------------------|
//! | [`domain`]    | what every stage shares: tables and the metric catalog, partition keys and folders, the retry policy, the URL rule, output locations | importing another module |
//! | [`points`]    | points' values as doubles or hundredths keys, grid timestamps, the run file the spool and the spill share | importing another module |
//! | [`secret`]    | a string that never prints                                                            | anything else                 |
//! | [`sys`]       | glibc's allocator settings, giving free memory back to the system                     | anything else                 |
//! | [`job`]       | job file model, validation (every problem at once), time windows                      | I/O beyond reading the file   |
//! | [`tsdb`]      | OpenTSDB query model, request bodies, streaming response parsing, both error formats  | knowing about Parquet         |
//! | [`plan`]      | job + window + inventory size → ordered pages × query groups, a shard's slice; pure   | HTTP                          |
//! | [`ovh`]       | APIv6 client: endpoints, credentials, signing, clock delta, batch reads, models       | retry policy                  |
//! | [`extract`]   | running pages concurrently with a bound, one request per (page, group)                | building Arrow arrays         |
//! | [`sim`]       | the built-in simulator of both APIs, deterministic from a seed                        | being called except over HTTP |
//! | [`transform`] | series + inventory → Arrow record batches with the table schemas                      | Parquet                       |
//! | [`load`]      | hive paths, Parquet writers, a run's atomic commit, its manifest, job state and lock, in a folder or an S3 bucket | HTTP beyond `object_store`'s |
//! | [`run`]       | one job start to finish: connect, extract and transform, commit, record               | parsing arguments             |
//! | `report`      | offline reports over the Parquet output with polars (cargo feature `report`)          | touching the pipeline         |
//! | [`cli`]       | argument parsing, exit codes, the summary printer                                     | business logic                |
//!
//! ## Layers
//!
//! A module imports only from the layers to its left; `tests/it/layers.rs` fails on any import
//! that goes the other way (test code excepted):
//!
//! ```text
//! domain, points, secret, sys ← job, tsdb ← plan, ovh ← extract, sim ← transform ← load ← run, report ← cli
//! ```
//!
//! [`run`] ties the stages together for one job; `main.rs` only parses arguments and maps errors
//! to exit codes.

pub mod cli;
pub mod domain;
pub mod extract;
pub mod job;
pub mod load;
pub mod ovh;
pub mod plan;
pub mod points;
#[cfg(feature = "report")]
pub mod report;
pub mod run;
pub mod secret;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sys;
pub mod transform;
pub mod tsdb;

/// The tool's version, written into Parquet metadata and run manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
