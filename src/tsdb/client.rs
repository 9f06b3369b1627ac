//! `POST /api/query` over HTTP: basic auth with the read token, the body streamed into the
//! [`ResponseParser`](super::ResponseParser) as it arrives, and errors of both formats (stock
//! OpenTSDB's JSON, OVH's plain text) typed so that the retry layer can decide. Owns one
//! connection pool per endpoint; does not retry, split pages or rate-limit (that is `extract`'s
//! business).

use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};

use crate::domain::retry::retry_after;
use crate::domain::url::{self, is_loopback};
use crate::secret::Secret;

use super::{ParseError, ParseStats, QueryRequest, ResponseParser, SeriesSink};

/// A TCP + TLS handshake with a reachable host takes well under a second; anything longer means
/// the host is down or filtered, and failing fast hands the decision to the retry layer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest silence tolerated on an open connection, waiting for the headers or the next body
/// chunk. Not a total timeout: a page near OVH's 20M-point cap is hundreds of MB and may take many
/// minutes in total, legitimately. But the server may also compute the whole answer before it
/// sends the first byte (OVH's proxy runs the Warp 10 FETCH, then serializes), so the bound is
/// generous; what it catches is a stalled connection, which otherwise hangs the run forever.
const READ_TIMEOUT: Duration = Duration::from_secs(180);

/// How much of an error body is read to classify it: OpenTSDB's JSON errors carry a Java stack
/// trace and OVH's 500s the backend's raw text, both small; a misbehaving server could send more,
/// and none of it is worth holding.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Error messages end up on one line of a log or summary: long enough for OVH's
/// `FETCH exceeded limit of … datapoints` sentence and a metric name, short of a stack trace.
const MESSAGE_MAX_CHARS: usize = 300;

/// OVH's proxy answers a sub-query over its datapoint cap with a 500 whose text holds this.
const OVH_FETCH_LIMIT_MARKER: &str = "FETCH exceeded limit";

/// The user OVH's metrics proxy expects (it ignores it; stock OpenTSDB behind a proxy may not).
const BASIC_AUTH_USER: &str = "read";

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("invalid OpenTSDB base URL '{url}': {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("could not set up the HTTP client for OpenTSDB {url}")]
    Setup {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("OpenTSDB {url} refused the read token (401): {message}")]
    Unauthorized { url: String, message: String },
    #[error("OpenTSDB {url} says the query is too large ({status}): {message}")]
    TooLarge {
        url: String,
        status: u16,
        message: String,
    },
    #[error("OpenTSDB {url} answered {status}: {message}{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Http {
        url: String,
        status: u16,
        message: String,
        /// The `Retry-After` of a 429 or 503, as a delay from when the answer arrived.
        retry_after: Option<Duration>,
    },
    #[error("OpenTSDB {url} failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("OpenTSDB {url} sent an unreadable response (expected OpenTSDB's JSON array, got {})", content_type.as_deref().unwrap_or("no Content-Type"))]
    Parse {
        url: String,
        /// The response's `Content-Type`: `text/html` says a proxy or a login page answered.
        content_type: Option<String>,
        #[source]
        source: ParseError,
    },
    #[error("OpenTSDB {url} answered something that is not {expected}")]
    Decode {
        url: String,
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl TsdbError {
    /// Worth another attempt as it is: network errors, truncated bodies, 408, 424, 429, 5xx.
    /// Never a "too large" answer (split the page instead) nor any other 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TsdbError::Transport { .. } => true,
            TsdbError::Parse { source, .. } => source.truncated,
            TsdbError::Http { status, .. } => matches!(status, 408 | 424 | 429) || *status >= 500,
            TsdbError::InvalidBaseUrl { .. }
            | TsdbError::Setup { .. }
            | TsdbError::Unauthorized { .. }
            | TsdbError::TooLarge { .. }
            | TsdbError::Decode { .. } => false,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TsdbError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A client of one OpenTSDB endpoint; cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    query_url: Url,
    token: Secret,
    http: reqwest::Client,
}

/// Timeouts, separate so that tests can shorten them.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    read: Duration,
}

