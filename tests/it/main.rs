//! The integration tests, as one test binary: each module runs the real `vscope-export` binary
//! (against the in-process simulator or a loopback server it starts) and checks what a user sees.
//! One binary rather than one per file: every test binary links the whole crate, polars included,
//! and fourteen of them cost minutes of linking and gigabytes of disk.
//!
//! Most run jobs against the built-in simulator, so they are built with the `sim` feature only;
//! without it (`cargo test --no-default-features`) the checks that need no simulator still run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step is the test's failure"
)]

mod common;

#[cfg(feature = "sim")]
mod bad_input;
#[cfg(feature = "sim")]
mod cli;
#[cfg(feature = "sim")]
mod crash;
#[cfg(all(feature = "sim", feature = "delta"))]
mod delta;
#[cfg(feature = "sim")]
mod export;
#[cfg(feature = "sim")]
mod faults;
#[cfg(feature = "sim")]
mod hostile;
#[cfg(feature = "sim")]
mod incremental;
#[cfg(feature = "sim")]
mod interop;
mod layers;
#[cfg(all(feature = "sim", feature = "s3"))]
mod object_store;
#[cfg(feature = "sim")]
mod paced_inventory;
#[cfg(feature = "sim")]
mod readers;
#[cfg(all(feature = "report", feature = "sim"))]
mod report;
mod schema;
#[cfg(feature = "sim")]
mod secrets;
#[cfg(feature = "sim")]
mod shard;
#[cfg(feature = "sim")]
mod usage;
