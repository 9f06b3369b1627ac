//! One home for points (timestamps and values) below every stage that handles them: the
//! hundredths keys and the [`cents::Values`] that hold values as doubles or keys, grid timestamps
//! ([`times`]), and the one format for points on disk ([`file`]), which the spool and the spill
//! share. Imports nothing from the crate.

pub mod cents;
pub mod file;
pub mod times;

pub use file::{PointsAt, RunWriter, TsAt, ValuesAt};
pub use times::Times;
