//! Reading a `POST /api/query` body into the simulator's query model: times (absolute, seconds or
//! milliseconds, relative `…-ago`), sub-queries, aggregators, downsample specifiers and tag
//! filters, with the messages the endpoint gives for each mistake.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::QueryError;
use crate::sim::Flavor;

/// A parsed query, times resolved to milliseconds; both ends inclusive.
#[derive(Debug)]
pub(crate) struct Request {
    pub start_ms: i64,
    pub end_ms: i64,
    pub ms_resolution: bool,
    pub queries: Vec<SubQuery>,
}

#[derive(Debug)]
pub(crate) struct SubQuery {
    /// Position in `queries`, echoed as `query.index`.
    pub index: usize,
    pub metric: String,
    /// `None` is the `none` aggregator: every series on its own, raw.
    pub aggregator: Option<Agg>,
    pub downsample: Option<Downsample>,
    pub filters: Vec<Filter>,
}

/// Aggregation functions, across series and within downsample buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agg {
    Sum,
    Zimsum,
    Avg,
    Min,
    Mimmin,
    Max,
    Mimmax,
    Count,
    Dev,
    First,
    Last,
}

impl Agg {
    fn parse(name: &str) -> Option<Agg> {
        Some(match name {
            "sum" => Agg::Sum,
            "zimsum" => Agg::Zimsum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "mimmin" => Agg::Mimmin,
            "max" => Agg::Max,
            "mimmax" => Agg::Mimmax,
            "count" => Agg::Count,
            "dev" => Agg::Dev,
            "first" => Agg::First,
            "last" => Agg::Last,
            _ => return None,
        })
    }
}

/// `<n><unit>-<agg>[-<fill>]` or `all-<agg>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Downsample {
    /// `None` for `all`: one bucket over the whole range.
    pub interval_ms: Option<i64>,
    pub agg: Agg,
    pub fill: Fill,
}

/// What an empty downsample bucket becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// No point at all (the default).
    None,
    Nan,
    Null,
    Zero,
}

/// One tag filter; `group_by` filters split the result into one series per tag value.
#[derive(Debug)]
pub(crate) struct Filter {
    pub tagk: String,
    pub matcher: Matcher,
    pub group_by: bool,
}

#[derive(Debug)]
pub(crate) enum Matcher {
    /// `*` matches any run of characters; `ci` compares lowercased.
    Wildcard { pattern: String, ci: bool },
    LiteralOr {
        values: Vec<String>,
        ci: bool,
        negate: bool,
    },
    /// Unanchored search, as OpenTSDB's `Matcher.find()`.
    Regexp(Regex),
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Wildcard { pattern, ci } => {
                if *ci {
                    glob(&pattern.to_lowercase(), &value.to_lowercase())
                } else {
                    glob(pattern, value)
                }
            }
            Matcher::LiteralOr { values, ci, negate } => {
                let hit = if *ci {
                    values.iter().any(|v| v.eq_ignore_ascii_case(value))
                } else {
                    values.iter().any(|v| v == value)
                };
                hit != *negate
            }
            Matcher::Regexp(re) => re.is_match(value),
        }
    }
}

