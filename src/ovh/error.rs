//! APIv6 errors: what went wrong, on which call (method and URL, never a secret), with OVH's query
//! id where the answer carried one. Parses both of OVH's error body shapes (`{class, message}` and
//! `{errorCode, httpCode, message}`), OAuth2's `{error, error_description}`, and the HTML or text
//! bodies that gateways send with 408/503.

use serde::Deserialize;

/// The response header carrying OVH's id of a call, which OVH support asks for.
pub const QUERY_ID_HEADER: &str = "X-Ovh-QueryID";

/// The longest error message kept from a body that is not JSON (an HTML page).
const MAX_TEXT_MESSAGE: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum OvhError {
    #[error("unknown OVH endpoint '{name}': use ovh-eu, ovh-ca, ovh-us, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca or an https:// URL")]
    UnknownEndpoint { name: String },
    #[error("no OVH API credentials: {hint}")]
    MissingCredentials { hint: String },
    #[error("APIv6 {method} {url} answered {status}{}: {message}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), query_id.as_deref().map(|q| format!(" (query id {q})")).unwrap_or_default())]
    Api {
        method: String,
        url: String,
        status: u16,
        /// OVH's `errorCode`/`class` (or OAuth2's `error`), when the body had one.
        code: Option<String>,
        message: String,
        query_id: Option<String>,
        /// The answer's `Retry-After` (429, 503) in seconds from when it arrived; 16 bits (18 h)
        /// keep the error small, and HTTP gives whole seconds anyway.
        retry_after_secs: Option<u16>,
    },
    #[error("APIv6 {method} {url} failed")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not what the call returns. `source` is left out where its text could quote
    /// a secret (token answers).
    #[error("APIv6 {method} {url} answered something that is not the expected {expected}{}", query_id.as_deref().map(|q| format!(" (query id {q})")).unwrap_or_default())]
    Decode {
        method: String,
        url: String,
        expected: &'static str,
        query_id: Option<String>,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("invalid OVH configuration: {message}")]
    Config { message: String },
    #[error(
        "datacenter '{name}' not found in {services}; existing datacenters: {}",
        list_or_none(existing)
    )]
    UnknownDatacenter {
        name: String,
        /// The services searched, comma-separated.
        services: String,
        /// `service/datacenter` for every datacenter found.
        existing: Vec<String>,
    },
    #[error(
        "no user with login or name '{user}' in {service_name}; known logins: {}",
        list_or_none(known)
    )]
    UnknownUser {
        service_name: String,
        user: String,
        known: Vec<String>,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl OvhError {
    /// Worth another attempt: network errors, 408, 429, 5xx, and answers cut short (a body that
    /// ends in the middle of the JSON).
    pub fn is_transient(&self) -> bool {
        match self {
            OvhError::Transport { source, .. } => !source.is_builder(),
            OvhError::Api { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            OvhError::Decode {
                source: Some(source),
                ..
            } => source.is_eof(),
            _ => false,
        }
    }

    /// APIv6 refused a signed request's timestamp as too far from its clock: `400
    /// Client::BadRequest: Query out of time`. Another attempt can pass once the clock delta is
    /// read again.
    pub fn is_out_of_time(&self) -> bool {
        matches!(self, OvhError::Api { status: 400, message, .. }
            if message.trim().eq_ignore_ascii_case("Query out of time"))
    }

    /// How long the API asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            OvhError::Api {
                retry_after_secs, ..
            } => retry_after_secs.map(|s| std::time::Duration::from_secs(u64::from(s))),
            _ => None,
        }
    }

    /// The HTTP status OVH answered, for an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            OvhError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// OVH's query id of the failed call, where the answer carried one.
    pub fn query_id(&self) -> Option<&str> {
        match self {
            OvhError::Api { query_id, .. } | OvhError::Decode { query_id, .. } => {
                query_id.as_deref()
            }
            _ => None,
        }
    }

    /// An [`OvhError::Api`] from an error answer's status, query id and body.
    pub(crate) fn from_answer(
        method: &str,
        url: &str,
        status: u16,
        query_id: Option<String>,
        body: &[u8],
    ) -> OvhError {
        let (code, message) = parse_error_body(body);
        let message = message.unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_string()
        });
        OvhError::Api {
            method: method.to_string(),
            url: url.to_string(),
            status,
            code,
            message,
            query_id,
            retry_after_secs: None,
        }
    }
}

