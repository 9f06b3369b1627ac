//! The APIv6 HTTP client: signs every request with the server's clock (or carries an OAuth2 bearer
//! token), paces and bounds its requests, and turns error answers into [`OvhError`]s that name the
//! call and the query id. A request is signed as it leaves, once it has its turn and its place in
//! flight, so a long queue never makes its timestamp stale. Transient failures (network errors,
//! 408, 429 after its `Retry-After`, 5xx) are tried again with exponential backoff and jitter
//! within the [`RetryPolicy`] of [`ClientOptions`]; other 4xx never are, except "Query out of
//! time", tried once more after reading the server clock again. Reading many objects (batch
//! reads) is in `batch`, the inventory snapshot in `inventory`.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

pub use super::clock::{system_clock, Clock, VirtualClock};
use super::error::QUERY_ID_HEADER;
use super::model::{MetricsToken, User};
use super::oauth2::TokenCache;
use super::sign::signature;
use super::throttle::Throttle;
use super::Auth;
use crate::domain::retry::{retry_after, RetryPolicy};
use crate::secret::Secret;

pub use super::error::OvhError;

/// The official clients' (python-ovh, go-ovh) request timeout: some dedicatedCloud calls are slow
/// on OVH's side, and giving up earlier than the tools users know would fail calls they do not.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Requests in flight at once per client. OVH documents no limit; its staff call about 60
/// requests/min per consumer key safe. Eight keeps latency hidden while batch reads keep the
/// request count low, without a burst that looks like abuse.
pub const MAX_IN_FLIGHT: usize = 8;

/// Sustained requests per second per client (see [`Throttle`]). With batch reads a large estate
/// is read in a few dozen requests, well under OVH staff's "about 60/min is safe"; when batch
/// reads are refused every object is one request, and this keeps that fallback at half the 20/s
/// default of OVH's own tooling.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

/// Requests that may start at once before the sustained rate applies.
pub const DEFAULT_BURST: u32 = 20;

/// Ids per batch read: OVH's own control panel reads 40-50 ids per call.
pub const BATCH_SIZE: usize = 40;

/// Characters escaped in a path segment or query value: everything but RFC 3986's unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` escaped for use as one path segment or query value.
pub(crate) fn escape(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// How a client behaves; [`ClientOptions::default`] is what `connect` uses.
#[derive(Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub max_in_flight: usize,
    /// 0 disables pacing.
    pub requests_per_second: f64,
    pub burst: u32,
    pub batch_size: usize,
    pub clock: Clock,
    /// A clock shared with the simulator in place of real time: pacing moves it instead of
    /// sleeping, and signatures read it instead of `clock`. `None` (the default): real time.
    pub virtual_clock: Option<VirtualClock>,
    /// When and how often a transient failure is tried again (the job's `[source.retry]`).
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: MAX_IN_FLIGHT,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            burst: DEFAULT_BURST,
            batch_size: BATCH_SIZE,
            clock: system_clock(),
            virtual_clock: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("requests_per_second", &self.requests_per_second)
            .field("burst", &self.burst)
            .field("batch_size", &self.batch_size)
            .field("virtual_clock", &self.virtual_clock.is_some())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A connected APIv6 client. Cheap to clone; clones share the clock delta, the token, the pacing
/// and what was learnt about batch reads.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base_url: String,
    auth: AuthState,
    clock: Clock,
    in_flight: Semaphore,
    throttle: Throttle,
    retry: RetryPolicy,
    pub(crate) batch_size: usize,
    /// Cleared for good once the endpoint answers a batch read with something else.
    pub(crate) batch_works: AtomicBool,
}