/// `*`-only glob matching.
fn glob(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || !value.ends_with(last) || value.len() < first.len() + last.len()
    {
        return false;
    }
    // Both cuts fall on character boundaries: they end `first` and start `last` in `value`.
    let mut rest = &value[first.len()..value.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    start: Option<Value>,
    end: Option<Value>,
    queries: Option<Vec<RawSubQuery>>,
    #[serde(default)]
    ms_resolution: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSubQuery {
    metric: Option<String>,
    aggregator: Option<String>,
    downsample: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    filters: Option<Vec<RawFilter>>,
    #[serde(default)]
    rate: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilter {
    #[serde(rename = "type")]
    kind: String,
    tagk: String,
    filter: String,
    #[serde(default)]
    group_by: bool,
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError::BadRequest(message.into())
}

/// Reads a query body, resolving relative times against `now_ms`.
pub(crate) fn parse(body: &[u8], now_ms: i64, flavor: Flavor) -> Result<Request, QueryError> {
    let raw: RawRequest = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Unable to parse the request body: {e}")))?;
    let start_ms = match &raw.start {
        None | Some(Value::Null) => return Err(bad("Missing start time")),
        Some(v) => parse_time(v, now_ms).map_err(bad)?,
    };
    let end_ms = match &raw.end {
        None | Some(Value::Null) => now_ms,
        Some(v) => parse_time(v, now_ms).map_err(bad)?,
    };
    if end_ms < start_ms {
        return Err(bad(format!(
            "End time [{end_ms}] must be greater than the start time [{start_ms}]"
        )));
    }
    let raw_queries = raw.queries.unwrap_or_default();
    if raw_queries.is_empty() {
        return Err(bad("Missing queries"));
    }
    let mut queries = Vec::with_capacity(raw_queries.len());
    for (index, q) in raw_queries.into_iter().enumerate() {
        let metric = q
            .metric
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("Missing the metric"))?;
        let agg_name = q
            .aggregator
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("Missing the aggregation function"))?;
        let aggregator = match agg_name.as_str() {
            "none" => None,
            name => {
                Some(Agg::parse(name).ok_or_else(|| bad(format!("No such aggregator: {name}")))?)
            }
        };
        if q.rate {
            // Counters are not what vScope stores; refusing is better than ignoring the flag.
            return Err(bad("rate is not supported by the simulator"));
        }
        let downsample = q.downsample.as_deref().map(parse_downsample).transpose()?;
        let mut filters = Vec::new();
        for (tagk, value) in q.tags.unwrap_or_default() {
            if let Some(f) = tag_filter(tagk, &value, flavor)? {
                filters.push(f);
            }
        }
        for f in q.filters.unwrap_or_default() {
            if let Some(m) = matcher(&f.kind, &f.filter, flavor)? {
                filters.push(Filter {
                    tagk: f.tagk,
                    matcher: m,
                    group_by: f.group_by,
                });
            }
        }
        queries.push(SubQuery {
            index,
            metric,
            aggregator,
            downsample,
            filters,
        });
    }
    Ok(Request {
        start_ms,
        end_ms,
        ms_resolution: raw.ms_resolution,
        queries,
    })
}

/// A `tags` map entry: `*`, `a|b`, `web*`, `type(expr)` or an exact value; always grouped by.
fn tag_filter(tagk: String, value: &str, flavor: Flavor) -> Result<Option<Filter>, QueryError> {
    let typed = value
        .strip_suffix(')')
        .and_then(|v| v.split_once('('))
        .filter(|(kind, _)| {
            !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
        });
    let matcher = match typed {
        Some((kind, expr)) => matcher(kind, expr, flavor)?,
        None if value.contains('*') => Some(Matcher::Wildcard {
            pattern: value.to_string(),
            ci: false,
        }),
        None => Some(Matcher::LiteralOr {
            values: value.split('|').map(str::to_string).collect(),
            ci: false,
            negate: false,
        }),
    };
    Ok(matcher.map(|matcher| Filter {
        tagk,
        matcher,
        group_by: true,
    }))
}

/// The matcher of a filter type; `None` for a type OVH drops without a word.
fn matcher(kind: &str, expr: &str, flavor: Flavor) -> Result<Option<Matcher>, QueryError> {
    let literal = |ci, negate| Matcher::LiteralOr {
        values: expr.split('|').map(str::to_string).collect(),
        ci,
        negate,
    };
    let m = match kind {
        "wildcard" => Matcher::Wildcard {
            pattern: expr.to_string(),
            ci: false,
        },
        "literal_or" => literal(false, false),
        "regexp" => Matcher::Regexp(
            Regex::new(expr).map_err(|e| bad(format!("Invalid regular expression {expr}: {e}")))?,
        ),
        _ if flavor == Flavor::Ovh => return Ok(None),
        "iwildcard" => Matcher::Wildcard {
            pattern: expr.to_string(),
            ci: true,
        },
        "iliteral_or" => literal(true, false),
        "not_literal_or" => literal(false, true),
        "not_iliteral_or" => literal(true, true),
        other => {
            return Err(bad(format!(
                "Could not find a filter plugin of type: {other}"
            )))
        }
    };
    Ok(Some(m))
}

fn parse_downsample(spec: &str) -> Result<Downsample, QueryError> {
    let invalid = || bad(format!("Invalid downsampling specifier '{spec}'"));
    let mut parts = spec.split('-');
    let interval = parts.next().ok_or_else(invalid)?;
    let agg_name = parts.next().ok_or_else(invalid)?;
    let fill = match parts.next() {
        None | Some("none") => Fill::None,
        Some("nan") => Fill::Nan,
        Some("null") => Fill::Null,
        Some("zero") => Fill::Zero,
        Some(other) => return Err(bad(format!("Unrecognized fill policy: {other}"))),
    };
    if parts.next().is_some() {
        return Err(invalid());
    }
    let agg = Agg::parse(agg_name)
        .ok_or_else(|| bad(format!("No such downsampling function: {agg_name}")))?;
    let interval_ms = if interval == "all" || interval == "0all" {
        None
    } else {
        let ms = duration_ms(interval).ok_or_else(invalid)?;
        if ms <= 0 {
            return Err(invalid());
        }
        Some(ms)
    };
    Ok(Downsample {
        interval_ms,
        agg,
        fill,
    })
}

/// `<n><unit>` with OpenTSDB's units: ms, s, m, h, d, w, n (30 days), y (365 days).
fn duration_ms(s: &str) -> Option<i64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let n: i64 = n.parse().ok()?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "n" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// A `start`/`end` value in milliseconds: integers of 10 digits or fewer are seconds, longer ones
/// milliseconds; strings may also be `<s>.<ms>`, `<n><unit>-ago`, `now` or `yyyy/MM/dd[-HH:mm[:ss]]`
/// (UTC).
fn parse_time(v: &Value, now_ms: i64) -> Result<i64, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("Invalid time: {other}")),
    };
    let invalid = || format!("Invalid time: {text}");
    if text.is_empty() {
        return Err(invalid());
    }
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(rel) = text.strip_suffix("-ago") {
        return duration_ms(rel)
            .map(|d| now_ms - d)
            .ok_or_else(|| format!("Invalid relative time: {text}"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = text.parse().map_err(|_| invalid())?;
        return Ok(if text.len() <= 10 { n * 1000 } else { n });
    }
    if let Some((s, ms)) = text.split_once('.') {
        if s.len() == 10
            && (1..=3).contains(&ms.len())
            && s.bytes().chain(ms.bytes()).all(|b| b.is_ascii_digit())
        {
            let s: i64 = s.parse().map_err(|_| invalid())?;
            let frac: i64 = format!("{ms:0<3}").parse().map_err(|_| invalid())?;
            return Ok(s * 1000 + frac);
        }
        return Err(invalid());
    }
    for format in [
        "%Y/%m/%d-%H:%M:%S",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d-%H:%M",
        "%Y/%m/%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y/%m/%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(invalid)?
            .and_utc()
            .timestamp_millis());
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_opentsdbs_digit_rule_and_relative_units() {
        let now = 1_700_000_000_000;
        let t = |v: Value| parse_time(&v, now);
        assert_eq!(t(serde_json::json!(1564407950)), Ok(1_564_407_950_000));
        assert_eq!(
            t(serde_json::json!(1564407950123i64)),
            Ok(1_564_407_950_123)
        );
        assert_eq!(t(serde_json::json!("1564407950")), Ok(1_564_407_950_000));
        assert_eq!(t(serde_json::json!("1564407950.5")), Ok(1_564_407_950_500));
        assert_eq!(t(serde_json::json!("1h-ago")), Ok(now - 3_600_000));
        assert_eq!(t(serde_json::json!("2n-ago")), Ok(now - 60 * 86_400_000));
        assert_eq!(
            t(serde_json::json!("2019/07/29-13:45:50")),
            Ok(1_564_407_950_000)
        );
        assert_eq!(t(serde_json::json!("2019/07/29")), Ok(1_564_358_400_000));
        assert!(t(serde_json::json!("yesterday")).is_err());
    }

    #[test]
    fn downsample_specifiers() {
        let d = parse_downsample("20m-max-zero").unwrap();
        assert_eq!(
            (d.interval_ms, d.agg, d.fill),
            (Some(1_200_000), Agg::Max, Fill::Zero)
        );
        let d = parse_downsample("all-sum").unwrap();
        assert_eq!((d.interval_ms, d.agg, d.fill), (None, Agg::Sum, Fill::None));
        assert!(parse_downsample("5m-avg-sometimes").is_err());
        assert!(parse_downsample("5x-avg").is_err());
        assert!(parse_downsample("5m-median").is_err());
    }

    #[test]
    fn tag_values_become_filters() {
        let f = tag_filter("vm".into(), "*", Flavor::Ovh).unwrap().unwrap();
        assert!(f.group_by && f.matcher.matches("vm-1"));
        let f = tag_filter("vm".into(), "vm-1|vm-2", Flavor::Ovh)
            .unwrap()
            .unwrap();
        assert!(f.matcher.matches("vm-2") && !f.matcher.matches("vm-3"));
        let f = tag_filter("host".into(), "172.*.1", Flavor::Ovh)
            .unwrap()
            .unwrap();
        assert!(f.matcher.matches("172.17.0.1") && !f.matcher.matches("172.17.0.2"));
        let f = tag_filter("vm".into(), "regexp(^vm-1[0-9]$)", Flavor::Ovh)
            .unwrap()
            .unwrap();
        assert!(f.matcher.matches("vm-12") && !f.matcher.matches("vm-123"));
        // OVH drops filter types it does not know; stock OpenTSDB applies them.
        assert!(matcher("not_literal_or", "a", Flavor::Ovh)
            .unwrap()
            .is_none());
        let m = matcher("not_literal_or", "a", Flavor::Opentsdb)
            .unwrap()
            .unwrap();
        assert!(!m.matches("a") && m.matches("b"));
    }

    #[test]
    fn glob_handles_stars_anywhere() {
        assert!(glob("*", ""));
        assert!(glob("a*", "abc"));
        assert!(glob("*c", "abc"));
        assert!(glob("a*c", "abc"));
        assert!(!glob("a*c", "ab"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxcyyb"));
        assert!(!glob("ab*ba", "aba"));
    }
}
