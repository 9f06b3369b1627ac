//! What we send to `POST /api/query`: the request model and its JSON body. Owns the wire shape
//! only; which metrics go together and how pages are cut is `plan`'s business.

use std::collections::BTreeMap;

use serde::Serialize;

/// One `POST /api/query` body: a time range and the sub-queries asked over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// Start of the range in Unix milliseconds, inclusive on the server.
    pub start_ms: i64,
    /// End of the range in Unix milliseconds, inclusive on the server.
    pub end_ms: i64,
    /// The sub-queries; each result series echoes its index as `query.index` where the endpoint
    /// supports it.
    pub queries: Vec<SubQuery>,
}

/// One sub-query: a metric, how to aggregate it and which tags to group by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubQuery {
    pub metric: String,
    /// `none` returns every series with its raw points; anything else aggregates.
    pub aggregator: String,
    /// `<interval><unit>-<agg>[-<fill>]`, e.g. `5m-avg-nan`; `None` sends no `downsample` key.
    pub downsample: Option<String>,
    /// `{"vm": "*"}` groups by vm, `{"vm": "a|b"}` selects and groups by those values.
    pub tags: BTreeMap<String, String>,
    /// Regular expressions the value of a tag must match, on top of `tags` and of each other
    /// (filters on one tag are ANDed): how a sharded run takes its slice of a datacenter's
    /// objects, and how a page too large for the endpoint is cut by series. Sent with every tag
    /// as a `filters` list, since OpenTSDB takes `tags` or `filters`, not both.
    pub regexps: Vec<(String, String)>,
}

/// The body as OpenTSDB and OVH's proxy read it; field order is the order written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest<'a> {
    start: i64,
    end: i64,
    /// Always on: page boundaries are in milliseconds and the `dps` keys must be as well.
    ms_resolution: bool,
    queries: Vec<WireSubQuery<'a>>,
}

#[derive(Serialize)]
struct WireSubQuery<'a> {
    metric: &'a str,
    aggregator: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    downsample: Option<&'a str>,
    /// Sent as the `tags` map rather than `filters` when that says it all: stock OpenTSDB and
    /// OVH both accept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filters: Option<Vec<WireFilter<'a>>>,
}

/// `{"type": "wildcard" | "literal_or" | "regexp", "tagk", "filter", "groupBy": true}`: the three
/// types OVH's endpoint supports.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireFilter<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    tagk: &'a str,
    filter: &'a str,
    group_by: bool,
}

impl SubQuery {
    fn wire_filters(&self) -> Option<Vec<WireFilter<'_>>> {
        if self.regexps.is_empty() {
            return None;
        }
        // A regexp narrows the sub-query's own filter on that tag (filters on one tag are
        // ANDed), never replaces it: a job's `vm = "a|b"` stays in force in every shard.
        let mut filters: Vec<WireFilter<'_>> = self
            .tags
            .iter()
            .map(|(tagk, value)| WireFilter {
                kind: if value.contains('*') {
                    "wildcard"
                } else {
                    "literal_or"
                },
                tagk,
                filter: value,
                group_by: true,
            })
            .collect();
        filters.extend(self.regexps.iter().map(|(tagk, regexp)| WireFilter {
            kind: "regexp",
            tagk,
            filter: regexp,
            group_by: true,
        }));
        Some(filters)
    }
}

impl QueryRequest {
    /// The JSON body: `{"start":…,"end":…,"msResolution":true,"queries":[…]}`.
    #[allow(
        clippy::expect_used,
        reason = "cannot fail, as said where it is called"
    )]
    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireRequest {
            start: self.start_ms,
            end: self.end_ms,
            ms_resolution: true,
            queries: self
                .queries
                .iter()
                .map(|q| WireSubQuery {
                    metric: &q.metric,
                    aggregator: &q.aggregator,
                    downsample: q.downsample.as_deref(),
                    tags: q.regexps.is_empty().then_some(&q.tags),
                    filters: q.wire_filters(),
                })
                .collect(),
        };
        // Cannot fail: serde_json only fails on a map with non-string keys, a `Serialize` impl
        // that errors, or a failing writer; here every map has `String` keys, every impl is
        // derived and the writer is a `Vec`.
        serde_json::to_vec(&wire).expect("serializing a QueryRequest cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm_query(metric: &str) -> SubQuery {
        SubQuery {
            metric: metric.to_string(),
            aggregator: "none".to_string(),
            downsample: None,
            tags: BTreeMap::from([
                ("datacenter".to_string(), "*".to_string()),
                ("vm".to_string(), "*".to_string()),
            ]),
            regexps: Vec::new(),
        }
    }

    #[test]
    fn body_has_the_documented_shape_with_millisecond_integers() {
        let mut with_downsample = vm_query("vscope.vm.mem.usage.perc");
        with_downsample.aggregator = "max".to_string();
        with_downsample.downsample = Some("20m-max-zero".to_string());
        let request = QueryRequest {
            start_ms: 1_564_407_950_000,
            end_ms: 1_564_494_350_000,
            queries: vec![vm_query("vscope.vm.cpu.usage.perc"), with_downsample],
        };
        let body = String::from_utf8(request.to_json()).unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"start":1564407950000,"end":1564494350000,"msResolution":true,"queries":["#,
                r#"{"metric":"vscope.vm.cpu.usage.perc","aggregator":"none","tags":{"datacenter":"*","vm":"*"}},"#,
                r#"{"metric":"vscope.vm.mem.usage.perc","aggregator":"max","downsample":"20m-max-zero","tags":{"datacenter":"*","vm":"*"}}"#,
                "]}"
            )
        );
    }

    #[test]
    fn a_regexp_turns_every_tag_into_a_filter_and_narrows_its_own() {
        let mut q = vm_query("m");
        q.regexps = vec![
            ("vm".to_string(), "^(?:.*1|.*7)$".to_string()),
            ("vm".to_string(), "^.*[0-4]$".to_string()),
        ];
        let request = QueryRequest {
            start_ms: 0,
            end_ms: 1,
            queries: vec![q],
        };
        let parsed: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        let sub = &parsed["queries"][0];
        assert!(
            sub.get("tags").is_none(),
            "tags and filters are exclusive: {sub}"
        );
        assert_eq!(
            sub["filters"],
            serde_json::json!([
                {"type": "wildcard", "tagk": "datacenter", "filter": "*", "groupBy": true},
                {"type": "wildcard", "tagk": "vm", "filter": "*", "groupBy": true},
                {"type": "regexp", "tagk": "vm", "filter": "^(?:.*1|.*7)$", "groupBy": true},
                {"type": "regexp", "tagk": "vm", "filter": "^.*[0-4]$", "groupBy": true}
            ])
        );
    }

    #[test]
    fn tag_values_are_escaped_as_json() {
        let mut q = vm_query("m");
        q.tags = BTreeMap::from([("vm".to_string(), "a\"b|c\\d".to_string())]);
        let request = QueryRequest {
            start_ms: 0,
            end_ms: 1,
            queries: vec![q],
        };
        let parsed: serde_json::Value = serde_json::from_slice(&request.to_json()).unwrap();
        assert_eq!(parsed["queries"][0]["tags"]["vm"], "a\"b|c\\d");
        assert!(parsed["queries"][0].get("downsample").is_none());
    }
}
