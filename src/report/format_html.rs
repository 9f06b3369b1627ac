//! The report as one self-contained HTML page: inline CSS and SVG charts, no script, no font, no
//! image or anything else fetched (a Content-Security-Policy of `default-src 'none'` says so to
//! the browser too). Readable on a laptop screen and printable: sections start on a new page and
//! charts are not split.

use std::fmt::Write;

use super::format_text::{display, is_numeric, shown};
use super::model::{Cell, Report, Table};
use super::svg::{self, escape};

const STYLE: &str = r#"
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --accent: #0b5cad; --bg: #ffffff; --band: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 20px 32px 16px; border-bottom: 1px solid var(--line); background: var(--band); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; }
main { padding: 0 32px 32px; max-width: 1320px; }
section { padding-top: 18px; }
h2 { font-size: 19px; margin: 12px 0 6px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.notes { color: var(--muted); margin: 4px 0 8px; padding-left: 18px; }
.notes li { margin: 2px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 8px 0; flex: 1 1 560px; max-width: 760px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px 4px; break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; fill: var(--fg); }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .axis { font-size: 12px; }
svg .legend { font-size: 12px; }
svg .grid { stroke: #e6e9ef; stroke-width: 1; }
svg .frame { fill: none; stroke: #b9c0cc; stroke-width: 1; }
svg .axis-line { stroke: #b9c0cc; }
svg .threshold { stroke: #c0392b; stroke-width: 1.2; stroke-dasharray: 4 3; }
svg .threshold-label { fill: #c0392b; }
svg .on-bar { fill: #ffffff; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 6px; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { text-align: left; background: var(--band); position: sticky; top: 0; }
th .unit { display: block; font-weight: 400; color: var(--muted); font-size: 11px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 320px; overflow: hidden; text-overflow: ellipsis; }
tr.undersized td { background: #fdecea; }
tr.oversized td { background: #fff6e0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0 6px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px; min-width: 112px; background: var(--band); }
.card b { display: block; font-size: 22px; color: var(--accent); font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 12px; }
.more { color: var(--muted); font-size: 12px; margin: 0 0 10px; }
footer { color: var(--muted); font-size: 12px; padding: 16px 32px; border-top: 1px solid var(--line); }
@media print {
  nav { display: none; }
  header { background: none; }
  section { break-before: page; }
  section:first-of-type { break-before: auto; }
  figure, table { break-inside: avoid; }
  th { position: static; }
  .table-wrap { overflow: visible; }
}
"#;

pub fn to_html(report: &Report) -> String {
    let mut out = String::new();
    let services = if report.services.is_empty() {
        "every service".to_string()
    } else {
        report.services.join(", ")
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>vScope report: {} → {}</title><style>{STYLE}</style></head><body>\
         <header><h1>vScope report</h1><p>{} → {} UTC ({:.1} days) · {} · from <code>{}</code></p></header><nav>",
        report.from.format("%Y-%m-%d %H:%M"),
        report.to.format("%Y-%m-%d %H:%M"),
        report.from.format("%Y-%m-%d %H:%M"),
        report.to.format("%Y-%m-%d %H:%M"),
        (report.to - report.from).num_seconds() as f64 / 86_400.0,
        escape(&services),
        escape(&report.source),
    );
    for (i, s) in report.sections.iter().enumerate() {
        let _ = write!(
            out,
            "<a href=\"#{}\">{}. {}</a>",
            s.id,
            i + 1,
            escape(s.title)
        );
    }
    out.push_str("</nav><main>");
    for (i, s) in report.sections.iter().enumerate() {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{}. {}</h2>",
            s.id,
            i + 1,
            escape(s.title)
        );
        if let Some(estate) = s.tables.iter().find(|t| t.id == "estate") {
            cards(&mut out, estate);
        }
        if !s.notes.is_empty() {
            out.push_str("<ul class=\"notes\">");
            for n in &s.notes {
                let _ = write!(out, "<li>{}</li>", escape(n));
            }
            out.push_str("</ul>");
        }
        if !s.charts.is_empty() {
            out.push_str("<div class=\"charts\">");
            for c in &s.charts {
                let title = match c {
                    super::model::Chart::Lines(c) => &c.title,
                    super::model::Chart::Bars(c) => &c.title,
                    super::model::Chart::Scatter(c) => &c.title,
                };
                let _ = write!(
                    out,
                    "<figure><figcaption>{}</figcaption>{}</figure>",
                    escape(title),
                    svg::render(c)
                );
            }
            out.push_str("</div>");
        }
        for t in &s.tables {
            table(&mut out, t);
        }
        out.push_str("</section>");
    }
    let _ = writeln!(
        out,
        "</main><footer>Made by vscope-export {} from the Parquet files of the export alone. \
         Every figure carries its unit; the JSON, CSV and Parquet formats hold every row.</footer></body></html>",
        crate::VERSION
    );
    out
}

/// The estate at a glance: each count summed over the services, as a row of cards.
fn cards(out: &mut String, estate: &Table) {
    out.push_str("<div class=\"cards\">");
    let services = estate.rows.len();
    let _ = write!(
        out,
        "<div class=\"card\"><b>{services}</b><span>services</span></div>"
    );
    for (i, c) in estate.columns.iter().enumerate().skip(1) {
        let sum: i64 = estate
            .rows
            .iter()
            .filter_map(|r| match r[i] {
                Cell::Int(n) => Some(n),
                _ => None,
            })
            .sum();
        let _ = write!(
            out,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            display(&Cell::Int(sum)),
            escape(&c.name.replace('_', " "))
        );
    }
    out.push_str("</div>");
}

fn table(out: &mut String, t: &Table) {
    let (rows, hidden) = shown(t);
    let _ = write!(out, "<h3>{}</h3>", escape(&t.title));
    if rows.is_empty() {
        let _ = if hidden > 0 {
            write!(
                out,
                "<p class=\"more\">{hidden} rows, in the JSON, CSV and Parquet formats.</p>"
            )
        } else {
            write!(out, "<p class=\"more\">None.</p>")
        };
        return;
    }
    let numeric: Vec<bool> = (0..t.columns.len()).map(|i| is_numeric(t, i)).collect();
    out.push_str("<div class=\"table-wrap\"><table><thead><tr>");
    for (i, c) in t.columns.iter().enumerate() {
        let class = if numeric[i] { " class=\"num\"" } else { "" };
        let unit = c.unit.as_ref().map_or(String::new(), |u| {
            format!("<span class=\"unit\">{}</span>", escape(u))
        });
        let _ = write!(out, "<th{class}>{}{unit}</th>", escape(c.name));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        let class = if r
            .iter()
            .any(|c| matches!(c, Cell::Text(t) if t == "undersized"))
        {
            " class=\"undersized\""
        } else if r
            .iter()
            .any(|c| matches!(c, Cell::Text(t) if t == "oversized"))
        {
            " class=\"oversized\""
        } else {
            ""
        };
        let _ = write!(out, "<tr{class}>");
        for (i, c) in r.iter().enumerate() {
            let text = display(c);
            let class = if numeric[i] { "num" } else { "text" };
            let _ = write!(
                out,
                "<td class=\"{class}\" title=\"{}\">{}</td>",
                escape(&text),
                escape(&text)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    if hidden > 0 {
        let _ = write!(
            out,
            "<p class=\"more\">… {hidden} more rows in the JSON, CSV and Parquet formats.</p>"
        );
    }
}
