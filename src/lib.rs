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
//! | module      | owns                                                                                  | never does                    |
//! |-------------|---------------------------------------------------------------------------------------|-------------------------------|
//! | [`cli`]     | argument parsing, exit codes, the summary printer                                     | business logic                |
//! | [`job`]     | job file model, validation (every problem at once), time windows, the metric catalog  | I/O beyond reading the file   |
//! | [`plan`]    | job + window + inventory size → ordered pages × query groups; pure                    | HTTP                          |
//! | [`ovh`]     | APIv6 client: endpoints, credentials, signing, clock delta, batch reads, models       | retry policy                  |
//! | [`tsdb`]    | OpenTSDB query model, request bodies, streaming response parsing, both error formats  | knowing about Parquet         |
//! | [`extract`] | running pages concurrently with a bound, one request per (page, group)                | building Arrow arrays         |
//! | [`transform`] | series + inventory → Arrow record batches with the table schemas                    | file I/O                      |
//! | [`load`]    | hive paths, Parquet writers, atomic commit                                             | HTTP                          |
//! | [`sim`]     | the built-in simulator of both APIs, deterministic from a seed                        | being called except over HTTP |
//! | `report`    | offline reports over the Parquet output with polars (cargo feature `report`)          | touching the pipeline         |
//!
//! [`run`] ties the stages together for one job; `main.rs` only parses arguments and maps errors
//! to exit codes.

pub mod cli;
pub mod extract;
pub mod job;
pub mod load;
pub mod ovh;
pub mod plan;
#[cfg(feature = "report")]
pub mod report;
pub mod run;
pub mod secret;
pub mod sim;
pub mod transform;
pub mod tsdb;

/// The tool's version, written into Parquet metadata and run manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
