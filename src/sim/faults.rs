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
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream::{self, Stream, StreamExt};

use crate::domain::simulator::{FaultKind, Faults, Flavor, PER_MILLION};

use super::world::{hash_str, mix};

/// How long a truncated answer waits between its last byte and dropping the connection.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(20);

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
