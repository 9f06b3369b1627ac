//! Checking what was read of a job file and resolving it into [`Job`], in one pass per section:
//! each check either yields the resolved value or reports why it cannot, and a section resolves
//! only when it has no problem. Every section is checked even when another one failed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, TimeDelta};

use super::file::{
    ExportFile, OutputFile, RetryFile, S3File, Sections, Selection, SourceFile, WindowFile,
};
use super::report::Report;
use super::window::TimeExpr;
use super::{
    Api, Catalog, Component, Export, Job, Output, OutputFormat, PartitionBy, S3Settings, Services,
    Source, TokenSource, WindowSpec,
};
use crate::domain::duration::{format_duration, parse_delay, parse_duration};
use crate::domain::location::Location;
use crate::domain::retry::RetryPolicy;
use crate::domain::shard::Shard;
use crate::domain::simulator::METRICS_USER;
use crate::domain::url;

/// The APIv6 endpoint names the official clients know.
const ENDPOINTS: &[&str] = &[
    "ovh-eu",
    "ovh-ca",
    "ovh-us",
    "kimsufi-eu",
    "kimsufi-ca",
    "soyoustart-eu",
    "soyoustart-ca",
];

/// OpenTSDB's aggregators, as OVH serves them.
const AGGREGATORS: &[&str] = &[
    "sum", "min", "max", "avg", "none", "count", "dev", "zimsum", "mimmin", "mimmax", "first",
    "last", "p50", "p75", "p90", "p95", "p99", "p999",
];

/// Downsampling fill policies.
const FILLS: &[&str] = &["none", "nan", "null", "zero"];

const ZSTD_LEVELS: std::ops::RangeInclusive<i64> = 1..=22;
/// ZSTD level 1: on metrics files it is both faster and smaller than 3 (their bytes are mostly
/// bit-packed dictionary indices and a sorted dictionary, where a higher level finds little more).
const DEFAULT_ZSTD_LEVEL: i32 = 1;
const MAX_NAME_LEN: usize = 64;

/// The resolved job, or `None` when anything is wrong (every problem is in `report`).
pub(super) fn job(path: &Path, sections: &Sections, report: &mut Report<'_>) -> Option<Job> {
    let name = sections.name.as_deref().and_then(|n| name(n, report));
    let shard = sections.shard.as_deref().and_then(|s| shard(s, report));
    let source = sections.source.as_ref().and_then(|s| source(s, report));
    let window = sections.window.as_ref().and_then(|w| window(w, report));
    let exports = sections
        .exports
        .as_deref()
        .and_then(|e| exports(e, &Catalog::builtin(), report));
    let output = sections.output.as_ref().and_then(|o| output(o, report));
    if !report.problems.is_empty() {
        return None;
    }
    Some(Job {
        name: name?,
        shard: shard.flatten(),
        path: path.to_path_buf(),
        source: source?,
        window: window?,
        exports: exports?,
        output: output?,
        warnings: Vec::new(),
    })
}

/// `value` if no problem was reported since there were `before`.
fn unless_problems<T>(report: &Report<'_>, before: usize, value: T) -> Option<T> {
    (report.problems.len() == before).then_some(value)
}

fn name(name: &str, report: &mut Report<'_>) -> Option<String> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        report.problem(
            "name",
            format!("'{name}' is not a job name: use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ -"),
        );
        return None;
    }
    if crate::domain::shard::looks_like_shard_owner(name) {
        report.problem(
            "name",
            format!(
                "'{name}' ends like the name of a shard's files (-s<I>of<N>): choose another name"
            ),
        );
        return None;
    }
    Some(name.to_string())
}

/// `Some(None)` for the whole job (`0/1`), `None` when the value is wrong.
fn shard(text: &str, report: &mut Report<'_>) -> Option<Option<Shard>> {
    match Shard::parse(text, None) {
        Ok(shard) => Some(shard),
        Err(e) => {
            let hint = if text.trim_start().starts_with("auto") {
                " (auto/N, the index from JOB_COMPLETION_INDEX, is for `run --shard` only)"
            } else {
                ""
            };
            report.problem("shard", format!("{e}{hint}"));
            None
        }
    }
}

