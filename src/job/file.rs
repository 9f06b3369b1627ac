//! The job file as written: plain serde structs, one per TOML table, unknown keys refused. The doc
//! comment of every field is the user documentation of that key: `schemas/job.schema.json`, for
//! editors, is generated from these structs (their keys, doc comments and `schemars` attributes,
//! which add what a key's type does not say: patterns, choices, defaults), and a test fails while
//! the committed file differs (`VSCOPE_WRITE_SCHEMA=1 cargo test --lib job::tests` rewrites it).
//!
//! Values that need checking (times, durations, names) stay strings here so that one bad value
//! does not hide the others: [`super::resolve`] checks them all and reports every problem.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::report::Report;
use super::Simulator;

/// A job file (`jobs/*.toml`): what to export, over which window, and where to write it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(super) struct JobFile {
    /// Names the job: its files are `part-<name>-…`, its state `_state/<name>.json` and its lock
    /// is taken under that name. 1 to 64 characters out of `A-Z a-z 0-9 _ -`, not ending like a
    /// shard's name (`-s2of4`).
    #[cfg_attr(test, schemars(extend("pattern" = "^[A-Za-z0-9_-]{1,64}$")))]
    pub name: String,
    /// Run only one of N disjoint slices of the job, `"I/N"` with a 0-based index I (`"0/4"` to
    /// `"3/4"`), for a scheduler that runs N workers; `run --shard` overrides it. The slice's
    /// files are `part-<name>-s<I>of<N>-…`, its state and lock its own. Absent (or `"0/1"`): the
    /// whole job.
    #[cfg_attr(test, schemars(extend("pattern" = "^[0-9]+/[0-9]+$")))]
    pub shard: Option<String>,
    /// Where the data comes from: the OVH API, the services, and how to get the metrics token.
    pub source: SourceFile,
    /// The time range to export.
    pub window: WindowFile,
    /// One `[[export]]` per table and set of metrics; at least one.
    #[cfg_attr(test, schemars(extend("minItems" = 1)))]
    pub export: Vec<ExportFile>,
    /// Where and how the tables are written.
    pub output: OutputFile,
}

/// `[source]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(extend("allOf" = [
    {"not": {"required": ["metrics_user", "token_env"]}},
    {"not": {"required": ["metrics_user", "opentsdb_url"]}},
    {"if": {"required": ["token_env"]}, "then": {"required": ["opentsdb_url"]}},
    {"if": {"required": ["opentsdb_url"]}, "then": {"required": ["token_env"]}},
    {
        "if": {"required": ["simulator"]},
        "then": {"required": ["endpoint"], "properties": {"endpoint": {"const": "simulator"}}}
    }
])))]
#[serde(deny_unknown_fields)]
pub(super) struct SourceFile {
    /// The OVH APIv6 endpoint: `ovh-eu`, `ovh-ca`, `ovh-us`, `kimsufi-eu`, `kimsufi-ca`,
    /// `soyoustart-eu`, `soyoustart-ca`, a full `https://` URL, or `simulator` for the built-in
    /// simulator. Absent: `OVH_ENDPOINT`, then ovh.conf, then `ovh-eu`, as the official clients do.
    #[cfg_attr(test, schemars(extend("anyOf" = [{"enum": ["ovh-eu", "ovh-ca", "ovh-us", "kimsufi-eu", "kimsufi-ca", "soyoustart-eu", "soyoustart-ca", "simulator"]}, {"pattern": "^https?://"}])))]
    pub endpoint: Option<String>,
    /// `"all"` (the default) for every Hosted Private Cloud service the credentials can see, or a
    /// list of service names such as `["pcc-37-187-228-180"]`.
    #[cfg_attr(test, schemars(extend("default" = "all")))]
    pub services: Option<Selection>,
    /// Only these datacenters, by their APIv6 `Datacenter.name` (e.g. `datacenter869`).
    /// Absent: every datacenter.
    #[cfg_attr(test, schemars(extend("items" = {"type": "string", "minLength": 1}, "minItems" = 1, "uniqueItems" = true)))]
    pub datacenters: Option<Vec<String>>,
    /// The login of the Hosted Private Cloud user whose metrics read token is fetched with
    /// `POST /dedicatedCloud/{serviceName}/user/{userId}/metricsToken`. Exclusive with
    /// `token_env` and `opentsdb_url`.
    #[cfg_attr(test, schemars(extend("minLength" = 1)))]
    pub metrics_user: Option<String>,
    /// The environment variable holding a metrics read token, given directly instead of
    /// `metrics_user`; needs `opentsdb_url`. The token itself never goes in a job file.
    #[cfg_attr(test, schemars(extend("pattern" = "^[A-Za-z_][A-Za-z0-9_]*$")))]
    pub token_env: Option<String>,
    /// The OpenTSDB endpoint the `token_env` token reads from, e.g.
    /// `https://opentsdb.gra1-ovh.metrics.ovh.net` (https; http only for a loopback host).
    #[cfg_attr(test, schemars(extend("pattern" = "^https?://")))]
    pub opentsdb_url: Option<String>,
    /// The simulated estate, only with `endpoint = "simulator"`; every key has a default.
    pub simulator: Option<Simulator>,
    /// How transient failures of both APIs (network errors, timeouts, 408, 429, 5xx) are tried
    /// again; every key has a default.
    pub retry: Option<RetryFile>,
}

