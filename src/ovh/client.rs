//! The APIv6 HTTP client: signs every request with the server's clock, reads lists and objects
//! (in batches where the endpoint answers them), and turns OVH's two error shapes into
//! [`OvhError`]s that name the call and the query id.

use chrono::{DateTime, Utc};

use crate::job::Services;

use super::inventory::Inventory;
use super::model::MetricsToken;
use super::Auth;

#[derive(Debug, thiserror::Error)]
pub enum OvhError {
    #[error("unknown OVH endpoint '{name}': use ovh-eu, ovh-ca, ovh-us, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca or an https:// URL")]
    UnknownEndpoint { name: String },
    #[error("no OVH API credentials: {hint}")]
    MissingCredentials { hint: String },
    #[error("APIv6 {method} {url} answered {status}: {message}{}", query_id.as_deref().map(|q| format!(" (query id {q})")).unwrap_or_default())]
    Api {
        method: String,
        url: String,
        status: u16,
        /// OVH's `errorCode`/`class`, when the body had one.
        code: Option<String>,
        message: String,
        query_id: Option<String>,
    },
    #[error("APIv6 {method} {url} failed")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("APIv6 {method} {url} answered something that is not the expected {expected}")]
    Decode {
        method: String,
        url: String,
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid OVH configuration: {message}")]
    Config { message: String },
}

impl OvhError {
    /// Worth another attempt: network errors, 408, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            OvhError::Transport { .. } => true,
            OvhError::Api { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// A connected APIv6 client.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
}

impl Client {
    /// A client for `base_url` (e.g. `https://eu.api.ovh.com/1.0`); reads the server clock once
    /// (`GET /auth/time`) for signed requests, or obtains the OAuth2 token.
    pub async fn connect(base_url: &str, auth: Auth) -> Result<Client, OvhError> {
        let _ = auth;
        let _ = Client {
            base_url: base_url.to_string(),
        };
        todo!("ovh client")
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every service/datacenter/host/VM/filer the job covers, read now.
    pub async fn snapshot(
        &self,
        services: &Services,
        datacenters: Option<&[String]>,
        snapshot_ts: DateTime<Utc>,
    ) -> Result<Inventory, OvhError> {
        let _ = (services, datacenters, snapshot_ts);
        todo!("inventory snapshot")
    }

    /// The metrics read token of the service's user with this login (or name).
    pub async fn metrics_token(
        &self,
        service_name: &str,
        user: &str,
    ) -> Result<MetricsToken, OvhError> {
        let _ = (service_name, user);
        todo!("metrics token")
    }
}
