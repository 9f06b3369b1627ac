//! The report as terminal text: each section's notes and aligned tables, numbers right-aligned
//! with their units under the column names. Colour (ANSI) only when asked, i.e. on a terminal.

use std::fmt::Write;

use super::model::{Cell, Report, Table};

/// How a cell reads in the text and HTML formats.
pub(crate) fn display(c: &Cell) -> String {
    match c {
        Cell::Null => "–".into(),
        Cell::Int(i) => thousands(*i),
        Cell::Float(f) => {
            let a = f.abs();
            if a >= 10_000.0 {
                thousands(f.round() as i64)
            } else if a >= 100.0 {
                format!("{f:.1}")
            } else {
                format!("{f:.2}")
            }
        }
        Cell::Text(t) => t.replace(['\n', '\r', '\t'], " "),
        Cell::Bool(true) => "yes".into(),
        Cell::Bool(false) => "no".into(),
    }
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

pub(crate) fn is_numeric(t: &Table, column: usize) -> bool {
    t.rows
        .iter()
        .any(|r| matches!(r[column], Cell::Int(_) | Cell::Float(_)))
}

/// The rows a display format shows and how many it leaves out.
pub(crate) fn shown(t: &Table) -> (&[Vec<Cell>], usize) {
    let n = t.display_limit.unwrap_or(usize::MAX).min(t.rows.len());
    (&t.rows[..n], t.rows.len() - n)
}

struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn to_text(report: &Report, colour: bool) -> String {
    let style = Style { colour };
    let mut out = String::new();
    let services = if report.services.is_empty() {
        "every service".to_string()
    } else {
        report.services.join(", ")
    };
    let _ = writeln!(
        out,
        "{}\n{} → {} ({services})",
        style.paint("1", &format!("vScope report of {}", report.source)),
        report.from.to_rfc3339(),
        report.to.to_rfc3339()
    );
    for (i, s) in report.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}",
            style.paint("1;4", &format!("{}. {}", i + 1, s.title))
        );
        for note in &s.notes {
            let _ = writeln!(out, "{}", style.paint("2", &format!("  {note}")));
        }
        for t in &s.tables {
            table(&mut out, t, &style);
        }
    }
    out
}

fn table(out: &mut String, t: &Table, style: &Style) {
    let (rows, hidden) = shown(t);
    let _ = writeln!(out, "\n  {}", style.paint("1", &t.title));
    if rows.is_empty() {
        let _ = if hidden > 0 {
            writeln!(
                out,
                "  {hidden} rows (in the json, csv and parquet formats)"
            )
        } else {
            writeln!(out, "  (none)")
        };
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(display).collect())
        .collect();
    let units: Vec<String> = t
        .columns
        .iter()
        .map(|c| c.unit.as_ref().map_or(String::new(), |u| format!("[{u}]")))
        .collect();
    let widths: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.name.len(), units[i].chars().count()])
                .max()
                .unwrap_or(0)
                .min(40)
        })
        .collect();
    let numeric: Vec<bool> = (0..t.columns.len()).map(|i| is_numeric(t, i)).collect();
    let line = |values: &[String]| -> String {
        let mut s = String::from(" ");
        for (i, v) in values.iter().enumerate() {
            let v: String = if v.chars().count() > widths[i] {
                let cut: String = v.chars().take(widths[i] - 1).collect();
                format!("{cut}…")
            } else {
                v.clone()
            };
            if numeric[i] {
                let _ = write!(s, " {v:>w$}", w = widths[i]);
            } else {
                let _ = write!(s, " {v:<w$}", w = widths[i]);
            }
        }
        s.trim_end().to_string()
    };
    let names: Vec<String> = t.columns.iter().map(|c| c.name.to_string()).collect();
    let _ = writeln!(out, "{}", style.paint("1", &line(&names)));
    if units.iter().any(|u| !u.is_empty()) {
        let _ = writeln!(out, "{}", style.paint("2", &line(&units)));
    }
    for r in &cells {
        let text = line(r);
        let text = if r.iter().any(|c| c == "undersized") {
            style.paint("31", &text)
        } else if r.iter().any(|c| c == "oversized") {
            style.paint("33", &text)
        } else {
            text
        };
        let _ = writeln!(out, "{text}");
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                "2",
                &format!(
                    "  … {hidden} more rows (the json, csv and parquet formats hold them all)"
                )
            )
        );
    }
}