impl Client {
    /// `base_url` without `/api/query`, e.g. `https://opentsdb.gra1-ovh.metrics.ovh.net`.
    /// Must be `https://`, or `http://` to a loopback host (the simulator, a local tunnel).
    pub fn new(base_url: &str, token: Secret) -> Result<Client, TsdbError> {
        Client::with_timeouts(
            base_url,
            token,
            Timeouts {
                connect: CONNECT_TIMEOUT,
                read: READ_TIMEOUT,
            },
        )
    }

    fn with_timeouts(
        base_url: &str,
        token: Secret,
        timeouts: Timeouts,
    ) -> Result<Client, TsdbError> {
        let base = validate_base_url(base_url)?;
        let base_url = base.as_str().trim_end_matches('/').to_string();
        let endpoint = |path: &str| {
            Url::parse(&format!("{base_url}{path}")).map_err(|err| TsdbError::InvalidBaseUrl {
                url: base_url.clone(),
                reason: err.to_string(),
            })
        };
        let query_url = endpoint("/api/query")?;

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("vscope-export/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read);
        if is_loopback(&base) {
            // A loopback endpoint is this machine: sending it through HTTP(S)_PROXY would reach
            // the proxy's loopback, or nothing.
            builder = builder.no_proxy();
        }
        if base.scheme() == "http" {
            // Plain http (loopback only) never verifies a certificate: without this the system's
            // roots are loaded (and parsed) all the same, for nothing.
            builder = builder.tls_certs_only([]);
        }
        let http = builder.build().map_err(|source| TsdbError::Setup {
            url: base_url.clone(),
            source,
        })?;
        Ok(Client {
            base_url,
            query_url,
            token,
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Runs one query, feeding every series to `sink` as soon as it is parsed; the body is never
    /// held whole.
    ///
    /// On an error after the status line (a cut connection, a truncated or invalid body) the sink
    /// may already have received some series: a caller that retries must drop what it got from
    /// the failed attempt.
    pub async fn query(
        &self,
        request: &QueryRequest,
        sink: &mut (impl SeriesSink + Send),
    ) -> Result<ParseStats, TsdbError> {
        let url = self.query_url.as_str();
        let response = self
            .http
            .post(self.query_url.clone())
            .basic_auth(BASIC_AUTH_USER, Some(self.token.expose()))
            .header(CONTENT_TYPE, "application/json")
            .body(request.to_json())
            .send()
            .await
            .map_err(|source| transport(url, source))?;
        let response = check_status(url, response, &self.token).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(100).collect::<String>());
        let parse_error = |source| TsdbError::Parse {
            url: url.to_string(),
            content_type: content_type.clone(),
            source,
        };

        let mut parser = ResponseParser::new();
        let mut body = std::pin::pin!(response.bytes_stream());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| transport(url, source))?;
            parser.feed(&chunk, sink).map_err(parse_error)?;
        }
        parser.finish(sink).map_err(parse_error)
    }
}

/// `https://`, or `http://` to a loopback host; no credentials, query or fragment in it.
fn validate_base_url(base_url: &str) -> Result<Url, TsdbError> {
    let invalid = |url: &str, reason: &str| TsdbError::InvalidBaseUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(base_url.trim())
        .map_err(|err| invalid(base_url, &format!("not a URL ({err})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the credentials back: name the URL without them.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return Err(invalid(
            url.as_str(),
            "it carries credentials; give the read token as the token, not in the URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        url.set_query(None);
        url.set_fragment(None);
        return Err(invalid(
            url.as_str(),
            "it has a query or fragment; give the endpoint's base URL only",
        ));
    }
    if url.host().is_none() {
        return Err(invalid(base_url, "it has no host"));
    }
    match url::check(&url) {
        Ok(()) => Ok(url),
        Err(url::Refused::PlainHttp) => Err(invalid(
            base_url,
            "plain http would send the read token in clear over the network; use https \
             (http is accepted for loopback hosts only)",
        )),
        Err(url::Refused::Scheme(other)) => Err(invalid(
            base_url,
            &format!("scheme '{other}' is not supported; use https"),
        )),
    }
}

fn transport(url: &str, source: reqwest::Error) -> TsdbError {
    TsdbError::Transport {
        url: url.to_string(),
        // Our variant names the URL already.
        source: source.without_url(),
    }
}

/// Passes a 2xx response through; turns anything else into its typed error.
async fn check_status(
    url: &str,
    response: reqwest::Response,
    token: &Secret,
) -> Result<reqwest::Response, TsdbError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers(), Utc::now());
    // A body cut short is still worth classifying by its status: keep what arrived.
    let body = match read_bounded(response, ERROR_BODY_LIMIT).await {
        Ok((body, _)) => body,
        Err(_) => Vec::new(),
    };
    Err(classify(url, status, &body, retry_after, token))
}

/// A non-2xx answer as a typed error, from its status and (the start of) its body.
fn classify(
    url: &str,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    token: &Secret,
) -> TsdbError {
    let mut text = String::from_utf8_lossy(body).into_owned();
    if !token.is_empty() && text.contains(token.expose()) {
        // A server that echoes what it was sent ("invalid token: …") must not put the token
        // into our logs.
        text = text.replace(token.expose(), "<redacted>");
    }
    let message = error_message(&text).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    });
    let url = url.to_string();
    let code = status.as_u16();
    if status == StatusCode::PAYLOAD_TOO_LARGE || text.contains(OVH_FETCH_LIMIT_MARKER) {
        TsdbError::TooLarge {
            url,
            status: code,
            message,
        }
    } else if status == StatusCode::UNAUTHORIZED {
        TsdbError::Unauthorized { url, message }
    } else {
        TsdbError::Http {
            url,
            status: code,
            message,
            retry_after,
        }
    }
}