enum AuthState {
    Signed {
        application_key: String,
        application_secret: Secret,
        consumer_key: Secret,
        /// `server clock - local clock`, in seconds: read at connect, and again when the API
        /// answers that a request's timestamp is out of its window.
        delta: AtomicI64,
    },
    OAuth2(TokenCache),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.inner.auth {
            AuthState::Signed {
                application_key,
                delta,
                ..
            } => format!(
                "signed (application key {application_key}, clock delta {}s)",
                delta.load(Ordering::Relaxed)
            ),
            AuthState::OAuth2(cache) => format!("OAuth2 ({})", cache.describe()),
        };
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// A successful answer.
pub(crate) struct Answer {
    pub body: Bytes,
    pub query_id: Option<String>,
    pub url: String,
}

impl Client {
    /// A client for `base_url` (e.g. `https://eu.api.ovh.com/1.0`); reads the server clock once
    /// (`GET /auth/time`) for signed requests, or obtains the OAuth2 token.
    pub async fn connect(base_url: &str, auth: Auth) -> Result<Client, OvhError> {
        Client::connect_with(base_url, auth, ClientOptions::default()).await
    }

    /// [`Client::connect`] with explicit options (timeout, pacing, clock).
    pub async fn connect_with(
        base_url: &str,
        auth: Auth,
        options: ClientOptions,
    ) -> Result<Client, OvhError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let mut http = reqwest::Client::builder();
        if base_url.starts_with("http://") {
            // Plain http (accepted for loopback only) verifies no certificate: spare loading the
            // system's roots.
            http = http.tls_certs_only([]);
        }
        let http = http
            .timeout(options.timeout)
            .user_agent(concat!("vscope-export/", env!("CARGO_PKG_VERSION")))
            // APIv6 does not redirect; following one would carry X-Ovh-Consumer (a secret that
            // reqwest does not know to strip) to another host, and break the signature anyway.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| OvhError::Transport {
                method: "CONNECT".into(),
                url: base_url.clone(),
                source: source.without_url(),
            })?;
        let (auth, needs_clock) = match auth {
            Auth::Signed {
                application_key,
                application_secret,
                consumer_key,
            } => (
                AuthState::Signed {
                    application_key,
                    application_secret,
                    consumer_key,
                    delta: AtomicI64::new(0),
                },
                true,
            ),
            Auth::OAuth2 {
                client_id,
                client_secret,
                token_url,
            } => (
                AuthState::OAuth2(TokenCache::new(client_id, client_secret, token_url)),
                false,
            ),
        };
        let (clock, throttle) = match options.virtual_clock {
            Some(virtual_clock) => (
                virtual_clock.clock(),
                Throttle::on_virtual_clock(
                    options.requests_per_second,
                    options.burst,
                    virtual_clock,
                ),
            ),
            None => (
                options.clock,
                Throttle::new(options.requests_per_second, options.burst),
            ),
        };
        let inner = Inner {
            http,
            base_url,
            auth,
            clock,
            in_flight: Semaphore::new(options.max_in_flight.max(1)),
            throttle,
            retry: options.retry,
            batch_size: options.batch_size.max(1),
            batch_works: AtomicBool::new(true),
        };
        if needs_clock {
            let delta = inner.read_clock_delta().await?;
            if delta.abs() > 60 {
                tracing::info!(
                    delta_secs = delta,
                    "Local clock differs from the APIv6 clock; signing with the server's time."
                );
            } else {
                tracing::debug!(delta_secs = delta, "Read the APIv6 clock.");
            }
        } else if let AuthState::OAuth2(cache) = &inner.auth {
            cache
                .token(&inner.http, inner.clock.as_ref(), false)
                .await?;
        }
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `GET path` (path relative to the base URL, already escaped, may hold a query string),
    /// decoded as `T`; `expected` names `T` in errors.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        expected: &'static str,
    ) -> Result<T, OvhError> {
        let answer = self.inner.call(Method::GET, path, None, false).await?;
        decode(&Method::GET, &answer, expected)
    }

    /// `GET path`, undecoded.
    pub(crate) async fn get_single(&self, path: &str) -> Result<Answer, OvhError> {
        self.inner.call(Method::GET, path, None, false).await
    }

    /// `GET path` with `X-Ovh-Batch: ,`.
    pub(crate) async fn get_batch(&self, path: &str) -> Result<Answer, OvhError> {
        self.inner.call(Method::GET, path, None, true).await
    }

    /// The metrics read token of the service's user with this login (or name).
    pub async fn metrics_token(
        &self,
        service_name: &str,
        user: &str,
    ) -> Result<MetricsToken, OvhError> {
        let users_path = format!("/dedicatedCloud/{}/user", escape(service_name));
        let matches = |u: &User| u.login == user || u.name == user;

        let ids: Vec<i64> = self
            .get_json(
                &format!("{users_path}?name={}", escape(user)),
                "list of user ids",
            )
            .await?;
        let mut found = self
            .read_objects::<User>(&users_path, &ids, "User")
            .await?
            .into_iter()
            .find(matches);
        let mut known = Vec::new();
        if found.is_none() {
            // `?name=` filters on the name; the user may have given the login.
            let all_ids: Vec<i64> = self.get_json(&users_path, "list of user ids").await?;
            let all = self
                .read_objects::<User>(&users_path, &all_ids, "User")
                .await?;
            found = all.iter().find(|u| matches(u)).cloned();
            known = all.into_iter().map(|u| u.login).collect();
            known.sort();
        }
        let Some(found) = found else {
            return Err(OvhError::UnknownUser {
                service_name: service_name.to_string(),
                user: user.to_string(),
                known,
            });
        };

        // The body is `{}` as python-ovh sends it; the signature covers exactly these bytes.
        let path = format!("{users_path}/{}/metricsToken", found.user_id);
        let answer = self
            .inner
            .call(Method::POST, &path, Some(b"{}"), false)
            .await?;
        serde_json::from_slice::<MetricsToken>(&answer.body).map_err(|_| OvhError::Decode {
            method: Method::POST.to_string(),
            url: answer.url.clone(),
            expected: "metrics token {token, opentsdbEndpoint, warpEndpoint}",
            query_id: answer.query_id.clone(),
            // serde's message could quote the token.
            source: None,
        })
    }
}