/// `[source.retry]`: exponential backoff with jitter, a cap and a budget. Other 4xx answers are
/// never tried again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(super) struct RetryFile {
    /// Further attempts after a request's first failure, 0 to 100. Default 6.
    #[cfg_attr(test, schemars(extend("maximum" = 100, "default" = 6)))]
    pub max_retries: Option<u32>,
    /// The first wait, roughly doubled (with jitter) after each failure: `<n><unit>` with units
    /// ms s m h, e.g. `200ms`. Default `500ms`.
    #[cfg_attr(test, schemars(extend("pattern" = "^[0-9]+(ms|[smhdw])$", "default" = "500ms")))]
    pub min_delay: Option<String>,
    /// The longest wait between two attempts, also the longest a `Retry-After` answer is
    /// honoured. Default `30s`.
    #[cfg_attr(test, schemars(extend("pattern" = "^[0-9]+(ms|[smhdw])$", "default" = "30s")))]
    pub max_delay: Option<String>,
    /// A request is given up once this much time was spent waiting between its attempts.
    /// Default `5m`.
    #[cfg_attr(test, schemars(extend("pattern" = "^[0-9]+(ms|[smhdw])$", "default" = "5m")))]
    pub budget: Option<String>,
}

/// `[window]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(extend(
    "if" = {"properties": {"start": {"const": "last-run"}}},
    "then" = {"required": ["initial_start"]},
    "else" = {"not": {"anyOf": [{"required": ["lookback"]}, {"required": ["initial_start"]}]}}
)))]
#[serde(deny_unknown_fields)]
pub(super) struct WindowFile {
    /// Where the window starts: an RFC 3339 time with offset (`2026-11-24T06:00:00+01:00`,
    /// converted to UTC), a date (`2026-11-24`, midnight UTC), `now`, `today`, `yesterday`,
    /// `<n><unit>-ago` with units s m h d w (`7d-ago`, `36h-ago`), or `last-run` (where the last
    /// committed run of this job ended, minus `lookback`).
    #[cfg_attr(test, schemars(extend("pattern" = "^(now|today|yesterday|last-run|[0-9]+[smhdw]-ago|[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?)$")))]
    pub start: String,
    /// Where the window ends (excluded): the same forms as `start` except `last-run`.
    /// Default `now`.
    #[cfg_attr(test, schemars(extend("pattern" = "^(now|today|yesterday|[0-9]+[smhdw]-ago|[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?)$", "default" = "now")))]
    pub end: Option<String>,
    /// The time range of one request: `auto` (the default: sized from the inventory and the
    /// endpoint's point cap) or a duration such as `15m`, `1h`, `6h`, `1d`.
    #[cfg_attr(test, schemars(extend("pattern" = "^(auto|[0-9]+[smhdw])$", "default" = "auto")))]
    pub page: Option<String>,
    /// With `start = "last-run"`: how much before the last committed end to read again, for
    /// late data (e.g. `2h`). Default `0s`.
    #[cfg_attr(test, schemars(extend("pattern" = "^[0-9]+[smhdw]$", "default" = "0s")))]
    pub lookback: Option<String>,
    /// With `start = "last-run"`: where the very first run starts, before the job has state
    /// (e.g. `7d-ago`). Required with `last-run`.
    #[cfg_attr(test, schemars(extend("pattern" = "^(now|today|yesterday|[0-9]+[smhdw]-ago|[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?)$")))]
    pub initial_start: Option<String>,
}

