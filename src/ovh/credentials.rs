//! Where APIv6 credentials come from, exactly as the official OVH clients read them: the ovh.conf
//! files (`/etc/ovh.conf`, `~/.ovh.conf`, `./ovh.conf`, later ones win) overridden by `OVH_*`
//! environment variables; application key/secret/consumer key, or an OAuth2 service account.

use crate::secret::Secret;

use super::OvhError;

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Signed requests (application key, application secret, consumer key).
    Signed {
        application_key: String,
        application_secret: Secret,
        consumer_key: Secret,
    },
    /// An OAuth2 service account (client-credentials grant); `token_url` for the endpoint's region.
    OAuth2 {
        client_id: String,
        client_secret: Secret,
        token_url: String,
    },
}

/// The base URL of an endpoint name (`ovh-eu`, `ovh-ca`, …) or a full `http(s)://` URL.
pub fn resolve_endpoint(name_or_url: &str) -> Result<String, OvhError> {
    let _ = name_or_url;
    todo!("endpoints")
}

/// Reads the endpoint and credentials. `endpoint` is the job's (it wins over `OVH_ENDPOINT` and
/// the files' `[default] endpoint`); `env` looks up environment variables (injected for tests).
/// Returns the base URL and the credentials.
pub fn load(
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Auth), OvhError> {
    let _ = (endpoint, env);
    todo!("credentials")
}
