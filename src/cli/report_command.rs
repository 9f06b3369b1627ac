//! `vscope-export report`: its arguments, the choice of format and destination, and what is
//! printed. The report itself is `crate::report`, built only with the `report` cargo feature;
//! without it the command exists and says how to get it, so `--help` is the same in every build.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Printer;

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    /// The export folder (the output folder of `run`), or `s3://bucket/prefix` (endpoint and
    /// credentials from the AWS environment variables).
    out: PathBuf,
    /// Start of the span: RFC 3339, a date, today, yesterday, 7d-ago, … [default: the first point]
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End of the span (exclusive) [default: just after the last point]
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only this service (repeat for several) [default: every service]
    #[arg(long = "service", value_name = "SN")]
    services: Vec<String>,
    /// Rows of the top-N tables (at least 1).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = super::at_least_one())]
    top: usize,
    /// Output format [default: text on a terminal, html otherwise]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Where to write: a file (html, text, json; standard output for text and json when left
    /// out) or a folder (csv, parquet: one file per table) [default: report.html for html,
    /// report/ for csv and parquet]
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Html,
    Text,
    Json,
    Csv,
    Parquet,
}

#[cfg(not(feature = "report"))]
pub(super) fn run(_args: ReportArgs, _printer: &Printer) -> anyhow::Result<()> {
    anyhow::bail!(
        "this vscope-export was built without reports: build it with `cargo build --release --features report`"
    )
}

#[cfg(feature = "report")]
pub(super) fn run(args: ReportArgs, printer: &Printer) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    use crate::report;

    let terminal = std::io::stdout().is_terminal();
    // Without --format: by the --output file's extension, else text on a terminal, else HTML.
    let by_extension = args.output.as_ref().and_then(|p| {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(Format::Html),
            "txt" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    });
    let format = args
        .format
        .or(by_extension)
        .unwrap_or(if terminal && args.output.is_none() {
            Format::Text
        } else {
            Format::Html
        });
    let options = report::Options {
        out: args.out,
        from: args.from,
        to: args.to,
        services: args.services,
        top: args.top,
    };
    let built = report::build(&options, chrono::Utc::now())?;
    let write = |path: &PathBuf, text: String| -> anyhow::Result<()> {
        report::write_file(path, &text)?;
        printer.line(&format!("report written to {}", path.display()))
    };
    match format {
        Format::Text => match &args.output {
            None => printer.line(report::to_text(&built, terminal).trim_end()),
            Some(path) => write(path, report::to_text(&built, false)),
        },
        Format::Json => {
            let text = serde_json::to_string_pretty(&report::to_json(&built))?;
            match &args.output {
                None => printer.line(&text),
                Some(path) => write(path, text),
            }
        }
        Format::Html => {
            let path = args.output.unwrap_or_else(|| PathBuf::from("report.html"));
            write(&path, report::to_html(&built))
        }
        Format::Csv | Format::Parquet => {
            let dir = args.output.unwrap_or_else(|| PathBuf::from("report"));
            let files = if format == Format::Csv {
                report::write_csv(&built, &dir)?
            } else {
                report::write_parquet(&built, &dir)?
            };
            printer.line(&format!(
                "report written to {} ({} files, one per table)",
                dir.display(),
                files.len()
            ))
        }
    }
}