/// `[[export]]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(super) struct ExportFile {
    /// The table the points go to: `vm_metrics`, `host_metrics` or `filer_metrics`.
    #[cfg_attr(test, schemars(extend("enum" = ["vm_metrics", "host_metrics", "filer_metrics"])))]
    pub table: String,
    /// `"all"` for every catalog metric of the table's component (`schemas/metrics.toml`), or a
    /// list of metric names. A name missing from the catalog is exported with a warning.
    pub metrics: Selection,
    /// The OpenTSDB aggregator: `none` (the default: every series with its raw points), `sum`,
    /// `min`, `max`, `avg`, `count`, `dev`, `zimsum`, `mimmin`, `mimmax`, `first`, `last`, `p50`,
    /// `p75`, `p90`, `p95`, `p99` or `p999`.
    #[cfg_attr(test, schemars(extend("enum" = ["sum", "min", "max", "avg", "none", "count", "dev", "zimsum", "mimmin", "mimmax", "first", "last", "p50", "p75", "p90", "p95", "p99", "p999"], "default" = "none")))]
    pub aggregator: Option<String>,
    /// OpenTSDB downsampling, `<n><unit>-<agg>[-<fill>]` with fill `none`, `nan`, `null` or
    /// `zero` (e.g. `5m-avg-nan`), or `all-<agg>`. Absent: raw points.
    #[cfg_attr(test, schemars(extend("pattern" = "^([0-9]+[smhdw]|all)-(sum|min|max|avg|count|dev|zimsum|mimmin|mimmax|first|last|p50|p75|p90|p95|p99|p999)(-(none|nan|null|zero))?$")))]
    pub downsample: Option<String>,
    /// Tag filters, values as OpenTSDB writes them: `*`, `a|b` or an exact value, e.g.
    /// `{ vm = "vm-1254|vm-1300" }`. The table's entity tag is grouped with `*` by default.
    #[cfg_attr(test, schemars(extend("additionalProperties" = {"type": "string", "minLength": 1})))]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `[output]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(super) struct OutputFile {
    /// The output folder (relative to the current directory), a `file://` URL, or
    /// `s3://bucket/prefix` for an S3-compatible object store (AWS S3, OVHcloud Object Storage,
    /// MinIO); `run --output` overrides it.
    #[cfg_attr(test, schemars(extend("minLength" = 1)))]
    pub path: String,
    /// Hive partition columns, outermost first: `["date"]` (the default), `["month"]`,
    /// `["service_name", "date"]` or `["service_name", "month"]`.
    #[cfg_attr(test, schemars(extend("enum" = [["date"], ["month"], ["service_name", "date"], ["service_name", "month"]], "default" = ["date"])))]
    pub partitioning: Option<Vec<String>>,
    /// The ZSTD compression level of the Parquet files, 1 to 22. Default 1.
    #[cfg_attr(test, schemars(extend("minimum" = 1, "maximum" = 22, "default" = 1)))]
    pub compression_level: Option<i64>,
    /// How to reach the object store of an `s3://` path: endpoint, region and addressing style.
    /// Credentials never go here: they come from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    pub s3: Option<S3File>,
    /// `parquet` (the default): hive-partitioned Parquet files, each partition's replaced one at a
    /// time; or `delta`: Delta Lake tables, each run's (or shard's) files made visible in one
    /// transaction per table (builds with the cargo feature `delta`).
    #[cfg_attr(test, schemars(extend("enum" = ["parquet", "delta"], "default" = "parquet")))]
    pub format: Option<String>,
}