fn source(s: &SourceFile, report: &mut Report<'_>) -> Option<Source> {
    let before = report.problems.len();
    let simulated = s.endpoint.as_deref() == Some("simulator");
    let retry = retry(s.retry.as_ref(), report);
    let api = if simulated {
        Api::Simulator(s.simulator.clone().unwrap_or_default())
    } else {
        if s.simulator.is_some() {
            report.problem(
                "source.simulator",
                "[source.simulator] only applies with endpoint = \"simulator\"",
            );
        }
        if let Some(endpoint) = &s.endpoint {
            if endpoint.contains("://") {
                check_url(report, "source.endpoint", endpoint);
            } else if !ENDPOINTS.contains(&endpoint.as_str()) {
                report.problem(
                    "source.endpoint",
                    format!(
                        "'{endpoint}' is not an endpoint: use one of {}, an https:// URL or \"simulator\"",
                        ENDPOINTS.join(", ")
                    ),
                );
            }
        }
        Api::Ovh {
            endpoint: s.endpoint.clone(),
        }
    };

    let services = match &s.services {
        None => Services::All,
        Some(Selection::Keyword(k)) if k == "all" => Services::All,
        Some(Selection::Keyword(k)) => {
            report.problem(
                "source.services",
                format!("'{k}' is not a list of services: write \"all\" or a list such as [\"pcc-37-187-228-180\"]"),
            );
            Services::All
        }
        Some(Selection::Names(names)) => {
            check_names(report, "source.services", "service", names);
            Services::Named(names.clone())
        }
    };
    if let Some(datacenters) = &s.datacenters {
        check_names(report, "source.datacenters", "datacenter", datacenters);
    }

    const TOKEN_HOW: &str = "set metrics_user, or token_env and opentsdb_url";
    let token = match (&s.metrics_user, &s.token_env, &s.opentsdb_url) {
        (Some(user), None, None) => {
            if user.trim().is_empty() {
                report.problem("source.metrics_user", "the user login is empty");
            }
            Some(TokenSource::MetricsUser(user.clone()))
        }
        (None, Some(env), Some(url)) => {
            let valid_env = env
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_env {
                report.problem(
                    "source.token_env",
                    format!("'{env}' is not an environment variable name (letters, digits, _)"),
                );
            }
            check_url(report, "source.opentsdb_url", url);
            Some(TokenSource::Direct {
                token_env: env.clone(),
                opentsdb_url: url.clone(),
            })
        }
        (None, None, None) if simulated => Some(TokenSource::MetricsUser(METRICS_USER.to_string())),
        (None, None, None) => {
            report.problem(
                "source",
                format!("no way to get the metrics read token: {TOKEN_HOW}"),
            );
            None
        }
        (Some(_), _, _) => {
            report.problem(
                "source.metrics_user",
                "metrics_user and token_env/opentsdb_url are two ways to get the token: keep one",
            );
            None
        }
        (None, Some(_), None) => {
            report.problem(
                "source.token_env",
                "token_env needs opentsdb_url, the OpenTSDB endpoint the token reads from",
            );
            None
        }
        (None, None, Some(_)) => {
            report.problem(
                "source.opentsdb_url",
                "opentsdb_url needs token_env, the environment variable holding the token",
            );
            None
        }
    };

    unless_problems(
        report,
        before,
        Source {
            api,
            services,
            datacenters: s.datacenters.clone(),
            token: token?,
            retry: retry?,
        },
    )
}

/// Most retries a job may ask for: beyond this a request that keeps failing would hold a run for
/// hours, which the budget is for.
const MAX_RETRIES: u32 = 100;

/// `[source.retry]`, each key defaulting to [`RetryPolicy::default`].
fn retry(file: Option<&RetryFile>, report: &mut Report<'_>) -> Option<RetryPolicy> {
    let before = report.problems.len();
    let defaults = RetryPolicy::default();
    let Some(file) = file else {
        return Some(defaults);
    };
    let delay = |report: &mut Report<'_>, key: &str, text: Option<&String>, default: Duration| {
        let Some(text) = text else {
            return Some(default);
        };
        let parsed = parse_delay(text);
        if parsed.is_none() {
            report.problem(
                format!("source.retry.{key}"),
                format!(
                    "'{text}' is not a duration: use <n><unit> with units ms s m h, e.g. 500ms"
                ),
            );
        }
        parsed
    };
    let min_delay = delay(
        report,
        "min_delay",
        file.min_delay.as_ref(),
        defaults.min_delay,
    );
    let max_delay = delay(
        report,
        "max_delay",
        file.max_delay.as_ref(),
        defaults.max_delay,
    );
    let budget = delay(report, "budget", file.budget.as_ref(), defaults.total_delay);
    let max_retries = file.max_retries.unwrap_or(defaults.max_retries as u32);
    if max_retries > MAX_RETRIES {
        report.problem(
            "source.retry.max_retries",
            format!("{max_retries} retries is too many: use 0 to {MAX_RETRIES}, and budget to bound the time"),
        );
    }
    if let (Some(min), Some(max)) = (min_delay, max_delay) {
        if min > max {
            report.problem(
                "source.retry.min_delay",
                format!(
                    "the first wait ({}) is longer than max_delay ({})",
                    show_delay(min),
                    show_delay(max)
                ),
            );
        }
    }
    unless_problems(
        report,
        before,
        RetryPolicy {
            min_delay: min_delay?,
            max_delay: max_delay?,
            max_retries: max_retries as usize,
            total_delay: budget?,
        },
    )
}