/// The human part of an error body, on one line and bounded: stock OpenTSDB's
/// `{"error":{"message","details"}}`, an HTML error page's text, or OVH's plain text.
fn error_message(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    let raw = if trimmed.starts_with('{') {
        opentsdb_json_message(trimmed).unwrap_or_else(|| trimmed.to_string())
    } else if trimmed.starts_with('<') {
        strip_tags(trimmed)
    } else {
        trimmed.to_string()
    };
    let line = one_line(&raw, MESSAGE_MAX_CHARS);
    (!line.is_empty()).then_some(line)
}

fn opentsdb_json_message(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: Option<String>,
        details: Option<String>,
    }
    let body: Body = serde_json::from_str(text).ok()?;
    let message = body.error.message.unwrap_or_default();
    let details = body.error.details.unwrap_or_default();
    let (message, details) = (message.trim(), details.trim());
    Some(match (message.is_empty(), details.is_empty()) {
        (_, true) => message.to_string(),
        (true, false) => details.to_string(),
        (false, false) if details == message || message.contains(details) => message.to_string(),
        (false, false) => format!("{message} ({details})"),
    })
}

/// The text of an HTML page: what a load balancer in front of the endpoint sends.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whitespace runs (newlines included) collapsed to one space, cut at `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > max {
            break;
        }
    }
    if out.chars().count() > max {
        out = out.chars().take(max).collect::<String>();
        out.push('…');
    }
    out
}

