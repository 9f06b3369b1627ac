//! Fault injection: what can go wrong between an exporter and the two APIs, drawn by rate from a
//! seeded schedule, so that tests (and users trying their retry settings) see the failures a
//! nightly run meets. Owns the spec, the schedule and the faulty answers; never the data: a
//! request that gets through answers exactly what it would without faults.
//!
//! # Spec
//!
//! A comma-separated list of `kind=rate[:parameter]` items, e.g.
//! `5xx=0.2,429=0.1:1s,reset=0.05,truncate=5%,slow=0.1:200ms,invalid-json=0.02,cap=500000,apiv6-5xx=0.1,seed=3`.
//! A rate is a fraction (`0.2`) or a percentage (`20%`); the rates of one API add up to at most 1.
//!
//! On `POST /api/query` (OpenTSDB):
//!
//! | item | on the wire |
//! | --- | --- |
//! | `5xx=R` | 500, 502 or 503 before any work; OVH's plain text, or stock OpenTSDB's JSON error |
//! | `429=R[:Ns]` | 429 with `Retry-After: N` (default 1 s) |
//! | `reset=R` | the connection is closed without an answer (the client's send fails) |
//! | `truncate=R` | the real body, cut in its first chunk: the connection is then either aborted or the body ends cleanly (the client sees JSON that stops mid-document) |
//! | `slow=R:DURATION` | the real answer, after `DURATION` (`200ms`, `2s`) of silence |
//! | `invalid-json=R` | 200 with an HTML maintenance page instead of JSON |
//! | `cap=N` | not a rate: lowers the point cap to `N`, so larger sub-queries get the endpoint's "too large" answer (OVH's `FETCH exceeded limit` 500, stock OpenTSDB's 413) |
//!
//! On every `/1.0/…` call (APIv6), `/auth/time` included:
//!
//! | item | on the wire |
//! | --- | --- |
//! | `apiv6-5xx=R` | 503 with a gateway's HTML page, or 500 `{"class":"Server::InternalServerError",…}` with a query id |
//! | `apiv6-429=R[:Ns]` | 429 `{"class":"Client::TooManyRequests",…}` with `Retry-After: N` (default 1 s) |
//! | `apiv6-reset=R` | the connection is closed without an answer |
//! | `apiv6-slow=R:DURATION` | the real answer, late |
//!
//! `seed=N` seeds the schedule (default: the simulator's seed). Each request draws at most one
//! fault. The draw is a hash of the seed, the request (method, target and body) and how many
//! times that same request was seen before: a retried request draws again, and a run is
//! reproducible whatever order concurrent requests arrive in.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream::{self, Stream, StreamExt};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::world::{hash_str, mix};
use super::Flavor;

/// How long a truncated answer waits between its last byte and dropping the connection.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(20);

/// Rates are kept in parts per million, so that a spec compares exactly (and `SimConfig` stays
/// `Eq`) and a draw is an integer comparison.
const PER_MILLION: u32 = 1_000_000;

/// `Retry-After` of a 429 when the spec gives none: short, because tests wait for it.
const DEFAULT_RETRY_AFTER_SECS: u32 = 1;

/// What one faulty answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A 5xx answer.
    ServerError,
    /// 429 with `Retry-After` in seconds.
    TooManyRequests { retry_after_secs: u32 },
    /// The connection is dropped before the body.
    Reset,
    /// The real body, cut short (OpenTSDB only).
    Truncate,
    /// The real answer after this delay.
    Slow(Duration),
    /// A 200 whose body is not JSON (OpenTSDB only).
    InvalidJson,
}

/// A parsed `faults` spec; see the module documentation for the syntax. In a job file it is the
/// string `[source.simulator] faults`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// `/api/query` faults with their rates (parts per million), in spec order.
    pub query: Vec<(FaultKind, u32)>,
    /// APIv6 faults with their rates (parts per million), in spec order.
    pub apiv6: Vec<(FaultKind, u32)>,
    /// A point cap lower than the simulator's `point_cap`.
    pub cap: Option<u64>,
    /// Seeds the schedule; `None`: the simulator's seed.
    pub seed: Option<u64>,
}