/// `250ms` below a second, else as [`format_duration`] writes it.
fn show_delay(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.is_zero() {
        format!("{}ms", d.as_millis())
    } else {
        format_duration(d)
    }
}

/// A non-empty list of non-empty, distinct names.
fn check_names(report: &mut Report<'_>, key: &str, what: &str, names: &[String]) {
    if names.is_empty() {
        report.problem(
            key,
            format!("the list is empty: name at least one {what}, or leave the key out"),
        );
    }
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            report.problem(format!("{key}[{i}]"), format!("empty {what} name"));
        } else if names[..i].contains(name) {
            report.problem(format!("{key}[{i}]"), format!("{name} is listed twice"));
        }
    }
}

/// https, or http to a loopback host (a local simulator or proxy): the token must not travel in
/// clear over a network.
fn check_url(report: &mut Report<'_>, key: &str, text: &str) {
    let url = match reqwest::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            report.problem(key, format!("'{text}' is not a URL: {e}"));
            return;
        }
    };
    match url::check(&url) {
        Ok(()) => {}
        Err(url::Refused::PlainHttp) => report.problem(
            key,
            format!("'{text}' is plain http: use https (http is only for a loopback host)"),
        ),
        Err(url::Refused::Scheme(scheme)) => {
            report.problem(key, format!("'{scheme}' URLs are not supported: use https"))
        }
    }
}

fn window(w: &WindowFile, report: &mut Report<'_>) -> Option<WindowSpec> {
    let before = report.problems.len();
    let start = time(report, "window.start", &w.start);
    let end = match &w.end {
        None => Some(TimeExpr::Now),
        Some(text) => time(report, "window.end", text),
    };
    if end == Some(TimeExpr::LastRun) {
        report.problem(
            "window.end",
            "a window cannot end at last-run: use now, today or a time",
        );
    }
    let page = match w.page.as_deref() {
        None | Some("auto") => None,
        Some(text) => positive_duration(report, "window.page", text, "\"auto\" or "),
    };
    let lookback = match &w.lookback {
        None => Some(Duration::ZERO),
        Some(text) => {
            let lookback = parse_duration(text);
            if lookback.is_none() {
                report.problem(
                    "window.lookback",
                    format!(
                        "'{text}' is not a duration: use <n><unit> with units s m h d w, e.g. 2h"
                    ),
                );
            }
            lookback
        }
    };
    let initial_start = w
        .initial_start
        .as_ref()
        .and_then(|text| time(report, "window.initial_start", text));
    if initial_start == Some(TimeExpr::LastRun) {
        report.problem(
            "window.initial_start",
            "initial_start is where a job without state starts; it cannot be last-run",
        );
    }

    if start == Some(TimeExpr::LastRun) {
        if w.initial_start.is_none() {
            report.problem(
                "window.initial_start",
                "missing: start = \"last-run\" needs initial_start, where the first run starts (e.g. \"7d-ago\")",
            );
        }
    } else if start.is_some() {
        for (key, present) in [
            ("window.lookback", w.lookback.is_some()),
            ("window.initial_start", w.initial_start.is_some()),
        ] {
            if present {
                let field = key.trim_start_matches("window.");
                report.problem(
                    key,
                    format!("{field} only applies with start = \"last-run\""),
                );
            }
        }
    }

    // The first window to check: from `start`, or `initial_start` before the job has state.
    let first_start = match &start {
        Some(TimeExpr::LastRun) => initial_start.clone(),
        other => other.clone(),
    };
    let start_key = if start == Some(TimeExpr::LastRun) {
        "window.initial_start"
    } else {
        "window.start"
    };
    if let (Some(from), Some(to)) = (&first_start, &end) {
        match (from, to) {
            (TimeExpr::Absolute(a), TimeExpr::Absolute(b)) => {
                if b <= a {
                    report.problem(
                        "window.end",
                        format!(
                            "the window ends ({to}) before it starts ({from}) or when it starts"
                        ),
                    );
                } else if let Some(page) = page {
                    if TimeDelta::from_std(page).is_ok_and(|p| p > *b - *a) {
                        report.problem(
                            "window.page",
                            format!(
                                "the page ({}) is longer than the whole window ({from} to {to})",
                                w.page.as_deref().unwrap_or_default()
                            ),
                        );
                    }
                }
            }
            (TimeExpr::LastRun, _) | (_, TimeExpr::LastRun) => {}
            (a, b) if a.is_relative() && b.is_relative() && never_after(a, b) => {
                report.problem(
                    start_key,
                    format!("the window from {from} to {to} is always empty: its end is never after its start"),
                );
            }
            _ => {}
        }
    }

    unless_problems(
        report,
        before,
        WindowSpec {
            start: start?,
            end: end?,
            page,
            lookback: lookback?,
            initial_start,
        },
    )
}

