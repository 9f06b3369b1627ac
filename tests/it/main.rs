//! The integration tests, as one test binary: each module runs the real `vscope-export` binary
//! (against the in-process simulator or a loopback server it starts) and checks what a user sees.
//! One binary rather than one per file: every test binary links the whole crate, polars included,
//! and fourteen of them cost minutes of linking and gigabytes of disk.

mod common;

mod bad_input;
mod cli;
mod crash;
mod export;
mod faults;
mod hostile;
mod incremental;
mod interop;
mod layers;
mod paced_inventory;
mod readers;
#[cfg(feature = "report")]
mod report;
mod schema;
mod secrets;
mod usage;
