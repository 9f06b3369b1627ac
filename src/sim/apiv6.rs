//! The simulated OVH APIv6 (`/1.0/…`): the `dedicatedCloud` reads vScope export uses, batch reads
//! (`X-Ovh-Batch`), the metrics token, and the signed-request checks of `reference/ovh-apiv6.md`
//! (application key, consumer key, clock, signature over the full URL and exact body). Errors
//! come in OVH's two body shapes and every answer carries an `X-Ovh-QueryID` header.
//!
//! Routing is done by hand over the path segments because a batch read puts several ids, joined
//! by the batch separator, in the one segment a router would type as a single id.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::faults;
use super::world::SimService;
use super::{AppState, FaultKind};
use crate::ovh::batch::HasId;
use crate::ovh::model::{BatchItem, MetricsToken};
use crate::ovh::sign::signature;

/// `GET /1.0/auth/time`: the server clock as a bare integer, unauthenticated.
pub(crate) async fn auth_time(State(st): State<Arc<AppState>>, uri: Uri) -> Response {
    if let Some(response) = injected_fault(&st, &Method::GET, &uri, b"").await {
        return response;
    }
    let now = server_now(&st);
    with_query_id(&st, json_response(StatusCode::OK, &now))
}

/// Every other `/1.0/…` call.
pub(crate) async fn handle(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = injected_fault(&st, &method, &uri, &body).await {
        return response;
    }
    let response = match authenticate(&st, &method, &uri, &headers, &body) {
        Err(e) => e.into_response(),
        Ok(()) => match route(&st, &method, &uri, &headers) {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    with_query_id(&st, response)
}

/// The answer of an injected fault that replaces the real one, after its delay if it is slow.
/// The request is identified by method, target and body: not by the signature headers, which
/// change with the clock on every attempt.
async fn injected_fault(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Option<Response> {
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let fault = st.faults.draw(
        faults::Api::Apiv6,
        &[method.as_str().as_bytes(), target.as_bytes(), body],
    )?;
    tracing::debug!(kind = ?fault.kind, target, "Injecting a fault into APIv6.");
    if let FaultKind::Slow(delay) = fault.kind {
        tokio::time::sleep(delay).await;
    }
    let response = faults::answer(fault, faults::Api::Apiv6, st.world.config().flavor)?;
    // APIv6 itself numbers its answers; a gateway's HTML page or a dropped connection does not.
    let from_api = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    Some(if from_api {
        with_query_id(st, response)
    } else {
        response
    })
}

fn server_now(st: &AppState) -> i64 {
    st.world.apiv6_now()
}

/// An APIv6 error, in one of OVH's two body shapes.
#[derive(Debug)]
enum ApiError {
    /// Older shape, still used for authentication: `{errorCode, httpCode, message}`.
    Auth {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Newer shape: `{class, message}`.
    Class {
        status: StatusCode,
        class: &'static str,
        message: String,
    },
}

impl ApiError {
    fn auth(status: StatusCode, code: &'static str, message: &str) -> ApiError {
        ApiError::Auth {
            status,
            code,
            message: message.to_string(),
        }
    }

    fn not_found(message: String) -> ApiError {
        ApiError::Class {
            status: StatusCode::NOT_FOUND,
            class: "Client::NotFound",
            message,
        }
    }

    fn no_object(field: &str, value: &str) -> ApiError {
        ApiError::not_found(format!(
            "The requested object ({field} = {value}) does not exist"
        ))
    }

    fn invalid_url() -> ApiError {
        ApiError::not_found("Got an invalid (or empty) URL".to_string())
    }

    fn not_long(field: &str, value: &str) -> ApiError {
        ApiError::Class {
            status: StatusCode::BAD_REQUEST,
            class: "Client::BadRequest",
            message: format!("[{field}] Given data ({value}) is not valid for type long"),
        }
    }

    fn message(&self) -> &str {
        match self {
            ApiError::Auth { message, .. } | ApiError::Class { message, .. } => message,
        }
    }

    fn into_response(self) -> Response {
        match self {
            ApiError::Auth {
                status,
                code,
                message,
            } => {
                let http_code = format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                );
                let body = serde_json::json!({
                    "errorCode": code,
                    "httpCode": http_code,
                    "message": message,
                });
                json_response(status, &body)
            }
            ApiError::Class {
                status,
                class,
                message,
            } => json_response(
                status,
                &serde_json::json!({"class": class, "message": message}),
            ),
        }
    }
}

/// Checks the AK/AS/CK signature scheme of `reference/ovh-apiv6.md`.
fn authenticate(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let creds = st.world.credentials();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(ak) = header("x-ovh-application") else {
        return Err(ApiError::auth(
            StatusCode::UNAUTHORIZED,
            "NOT_AUTHENTICATED",
            "You must login first",
        ));
    };
    if ak != creds.application_key {
        return Err(ApiError::auth(
            StatusCode::FORBIDDEN,
            "INVALID_KEY",
            "Invalid application key",
        ));
    }
    match header("x-ovh-consumer") {
        Some(ck) if ck == creds.consumer_key => {}
        _ => {
            return Err(ApiError::auth(
                StatusCode::FORBIDDEN,
                "INVALID_CREDENTIAL",
                "This credential does not exist",
            ))
        }
    }
    let Some(ts) = header("x-ovh-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return Err(ApiError::auth(
            StatusCode::BAD_REQUEST,
            "INVALID_TIMESTAMP",
            "Invalid timestamp",
        ));
    };
    // A timestamp outside the window is refused as OVH refuses it, in the newer body shape.
    let tolerance = i64::from(st.world.config().timestamp_tolerance_secs);
    if (ts - server_now(st)).abs() > tolerance {
        return Err(ApiError::Class {
            status: StatusCode::BAD_REQUEST,
            class: "Client::BadRequest",
            message: "Query out of time".to_string(),
        });
    }
    // The signature covers the URL exactly as the client sent it, which a server only sees as the
    // Host header plus the request target.
    let host = header("host").unwrap_or_default();
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let full_url = format!("http://{host}{target}");
    let expected = signature(
        &creds.application_secret,
        &creds.consumer_key,
        method.as_str(),
        &full_url,
        body,
        ts,
    );
    if header("x-ovh-signature") != Some(expected.as_str()) {
        return Err(ApiError::auth(
            StatusCode::BAD_REQUEST,
            "INVALID_SIGNATURE",
            "Invalid signature",
        ));
    }
    Ok(())
}

fn route(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = uri.path().strip_prefix("/1.0/").unwrap_or_default();
    let segments: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Without batch reads the header is ignored, so the joined ids are read as one id.
    let batch = headers
        .get("x-ovh-batch")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && st.world.config().batch_reads);
    let world = &st.world;
    let services = world.services();
    let service = |sn: &str| {
        services
            .iter()
            .find(|s| s.inventory.service_name == sn)
            .ok_or_else(|| ApiError::no_object("serviceName", sn))
    };
    let get = *method == Method::GET;
    let post = *method == Method::POST;

    match seg.as_slice() {
        ["dedicatedCloud"] if get => {
            let names: Vec<&str> = services
                .iter()
                .map(|s| s.inventory.service_name.as_str())
                .collect();
            Ok(ok_json(&names))
        }
        ["dedicatedCloud", sn] if get => {
            batched(batch, sn, |key| service(key).map(|s| to_value(&s.service)))
        }
        ["dedicatedCloud", sn, "datacenter"] if get => {
            let ids: Vec<i64> = service(sn)?
                .inventory
                .datacenters
                .iter()
                .map(|d| d.datacenter.datacenter_id)
                .collect();
            Ok(ok_json(&ids))
        }
        ["dedicatedCloud", sn, "datacenter", dc] if get => {
            let s = service(sn)?;
            batched(batch, dc, |key| {
                datacenter(s, key).map(|d| to_value(&d.datacenter))
            })
        }
        ["dedicatedCloud", sn, "datacenter", dc, kind] if get => {
            let d = datacenter(service(sn)?, dc)?;
            let ids: Vec<i64> = match *kind {
                "host" => d.hosts.iter().map(|h| h.host_id).collect(),
                "vm" => d.vms.iter().map(|v| v.vm_id).collect(),
                "filer" => d.filers.iter().map(|f| f.filer_id).collect(),
                _ => return Err(ApiError::invalid_url()),
            };
            Ok(ok_json(&ids))
        }
        ["dedicatedCloud", sn, "datacenter", dc, kind, id] if get => {
            let d = datacenter(service(sn)?, dc)?;
            match *kind {
                "host" => batched(batch, id, |key| by_id(&d.hosts, "hostId", key)),
                "vm" => batched(batch, id, |key| by_id(&d.vms, "vmId", key)),
                "filer" => batched(batch, id, |key| by_id(&d.filers, "filerId", key)),
                _ => Err(ApiError::invalid_url()),
            }
        }
        ["dedicatedCloud", sn, "filer"] if get => {
            let ids: Vec<i64> = service(sn)?
                .inventory
                .filers
                .iter()
                .map(|f| f.filer_id)
                .collect();
            Ok(ok_json(&ids))
        }
        ["dedicatedCloud", sn, "filer", id] if get => {
            let s = service(sn)?;
            batched(batch, id, |key| by_id(&s.inventory.filers, "filerId", key))
        }
        ["dedicatedCloud", sn, "user"] if get => {
            let name = query_param(uri, "name");
            let ids: Vec<i64> = service(sn)?
                .users
                .iter()
                .filter(|u| name.as_deref().is_none_or(|n| u.name == n))
                .map(|u| u.user_id)
                .collect();
            Ok(ok_json(&ids))
        }
        ["dedicatedCloud", sn, "user", id] if get => {
            let s = service(sn)?;
            batched(batch, id, |key| by_id(&s.users, "userId", key))
        }
        ["dedicatedCloud", sn, "user", id, "metricsToken"] if post => {
            let s = service(sn)?;
            let user_id = long("userId", id)?;
            if !s.users.iter().any(|u| u.user_id == user_id) {
                return Err(ApiError::no_object("userId", id));
            }
            // The endpoints point back at this server, as reached by the client.
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let token = MetricsToken {
                token: world.credentials().token,
                opentsdb_endpoint: format!("http://{host}"),
                warp_endpoint: Some(format!("http://{host}")),
            };
            Ok(ok_json(&token))
        }
        _ => Err(ApiError::invalid_url()),
    }
}