fn time(report: &mut Report<'_>, key: &str, text: &str) -> Option<TimeExpr> {
    TimeExpr::parse(text)
        .map_err(|e| report.problem(key, e.to_string()))
        .ok()
}

fn positive_duration(
    report: &mut Report<'_>,
    key: &str,
    text: &str,
    alternatives: &str,
) -> Option<Duration> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Some(d),
        _ => {
            report.problem(
                key,
                format!("'{text}' is not a duration: use {alternatives}<n><unit> with units s m h d w, e.g. 1h"),
            );
            None
        }
    }
}

/// Whether `end` is at or before `start` at every time of day, for clock-relative expressions.
/// Their difference changes linearly over a day (`now`, `-ago`) or not at all (`today`,
/// `yesterday`), so the first and last instants of a day bound it.
fn never_after(start: &TimeExpr, end: &TimeExpr) -> bool {
    let Some(day) = NaiveDate::from_ymd_opt(2000, 1, 1) else {
        return false;
    };
    let midnight = day.and_time(NaiveTime::MIN).and_utc();
    let last = midnight + TimeDelta::days(1) - TimeDelta::milliseconds(1);
    [midnight, last].into_iter().all(|now| {
        match (start.resolve(now, None), end.resolve(now, None)) {
            (Some(s), Some(e)) => e <= s,
            _ => false,
        }
    })
}

fn exports(
    list: &[Option<ExportFile>],
    catalog: &Catalog,
    report: &mut Report<'_>,
) -> Option<Vec<Export>> {
    let before = report.problems.len();
    if list.is_empty() {
        report.problem("export", "no [[export]]: add at least one");
    }
    let mut resolved = Vec::new();
    // (table, metric) → the export that first exports it.
    let mut seen: BTreeMap<(Component, String), usize> = BTreeMap::new();
    for (i, file) in list.iter().enumerate() {
        let Some(file) = file else { continue };
        let Some(export) = export(i, file, catalog, report) else {
            continue;
        };
        let mut repeated: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for metric in &export.metrics {
            match seen.get(&(export.component, metric.clone())) {
                Some(&first) => repeated.entry(first).or_default().push(metric),
                None => {
                    seen.insert((export.component, metric.clone()), i);
                }
            }
        }
        for (first, metrics) in repeated {
            report.problem(
                format!("export[{i}].metrics"),
                format!(
                    "export[{first}] already exports {} to {}: each metric goes to its table once",
                    metrics.join(", "),
                    export.component.table_name()
                ),
            );
        }
        resolved.push(export);
    }
    // A section that could not be read (already reported) leaves `resolved` short.
    let complete = resolved.len() == list.len();
    unless_problems(report, before, resolved).filter(|_| complete)
}

