//! A small APIv6 for the client's tests, written from `reference/ovh-apiv6.md` alone (not the
//! simulator): checks signatures against the server clock or OAuth2 bearer tokens, answers lists,
//! objects and batch reads, and can refuse batches, lose objects or fail calls on demand.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use super::client::{Client, ClientOptions, Clock};
use super::sign::signature;
use super::Auth;
use crate::secret::Secret;

pub const AK: &str = "fake-application-key";
pub const AS: &str = "fake-application-SECRET";
pub const CK: &str = "fake-consumer-KEY";
pub const CLIENT_ID: &str = "fake-client";
pub const CLIENT_SECRET: &str = "fake-client-SECRET";
pub const SERVICE: &str = "pcc-37-187-228-180";
pub const TOKEN: &str = "fake-metrics-TOKEN";

/// How the fake answers `X-Ovh-Batch` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchMode {
    /// `[{key, value, error}]`, as OVH's console sees it.
    Answered,
    /// As an APIv6 without batch support: `1,2` is no id (400).
    Refused,
    /// 200 with something that is not a list of items.
    Garbage,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query below the server root, e.g. `/1.0/dedicatedCloud?x=y`.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn is_batch(&self) -> bool {
        self.header("x-ovh-batch") == Some(",")
    }
}

pub struct World {
    pub server_time: i64,
    /// The server clock follows this instead of `server_time` when set.
    pub clock: Option<Clock>,
    /// How far a timestamp may be from the server clock: `None` wants it exact (answering
    /// "Invalid signature" otherwise), `Some(secs)` answers "Query out of time" beyond that.
    pub time_window: Option<i64>,
    pub batch: BatchMode,
    /// Collection path (below `/1.0`) → id → object.
    pub objects: BTreeMap<String, BTreeMap<i64, Value>>,
    /// Ids that are listed but answer 404 when read (deleted in between).
    pub vanished: HashSet<i64>,
    /// Ids whose batch item carries an error (but that read fine alone).
    pub batch_item_errors: HashSet<i64>,
    /// Path (below `/1.0`, without query) → (status, content type, body) answered instead.
    pub overrides: HashMap<String, (u16, &'static str, String)>,
    /// OAuth2: lifetime of issued tokens, the tokens issued, and which is valid now.
    pub token_lifetime: i64,
    pub tokens_issued: usize,
    pub valid_bearer: Option<String>,
    pub seen: Vec<Seen>,
    queries: u64,
}

pub struct Fake {
    pub world: Arc<Mutex<World>>,
    pub root: String,
}

impl Fake {
    /// The API root, e.g. `http://127.0.0.1:1234/1.0`.
    pub fn base_url(&self) -> String {
        format!("{}/1.0", self.root)
    }

    pub fn token_url(&self) -> String {
        format!("{}/auth/oauth2/token", self.root)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.world.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.world.lock().unwrap().seen.clear();
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap())
    }

    /// Requests below `/1.0` other than `/auth/time`, as `METHOD target [batch]`.
    pub fn calls(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|s| s.target.starts_with("/1.0/") && s.target != "/1.0/auth/time")
            .map(|s| {
                format!(
                    "{} {}{}",
                    s.method,
                    &s.target[4..],
                    if s.is_batch() { " [batch]" } else { "" }
                )
            })
            .collect()
    }

    /// A client with a frozen clock at `local_time`, no pacing.
    pub async fn signed_client(&self, clock: Clock) -> Client {
        Client::connect_with(&self.base_url(), signed_auth(), options(clock))
            .await
            .unwrap()
    }
}

pub fn signed_auth() -> Auth {
    Auth::Signed {
        application_key: AK.into(),
        application_secret: Secret::new(AS),
        consumer_key: Secret::new(CK),
    }
}

pub fn options(clock: Clock) -> ClientOptions {
    ClientOptions {
        requests_per_second: 0.0,
        clock,
        retry: fast_retry(),
        ..ClientOptions::default()
    }
}

/// Retries that take milliseconds, so that tests of failing calls stay fast.
pub fn fast_retry() -> crate::domain::retry::RetryPolicy {
    crate::domain::retry::RetryPolicy {
        min_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
        max_retries: 2,
        total_delay: std::time::Duration::from_secs(1),
    }
}

/// A clock the test moves by hand.
pub fn manual_clock(start: i64) -> (Clock, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(start));
    let read = now.clone();
    (Arc::new(move || read.load(Ordering::SeqCst)), now)
}