/// A datacenter of `s` by its id as written in the path.
fn datacenter<'a>(
    s: &'a SimService,
    dc: &str,
) -> Result<&'a crate::ovh::inventory::DatacenterInventory, ApiError> {
    let id = long("datacenterId", dc)?;
    s.inventory
        .datacenters
        .iter()
        .find(|d| d.datacenter.datacenter_id == id)
        .ok_or_else(|| ApiError::no_object("datacenterId", dc))
}

fn long(field: &str, value: &str) -> Result<i64, ApiError> {
    value.parse().map_err(|_| ApiError::not_long(field, value))
}

/// One object, or with `X-Ovh-Batch: <sep>` one `{key, value, error}` item per key of `keys`.
fn batched(
    batch: Option<&str>,
    keys: &str,
    one: impl Fn(&str) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    match batch {
        None => one(keys).map(|v| ok_json(&v)),
        Some(sep) => {
            let items: Vec<BatchItem<Value>> = keys
                .split(sep)
                .map(|key| match one(key) {
                    Ok(value) => BatchItem {
                        key: key.to_string(),
                        value: Some(value),
                        error: None,
                    },
                    Err(e) => BatchItem {
                        key: key.to_string(),
                        value: None,
                        error: Some(e.message().to_string()),
                    },
                })
                .collect();
            Ok(ok_json(&items))
        }
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(k) == name).then(|| decode(v))
    })
}