fn export(
    i: usize,
    file: &ExportFile,
    catalog: &Catalog,
    report: &mut Report<'_>,
) -> Option<Export> {
    let before = report.problems.len();
    let key = format!("export[{i}]");
    let component = Component::from_table(&file.table);
    if component.is_none() {
        let hint = closest_table(&file.table)
            .map(|t| format!("did you mean {t}? "))
            .unwrap_or_default();
        report.problem(
            format!("{key}.table"),
            format!(
                "unknown table '{}': {hint}the tables are {}",
                file.table,
                Component::ALL.map(Component::table_name).join(", ")
            ),
        );
    }

    let metrics = match &file.metrics {
        Selection::Keyword(k) if k == "all" => component
            .map(|c| catalog.for_component(c).map(|m| m.name.clone()).collect())
            .unwrap_or_default(),
        Selection::Keyword(k) => {
            report.problem(
                format!("{key}.metrics"),
                format!("'{k}' is not a metric list: write \"all\" or a list of metric names"),
            );
            Vec::new()
        }
        Selection::Names(names) => {
            if names.is_empty() {
                report.problem(
                    format!("{key}.metrics"),
                    "the list is empty: name metrics or write \"all\"",
                );
            }
            for (j, name) in names.iter().enumerate() {
                let metric_key = format!("{key}.metrics[{j}]");
                if name.trim().is_empty() {
                    report.problem(metric_key, "empty metric name");
                } else if names[..j].contains(name) {
                    report.problem(metric_key, format!("{name} is listed twice"));
                } else if let Some(c) = component {
                    check_metric(report, &metric_key, name, c, catalog);
                }
            }
            names.clone()
        }
    };

    let aggregator = file.aggregator.as_deref().unwrap_or("none");
    if !AGGREGATORS.contains(&aggregator) {
        report.problem(
            format!("{key}.aggregator"),
            format!(
                "'{aggregator}' is not an aggregator: use one of {}",
                AGGREGATORS.join(" ")
            ),
        );
    }
    if let Some(downsample) = &file.downsample {
        if let Err(why) = check_downsample(downsample) {
            report.problem(
                format!("{key}.downsample"),
                format!("'{downsample}' is not a downsample: {why}"),
            );
        }
    }
    let tags = file.tags.clone().unwrap_or_default();
    for (tag, filter) in &tags {
        if tag.trim().is_empty() {
            report.problem(format!("{key}.tags"), "empty tag name");
        } else if filter.trim().is_empty() {
            report.problem(
                format!("{key}.tags.{tag}"),
                "empty filter: use \"*\", \"a|b\" or an exact value",
            );
        }
    }

    unless_problems(
        report,
        before,
        Export {
            component: component?,
            metrics,
            aggregator: aggregator.to_string(),
            downsample: file.downsample.clone(),
            tags,
        },
    )
}

/// A metric of another component is a problem; one missing from the catalog only a warning.
fn check_metric(
    report: &mut Report<'_>,
    key: &str,
    name: &str,
    component: Component,
    catalog: &Catalog,
) {
    let known = catalog.get(name);
    let owner = match known {
        Some(def) => Some(def.component),
        None => Component::ALL
            .into_iter()
            .find(|c| name.starts_with(c.metric_prefix())),
    };
    match owner {
        Some(owner) if owner != component => report.problem(
            key,
            format!(
                "{name} is {} {owner} metric; export it to {}",
                if known.is_some() { "a" } else { "named like a" },
                owner.table_name()
            ),
        ),
        _ if known.is_some() => {}
        _ => {
            let hint = catalog
                .closest(name)
                .map(|c| format!("did you mean {c}? "))
                .unwrap_or_default();
            report.warning(
                key,
                format!("{name} is not in the metric catalog: {hint}It is exported as written"),
            );
        }
    }
}

/// The table whose component (or entity tag) the text names, for "did you mean".
fn closest_table(text: &str) -> Option<&'static str> {
    let text = text.to_ascii_lowercase();
    Component::ALL
        .into_iter()
        .find(|c| text.contains(&c.to_string()) || text.contains(c.entity_tag()))
        .map(Component::table_name)
}