/// A `faults` spec that cannot be read; names the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault `{item}`: {reason}")]
    Item { item: String, reason: String },
    #[error("the {api} fault rates add up to {total}, more than 1")]
    Total { api: &'static str, total: String },
}

impl Faults {
    /// Whether the spec injects anything at all.
    pub fn is_none(&self) -> bool {
        self == &Faults::default()
    }
}

impl FromStr for Faults {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Faults, FaultSpecError> {
        let mut faults = Faults::default();
        let mut seen: Vec<String> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = |reason: &str| FaultSpecError::Item {
                item: item.to_string(),
                reason: reason.to_string(),
            };
            let (name, value) = item
                .split_once('=')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or_else(|| bad("expected kind=rate, e.g. 5xx=0.2"))?;
            if seen.iter().any(|s| s == name) {
                return Err(bad("given twice"));
            }
            seen.push(name.to_string());
            let (apiv6, kind) = match name.strip_prefix("apiv6-") {
                Some(kind) => (true, kind),
                None => (false, name),
            };
            let (rate, param) = match value.split_once(':') {
                Some((r, p)) => (r.trim(), Some(p.trim())),
                None => (value, None),
            };
            let fault = match (name, kind) {
                ("cap", _) => {
                    let cap = parse_count(value)
                        .filter(|c| *c > 0)
                        .ok_or_else(|| bad("the cap is a positive number of points"))?;
                    faults.cap = Some(cap);
                    continue;
                }
                ("seed", _) => {
                    faults.seed = Some(
                        parse_count(value)
                            .ok_or_else(|| bad("the seed is a non-negative integer"))?,
                    );
                    continue;
                }
                (_, "5xx") => no_param(param, FaultKind::ServerError).map_err(|r| bad(&r))?,
                (_, "429") => FaultKind::TooManyRequests {
                    retry_after_secs: match param {
                        None => DEFAULT_RETRY_AFTER_SECS,
                        Some(p) => parse_seconds(p)
                            .ok_or_else(|| bad("Retry-After is whole seconds, e.g. 429=0.1:2s"))?,
                    },
                },
                (_, "reset") => no_param(param, FaultKind::Reset).map_err(|r| bad(&r))?,
                (_, "slow") => {
                    let delay = param
                        .and_then(crate::job::parse_delay)
                        .ok_or_else(|| bad("slow needs a delay, e.g. slow=0.1:200ms"))?;
                    FaultKind::Slow(delay)
                }
                ("truncate", _) => no_param(param, FaultKind::Truncate).map_err(|r| bad(&r))?,
                ("invalid-json", _) => {
                    no_param(param, FaultKind::InvalidJson).map_err(|r| bad(&r))?
                }
                _ => {
                    return Err(bad(
                        "unknown kind; use 5xx, 429, reset, truncate, slow, invalid-json, cap, \
                         apiv6-5xx, apiv6-429, apiv6-reset, apiv6-slow or seed",
                    ))
                }
            };
            let rate =
                parse_rate(rate).ok_or_else(|| bad("the rate is 0 to 1 (0.2) or 0% to 100%"))?;
            if apiv6 {
                faults.apiv6.push((fault, rate));
            } else {
                faults.query.push((fault, rate));
            }
        }
        for (api, list) in [("/api/query", &faults.query), ("APIv6", &faults.apiv6)] {
            let total: u32 = list.iter().map(|(_, r)| r).sum();
            if total > PER_MILLION {
                return Err(FaultSpecError::Total {
                    api,
                    total: format_rate(total),
                });
            }
        }
        Ok(faults)
    }
}

fn no_param(param: Option<&str>, kind: FaultKind) -> Result<FaultKind, String> {
    match param {
        None => Ok(kind),
        Some(p) => Err(format!("takes no parameter, but was given `{p}`")),
    }
}