/// `[output.s3]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(super) struct S3File {
    /// The S3 endpoint, https (http only to a loopback host), e.g.
    /// `https://s3.gra.io.cloud.ovh.net` for OVHcloud Object Storage in Gravelines. Absent:
    /// `AWS_ENDPOINT_URL`, then AWS itself.
    pub endpoint: Option<String>,
    /// The region the bucket is in, e.g. `gra`, `sbg`, `de`, `uk`, `bhs`, `waw` or `rbx` on
    /// OVHcloud, `eu-west-3` on AWS. Absent: `AWS_REGION`, then `us-east-1`.
    pub region: Option<String>,
    /// `path` (`https://endpoint/bucket/key`, the default) or `virtual-hosted`
    /// (`https://bucket.endpoint/key`, the bucket's name put before the endpoint's host).
    #[cfg_attr(test, schemars(extend("enum" = ["path", "virtual-hosted"], "default" = "path")))]
    pub addressing: Option<String>,
    /// Refused: secrets come from `AWS_ACCESS_KEY_ID` in the environment, never the job file.
    #[cfg_attr(test, schemars(skip))]
    pub access_key_id: Option<toml::Value>,
    /// Refused: secrets come from `AWS_SECRET_ACCESS_KEY` in the environment, never the job file.
    #[cfg_attr(test, schemars(skip))]
    pub secret_access_key: Option<toml::Value>,
    /// Refused: secrets come from `AWS_SESSION_TOKEN` in the environment, never the job file.
    #[cfg_attr(test, schemars(skip))]
    pub session_token: Option<toml::Value>,
}

/// A keyword (`"all"`) or a list of names; which keywords are allowed is checked later.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Selection {
    Keyword(String),
    Names(Vec<String>),
}

/// `"all"` or a list of names, each once; the keywords a key allows are in its description.
#[cfg(test)]
impl schemars::JsonSchema for Selection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Selection".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                {"const": "all"},
                {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                    "uniqueItems": true
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for Selection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Selection, D::Error> {
        struct SelectionVisitor;
        impl<'de> Visitor<'de> for SelectionVisitor {
            type Value = Selection;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Selection, E> {
                Ok(Selection::Keyword(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Selection, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Selection::Names(names))
            }
        }
        deserializer.deserialize_any(SelectionVisitor)
    }
}

/// The keys serde accepts for the struct `T`, read from its derived `Deserialize`: the one list
/// the unknown-key check and the schema test both compare against.
pub(super) fn struct_fields<T: de::DeserializeOwned>() -> &'static [&'static str] {
    use std::cell::Cell;

    /// A deserializer that records the field list a derived struct asks for, then stops.
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let fields = Cell::new(&[][..]);
    // The probe always errors (it stops once the field list is known), so the result is moot.
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

/// What could be read of each section; `None` where a section is missing or could not be read
/// (the problem is already reported).
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Sections {
    pub name: Option<String>,
    pub shard: Option<String>,
    pub source: Option<SourceFile>,
    pub window: Option<WindowFile>,
    pub exports: Option<Vec<Option<ExportFile>>>,
    pub output: Option<OutputFile>,
}

/// Reports every key that the structs above do not accept, each with its line, and removes it,
/// so that reading the sections afterwards reports only the other problems. (Serde's
/// `deny_unknown_fields` alone stops at the first unknown key.)
pub(super) fn remove_unknown_keys(root: &mut DeTable<'_>, report: &mut Report<'_>) {
    prune(root, "", struct_fields::<JobFile>(), report);
    if let Some(source) = sub_table(root, "source") {
        prune(source, "source", struct_fields::<SourceFile>(), report);
        if let Some(simulator) = sub_table(source, "simulator") {
            prune(
                simulator,
                "source.simulator",
                struct_fields::<Simulator>(),
                report,
            );
        }
        if let Some(retry) = sub_table(source, "retry") {
            prune(retry, "source.retry", struct_fields::<RetryFile>(), report);
        }
    }
    if let Some(window) = sub_table(root, "window") {
        prune(window, "window", struct_fields::<WindowFile>(), report);
    }
    if let Some(DeValue::Array(exports)) = root.get_mut("export").map(|v| v.get_mut()) {
        for (i, export) in exports.iter_mut().enumerate() {
            if let DeValue::Table(export) = export.get_mut() {
                let prefix = format!("export[{i}]");
                prune(export, &prefix, struct_fields::<ExportFile>(), report);
            }
        }
    }
    if let Some(output) = sub_table(root, "output") {
        prune(output, "output", struct_fields::<OutputFile>(), report);
    }
}

fn sub_table<'t, 'i>(table: &'t mut DeTable<'i>, key: &str) -> Option<&'t mut DeTable<'i>> {
    match table.get_mut(key)?.get_mut() {
        DeValue::Table(t) => Some(t),
        _ => None,
    }
}

fn prune(table: &mut DeTable<'_>, prefix: &str, fields: &[&str], report: &mut Report<'_>) {
    let unknown: Vec<(String, Range<usize>)> = table
        .keys()
        .filter(|key| !fields.contains(&key.get_ref().as_ref()))
        .map(|key| (key.get_ref().to_string(), key.span()))
        .collect();
    for (name, _) in &unknown {
        table.remove(name.as_str());
    }
    let section = if prefix.is_empty() {
        "the top level".to_string()
    } else {
        format!("[{}]", prefix.split('[').next().unwrap_or(prefix))
    };
    for (name, span) in unknown {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        report.problem_at(
            key,
            Some(span),
            format!(
                "unknown key `{name}`; {section} accepts: {}",
                fields.join(", ")
            ),
        );
    }
}

/// Reads each section on its own, so that a bad value in one does not hide problems in another.
pub(super) fn read(root: &DeTable<'_>, report: &mut Report<'_>) -> Sections {
    let exports = match root.get("export") {
        None => {
            report.problem("export", "missing: add at least one [[export]] table");
            None
        }
        Some(value) => match value.get_ref() {
            DeValue::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| deserialize(item, &format!("export[{i}]"), report))
                    .collect(),
            ),
            _ => {
                report.problem(
                    "export",
                    "write each export as an [[export]] table (an array of tables)",
                );
                None
            }
        },
    };
    Sections {
        name: section(root, "name", report, "missing: every job needs a name"),
        shard: root
            .get("shard")
            .and_then(|value| deserialize(value, "shard", report)),
        source: section(root, "source", report, "missing: add a [source] table"),
        window: section(root, "window", report, "missing: add a [window] table"),
        exports,
        output: section(root, "output", report, "missing: add an [output] table"),
    }
}

