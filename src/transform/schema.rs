//! The table contracts: every column of every table (name, Arrow type, nullable, meaning).
//! `schemas/tables/*.json` is what `vscope-export schema TABLE --json` prints from here, and a
//! test checks that the written Parquet has exactly these columns.

use arrow::datatypes::DataType;

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: &'static str,
    pub data_type: DataType,
    pub nullable: bool,
    pub description: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub name: &'static str,
    pub description: &'static str,
    pub columns: Vec<ColumnDef>,
}

/// Every table, metrics tables first.
pub fn tables() -> Vec<TableDef> {
    todo!("tables")
}

pub fn table(name: &str) -> Option<TableDef> {
    tables().into_iter().find(|t| t.name == name)
}
