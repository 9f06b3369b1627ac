//! What a report is made of, independent of polars and of any output format: sections holding
//! tables (named columns with units, rows of cells) and chart specifications. The sections fill
//! it; `format_*` only read it.

use chrono::{DateTime, Utc};

/// A whole report: where its data came from and its sections, in the order.
#[derive(Debug, Clone)]
pub struct Report {
    /// The export folder read.
    pub source: String,
    /// The `[from, to)` span reported on.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The services asked for with `--service`; empty for every service.
    pub services: Vec<String>,
    /// How many rows the top-N tables hold.
    pub top: usize,
    pub sections: Vec<Section>,
}

/// One of the six sections.
#[derive(Debug, Clone)]
pub struct Section {
    /// Stable identifier (`coverage`, `capacity`, …): JSON keys and file names use it.
    pub id: &'static str,
    pub title: &'static str,
    /// What the reader must know to read the figures: formulas, rules, missing tables.
    pub notes: Vec<String>,
    pub tables: Vec<Table>,
    pub charts: Vec<Chart>,
}

impl Section {
    pub fn new(id: &'static str, title: &'static str) -> Section {
        Section {
            id,
            title,
            notes: Vec::new(),
            tables: Vec::new(),
            charts: Vec::new(),
        }
    }
}

/// A table: columns with units and rows of cells, in display order.
#[derive(Debug, Clone)]
pub struct Table {
    /// Stable identifier within its section (`hosts_daily`); files are `<section>.<id>.csv`.
    pub id: &'static str,
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Whether the text and HTML formats show only the first rows (the machine formats always
    /// hold every row), and how many.
    pub display_limit: Option<usize>,
}

impl Table {
    pub fn new(id: &'static str, title: impl Into<String>, columns: Vec<Column>) -> Table {
        Table {
            id,
            title: title.into(),
            columns,
            rows: Vec::new(),
            display_limit: None,
        }
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// A column: its name and the unit of its figures (`None` for names, counts of things, dates).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub unit: Option<String>,
}

/// A column without a unit.
pub fn col(name: &'static str) -> Column {
    Column { name, unit: None }
}

/// A column of figures in `unit`.
pub fn col_in(name: &'static str, unit: impl Into<String>) -> Column {
    Column {
        name,
        unit: Some(unit.into()),
    }
}

/// One value of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Cell {
        v.map_or(Cell::Null, Cell::Text)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Cell {
        Cell::Text(v)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Cell {
        Cell::Text(v.to_string())
    }
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Cell {
        match v {
            Some(x) if x.is_finite() => Cell::Float(x),
            _ => Cell::Null,
        }
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Some(v).into()
    }
}

impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Cell {
        v.map_or(Cell::Null, Cell::Int)
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Cell {
        Cell::Int(v)
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Cell {
        Cell::Bool(v)
    }
}

/// A chart, described by its data; `svg` draws it.
#[derive(Debug, Clone)]
pub enum Chart {
    /// Lines over time (x in Unix milliseconds).
    Lines(LineChart),
    /// Horizontal bars, one group per label.
    Bars(BarChart),
    /// Points in a plane, with threshold lines.
    Scatter(ScatterChart),
}

#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub y_label: String,
    pub y_unit: String,
    pub series: Vec<LineSeries>,
    /// Horizontal reference lines (value, label), e.g. an 80 % threshold.
    pub thresholds: Vec<(f64, String)>,
    /// Fixed y range; the data's range when `None`.
    pub y_range: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct LineSeries {
    pub name: String,
    /// (Unix milliseconds, value), in time order.
    pub points: Vec<(i64, f64)>,
    /// Drawn dashed and in the colour of the series before it (a fitted line beside its data).
    pub dashed: bool,
}

#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub unit: String,
    /// One name per value of each bar group (e.g. `["read", "write"]`).
    pub series: Vec<String>,
    pub bars: Vec<(String, Vec<f64>)>,
}

#[derive(Debug, Clone)]
pub struct ScatterChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub unit: String,
    /// Classes of points (name, points), each in its own colour.
    pub classes: Vec<(String, Vec<(f64, f64)>)>,
    /// Vertical (x) and horizontal (y) reference lines.
    pub x_lines: Vec<(f64, String)>,
    pub y_lines: Vec<(f64, String)>,
    pub range: (f64, f64),
}