/// `0.25`, `1`, `25%` → parts per million.
fn parse_rate(text: &str) -> Option<u32> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let fraction = number.parse::<f64>().ok()? / scale;
    (0.0..=1.0)
        .contains(&fraction)
        .then(|| (fraction * f64::from(PER_MILLION)).round() as u32)
}

fn format_rate(ppm: u32) -> String {
    let text = format!("{:.6}", f64::from(ppm) / f64::from(PER_MILLION));
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `500000` or `500_000`.
fn parse_count(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `2s` or `2`: whole seconds, as `Retry-After` carries them.
fn parse_seconds(text: &str) -> Option<u32> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for Faults {
    /// The canonical spec: parses back into the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        for (prefix, list) in [("", &self.query), ("apiv6-", &self.apiv6)] {
            for (kind, rate) in list {
                let rate = format_rate(*rate);
                items.push(match kind {
                    FaultKind::ServerError => format!("{prefix}5xx={rate}"),
                    FaultKind::TooManyRequests { retry_after_secs } => {
                        format!("{prefix}429={rate}:{retry_after_secs}s")
                    }
                    FaultKind::Reset => format!("{prefix}reset={rate}"),
                    FaultKind::Truncate => format!("truncate={rate}"),
                    FaultKind::Slow(d) => format!("{prefix}slow={rate}:{}ms", d.as_millis()),
                    FaultKind::InvalidJson => format!("invalid-json={rate}"),
                });
            }
        }
        if let Some(cap) = self.cap {
            items.push(format!("cap={cap}"));
        }
        if let Some(seed) = self.seed {
            items.push(format!("seed={seed}"));
        }
        f.write_str(&items.join(","))
    }
}

impl<'de> Deserialize<'de> for Faults {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Faults, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Which API a request was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Query,
    Apiv6,
}

/// One drawn fault, with the extra randomness its answer needs (which 5xx, where to cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub variant: u64,
}

/// The seeded schedule the server draws from.
#[derive(Debug)]
pub(crate) struct Schedule {
    faults: Faults,
    seed: u64,
    /// How many times each request (by its hash) was seen: the attempt number of the next one.
    attempts: Mutex<HashMap<u64, u64>>,
}

impl Schedule {
    pub fn new(faults: Faults, world_seed: u64) -> Schedule {
        let seed = faults.seed.unwrap_or(world_seed);
        Schedule {
            faults,
            seed,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The point cap in force: the simulator's, or the spec's lower one.
    pub fn point_cap(&self, configured: u64) -> u64 {
        self.faults.cap.map_or(configured, |c| c.min(configured))
    }

    /// The fault (if any) for this attempt at the request identified by `parts`.
    pub fn draw(&self, api: Api, parts: &[&[u8]]) -> Option<Fault> {
        let list = match api {
            Api::Query => &self.faults.query,
            Api::Apiv6 => &self.faults.apiv6,
        };
        if list.is_empty() {
            return None;
        }
        let mut key = hash_str(self.seed, if api == Api::Query { "query" } else { "apiv6" });
        for part in parts {
            // Length first, so that ("ab", "c") and ("a", "bc") differ.
            key = mix(key ^ part.len() as u64);
            key = hash_bytes(key, part);
        }
        let attempt = {
            // A poisoned lock only means another request panicked mid-increment; the counts are
            // still usable.
            let mut attempts = self
                .attempts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let n = attempts.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        let h = mix(key ^ mix(attempt));
        let mut roll = (h % u64::from(PER_MILLION)) as u32;
        for (kind, rate) in list {
            if roll < *rate {
                return Some(Fault {
                    kind: *kind,
                    variant: mix(h),
                });
            }
            roll -= rate;
        }
        None
    }
}

fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The answer of a fault that replaces the real one (`None` for `slow` and `truncate`, which
/// alter the real answer instead).
pub(crate) fn answer(fault: Fault, api: Api, flavor: Flavor) -> Option<Response> {
    match (fault.kind, api) {
        (FaultKind::ServerError, Api::Query) => Some(query_server_error(fault.variant, flavor)),
        (FaultKind::ServerError, Api::Apiv6) => Some(apiv6_server_error(fault.variant)),
        (FaultKind::TooManyRequests { retry_after_secs }, api) => {
            let mut r = match (api, flavor) {
                (Api::Apiv6, _) => response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "application/json; charset=utf-8",
                    r#"{"class":"Client::TooManyRequests","message":"Too many requests, slow down"}"#,
                ),
                (Api::Query, Flavor::Ovh) => response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "text/plain; charset=utf-8",
                    "Too many requests",
                ),
                (Api::Query, Flavor::Opentsdb) => response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "application/json; charset=UTF-8",
                    r#"{"error":{"code":429,"message":"Too many requests","details":"Too many requests"}}"#,
                ),
            };
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Some(r)
        }
        (FaultKind::Reset, _) => Some(reset()),
        (FaultKind::InvalidJson, _) => Some(response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\
             <body><h1>We'll be back soon</h1><p>The metrics platform is being upgraded.</p></body></html>\n",
        )),
        (FaultKind::Slow(_) | FaultKind::Truncate, _) => None,
    }
}