/// The fields of every error shape OVH (and its OAuth2 server) is known to send.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    class: Option<String>,
    #[serde(default, rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `(code, message)` of an error body: JSON in one of the known shapes, else its text (HTML
/// stripped of tags), else nothing.
fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        let code = parsed.class.or(parsed.error_code).or(parsed.error.clone());
        let message = parsed
            .message
            .or(parsed.error_description)
            .or(parsed.error)
            .filter(|m| !m.trim().is_empty());
        return (code, message);
    }
    let text = String::from_utf8_lossy(body);
    let text = if text.contains('<') {
        strip_tags(&text)
    } else {
        text.into_owned()
    };
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return (None, None);
    }
    let mut message: String = collapsed.chars().take(MAX_TEXT_MESSAGE).collect();
    if message.len() < collapsed.len() {
        message.push('…');
    }
    (None, Some(message))
}

/// Text of an HTML page: tags, scripts and styles removed.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let tag = &rest[open..];
        let lower = tag.get(..8).unwrap_or(tag).to_ascii_lowercase();
        let skip_until = if lower.starts_with("<script") {
            Some("</script>")
        } else if lower.starts_with("<style") {
            Some("</style>")
        } else {
            None
        };
        rest = match skip_until {
            Some(end) => match tag.to_ascii_lowercase().find(end) {
                Some(at) => &tag[at + end.len()..],
                None => "",
            },
            None => match tag.find('>') {
                Some(at) => &tag[at + 1..],
                None => "",
            },
        };
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, body: &str) -> OvhError {
        OvhError::from_answer(
            "GET",
            "https://eu.api.ovh.com/1.0/dedicatedCloud",
            status,
            Some("EU.ext-1.abc".into()),
            body.as_bytes(),
        )
    }

    #[test]
    fn query_out_of_time_is_told_from_other_bad_requests() {
        let out_of_time = api(
            400,
            r#"{"class":"Client::BadRequest","message":"Query out of time"}"#,
        );
        assert!(out_of_time.is_out_of_time());
        assert!(!out_of_time.is_transient());
        let bad_signature = api(
            400,
            r#"{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}"#,
        );
        assert!(!bad_signature.is_out_of_time());
    }

    #[test]
    fn both_json_error_shapes_are_understood() {
        let newer = api(
            403,
            r#"{"class":"Client::Forbidden","message":"This call has not been granted"}"#,
        );
        assert_eq!(
            newer.to_string(),
            "APIv6 GET https://eu.api.ovh.com/1.0/dedicatedCloud answered 403 Client::Forbidden: \
             This call has not been granted (query id EU.ext-1.abc)"
        );
        let older = api(
            400,
            r#"{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}"#,
        );
        assert_eq!(
            older.to_string(),
            "APIv6 GET https://eu.api.ovh.com/1.0/dedicatedCloud answered 400 INVALID_SIGNATURE: \
             Invalid signature (query id EU.ext-1.abc)"
        );
        assert!(!newer.is_transient() && !older.is_transient());
        assert_eq!(older.query_id(), Some("EU.ext-1.abc"));
    }

    #[test]
    fn html_and_empty_bodies_still_give_a_message() {
        let html = api(
            503,
            "<html><head><title>503</title><style>p{}</style></head><body><h1>Service Unavailable</h1>\n<p>Back soon.</p></body></html>",
        );
        let msg = html.to_string();
        assert!(
            msg.ends_with(
                "answered 503: 503 Service Unavailable Back soon. (query id EU.ext-1.abc)"
            ),
            "{msg}"
        );
        assert!(html.is_transient());
        let empty = api(408, "");
        assert!(
            empty.to_string().contains("answered 408: Request Timeout"),
            "{empty}"
        );
        assert!(empty.is_transient());
        let long = api(502, &"x".repeat(5000));
        assert!(long.to_string().len() < 500);
    }

    #[test]
    fn only_network_errors_408_429_and_5xx_are_transient() {
        for (status, transient) in [
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (409, false),
            (460, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(api(status, "{}").is_transient(), transient, "{status}");
        }
        let cut = serde_json::from_str::<Vec<i64>>("[1, 2").unwrap_err();
        let decode = |source| OvhError::Decode {
            method: "GET".into(),
            url: "u".into(),
            expected: "x",
            query_id: None,
            source: Some(source),
        };
        assert!(decode(cut).is_transient());
        assert!(!decode(serde_json::from_str::<Vec<i64>>("{}").unwrap_err()).is_transient());
    }
}