/// Reads at most `limit` bytes of the body; `true` when that was all of it.
async fn read_bounded(
    response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = std::pin::pin!(response.bytes_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::Router;
    use base64::Engine as _;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::tsdb::{OwnedSeries, Series, SubQuery};

    /// Distinctive, so that any leak into an error's text is found by a substring search.
    const TOKEN: &str = "tok-SECRET-6f1d0c";

    const BODY: &str = concat!(
        r#"[{"metric":"vscope.vm.cpu.usage.perc","tags":{"vm":"vm-001","datacenter":"pcc-1"},"#,
        r#""aggregateTags":[],"query":{"index":0},"#,
        r#""dps":{"1564409391000":4.38,"1564409451000":12.5e-1,"1564409511000":"NaN"}},"#,
        r#"{"metric":"vscope.vm.cpu.usage.perc","tags":{"vm":"vm \"q\" \u00e9","datacenter":"pcc-1"},"#,
        r#""aggregateTags":["host"],"dps":{"1564409391000":-0.000123,"1564409451000":null}}]"#
    );

    fn request() -> QueryRequest {
        QueryRequest {
            start_ms: 1_564_409_391_000,
            end_ms: 1_564_409_511_000,
            queries: vec![SubQuery {
                metric: "vscope.vm.cpu.usage.perc".to_string(),
                aggregator: "none".to_string(),
                downsample: None,
                tags: BTreeMap::from([("vm".to_string(), "*".to_string())]),
                regexps: Vec::new(),
            }],
        }
    }

    async fn serve(router: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }

    /// A server whose `/api/query` always gives this answer.
    async fn answering(
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: &'static str,
    ) -> String {
        let router = Router::new().route(
            "/api/query",
            post(move || {
                let headers = headers.clone();
                async move {
                    let mut map = HeaderMap::new();
                    for (name, value) in headers {
                        map.insert(name, value.parse().unwrap());
                    }
                    (status, map, body).into_response()
                }
            }),
        );
        serve(router).await
    }

    fn client(base: &str) -> Client {
        Client::new(base, Secret::new(TOKEN)).unwrap()
    }

    async fn run(client: &Client) -> Result<(Vec<OwnedSeries>, ParseStats), TsdbError> {
        let mut got = Vec::new();
        let mut sink = |s: Series<'_>| got.push(s.to_owned_series());
        let stats = client.query(&request(), &mut sink).await?;
        Ok((got, stats))
    }

    async fn query_error(base: &str) -> TsdbError {
        run(&client(base)).await.unwrap_err()
    }

    /// `OwnedSeries` holds NaNs, which are never `==`; their `Debug` text compares fine.
    fn debug(series: &[OwnedSeries]) -> String {
        format!("{series:?}")
    }

    /// A body streamed as these pieces, with a pause between them so they arrive apart.
    fn chunked(pieces: Vec<Bytes>) -> Body {
        let stream = futures_util::stream::iter(pieces).then(|piece| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(piece)
        });
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_in_many_small_chunks_gives_the_same_series_as_one_chunk() {
        let whole = run(&client(&answering(StatusCode::OK, vec![], BODY).await))
            .await
            .unwrap();
        assert_eq!(whole.0.len(), 2);
        assert_eq!(whole.1.points, 5);
        assert_eq!(
            whole.0[0].timestamps_ms,
            [1564409391000, 1564409451000, 1564409511000]
        );
        assert_eq!(whole.0[0].values[..2], [4.38, 1.25]);
        assert!(whole.0[1]
            .tags
            .contains(&("vm".to_string(), "vm \"q\" é".to_string())));

        // Pieces of 1 to 7 bytes: splits land inside numbers, strings, escapes and the é.
        let bytes = BODY.as_bytes();
        let mut pieces = Vec::new();
        let (mut at, mut size) = (0, 1);
        while at < bytes.len() {
            let end = (at + size).min(bytes.len());
            pieces.push(Bytes::copy_from_slice(&bytes[at..end]));
            at = end;
            size = size % 7 + 1;
        }
        assert!(pieces.len() > 50);
        let router = Router::new().route(
            "/api/query",
            post(move || {
                let pieces = pieces.clone();
                async move { chunked(pieces) }
            }),
        );
        let split = run(&client(&serve(router).await)).await.unwrap();
        assert_eq!(debug(&split.0), debug(&whole.0));
        assert_eq!(split.1, whole.1);
    }

    #[tokio::test]
    async fn the_request_is_a_json_post_with_basic_auth_read_and_the_token() {
        let seen = Arc::new(Mutex::new(None));
        let router = Router::new().route(
            "/prefix/api/query",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap, body: Bytes| async move {
                    let header =
                        |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
                    *seen.lock().unwrap() =
                        Some((header("authorization"), header("content-type"), body));
                    "[]"
                }
            }),
        );
        // A base URL with a path and a trailing slash, as a reverse proxy might need.
        let base = format!("{}/prefix/", serve(router).await);
        let (series, stats) = run(&client(&base)).await.unwrap();
        assert!(series.is_empty());
        assert_eq!(stats.series, 0);

        let (auth, content_type, body) = seen.lock().unwrap().take().unwrap();
        let auth = auth.unwrap();
        let encoded = auth.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), format!("read:{TOKEN}"));
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(body, request().to_json());
    }

    #[tokio::test]
    async fn ovh_plain_text_401_is_unauthorized() {
        let base = answering(StatusCode::UNAUTHORIZED, vec![], "Not authorized\n").await;
        let err = query_error(&base).await;
        match &err {
            TsdbError::Unauthorized { message, url } => {
                assert_eq!(message, "Not authorized");
                assert_eq!(url, &format!("{base}/api/query"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn ovh_fetch_limit_500_is_too_large_and_not_transient() {
        let base = answering(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![],
            "Exception at '[ $token 'vscope.vm.cpu.usage.perc' {} $start $end ] FETCH'\n\
             in section [TOP]: FETCH exceeded limit of 20000000 datapoints, current count is 20000001",
        )
        .await;
        let err = query_error(&base).await;
        match &err {
            TsdbError::TooLarge {
                status, message, ..
            } => {
                assert_eq!(*status, 500);
                assert!(
                    message.contains("FETCH exceeded limit of 20000000 datapoints"),
                    "{message}"
                );
                assert!(!message.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn status_413_is_too_large() {
        let base = answering(
            StatusCode::PAYLOAD_TOO_LARGE,
            vec![],
            r#"{"error":{"code":413,"message":"Sorry, you have attempted to fetch more than our maximum amount of data points allowed","trace":"x"}}"#,
        )
        .await;
        let err = query_error(&base).await;
        assert!(
            matches!(&err, TsdbError::TooLarge { status: 413, message, .. } if message.starts_with("Sorry, you have attempted")),
            "{err:?}"
        );
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn stock_opentsdb_json_400_gives_its_message_and_is_not_transient() {
        let base = answering(
            StatusCode::BAD_REQUEST,
            vec![],
            r#"{"error":{"code":400,"message":"No such name for 'metrics': 'cpu'","details":"No such name for 'metrics': 'cpu'","trace":"net.opentsdb.tsd.BadRequestException: No such name\n\tat net.opentsdb.tsd.QueryRpc.handleQuery(QueryRpc.java:221)"}}"#,
        )
        .await;
        let err = query_error(&base).await;
        match &err {
            TsdbError::Http {
                status,
                message,
                retry_after,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(message, "No such name for 'metrics': 'cpu'");
                assert_eq!(*retry_after, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            format!("OpenTSDB {base}/api/query answered 400: No such name for 'metrics': 'cpu'")
        );
    }

    #[tokio::test]
    async fn server_errors_and_overload_are_transient_other_4xx_are_not() {
        for (status, transient) in [
            (503, true),
            (502, true),
            (424, true),
            (408, true),
            (404, false),
            (403, false),
            (501, true),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            let base = answering(status, vec![], "").await;
            let err = query_error(&base).await;
            assert!(
                matches!(&err, TsdbError::Http { status: s, .. } if *s == status.as_u16()),
                "{err:?}"
            );
            assert_eq!(err.is_transient(), transient, "{status}: {err}");
            // An empty body still gives a message: the status's reason.
            assert!(
                err.to_string()
                    .ends_with(status.canonical_reason().unwrap()),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn status_429_keeps_retry_after() {
        let base = answering(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "7".to_string())],
            "slow down",
        )
        .await;
        let err = query_error(&base).await;
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            err.to_string()
                .ends_with("answered 429: slow down (retry after 7 s)"),
            "{err}"
        );

        // The HTTP-date form, about a minute ahead (whole seconds, so at most one lost).
        let at = (Utc::now() + chrono::Duration::seconds(60)).format("%a, %d %b %Y %H:%M:%S GMT");
        let base = answering(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", at.to_string())],
            "",
        )
        .await;
        let delay = query_error(&base).await.retry_after().unwrap();
        assert!(
            delay > Duration::from_secs(55) && delay <= Duration::from_secs(60),
            "{delay:?}"
        );
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_transient_truncation() {
        // The server finishes its response properly, but the JSON stops mid-series.
        let base = answering(StatusCode::OK, vec![], &BODY[..BODY.len() / 2]).await;
        let err = query_error(&base).await;
        assert!(
            matches!(&err, TsdbError::Parse { source, .. } if source.truncated),
            "{err:?}"
        );
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn a_connection_dropped_mid_stream_is_a_transient_transport_error() {
        // Chunked encoding: the stream fails, so the server aborts without the last chunk.
        let router = Router::new().route(
            "/api/query",
            post(|| async {
                let pieces = vec![
                    Ok(Bytes::from_static(&BODY.as_bytes()[..40])),
                    Err(std::io::Error::other("backend went away")),
                ];
                Body::from_stream(futures_util::stream::iter(pieces))
            }),
        );
        let err = query_error(&serve(router).await).await;
        assert!(matches!(err, TsdbError::Transport { .. }), "{err:?}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn fewer_bytes_than_content_length_is_a_transient_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Read the whole request first, so that closing does not reset the connection.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap();
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                BODY.len()
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(&BODY.as_bytes()[..100]).await.unwrap();
            socket.shutdown().await.unwrap();
        });
        let err = query_error(&base).await;
        assert!(matches!(err, TsdbError::Transport { .. }), "{err:?}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn series_reach_the_sink_before_the_body_ends() {
        // The server sends the first series, then holds the rest back until the client's sink
        // has seen it: a client that buffered the body would wait forever.
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<()>();
        let seen_rx = Arc::new(Mutex::new(Some(seen_rx)));
        let split = BODY.find("},{").unwrap() + 2;
        let router = Router::new().route(
            "/api/query",
            post(move || {
                let seen_rx = seen_rx.lock().unwrap().take().unwrap();
                async move {
                    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                        Bytes::from_static(&BODY.as_bytes()[..split]),
                    )]);
                    let rest = futures_util::stream::once(async move {
                        seen_rx.await.map_err(std::io::Error::other)?;
                        Ok(Bytes::from_static(&BODY.as_bytes()[split..]))
                    });
                    Body::from_stream(first.chain(rest))
                }
            }),
        );
        let client = client(&serve(router).await);
        let mut seen_tx = Some(seen_tx);
        let mut metrics = Vec::new();
        let mut sink = |s: Series<'_>| {
            metrics.push(s.metric.to_string());
            if let Some(tx) = seen_tx.take() {
                tx.send(()).unwrap();
            }
        };
        let request = request();
        let query = client.query(&request, &mut sink);
        fn assert_send<T: Send>(t: T) -> T {
            t
        }
        let stats = tokio::time::timeout(Duration::from_secs(10), assert_send(query))
            .await
            .expect("the first series was not delivered before the body ended")
            .unwrap();
        assert_eq!(stats.series, 2);
        assert_eq!(metrics.len(), 2);
    }

    #[tokio::test]
    async fn a_stalled_body_hits_the_read_timeout() {
        let router = Router::new().route(
            "/api/query",
            post(|| async {
                let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                    Bytes::from_static(b"[{"),
                )]);
                Body::from_stream(first.chain(futures_util::stream::pending()))
            }),
        );
        let base = serve(router).await;
        let client = Client::with_timeouts(
            &base,
            Secret::new(TOKEN),
            Timeouts {
                connect: Duration::from_secs(5),
                read: Duration::from_millis(300),
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = run(&client).await.unwrap_err();
        assert!(
            matches!(&err, TsdbError::Transport { source, .. } if source.is_timeout()),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_html_page_with_200_is_a_parse_error_not_worth_retrying() {
        let base = answering(
            StatusCode::OK,
            vec![("content-type", "text/html".to_string())],
            "<html><head><title>Maintenance</title></head><body>Back soon</body></html>",
        )
        .await;
        let err = query_error(&base).await;
        assert!(
            matches!(&err, TsdbError::Parse { source, .. } if !source.truncated && source.offset == 0),
            "{err:?}"
        );
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn an_html_error_page_gives_its_text() {
        let base = answering(
            StatusCode::BAD_GATEWAY,
            vec![],
            "<html>\n<head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center></body></html>",
        )
        .await;
        let err = query_error(&base).await;
        assert!(
            matches!(&err, TsdbError::Http { status: 502, message, .. } if message == "502 Bad Gateway 502 Bad Gateway"),
            "{err:?}"
        );
    }

    #[test]
    fn messages_are_one_bounded_line() {
        let long = format!("first line\n\n  second\tline {}", "x".repeat(1000));
        let message = error_message(&long).unwrap();
        assert!(
            message.starts_with("first line second line xxx"),
            "{message}"
        );
        assert_eq!(message.chars().count(), MESSAGE_MAX_CHARS + 1);
        assert!(message.ends_with('…'));
        assert_eq!(error_message(" \n "), None);
        // JSON that is not OpenTSDB's error shape is shown as text.
        assert_eq!(
            error_message(r#"{"oops":1}"#).as_deref(),
            Some(r#"{"oops":1}"#)
        );
        assert_eq!(
            error_message(r#"{"error":{"code":400,"message":"Bad","details":"missing metric"}}"#)
                .as_deref(),
            Some("Bad (missing metric)")
        );
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        for ok in [
            "https://opentsdb.gra1-ovh.metrics.ovh.net",
            "https://opentsdb.gra1-ovh.metrics.ovh.net/",
            "http://127.0.0.1:4242",
            "http://127.1.2.3:4242/",
            "http://localhost:4242",
            "http://LOCALHOST:4242",
            "http://[::1]:4242",
        ] {
            let client =
                Client::new(ok, Secret::new(TOKEN)).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!client.base_url().ends_with('/'));
        }
        for (bad, why) in [
            ("http://opentsdb.gra1-ovh.metrics.ovh.net", "in clear"),
            ("http://10.0.0.1:4242", "in clear"),
            ("http://localhost.example.com", "in clear"),
            ("ftp://127.0.0.1", "scheme 'ftp'"),
            ("opentsdb.gra1-ovh.metrics.ovh.net", "not a URL"),
            ("https://host/?token=x", "query"),
        ] {
            let err = Client::new(bad, Secret::new(TOKEN)).unwrap_err();
            assert!(
                matches!(err, TsdbError::InvalidBaseUrl { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(why), "{bad}: {err}");
            assert!(!err.is_transient());
        }
        let err =
            Client::new(&format!("https://read:{TOKEN}@host"), Secret::new(TOKEN)).unwrap_err();
        assert!(err.to_string().contains("credentials"), "{err}");
        assert!(!format!("{err} {err:?}").contains(TOKEN), "{err:?}");
    }

    /// Every kind of failure, formatted every way, never shows the token, even when the server
    /// echoes it back.
    #[tokio::test]
    async fn no_error_shows_the_token() {
        let echo = Router::new().route(
            "/api/query",
            post(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    format!("Not authorized: invalid token '{TOKEN}'"),
                )
            }),
        );
        let echo = serve(echo).await;
        let mut errors = vec![
            query_error(&echo).await,
            query_error(
                &answering(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![],
                    "FETCH exceeded limit of 20000000 datapoints",
                )
                .await,
            )
            .await,
            query_error(
                &answering(
                    StatusCode::BAD_REQUEST,
                    vec![],
                    r#"{"error":{"code":400,"message":"x"}}"#,
                )
                .await,
            )
            .await,
            query_error(
                &answering(
                    StatusCode::TOO_MANY_REQUESTS,
                    vec![("retry-after", "1".to_string())],
                    "",
                )
                .await,
            )
            .await,
            query_error(&answering(StatusCode::OK, vec![], "[{\"metric\":").await).await,
            query_error(&answering(StatusCode::OK, vec![], "<html>").await).await,
        ];
        // Nothing listens there any more: a connection error.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        errors.push(query_error(&closed_base).await);
        errors.push(Client::new("http://example.com", Secret::new(TOKEN)).unwrap_err());
        assert!(matches!(errors[0], TsdbError::Unauthorized { .. }));
        assert!(
            matches!(errors[6], TsdbError::Transport { .. }),
            "{:?}",
            errors[6]
        );

        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("read:{TOKEN}"));
        for err in &errors {
            let mut text = format!("{err} {err:?} {err:#?}");
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                text.push_str(&format!(" {s} {s:?}"));
                source = s.source();
            }
            assert!(!text.contains(TOKEN) && !text.contains(&encoded), "{text}");
        }
        // The echoing server's message is kept, with the token cut out.
        assert!(
            errors[0].to_string().contains("invalid token '<redacted>'"),
            "{}",
            errors[0]
        );
    }
}
