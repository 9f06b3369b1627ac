//! The simulated metrics endpoint (`/api/…`), OpenTSDB 2.x as `reference/opentsdb.md` describes
//! it: `POST /api/query` behind basic auth with the read token, `GET /api/suggest` and
//! `GET /api/search/lookup`, in OVH's dialect (plain-text errors, the fetch cap as a 500) or stock
//! OpenTSDB's (JSON errors, 413), as [`Flavor`] says.
//!
//! Responses are written straight into byte chunks on a blocking thread and streamed, so a large
//! export is limited by the client, not by the simulator.

mod render;
mod request;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use chrono::Utc;

use super::faults::{self, Api};
use super::{AppState, FaultKind, Flavor};
use render::Plan;

/// Why a query is refused; rendered in the configured flavor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QueryError {
    BadRequest(String),
    NoSuchMetric(String),
    /// One sub-query would fetch more than the point cap.
    TooLarge {
        limit: u64,
    },
    Unauthorized,
    /// `GET /api/query`.
    GetNotSupported,
}

impl QueryError {
    fn into_response(self, flavor: Flavor) -> Response {
        let (status, text) = match (&self, flavor) {
            (QueryError::BadRequest(m), Flavor::Ovh) => {
                (StatusCode::BAD_REQUEST, format!("Invalid query: {m}"))
            }
            (QueryError::BadRequest(m), Flavor::Opentsdb) => (StatusCode::BAD_REQUEST, m.clone()),
            (QueryError::NoSuchMetric(m), Flavor::Ovh) => (
                StatusCode::BAD_REQUEST,
                format!("Invalid query: No such name for 'metrics': '{m}'"),
            ),
            (QueryError::NoSuchMetric(m), Flavor::Opentsdb) => (
                StatusCode::BAD_REQUEST,
                format!("No such name for 'metrics': '{m}'"),
            ),
            (QueryError::TooLarge { limit }, Flavor::Ovh) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Exception at 'FETCH' in section [TOP] (FETCH exceeded limit of {limit} datapoints)"
                ),
            ),
            (QueryError::TooLarge { limit }, Flavor::Opentsdb) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Sorry, you have attempted to fetch more than our maximum amount of {limit} data points. Please try filtering using more tags or decrease your time range."
                ),
            ),
            (QueryError::Unauthorized, _) => (StatusCode::UNAUTHORIZED, "Not authorized".to_string()),
            (QueryError::GetNotSupported, _) => (
                StatusCode::NOT_IMPLEMENTED,
                "Please use the POST version of queries".to_string(),
            ),
        };
        match flavor {
            Flavor::Ovh => text_response(status, text),
            Flavor::Opentsdb => {
                let body = serde_json::json!({"error": {
                    "code": status.as_u16(),
                    "message": text,
                    "details": text,
                }});
                json_response(status, body.to_string().into_bytes().into())
            }
        }
    }
}

fn text_response(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_response(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// Basic auth whose password is the read token; the user name is ignored, as OVH's proxy does.
fn authorized(st: &AppState, headers: &HeaderMap) -> Result<(), QueryError> {
    let token = st.world.credentials().token;
    let password = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|up| up.split_once(':').map(|(_, p)| p.to_string()));
    if password.as_deref() == Some(token.as_str()) {
        Ok(())
    } else {
        Err(QueryError::Unauthorized)
    }
}

/// `/api/query`: POST answers, GET is refused as OVH refuses it. Injected faults (see `faults`)
/// come before anything else, as they would from a gateway or an overloaded backend.
pub(crate) async fn query(
    State(st): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flavor = st.world.config().flavor;
    let fault = st
        .faults
        .draw(Api::Query, &[method.as_str().as_bytes(), &body]);
    if let Some(fault) = fault {
        tracing::debug!(kind = ?fault.kind, "Injecting a fault into /api/query.");
        if let FaultKind::Slow(delay) = fault.kind {
            tokio::time::sleep(delay).await;
        }
        if let Some(response) = faults::answer(fault, Api::Query, flavor) {
            return response;
        }
    }
    if method == Method::GET {
        return QueryError::GetNotSupported.into_response(flavor);
    }
    if method != Method::POST {
        let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return r;
    }
    let plan = authorized(&st, &headers)
        .and_then(|()| request::parse(&body, Utc::now().timestamp_millis(), flavor))
        .and_then(|req| Plan::new(st.world.clone(), req, flavor, st.point_cap()));
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return e.into_response(flavor),
    };
    // A small queue: the writer stays at most a few chunks ahead of the client.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        plan.write(|chunk| tx.blocking_send(Bytes::from(chunk)).is_ok());
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let body = match fault {
        Some(f) if f.kind == FaultKind::Truncate => faults::truncate(Box::pin(stream), f.variant),
        _ => Body::from_stream(stream),
    };
    json_response(StatusCode::OK, body)
}

