//! The six sections, one module each, in the order the report shows them. Each builds its tables
//! with polars queries over [`super::scan`] and leaves out (with a note) what a missing table
//! prevents.

pub mod capacity;
pub mod contention;
pub mod coverage;
pub mod network;
pub mod rightsizing;
pub mod storage;

use super::model::Section;

/// The note a section carries for a table the export does not hold.
pub(crate) fn note_missing(section: &mut Section, table: &str, what: &str) {
    section.notes.push(format!(
        "The export has no {table} table: {what} is left out."
    ));
}
