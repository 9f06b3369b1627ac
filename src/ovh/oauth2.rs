//! OAuth2 service accounts: the client-credentials grant (scope `all`) against the region's token
//! URL, the bearer token kept until shortly before it expires. Client authentication is tried as
//! HTTP Basic first, then as form fields, and the one that worked is remembered, as go-ovh's
//! `golang.org/x/oauth2` does.

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::client::{escape, sensitive};
use super::error::{OvhError, QUERY_ID_HEADER};
use crate::secret::Secret;

/// A token is renewed this many seconds before it expires, so that no request carries a token
/// that expires in flight.
const EXPIRY_MARGIN_SECS: i64 = 60;

pub(crate) struct TokenCache {
    client_id: String,
    client_secret: Secret,
    token_url: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    token: Option<Secret>,
    /// Unix seconds after which the token is renewed; `None`: until the API refuses it.
    renew_at: Option<i64>,
    style: Option<Style>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Basic,
    Form,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenCache {
    pub fn new(client_id: String, client_secret: Secret, token_url: String) -> Self {
        TokenCache {
            client_id,
            client_secret,
            token_url,
            state: Mutex::new(State::default()),
        }
    }

    /// For `Debug`: the client id and the token URL, never a secret.
    pub fn describe(&self) -> String {
        format!("client id {}, token URL {}", self.client_id, self.token_url)
    }

    /// A valid bearer token: the cached one, or a new one when it is about to expire, when there
    /// is none yet, or when `renew` says the API refused it.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        clock: &(dyn Fn() -> i64 + Send + Sync),
        renew: bool,
    ) -> Result<Secret, OvhError> {
        let mut state = self.state.lock().await;
        let now = clock();
        if let Some(token) = &state.token {
            let fresh = state.renew_at.is_none_or(|at| now < at);
            if fresh && !renew {
                return Ok(token.clone());
            }
        }
        let styles: &[Style] = match state.style {
            Some(Style::Basic) => &[Style::Basic],
            Some(Style::Form) => &[Style::Form],
            None => &[Style::Basic, Style::Form],
        };
        let mut last_error = None;
        for &style in styles {
            match self.fetch(http, style).await {
                Ok(answer) => {
                    let expires_in = answer.expires_in.as_ref().and_then(|v| match v {
                        serde_json::Value::Number(n) => n.as_i64(),
                        serde_json::Value::String(s) => s.parse().ok(),
                        _ => None,
                    });
                    state.renew_at = expires_in.map(|secs| now + secs - EXPIRY_MARGIN_SECS);
                    state.style = Some(style);
                    let token = Secret::new(answer.access_token);
                    state.token = Some(token.clone());
                    tracing::debug!(expires_in_secs = expires_in, "Obtained an OAuth2 token.");
                    return Ok(token);
                }
                // Another way of sending the client's credentials may be accepted.
                Err(e @ OvhError::Api { .. }) if !e.is_transient() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| OvhError::Config {
            message: "no OAuth2 client authentication method left to try".into(),
        }))
    }

    async fn fetch(&self, http: &reqwest::Client, style: Style) -> Result<TokenAnswer, OvhError> {
        let mut form = String::from("grant_type=client_credentials&scope=all");
        let mut request = http
            .post(&self.token_url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match style {
            Style::Basic => {
                // RFC 6749 2.3.1: both parts form-encoded before Basic encoding.
                let pair = format!(
                    "{}:{}",
                    escape(&self.client_id),
                    escape(self.client_secret.expose())
                );
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                request = request.header(AUTHORIZATION, sensitive(&format!("Basic {basic}"))?);
            }
            Style::Form => {
                form.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    escape(&self.client_id),
                    escape(self.client_secret.expose())
                ));
            }
        }
        let transport = |source: reqwest::Error| OvhError::Transport {
            method: "POST".into(),
            url: self.token_url.clone(),
            source: source.without_url(),
        };
        let response = request.body(form).send().await.map_err(transport)?;
        let status = response.status();
        let query_id = response
            .headers()
            .get(QUERY_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(OvhError::from_answer(
                "POST",
                &self.token_url,
                status.as_u16(),
                query_id,
                &body,
            ));
        }
        serde_json::from_slice(&body).map_err(|_| OvhError::Decode {
            method: "POST".into(),
            url: self.token_url.clone(),
            expected: "OAuth2 token {access_token, expires_in}",
            query_id,
            // serde's message could quote the token.
            source: None,
        })
    }
}