#[derive(serde::Deserialize)]
pub(crate) struct SuggestParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    max: Option<usize>,
}

/// `GET /api/suggest?type=metrics|tagk|tagv&q=…&max=…`: substring match on OVH, prefix on stock.
pub(crate) async fn suggest(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<SuggestParams>,
) -> Response {
    let flavor = st.world.config().flavor;
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response(flavor);
    }
    let world = &st.world;
    let candidates: BTreeSet<String> = match p.kind.as_deref() {
        Some("metrics") => world.metric_names().iter().cloned().collect(),
        Some("tagk") | Some("tagv") => {
            let keys = p.kind.as_deref() == Some("tagk");
            world
                .metric_names()
                .iter()
                .filter_map(|m| world.series_defs(m))
                .flatten()
                .flat_map(|d| d.series.tags.iter())
                .map(|(k, v)| if keys { k.clone() } else { v.clone() })
                .collect()
        }
        other => {
            let msg = format!(
                "Invalid 'type' parameter:{}",
                other.map_or(String::new(), |t| format!(" {t}"))
            );
            return QueryError::BadRequest(msg).into_response(flavor);
        }
    };
    let q = p.q.unwrap_or_default();
    let found: Vec<String> = candidates
        .into_iter()
        .filter(|c| match flavor {
            Flavor::Ovh => c.contains(&q),
            Flavor::Opentsdb => c.starts_with(&q),
        })
        .take(p.max.unwrap_or(25))
        .collect();
    let body = serde_json::to_vec(&found).unwrap_or_default();
    json_response(StatusCode::OK, body.into())
}

#[derive(serde::Deserialize)]
pub(crate) struct LookupParams {
    m: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/search/lookup?m=metric{tag=value,…}`: the series a metric and exact tags (or `*`)
/// select, with a made-up but stable `tsuid`.
pub(crate) async fn lookup(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<LookupParams>,
) -> Response {
    let flavor = st.world.config().flavor;
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response(flavor);
    }
    let m = p.m.unwrap_or_default();
    let (metric, tags) = match m.split_once('{') {
        Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
        None => (m.as_str(), ""),
    };
    let wanted: Vec<(&str, &str)> = tags
        .split(',')
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.split_once('='))
        .collect();
    let Some(defs) = st.world.series_defs(metric) else {
        return QueryError::NoSuchMetric(metric.to_string()).into_response(flavor);
    };
    let limit = p.limit.unwrap_or(25);
    let matching: Vec<_> = defs
        .iter()
        .filter(|d| {
            wanted.iter().all(|(k, v)| {
                d.series
                    .tags
                    .get(*k)
                    .is_some_and(|actual| *v == "*" || actual == v)
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = matching
        .iter()
        .take(limit)
        .map(|d| {
            let id = super::world::hash_str(0, &format!("{}{:?}", d.series.metric, d.series.tags));
            serde_json::json!({
                "tsuid": format!("{id:016X}"),
                "metric": d.series.metric,
                "tags": d.series.tags,
            })
        })
        .collect();
    let body = serde_json::json!({
        "type": "LOOKUP",
        "metric": metric,
        "tags": wanted.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "limit": limit,
        "time": 0,
        "results": results,
        "startIndex": 0,
        "totalResults": matching.len(),
    });
    json_response(StatusCode::OK, body.to_string().into_bytes().into())
}

#[cfg(test)]
mod tests;