/// One service with datacenters 20 (`datacenter20`) and 10 (`datacenter10`), `vms` VMs in
/// datacenter 10 (ids 1000..), two hosts and a filer in each, two shared filers, two users.
pub fn estate(vms: i64) -> World {
    let mut objects: BTreeMap<String, BTreeMap<i64, Value>> = BTreeMap::new();
    let sn = format!("/dedicatedCloud/{SERVICE}");
    let mut put = |collection: String, id: i64, value: Value| {
        objects.entry(collection).or_default().insert(id, value);
    };
    for dc in [20, 10] {
        put(
            format!("{sn}/datacenter"),
            dc,
            json!({"datacenterId": dc, "name": format!("datacenter{dc}"), "commercialName": "SDDC", "isRemovable": false, "unknownNewField": 1}),
        );
        let base = format!("{sn}/datacenter/{dc}");
        for h in 1..=2 {
            let id = dc * 100 + h;
            put(
                format!("{base}/host"),
                id,
                json!({"hostId": id, "name": format!("172.17.{dc}.{h}"), "profile": "L", "state": "delivered", "cpu": {"unit": "GHz", "value": 2.2}, "ram": {"unit": "GB", "value": 256}, "clusterName": null}),
            );
        }
        put(
            format!("{base}/filer"),
            dc * 10,
            json!({"filerId": dc * 10, "name": format!("pcc-0000{dc}"), "state": "delivered", "size": {"unit": "GB", "value": 3000}}),
        );
        put(format!("{base}/vm"), -1, Value::Null);
    }
    for v in 0..vms {
        let id = 1000 + v;
        put(
            format!("{sn}/datacenter/10/vm"),
            id,
            json!({"vmId": id, "moRef": format!("vm-{id}"), "powerState": "poweredOn", "name": format!("web-{v}"), "cpuNum": 2, "memoryMax": 4096}),
        );
    }
    for f in [2, 1] {
        put(
            format!("{sn}/filer"),
            f,
            json!({"filerId": f, "name": format!("pcc-shared-{f}"), "state": "delivered"}),
        );
    }
    put(
        format!("{sn}/user"),
        7,
        json!({"userId": 7, "login": "admin", "name": "admin", "state": "enabled"}),
    );
    put(
        format!("{sn}/user"),
        8,
        json!({"userId": 8, "login": "vscope-reader", "name": "reader", "state": "enabled"}),
    );
    // Placeholders (`-1: null`) only make empty collections exist.
    for c in objects.values_mut() {
        c.remove(&-1);
    }
    World {
        server_time: 0,
        clock: None,
        time_window: None,
        batch: BatchMode::Answered,
        objects,
        vanished: HashSet::new(),
        batch_item_errors: HashSet::new(),
        overrides: HashMap::new(),
        token_lifetime: 3600,
        tokens_issued: 0,
        valid_bearer: None,
        seen: Vec::new(),
        queries: 0,
    }
}

/// Serves `world` on 127.0.0.1 until the test ends.
pub async fn start(world: World) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let world = Arc::new(Mutex::new(world));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(world.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake { world, root }
}