/// The object of `items` whose id is `key`, as JSON, or OVH's "does not exist" answer.
fn by_id<T: HasId + Serialize>(items: &[T], field: &str, key: &str) -> Result<Value, ApiError> {
    let id = long(field, key)?;
    items
        .iter()
        .find(|o| o.id() == id)
        .map(to_value)
        .ok_or_else(|| ApiError::no_object(field, key))
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Models are plain structs of strings and numbers: serializing them cannot fail.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ok_json<T: Serialize + ?Sized>(v: &T) -> Response {
    json_response(StatusCode::OK, v)
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
    // Same reason as `to_value`: our models and `Value`s always serialize.
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Adds OVH's per-request id, which users quote to OVH support.
fn with_query_id(st: &AppState, mut response: Response) -> Response {
    let n = st.query_seq.fetch_add(1, Ordering::Relaxed);
    let id = format!(
        "EU.ext-sim.{:08x}.{n}.{:04x}",
        st.world.config().seed,
        n % 0xffff
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-ovh-queryid", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::super::test_server::TestServer;
    use super::super::{SimConfig, METRICS_USER};
    use crate::ovh::model::{Datacenter, Vm};
    use crate::ovh::sign::signature;
    use reqwest::Method;

    struct Call {
        status: u16,
        query_id: Option<String>,
        json: serde_json::Value,
    }

    /// Sends a request signed exactly as the official clients sign it.
    async fn signed(
        server: &TestServer,
        method: Method,
        path: &str,
        body: &str,
        tweak: impl FnOnce(&mut Vec<(String, String)>),
    ) -> Call {
        signed_but_send(server, method, path, body, body, tweak).await
    }

    /// Signs `body` but sends `sent`.
    async fn signed_but_send(
        server: &TestServer,
        method: Method,
        path: &str,
        body: &str,
        sent: &str,
        tweak: impl FnOnce(&mut Vec<(String, String)>),
    ) -> Call {
        let creds = server.world.credentials();
        let url = server.url(&format!("/1.0{path}"));
        let time_url = server.url("/1.0/auth/time");
        let now: i64 = server
            .client
            .get(&time_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap();
        let sig = signature(
            &creds.application_secret,
            &creds.consumer_key,
            method.as_str(),
            &url,
            body.as_bytes(),
            now,
        );
        let mut headers = vec![
            ("X-Ovh-Application".to_string(), creds.application_key),
            ("X-Ovh-Consumer".to_string(), creds.consumer_key),
            ("X-Ovh-Timestamp".to_string(), now.to_string()),
            ("X-Ovh-Signature".to_string(), sig),
        ];
        tweak(&mut headers);
        let mut req = server.client.request(method, &url).body(sent.to_string());
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let query_id = resp
            .headers()
            .get("x-ovh-queryid")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.bytes().await.unwrap();
        Call {
            status,
            query_id,
            json: serde_json::from_slice(&bytes).unwrap(),
        }
    }

    async fn get(server: &TestServer, path: &str) -> Call {
        signed(server, Method::GET, path, "", |_| {}).await
    }

    fn config() -> SimConfig {
        SimConfig {
            seed: 3,
            datacenters: 2,
            hosts: 2,
            vms: 5,
            filers: 2,
            // The server clock is ahead: only clients that use /auth/time get in.
            clock_offset_secs: 500,
            ..SimConfig::default()
        }
    }

    #[tokio::test]
    async fn signed_requests_walk_the_inventory() {
        let server = TestServer::start(config()).await;
        let services = get(&server, "/dedicatedCloud").await;
        assert_eq!(services.status, 200);
        assert!(services.query_id.is_some());
        let sn = services.json[0].as_str().unwrap().to_string();
        assert!(sn.starts_with("pcc-"), "{sn}");

        let dcs = get(&server, &format!("/dedicatedCloud/{sn}/datacenter")).await;
        let dc_id = dcs.json[0].as_i64().unwrap();
        let dc: Datacenter = serde_json::from_value(
            get(&server, &format!("/dedicatedCloud/{sn}/datacenter/{dc_id}"))
                .await
                .json,
        )
        .unwrap();
        assert_eq!(dc.datacenter_id, dc_id);
        assert!(dc.name.starts_with("datacenter"));

        let vm_ids = get(
            &server,
            &format!("/dedicatedCloud/{sn}/datacenter/{dc_id}/vm"),
        )
        .await;
        let ids: Vec<i64> = serde_json::from_value(vm_ids.json).unwrap();
        assert_eq!(ids.len(), 5);
        let vm: Vm = serde_json::from_value(
            get(
                &server,
                &format!("/dedicatedCloud/{sn}/datacenter/{dc_id}/vm/{}", ids[0]),
            )
            .await
            .json,
        )
        .unwrap();
        assert_eq!(vm.vm_id, ids[0]);
        assert!(vm.mo_ref.starts_with("vm-"));

        let missing = get(
            &server,
            &format!("/dedicatedCloud/{sn}/datacenter/{dc_id}/vm/1"),
        )
        .await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json["class"], "Client::NotFound");
        assert!(missing.query_id.is_some());
    }

    #[tokio::test]
    async fn batch_reads_answer_one_item_per_key() {
        let server = TestServer::start(config()).await;
        let inv = server.world.inventory(chrono::Utc::now());
        let s = &inv.services[0];
        let dc = &s.datacenters[0];
        let ids: Vec<String> = dc.vms.iter().map(|v| v.vm_id.to_string()).collect();
        let path = format!(
            "/dedicatedCloud/{}/datacenter/{}/vm/{},424242",
            s.service_name,
            dc.datacenter.datacenter_id,
            ids.join(",")
        );
        let call = get(&server, &path).await;
        // Without the batch header the joined ids are not a long.
        assert_eq!(call.status, 400);

        let creds = server.world.credentials();
        let url = server.url(&format!("/1.0{path}"));
        let now: i64 = server
            .client
            .get(server.url("/1.0/auth/time"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap();
        let sig = signature(
            &creds.application_secret,
            &creds.consumer_key,
            "GET",
            &url,
            b"",
            now,
        );
        let resp = server
            .client
            .get(&url)
            .header("X-Ovh-Application", &creds.application_key)
            .header("X-Ovh-Consumer", &creds.consumer_key)
            .header("X-Ovh-Timestamp", now.to_string())
            .header("X-Ovh-Signature", sig)
            .header("X-Ovh-Batch", ",")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(items.len(), ids.len() + 1);
        for (item, vm) in items.iter().zip(&dc.vms) {
            assert_eq!(item["key"], vm.vm_id.to_string());
            let value: Vm = serde_json::from_value(item["value"].clone()).unwrap();
            assert_eq!(&value, vm);
            assert!(item["error"].is_null());
        }
        let last = items.last().unwrap();
        assert_eq!(last["key"], "424242");
        assert!(last["value"].is_null() && last["error"].is_string());
    }

    #[tokio::test]
    async fn bad_credentials_signatures_and_clocks_are_refused() {
        let server = TestServer::start(config()).await;
        let sig_of =
            |h: &[(String, String)], name: &str| h.iter().position(|(k, _)| k == name).unwrap();

        let bad_key = signed(&server, Method::GET, "/dedicatedCloud", "", |h| {
            let i = sig_of(h, "X-Ovh-Application");
            h[i].1 = "nope".into();
        })
        .await;
        assert_eq!(bad_key.status, 403);
        assert_eq!(bad_key.json["errorCode"], "INVALID_KEY");

        let bad_ck = signed(&server, Method::GET, "/dedicatedCloud", "", |h| {
            let i = sig_of(h, "X-Ovh-Consumer");
            h[i].1 = "nope".into();
        })
        .await;
        assert_eq!(bad_ck.status, 403);
        assert_eq!(bad_ck.json["errorCode"], "INVALID_CREDENTIAL");

        let bad_sig = signed(&server, Method::GET, "/dedicatedCloud", "", |h| {
            let i = sig_of(h, "X-Ovh-Signature");
            h[i].1 = "$1$0000000000000000000000000000000000000000".into();
        })
        .await;
        assert_eq!(bad_sig.status, 400);
        assert_eq!(bad_sig.json["errorCode"], "INVALID_SIGNATURE");
        assert!(bad_sig.query_id.is_some());

        // Signed with the local clock instead of the server's: 500 s off.
        let local = chrono::Utc::now().timestamp();
        let creds = server.world.credentials();
        let url = server.url("/1.0/dedicatedCloud");
        let stale = signed(&server, Method::GET, "/dedicatedCloud", "", |h| {
            let i = sig_of(h, "X-Ovh-Timestamp");
            h[i].1 = local.to_string();
            let i = sig_of(h, "X-Ovh-Signature");
            h[i].1 = signature(
                &creds.application_secret,
                &creds.consumer_key,
                "GET",
                &url,
                b"",
                local,
            );
        })
        .await;
        assert_eq!(stale.status, 400);
        assert_eq!(stale.json["class"], "Client::BadRequest");
        assert_eq!(stale.json["message"], "Query out of time");

        let anonymous = server
            .client
            .get(server.url("/1.0/dedicatedCloud"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }

    #[tokio::test]
    async fn the_timestamp_window_and_batch_reads_follow_the_config() {
        let server = TestServer::start(SimConfig {
            timestamp_tolerance_secs: 30,
            batch_reads: false,
            ..config()
        })
        .await;
        let creds = server.world.credentials();
        let url = server.url("/1.0/dedicatedCloud");
        let aged = |secs: i64| {
            let creds = creds.clone();
            let url = url.clone();
            move |h: &mut Vec<(String, String)>| {
                let ts = h[2].1.parse::<i64>().unwrap() - secs;
                h[2].1 = ts.to_string();
                h[3].1 = signature(
                    &creds.application_secret,
                    &creds.consumer_key,
                    "GET",
                    &url,
                    b"",
                    ts,
                );
            }
        };
        // A second of slack each way for the clock ticking between the two requests.
        let fresh = signed(&server, Method::GET, "/dedicatedCloud", "", aged(29 - 1)).await;
        assert_eq!(fresh.status, 200, "{}", fresh.json);
        let stale = signed(&server, Method::GET, "/dedicatedCloud", "", aged(31 + 1)).await;
        assert_eq!(stale.status, 400);
        assert_eq!(stale.json["class"], "Client::BadRequest");
        assert_eq!(stale.json["message"], "Query out of time");

        // Refused batch reads: the joined ids are no id, with or without the header.
        let inv = server.world.inventory(chrono::Utc::now());
        let (s, dc) = (&inv.services[0], &inv.services[0].datacenters[0]);
        let path = format!(
            "/dedicatedCloud/{}/datacenter/{}/vm/{},{}",
            s.service_name, dc.datacenter.datacenter_id, dc.vms[0].vm_id, dc.vms[1].vm_id
        );
        let batch = signed(&server, Method::GET, &path, "", |h| {
            h.push(("X-Ovh-Batch".into(), ",".into()));
        })
        .await;
        assert_eq!(batch.status, 400);
    }

    #[tokio::test]
    async fn the_metrics_user_gets_a_token_for_this_server() {
        let server = TestServer::start(config()).await;
        let sn = server.world.inventory(chrono::Utc::now()).services[0]
            .service_name
            .clone();
        let ids = get(
            &server,
            &format!("/dedicatedCloud/{sn}/user?name={METRICS_USER}"),
        )
        .await;
        let ids: Vec<i64> = serde_json::from_value(ids.json).unwrap();
        assert_eq!(ids.len(), 1);
        let user = get(&server, &format!("/dedicatedCloud/{sn}/user/{}", ids[0])).await;
        assert_eq!(user.json["login"], METRICS_USER);

        // The body is signed too: a different body than the one signed is refused.
        let path = format!("/dedicatedCloud/{sn}/user/{}/metricsToken", ids[0]);
        let tampered = signed_but_send(&server, Method::POST, &path, "{}", "{ }", |_| {}).await;
        assert_eq!(tampered.status, 400);
        assert_eq!(tampered.json["errorCode"], "INVALID_SIGNATURE");
        let token = signed(&server, Method::POST, &path, "{}", |_| {}).await;
        assert_eq!(token.status, 200, "{}", token.json);
        assert_eq!(token.json["token"], server.world.credentials().token);
        assert_eq!(
            token.json["opentsdbEndpoint"],
            format!("http://{}", server.addr)
        );
    }
}
