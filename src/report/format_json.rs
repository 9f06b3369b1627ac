//! The report as one JSON document: every section's tables with every row (also those the text
//! and HTML formats leave out), each row an object keyed by column name, units beside the columns.

use serde_json::{json, Map, Value};

use super::model::{Cell, Report, Table};

pub fn to_json(report: &Report) -> Value {
    json!({
        "source": report.source,
        "from": report.from.to_rfc3339(),
        "to": report.to.to_rfc3339(),
        "services": report.services,
        "top": report.top,
        "version": crate::VERSION,
        "sections": report.sections.iter().map(|s| json!({
            "id": s.id,
            "title": s.title,
            "notes": s.notes,
            "tables": s.tables.iter().map(table).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn table(t: &Table) -> Value {
    json!({
        "id": t.id,
        "title": t.title,
        "columns": t.columns.iter().map(|c| json!({"name": c.name, "unit": c.unit})).collect::<Vec<_>>(),
        "rows": t.rows.iter().map(|r| {
            let mut row = Map::new();
            for (c, v) in t.columns.iter().zip(r) {
                row.insert(c.name.to_string(), cell(v));
            }
            Value::Object(row)
        }).collect::<Vec<_>>(),
    })
}

pub(crate) fn cell(c: &Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Int(i) => json!(i),
        Cell::Float(f) => json!(f),
        Cell::Text(t) => json!(t),
        Cell::Bool(b) => json!(b),
    }
}