/// `answer`'s body as `T`.
pub(crate) fn decode<T: DeserializeOwned>(
    method: &Method,
    answer: &Answer,
    expected: &'static str,
) -> Result<T, OvhError> {
    serde_json::from_slice(&answer.body).map_err(|source| OvhError::Decode {
        method: method.to_string(),
        url: answer.url.clone(),
        expected,
        query_id: answer.query_id.clone(),
        source: Some(source),
    })
}

impl Inner {
    /// `GET /auth/time`: the server's clock, a bare integer.
    async fn server_time(&self) -> Result<i64, OvhError> {
        let answer = self
            .call_retrying(Method::GET, "/auth/time", None, false, false)
            .await?;
        decode(&Method::GET, &answer, "server time (a bare integer)")
    }

    /// Reads the server clock and keeps `server - local` for signing; returns it.
    async fn read_clock_delta(&self) -> Result<i64, OvhError> {
        let server = self.server_time().await?;
        let delta = server - (self.clock)();
        if let AuthState::Signed { delta: d, .. } = &self.auth {
            d.store(delta, Ordering::Relaxed);
        }
        Ok(delta)
    }

    /// One call, with its OAuth2 token refreshed once if the API says it is no longer valid, or
    /// the server clock read again and the call tried once more if the API says its timestamp is
    /// out of the window (the server's clock jumped, or the machine's did).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        batch: bool,
    ) -> Result<Answer, OvhError> {
        match self
            .call_retrying(method.clone(), path, body, batch, true)
            .await
        {
            Err(OvhError::Api { status: 401, .. }) if matches!(self.auth, AuthState::OAuth2(_)) => {
                if let AuthState::OAuth2(cache) = &self.auth {
                    tracing::debug!("OAuth2 token refused; fetching a new one.");
                    cache.token(&self.http, self.clock.as_ref(), true).await?;
                }
                self.call_retrying(method, path, body, batch, true).await
            }
            Err(e) if e.is_out_of_time() && matches!(self.auth, AuthState::Signed { .. }) => {
                let delta = self.read_clock_delta().await?;
                tracing::info!(
                    delta_secs = delta,
                    error = %e,
                    "APIv6 found a request's timestamp out of its window; read its clock again and trying once more."
                );
                self.call_retrying(method, path, body, batch, true).await
            }
            other => other,
        }
    }

    /// One call, tried again while it fails transiently ([`OvhError::is_transient`]: network
    /// errors, 408, 429, 5xx) within the retry policy. Each attempt is signed afresh, so a retry
    /// after a long wait still carries a valid timestamp. A `Retry-After` wins over the backoff,
    /// within the policy's longest delay.
    async fn call_retrying(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        batch: bool,
        authenticated: bool,
    ) -> Result<Answer, OvhError> {
        let policy = self.retry;
        (|| self.call_once(method.clone(), path, body, batch, authenticated))
            .retry(policy.backoff())
            .when(OvhError::is_transient)
            .adjust(|error, delay| policy.delay(error.retry_after(), delay))
            .notify(|error, delay| {
                tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64, "APIv6 call failed; trying again.");
            })
            .await
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        batch: bool,
        authenticated: bool,
    ) -> Result<Answer, OvhError> {
        let raw = format!("{}{path}", self.base_url);
        let url = reqwest::Url::parse(&raw).map_err(|e| OvhError::Config {
            message: format!("cannot build an APIv6 URL from '{raw}': {e}"),
        })?;
        // The signature covers the URL exactly as sent: the parsed form.
        let url_text = url.as_str().to_string();
        let method_text = method.to_string();

        let mut request = self
            .http
            .request(method, url)
            .header(ACCEPT, "application/json");
        if batch {
            request = request.header("X-Ovh-Batch", ",");
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        // In flight first, then the turn, then the signature: the timestamp is taken as the
        // request leaves. Signed before a wait, a request queued behind a slow API or a long
        // paced fallback (one request per object) would arrive with a stale timestamp. Pacing
        // after the permit also keeps turns from piling up while nothing can be sent.
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.in_flight.acquire().await.ok();
        self.throttle.acquire().await;
        if authenticated {
            match &self.auth {
                AuthState::Signed {
                    application_key,
                    application_secret,
                    consumer_key,
                    delta,
                } => {
                    let timestamp = (self.clock)() + delta.load(Ordering::Relaxed);
                    let sig = signature(
                        application_secret.expose(),
                        consumer_key.expose(),
                        &method_text,
                        &url_text,
                        body.unwrap_or_default(),
                        timestamp,
                    );
                    request = request
                        .header("X-Ovh-Application", application_key.as_str())
                        .header("X-Ovh-Consumer", sensitive(consumer_key.expose())?)
                        .header("X-Ovh-Timestamp", timestamp.to_string())
                        .header("X-Ovh-Signature", sensitive(&sig)?);
                }
                AuthState::OAuth2(cache) => {
                    let token = cache.token(&self.http, self.clock.as_ref(), false).await?;
                    request = request.header(
                        AUTHORIZATION,
                        sensitive(&format!("Bearer {}", token.expose()))?,
                    );
                }
            }
        }

        let transport = |source: reqwest::Error| OvhError::Transport {
            method: method_text.clone(),
            url: url_text.clone(),
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let query_id = response
            .headers()
            .get(QUERY_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let wait = retry_after(response.headers(), chrono::Utc::now());
        let body = response.bytes().await.map_err(transport)?;
        tracing::debug!(method = %method_text, url = %url_text, status = status.as_u16(), query_id = query_id.as_deref().unwrap_or(""), "APIv6 call.");
        if !status.is_success() {
            let mut error =
                OvhError::from_answer(&method_text, &url_text, status.as_u16(), query_id, &body);
            if let OvhError::Api {
                retry_after_secs, ..
            } = &mut error
            {
                *retry_after_secs = wait.map(|w| u16::try_from(w.as_secs()).unwrap_or(u16::MAX));
            }
            return Err(error);
        }
        Ok(Answer {
            body,
            query_id,
            url: url_text,
        })
    }
}

/// A header value that HTTP/2 must not index and debug output must not show.
pub(crate) fn sensitive(value: &str) -> Result<HeaderValue, OvhError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| OvhError::Config {
        message: "a credential holds characters that cannot go in an HTTP header".into(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::ovh::fake::{self, estate, manual_clock, start, AK, AS, CK, SERVICE, TOKEN};

    const LOCAL: i64 = 1_700_000_000;
    /// The local clock is 8 minutes behind the server's, the known cause of "Invalid signature".
    const SERVER: i64 = LOCAL + 480;

    async fn signed_fake() -> (fake::Fake, Client, Arc<std::sync::atomic::AtomicI64>) {
        let mut world = estate(3);
        world.server_time = SERVER;
        let fake = start(world).await;
        let (clock, now) = manual_clock(LOCAL);
        let client = fake.signed_client(clock).await;
        (fake, client, now)
    }

    #[tokio::test]
    async fn signed_requests_use_the_server_clock_and_sign_the_url_as_sent() {
        let (fake, client, now) = signed_fake().await;
        let services: Vec<String> = client
            .get_json("/dedicatedCloud/x/user?name=a%20b", "list")
            .await
            .unwrap_or_default();
        assert!(services.is_empty());

        let seen = fake.seen();
        assert_eq!(seen[0].target, "/1.0/auth/time");
        assert_eq!(
            seen[0].header("x-ovh-signature"),
            None,
            "/auth/time is unauthenticated"
        );
        let call = &seen[1];
        let url = format!("{}/dedicatedCloud/x/user?name=a%20b", fake.base_url());
        assert_eq!(call.header("x-ovh-application"), Some(AK));
        assert_eq!(call.header("x-ovh-consumer"), Some(CK));
        assert_eq!(
            call.header("x-ovh-timestamp"),
            Some(SERVER.to_string().as_str())
        );
        assert_eq!(
            call.header("x-ovh-signature"),
            Some(signature(AS, CK, "GET", &url, b"", SERVER).as_str())
        );

        // The delta is kept: 100 s later locally is 100 s later on the server.
        now.fetch_add(100, Ordering::SeqCst);
        fake.with(|w| w.server_time = SERVER + 100);
        let names: Vec<String> = client
            .get_json("/dedicatedCloud", "list of service names")
            .await
            .unwrap();
        assert_eq!(names, vec![SERVICE.to_string()]);
        let last = fake.seen().pop().unwrap();
        assert_eq!(
            last.header("x-ovh-timestamp"),
            Some((SERVER + 100).to_string().as_str())
        );
        assert_eq!(
            fake.seen()
                .iter()
                .filter(|s| s.target.ends_with("/auth/time"))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn a_request_that_waited_longer_than_the_window_still_carries_a_fresh_timestamp() {
        // One request every two minutes, on a clock shared with the server, which wants the
        // timestamp exact: a request signed before its wait would be two minutes stale.
        let time = VirtualClock::starting_at(LOCAL);
        let server = time.clone();
        let mut world = estate(3);
        world.clock = Some(Arc::new(move || server.unix_secs() + 480));
        let fake = start(world).await;
        let options = ClientOptions {
            requests_per_second: 1.0 / 120.0,
            burst: 1,
            virtual_clock: Some(time.clone()),
            ..fake::options(manual_clock(0).0)
        };
        let client = Client::connect_with(&fake.base_url(), fake::signed_auth(), options)
            .await
            .unwrap();
        // One after the other: the clock moves for a request only once the one before is
        // answered, as it would with the server taking no time.
        for _ in 0..2 {
            let names: Vec<String> = client.get_json("/dedicatedCloud", "list").await.unwrap();
            assert_eq!(names, vec![SERVICE.to_string()]);
        }
        assert_eq!(time.elapsed(), Duration::from_secs(240), "two turns waited");

        let stamps: Vec<Option<String>> = fake
            .seen()
            .iter()
            .map(|s| s.header("x-ovh-timestamp").map(str::to_string))
            .collect();
        assert_eq!(
            stamps,
            vec![
                None, // /auth/time at the start
                Some((SERVER + 120).to_string()),
                Some((SERVER + 240).to_string()),
            ],
            "each request is signed when it leaves, and none is tried again"
        );
    }

    #[tokio::test]
    async fn query_out_of_time_reads_the_clock_again_and_tries_once_more() {
        let (fake, client, _) = signed_fake().await;
        fake.with(|w| w.time_window = Some(30));
        // The server's clock jumps ten minutes; the delta read at connect is stale.
        fake.with(|w| w.server_time = SERVER + 600);
        let names: Vec<String> = client
            .get_json("/dedicatedCloud", "list of service names")
            .await
            .unwrap();
        assert_eq!(names, vec![SERVICE.to_string()]);
        let time_reads = || {
            fake.seen()
                .iter()
                .filter(|s| s.target == "/1.0/auth/time")
                .count()
        };
        assert_eq!(time_reads(), 2, "read at connect and after the refusal");
        assert_eq!(fake.calls(), vec!["GET /dedicatedCloud"; 2]);
        assert_eq!(
            fake.seen().last().unwrap().header("x-ovh-timestamp"),
            Some((SERVER + 600).to_string().as_str())
        );

        // An API that keeps saying so gets one more attempt, not a loop.
        fake.clear_seen();
        fake.with(|w| {
            w.overrides.insert(
                "/dedicatedCloud".into(),
                (
                    400,
                    "application/json",
                    r#"{"class":"Client::BadRequest","message":"Query out of time"}"#.into(),
                ),
            );
        });
        let err = client
            .get_json::<Vec<String>>("/dedicatedCloud", "list of service names")
            .await
            .unwrap_err();
        assert!(err.is_out_of_time(), "{err}");
        assert!(
            err.to_string()
                .contains("400 Client::BadRequest: Query out of time"),
            "{err}"
        );
        assert_eq!(fake.calls(), vec!["GET /dedicatedCloud"; 2]);
        assert_eq!(time_reads(), 1);
    }

    #[tokio::test]
    async fn a_wrong_clock_delta_is_an_invalid_signature_with_its_query_id() {
        let (fake, client, now) = signed_fake().await;
        now.fetch_add(5, Ordering::SeqCst); // the server's clock did not move
        let err = client
            .get_json::<Vec<String>>("/dedicatedCloud", "list of service names")
            .await
            .unwrap_err();
        let query_id = format!("FAKE.{}", fake.seen().len());
        assert_eq!(
            err.to_string(),
            format!(
                "APIv6 GET {}/dedicatedCloud answered 400 INVALID_SIGNATURE: Invalid signature (query id {query_id})",
                fake.base_url()
            )
        );
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn error_bodies_of_every_shape_name_the_call() {
        let (fake, client, _) = signed_fake().await;
        fake.with(|w| {
            w.overrides.insert(
                "/dedicatedCloud".into(),
                (403, "application/json", r#"{"class":"Client::Forbidden","message":"This call has not been granted"}"#.into()),
            );
            w.overrides.insert(
                "/dedicatedCloud/gone".into(),
                (460, "application/json", r#"{"errorCode":"SERVICE_EXPIRED","httpCode":"460","message":"Service is expired"}"#.into()),
            );
            w.overrides.insert(
                "/dedicatedCloud/busy".into(),
                (503, "text/html", "<html><body><h1>503 Service Unavailable</h1>No server is available.</body></html>".into()),
            );
        });
        let err = |path: &'static str| {
            let client = client.clone();
            async move { client.get_json::<Value>(path, "service").await.unwrap_err() }
        };
        use serde_json::Value;

        let forbidden = err("/dedicatedCloud").await;
        let text = forbidden.to_string();
        assert!(
            text.contains("403 Client::Forbidden: This call has not been granted"),
            "{text}"
        );
        assert!(
            text.contains(&format!("GET {}/dedicatedCloud", fake.base_url())),
            "{text}"
        );
        assert!(forbidden.query_id().is_some_and(|q| q.starts_with("FAKE.")));

        let expired = err("/dedicatedCloud/gone").await;
        assert!(
            expired
                .to_string()
                .contains("460 SERVICE_EXPIRED: Service is expired"),
            "{expired}"
        );
        assert!(!expired.is_transient());

        let busy = err("/dedicatedCloud/busy").await;
        assert!(
            busy.to_string()
                .contains("503: 503 Service Unavailable No server is available."),
            "{busy}"
        );
        assert!(busy.is_transient());

        for e in [forbidden, expired, busy] {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(AS) && !text.contains(CK), "{text}");
        }
    }

    #[tokio::test]
    async fn transient_failures_are_tried_again_and_other_4xx_are_not() {
        let (fake, client, _) = signed_fake().await;
        fake.with(|w| {
            w.overrides.insert(
                "/dedicatedCloud".into(),
                (
                    403,
                    "application/json",
                    r#"{"class":"Client::Forbidden","message":"no"}"#.into(),
                ),
            );
            w.overrides.insert(
                "/dedicatedCloud/busy".into(),
                (503, "text/html", "<html>busy</html>".into()),
            );
            w.overrides.insert(
                "/dedicatedCloud/slow-down".into(),
                (
                    429,
                    "application/json",
                    r#"{"class":"Client::TooManyRequests","message":"slow down"}"#.into(),
                ),
            );
        });
        let attempts = |path: &str| {
            fake.seen()
                .iter()
                .filter(|s| s.target == format!("/1.0{path}"))
                .count()
        };
        let retries = fake::fast_retry().max_retries;
        for (path, expected) in [
            ("/dedicatedCloud", 1),
            ("/dedicatedCloud/busy", 1 + retries),
            ("/dedicatedCloud/slow-down", 1 + retries),
        ] {
            let err = client
                .get_json::<serde_json::Value>(path, "service")
                .await
                .unwrap_err();
            assert!(matches!(err, OvhError::Api { .. }), "{err:?}");
            assert_eq!(attempts(path), expected, "{path}");
        }
    }

    #[tokio::test]
    async fn an_answer_of_the_wrong_shape_is_a_decode_error_naming_the_call() {
        let (fake, client, _) = signed_fake().await;
        fake.with(|w| {
            w.overrides.insert(
                "/dedicatedCloud".into(),
                (200, "application/json", r#"{"services":["pcc-1"]}"#.into()),
            );
        });
        let err = client
            .get_json::<Vec<String>>("/dedicatedCloud", "list of service names")
            .await
            .unwrap_err();
        assert!(matches!(err, OvhError::Decode { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("GET {}/dedicatedCloud", fake.base_url())),
            "{text}"
        );
        assert!(
            text.contains("not the expected list of service names"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_api_is_a_transient_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/1.0", listener.local_addr().unwrap());
        drop(listener);
        let err = Client::connect_with(&url, fake::signed_auth(), fake::options(manual_clock(0).0))
            .await
            .unwrap_err();
        assert!(matches!(err, OvhError::Transport { .. }), "{err:?}");
        assert!(err.is_transient());
        assert!(err.to_string().contains("/1.0/auth/time"), "{err}");
    }

    #[tokio::test]
    async fn the_metrics_token_is_posted_for_the_user_found_by_login_or_name() {
        let (fake, client, _) = signed_fake().await;
        // `?name=` matches names; `vscope-reader` is a login, found in the full list.
        let token = client
            .metrics_token(SERVICE, "vscope-reader")
            .await
            .unwrap();
        assert_eq!(token.token, TOKEN);
        assert_eq!(
            token.opentsdb_endpoint,
            "https://opentsdb.gra1-ovh.metrics.ovh.net"
        );
        assert!(!format!("{token:?}").contains(TOKEN));
        let post = fake
            .seen()
            .into_iter()
            .find(|s| s.method == "POST")
            .unwrap();
        assert_eq!(
            post.target,
            format!("/1.0/dedicatedCloud/{SERVICE}/user/8/metricsToken")
        );
        assert_eq!(&post.body[..], b"{}");
        assert_eq!(post.header("content-type"), Some("application/json"));

        // By name: the filtered list is enough.
        fake.clear_seen();
        client.metrics_token(SERVICE, "reader").await.unwrap();
        assert_eq!(
            fake.calls(),
            vec![
                format!("GET /dedicatedCloud/{SERVICE}/user?name=reader"),
                format!("GET /dedicatedCloud/{SERVICE}/user/8"),
                format!("POST /dedicatedCloud/{SERVICE}/user/8/metricsToken"),
            ]
        );
    }

    #[tokio::test]
    async fn an_unknown_user_lists_the_known_logins() {
        let (_fake, client, _) = signed_fake().await;
        let err = client.metrics_token(SERVICE, "nobody").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no user with login or name 'nobody' in {SERVICE}; known logins: admin, vscope-reader")
        );
    }

    #[tokio::test]
    async fn a_metrics_token_answer_of_the_wrong_shape_does_not_quote_it() {
        let (fake, client, _) = signed_fake().await;
        fake.with(|w| {
            w.overrides.insert(
                format!("/dedicatedCloud/{SERVICE}/user/8/metricsToken"),
                (200, "application/json", format!("\"{TOKEN}\"")),
            );
        });
        let err = client.metrics_token(SERVICE, "reader").await.unwrap_err();
        let mut text = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text.push_str(&s.to_string());
            source = s.source();
        }
        assert!(text.contains("metrics token"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }

    #[tokio::test]
    async fn oauth2_gets_a_bearer_token_and_renews_it_before_it_expires() {
        let mut world = estate(0);
        world.token_lifetime = 120;
        let fake = start(world).await;
        let (clock, now) = manual_clock(LOCAL);
        let auth = Auth::OAuth2 {
            client_id: fake::CLIENT_ID.into(),
            client_secret: Secret::new(fake::CLIENT_SECRET),
            token_url: fake.token_url(),
        };
        let client = Client::connect_with(&fake.base_url(), auth, fake::options(clock))
            .await
            .unwrap();
        assert_eq!(fake.with(|w| w.tokens_issued), 1);
        assert!(!format!("{client:?}").contains(fake::CLIENT_SECRET));

        client
            .get_json::<Vec<String>>("/dedicatedCloud", "list")
            .await
            .unwrap();
        now.fetch_add(30, Ordering::SeqCst);
        client
            .get_json::<Vec<String>>("/dedicatedCloud", "list")
            .await
            .unwrap();
        assert_eq!(fake.with(|w| w.tokens_issued), 1, "a fresh token is reused");
        now.fetch_add(31, Ordering::SeqCst); // within a minute of expiry
        client
            .get_json::<Vec<String>>("/dedicatedCloud", "list")
            .await
            .unwrap();
        assert_eq!(fake.with(|w| w.tokens_issued), 2);

        // A token the API no longer accepts is replaced once.
        fake.with(|w| w.valid_bearer = Some("revoked".into()));
        fake.with(|w| w.valid_bearer = None);
        client
            .get_json::<Vec<String>>("/dedicatedCloud", "list")
            .await
            .unwrap();
        assert_eq!(fake.with(|w| w.tokens_issued), 3);

        let seen = fake.seen();
        let api_calls: Vec<_> = seen
            .iter()
            .filter(|s| s.target.starts_with("/1.0/"))
            .collect();
        assert!(api_calls
            .iter()
            .all(|s| s.header("x-ovh-signature").is_none()));
        assert_eq!(
            api_calls.last().unwrap().header("authorization"),
            Some("Bearer bearer-3")
        );
    }

    #[tokio::test]
    async fn oauth2_with_a_wrong_secret_names_the_token_url() {
        let fake = start(estate(0)).await;
        let auth = Auth::OAuth2 {
            client_id: fake::CLIENT_ID.into(),
            client_secret: Secret::new("wrong-SECRET"),
            token_url: fake.token_url(),
        };
        let err = Client::connect_with(&fake.base_url(), auth, fake::options(manual_clock(0).0))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&fake.token_url()), "{text}");
        assert!(
            text.contains("401 invalid_client: Client authentication failed"),
            "{text}"
        );
        assert!(!text.contains("wrong-SECRET"));
    }
}