fn json_answer(status: u16, query_id: &str, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("content-type", "application/json"),
            ("X-Ovh-QueryID", query_id),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut w = world.lock().unwrap();
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    w.seen.push(Seen {
        method: method.clone(),
        target: target.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    w.queries += 1;
    let qid = format!("FAKE.{}", w.queries);

    if uri.path() == "/auth/oauth2/token" {
        return token(&mut w, &headers, &body, &qid);
    }
    let Some(path) = uri.path().strip_prefix("/1.0") else {
        return json_answer(404, &qid, json!({"message": "Not found"}));
    };
    let now = w.clock.as_ref().map_or(w.server_time, |clock| clock());
    if path == "/auth/time" {
        return (StatusCode::OK, now.to_string()).into_response();
    }

    // Authentication: signed with the server's clock, or a valid bearer token.
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let full_url = format!("http://{host}{target}");
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(bearer) = header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
        if w.valid_bearer.as_deref() != Some(bearer) {
            return json_answer(
                401,
                &qid,
                json!({"class": "Client::Unauthorized", "message": "The token is expired"}),
            );
        }
    } else {
        let ts: i64 = header("x-ovh-timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let expected = signature(AS, CK, method.as_str(), &full_url, &body, ts);
        if header("x-ovh-application") != Some(AK) || header("x-ovh-consumer") != Some(CK) {
            return json_answer(
                403,
                &qid,
                json!({"errorCode": "INVALID_CREDENTIAL", "httpCode": "403 Forbidden", "message": "This credential does not exist"}),
            );
        }
        if w.time_window
            .is_some_and(|window| (ts - now).abs() > window)
        {
            return json_answer(
                400,
                &qid,
                json!({"class": "Client::BadRequest", "message": "Query out of time"}),
            );
        }
        let in_time = w.time_window.is_some() || ts == now;
        if !in_time || header("x-ovh-signature") != Some(expected.as_str()) {
            return json_answer(
                400,
                &qid,
                json!({"errorCode": "INVALID_SIGNATURE", "httpCode": "400 Bad Request", "message": "Invalid signature"}),
            );
        }
    }

    if let Some((status, content_type, text)) = w.overrides.get(path).cloned() {
        return (
            StatusCode::from_u16(status).unwrap(),
            [
                ("content-type", content_type),
                ("X-Ovh-QueryID", qid.as_str()),
            ],
            text,
        )
            .into_response();
    }

    if method == Method::POST {
        if let Some(user) = path
            .strip_suffix("/metricsToken")
            .and_then(|p| p.rsplit('/').next())
            .and_then(|id| id.parse::<i64>().ok())
        {
            let users = w.objects.get(&format!("/dedicatedCloud/{SERVICE}/user"));
            if users.is_some_and(|u| u.contains_key(&user)) {
                return json_answer(
                    200,
                    &qid,
                    json!({"token": TOKEN, "opentsdbEndpoint": "https://opentsdb.gra1-ovh.metrics.ovh.net", "warpEndpoint": "https://warp10.gra1-ovh.metrics.ovh.net"}),
                );
            }
        }
        return json_answer(
            404,
            &qid,
            json!({"class": "Client::NotFound", "message": "Not found"}),
        );
    }

    if path == "/dedicatedCloud" {
        return json_answer(200, &qid, json!([SERVICE]));
    }
    // A collection: its ids (`?name=` filters users by name).
    if let Some(collection) = w.objects.get(path) {
        let name = uri.query().and_then(|q| q.strip_prefix("name=")).map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .to_string()
        });
        let ids: Vec<i64> = collection
            .iter()
            .filter(|(_, v)| name.as_ref().is_none_or(|n| v["name"] == json!(n)))
            .map(|(id, _)| *id)
            .collect();
        return json_answer(200, &qid, json!(ids));
    }
    let Some((parent, last)) = path.rsplit_once('/') else {
        return json_answer(404, &qid, json!({"message": "Not found"}));
    };
    let Some(collection) = w.objects.get(parent) else {
        return json_answer(
            404,
            &qid,
            json!({"class": "Client::NotFound", "message": "Not found"}),
        );
    };
    let lookup = |id: i64| -> Option<Value> {
        (!w.vanished.contains(&id))
            .then(|| collection.get(&id).cloned())
            .flatten()
    };
    if header("x-ovh-batch") == Some(",") && last.contains(',') {
        match w.batch {
            BatchMode::Answered => {
                let items: Vec<Value> = last
                    .split(',')
                    .map(|key| {
                        let id: i64 = key.parse().unwrap_or(i64::MIN);
                        if w.batch_item_errors.contains(&id) {
                            return json!({"key": key, "value": null, "error": "Internal server error"});
                        }
                        match lookup(id) {
                            Some(v) => json!({"key": key, "value": v, "error": null}),
                            None => json!({"key": key, "value": null, "error": format!("The requested object ({key}) does not exist")}),
                        }
                    })
                    .collect();
                return json_answer(200, &qid, json!(items));
            }
            BatchMode::Garbage => return json_answer(200, &qid, json!({"status": "ok"})),
            BatchMode::Refused => {}
        }
    }
    match last.parse::<i64>().ok().and_then(lookup) {
        Some(v) => json_answer(200, &qid, v),
        None if last.parse::<i64>().is_err() => json_answer(
            400,
            &qid,
            json!({"class": "Client::BadRequest", "message": format!("Invalid id {last}")}),
        ),
        None => json_answer(
            404,
            &qid,
            json!({"class": "Client::NotFound", "message": format!("The requested object ({last}) does not exist")}),
        ),
    }
}

/// The client-credentials grant; the client authenticates with HTTP Basic.
fn token(w: &mut World, headers: &HeaderMap, body: &[u8], qid: &str) -> Response {
    let form = String::from_utf8_lossy(body);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorised = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Basic {basic}").as_str());
    if !form.contains("grant_type=client_credentials") || !form.contains("scope=all") {
        return json_answer(
            400,
            qid,
            json!({"error": "invalid_request", "error_description": "grant_type and scope required"}),
        );
    }
    if !authorised {
        return json_answer(
            401,
            qid,
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        );
    }
    w.tokens_issued += 1;
    let token = format!("bearer-{}", w.tokens_issued);
    w.valid_bearer = Some(token.clone());
    json_answer(
        200,
        qid,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": w.token_lifetime, "scope": "all"}),
    )
}
