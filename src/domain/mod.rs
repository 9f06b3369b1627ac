//! The bottom layer: what every stage shares and nothing else. It imports no other module of the
//! crate, so any stage may use it.
//!
//! - [`catalog`]: the three components, their metrics tables and the metric catalog;
//! - [`table`]: the tables the exporter writes and the columns each is sorted by;
//! - [`partition`]: the partition columns, a partition's key, its folder name (hive-escaped,
//!   built and read back here only) and which partition a timestamp falls in;
//! - [`retry`]: the retry policy, its backoff and `Retry-After`;
//! - [`url`]: https, or http to loopback only, for every URL a secret travels to;
//! - [`location`]: an output location, a folder or `s3://bucket/prefix`;
//! - [`duration`]: durations as users write them (`15m`, `250ms`);
//! - [`simulator`]: what a job file and the simulator agree on (dialect, fault spec, user);
//! - [`shard`]: which slice of a job a sharded run does, and the name its files go under.

pub mod catalog;
pub mod duration;
pub mod location;
pub mod partition;
pub mod retry;
pub mod shard;
pub mod simulator;
pub mod table;
pub mod url;