fn section<T: de::DeserializeOwned>(
    root: &DeTable<'_>,
    key: &str,
    report: &mut Report<'_>,
    missing: &str,
) -> Option<T> {
    match root.get(key) {
        Some(value) => deserialize(value, key, report),
        None => {
            report.problem(key, missing);
            None
        }
    }
}

/// Reads one section. A value of the wrong type is reported, removed, and the section read
/// again, so that one bad value does not hide the others; a missing required key ends it.
fn deserialize<T: de::DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    key: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    let mut value = value.clone();
    let mut removed = Vec::new();
    // Each round removes one key, so this bounds a pathological file, not a normal one.
    for _ in 0..MAX_REREADS {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(section) => return Some(section),
            Err(e) => {
                let bad = report.serde_error(key, &e, &removed)?;
                let relative = bad.strip_prefix(key).unwrap_or(&bad);
                if !remove(&mut value, relative) {
                    return None;
                }
                removed.push(bad);
            }
        }
    }
    None
}

/// Rounds of "report, remove, read again" within one section.
const MAX_REREADS: usize = 32;

/// Removes the key at the dotted `path` (relative to `value`; `.a.b`, `.tags.vm`); an array
/// element goes with its whole array. Answers whether something was removed.
fn remove(value: &mut Spanned<DeValue<'_>>, path: &str) -> bool {
    let steps = super::report::segments(path);
    let Some(((last, _), parents)) = steps.split_last() else {
        return false;
    };
    let mut table = match value.get_mut() {
        DeValue::Table(t) => t,
        _ => return false,
    };
    for (name, indices) in parents {
        let Some(mut next) = table.get_mut(*name) else {
            return false;
        };
        for &index in indices {
            next = match next.get_mut() {
                DeValue::Array(array) => match array.get_mut(index) {
                    Some(item) => item,
                    None => return false,
                },
                _ => return false,
            };
        }
        table = match next.get_mut() {
            DeValue::Table(t) => t,
            _ => return false,
        };
    }
    table.remove(*last).is_some()
}