/// `<n><unit>-<agg>[-<fill>]` or `all-<agg>[-<fill>]`.
fn check_downsample(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split('-').collect();
    let (interval, aggregator, fill) = match parts.as_slice() {
        [interval, aggregator] => (*interval, *aggregator, None),
        [interval, aggregator, fill] => (*interval, *aggregator, Some(*fill)),
        _ => return Err("use <n><unit>-<agg>[-<fill>] (e.g. 5m-avg-nan) or all-<agg>".into()),
    };
    if interval != "all" && parse_duration(interval).is_none_or(|d| d.is_zero()) {
        return Err(format!(
            "'{interval}' is not an interval: use <n><unit> with units s m h d w, or all"
        ));
    }
    if aggregator == "none" || !AGGREGATORS.contains(&aggregator) {
        return Err(format!(
            "'{aggregator}' is not a downsampling aggregator: use one of {}",
            AGGREGATORS
                .iter()
                .filter(|a| **a != "none")
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if let Some(fill) = fill {
        if !FILLS.contains(&fill) {
            return Err(format!(
                "'{fill}' is not a fill policy: use one of {}",
                FILLS.join(" ")
            ));
        }
    }
    Ok(())
}

fn output(o: &OutputFile, report: &mut Report<'_>) -> Option<Output> {
    let before = report.problems.len();
    if o.path.trim().is_empty() {
        report.problem("output.path", "empty path: name a folder, e.g. \"out\"");
    } else if let Err(reason) = Location::parse(&o.path) {
        report.problem("output.path", reason);
    }
    let s3 = o.s3.as_ref().map(|s| s3(s, report)).unwrap_or_default();
    let partitioning = match &o.partitioning {
        None => vec![PartitionBy::Date],
        Some(columns) => {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            match columns.as_slice() {
                ["date"] => vec![PartitionBy::Date],
                ["month"] => vec![PartitionBy::Month],
                ["service_name", "date"] => vec![PartitionBy::ServiceName, PartitionBy::Date],
                ["service_name", "month"] => vec![PartitionBy::ServiceName, PartitionBy::Month],
                _ => {
                    report.problem(
                        "output.partitioning",
                        format!(
                            "{columns:?} is not a partitioning: use [\"date\"], [\"month\"], [\"service_name\", \"date\"] or [\"service_name\", \"month\"]"
                        ),
                    );
                    Vec::new()
                }
            }
        }
    };
    let compression_level = match o.compression_level {
        None => DEFAULT_ZSTD_LEVEL,
        Some(level) if ZSTD_LEVELS.contains(&level) => {
            // In 1..=22, so it fits.
            level as i32
        }
        Some(level) => {
            report.problem(
                "output.compression_level",
                format!("{level} is not a ZSTD level: use 1 to 22 (3 is the default)"),
            );
            DEFAULT_ZSTD_LEVEL
        }
    };
    let format = match o.format.as_deref() {
        None | Some("parquet") => OutputFormat::Parquet,
        Some("delta") => OutputFormat::Delta,
        Some(other) => {
            report.problem(
                "output.format",
                format!(
                    "'{other}' is not an output format: use \"parquet\" (the default) or \"delta\""
                ),
            );
            OutputFormat::Parquet
        }
    };
    unless_problems(
        report,
        before,
        Output {
            path: o.path.clone(),
            partitioning,
            compression_level,
            s3,
            format,
        },
    )
}

/// `[output.s3]`: an endpoint secrets may travel to, an addressing style, and no secret.
fn s3(s: &S3File, report: &mut Report<'_>) -> S3Settings {
    let secrets = [
        ("access_key_id", &s.access_key_id, "AWS_ACCESS_KEY_ID"),
        (
            "secret_access_key",
            &s.secret_access_key,
            "AWS_SECRET_ACCESS_KEY",
        ),
        ("session_token", &s.session_token, "AWS_SESSION_TOKEN"),
    ];
    for (key, value, env) in secrets {
        if value.is_some() {
            report.problem(
                format!("output.s3.{key}"),
                format!("credentials never go in a job file: set {env} in the environment"),
            );
        }
    }
    if let Some(endpoint) = &s.endpoint {
        check_url(report, "output.s3.endpoint", endpoint);
        if reqwest::Url::parse(endpoint)
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            report.problem(
                "output.s3.endpoint",
                "credentials never go in a job file: remove the user and password from the URL",
            );
        }
    }
    if let Some(region) = &s.region {
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            report.problem(
                "output.s3.region",
                format!("'{region}' is not a region name, e.g. \"gra\" or \"eu-west-3\""),
            );
        }
    }
    let virtual_hosted = match s.addressing.as_deref() {
        None => None,
        Some("path") => Some(false),
        Some("virtual-hosted") => Some(true),
        Some(other) => {
            report.problem(
                "output.s3.addressing",
                format!("'{other}' is not an addressing style: use \"path\" or \"virtual-hosted\""),
            );
            None
        }
    };
    S3Settings {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        virtual_hosted,
    }
}