/// 500, 502 or 503, each as the endpoint (or a gateway in front of it) writes it.
fn query_server_error(variant: u64, flavor: Flavor) -> Response {
    let (status, text) = match variant % 3 {
        // Worded so that it never contains OVH's "FETCH exceeded limit" marker: this one is
        // worth retrying as it is, not splitting.
        0 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Exception at 'FETCH' in section [TOP] (Storage backend unavailable, retry later)",
        ),
        1 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the storage is overloaded",
        ),
    };
    match flavor {
        Flavor::Ovh => response(status, "text/plain; charset=utf-8", text),
        Flavor::Opentsdb => {
            let body = serde_json::json!({"error": {
                "code": status.as_u16(),
                "message": text,
                "details": text,
            }});
            response(status, "application/json; charset=UTF-8", &body.to_string())
        }
    }
}

/// A gateway's HTML 503, or APIv6's own JSON 500.
fn apiv6_server_error(variant: u64) -> Response {
    if variant.is_multiple_of(2) {
        response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html",
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
        )
    } else {
        response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json; charset=utf-8",
            r#"{"class":"Server::InternalServerError","message":"Internal server error"}"#,
        )
    }
}

/// An answer whose body fails before its first byte: hyper then drops the connection with the
/// status line still unsent, so the client sees the connection closed without an answer, as
/// after a reset.
fn reset() -> Response {
    let stream = stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

fn response(status: StatusCode, content_type: &'static str, body: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The body stream of `inner` cut inside its first chunk, at a point `variant` chooses, then
/// ended cleanly or aborted (also by `variant`). Never empty and never whole, so the client
/// always holds a strict prefix of the document.
pub(crate) fn truncate<S>(inner: S, variant: u64) -> Body
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + Unpin + 'static,
{
    enum State<S> {
        First(S),
        Abort,
        Done,
    }
    let abort = variant.is_multiple_of(2);
    // 10 % to 90 % of the first chunk.
    let fraction = 0.1 + 0.8 * ((mix(variant) >> 11) as f64 / (1u64 << 53) as f64);
    let cut = stream::unfold(State::First(inner), move |state| async move {
        match state {
            State::First(mut inner) => {
                let chunk = match inner.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(never)) => match never {},
                    None => Bytes::new(),
                };
                let keep = ((chunk.len() as f64 * fraction) as usize)
                    .clamp(1, chunk.len().saturating_sub(1).max(1))
                    .min(chunk.len());
                let next = if abort { State::Abort } else { State::Done };
                Some((Ok(chunk.slice(..keep)), next))
            }
            State::Abort => {
                // Give the server time to send what was kept: aborting at once would drop the
                // still-buffered status line and bytes with the connection.
                tokio::time::sleep(FLUSH_BEFORE_ABORT).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "simulated truncated response",
                    )),
                    State::Done,
                ))
            }
            State::Done => None,
        }
    });
    Body::from_stream(cut)
}

#[cfg(test)]
mod tests;
