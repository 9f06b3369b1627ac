//! Where APIv6 credentials come from, exactly as the official OVH clients read them: the ovh.conf
//! files (`/etc/ovh.conf`, `~/.ovh.conf`, `./ovh.conf`, later ones win) overridden by `OVH_*`
//! environment variables; application key/secret/consumer key, or an OAuth2 service account.
//!
//! Also resolves endpoint names (`ovh-eu`, …) to base URLs. Owns no network access: the client
//! ([`super::client`]) does the talking.
//!
//! One variable goes beyond the official clients: `OVH_OAUTH2_TOKEN_URL` names the OAuth2 token
//! URL, for an endpoint given as a URL (a proxy or a simulator) whose region the table cannot tell.
//! Without it such endpoints use the eu token URL.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::domain::url;
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

/// The endpoint used when neither the job, `OVH_ENDPOINT` nor an ovh.conf names one.
pub const DEFAULT_ENDPOINT: &str = "ovh-eu";

/// Endpoint names and their base URLs (`reference/ovh-apiv6.md`, "Endpoints").
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("ovh-eu", "https://eu.api.ovh.com/1.0"),
    ("ovh-ca", "https://ca.api.ovh.com/1.0"),
    ("ovh-us", "https://api.us.ovhcloud.com/1.0"),
    ("kimsufi-eu", "https://eu.api.kimsufi.com/1.0"),
    ("kimsufi-ca", "https://ca.api.kimsufi.com/1.0"),
    ("soyoustart-eu", "https://eu.api.soyoustart.com/1.0"),
    ("soyoustart-ca", "https://ca.api.soyoustart.com/1.0"),
];

/// OAuth2 token URLs by the base URL of their region; the other endpoints have no OAuth2.
const OAUTH2_TOKEN_URLS: &[(&str, &str)] = &[
    (
        "https://eu.api.ovh.com/1.0",
        "https://www.ovh.com/auth/oauth2/token",
    ),
    (
        "https://ca.api.ovh.com/1.0",
        "https://ca.ovh.com/auth/oauth2/token",
    ),
    (
        "https://api.us.ovhcloud.com/1.0",
        "https://us.ovhcloud.com/auth/oauth2/token",
    ),
];

/// Overrides the OAuth2 token URL (an https URL, or http on loopback).
pub const OAUTH2_TOKEN_URL_ENV: &str = "OVH_OAUTH2_TOKEN_URL";

/// The config files the official clients read, lowest priority first.
const SYSTEM_CONF: &str = "/etc/ovh.conf";
const USER_CONF: &str = ".ovh.conf";
const LOCAL_CONF: &str = "ovh.conf";

/// Keys whose values are secrets; a file holding one should not be readable by others.
const SECRET_KEYS: &[&str] = &["application_secret", "consumer_key", "client_secret"];

/// The base URL of an endpoint name (`ovh-eu`, `ovh-ca`, …) or a full `http(s)://` URL.
pub fn resolve_endpoint(name_or_url: &str) -> Result<String, OvhError> {
    let name = name_or_url.trim();
    if let Some((_, base)) = ENDPOINTS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
    {
        return Ok((*base).to_string());
    }
    if !name.contains("://") {
        return Err(OvhError::UnknownEndpoint {
            name: name.to_string(),
        });
    }
    checked_url(name, "endpoint")
}

/// Parses `raw` as the base of a URL that credentials will be sent to: https anywhere, plain
/// http only on loopback (a simulator or a local proxy), no user:password, query or fragment.
fn checked_url(raw: &str, what: &str) -> Result<String, OvhError> {
    let url = reqwest::Url::parse(raw).map_err(|e| OvhError::Config {
        message: format!(
            "the {what} '{}' is not a valid URL: {e}",
            without_userinfo(raw)
        ),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OvhError::Config {
            message: format!(
                "the {what} '{}' carries a user name or password; APIv6 credentials go in ovh.conf or OVH_* variables",
                without_userinfo(raw)
            ),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(OvhError::Config {
            message: format!("the {what} '{raw}' must not have a query string or fragment"),
        });
    }
    match url::check(&url) {
        Ok(()) => {}
        Err(url::Refused::PlainHttp) => {
            return Err(OvhError::Config {
                message: format!(
                "the {what} '{raw}' uses plain http:// on a non-loopback host, which would send \
                     credentials and signed requests unencrypted; use https:// (http:// is only \
                     accepted for 127.0.0.0/8, localhost and [::1])"
            ),
            })
        }
        Err(url::Refused::Scheme(other)) => {
            return Err(OvhError::Config {
                message: format!("the {what} '{raw}' has scheme '{other}'; use https://"),
            })
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `raw` with anything between `://` and `@` removed, for error messages.
fn without_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<redacted>@{}", &raw[..scheme_end], &raw[at + 1..])
        }
        _ => raw.to_string(),
    }
}

/// Reads the endpoint and credentials. `endpoint` is the job's (it wins over `OVH_ENDPOINT` and
/// the files' `[default] endpoint`); `env` looks up environment variables (injected for tests).
/// Returns the base URL and the credentials.
pub fn load(
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Auth), OvhError> {
    load_from(endpoint, env, &default_files(env))
}

/// The ovh.conf files the official clients read, lowest priority first.
pub fn default_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(SYSTEM_CONF)];
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        files.push(Path::new(&home).join(USER_CONF));
    }
    files.push(PathBuf::from(LOCAL_CONF));
    files
}

/// [`load`] with the list of config files given (lowest priority first); missing files are
/// skipped, as the official clients do.
pub fn load_from(
    endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    files: &[PathBuf],
) -> Result<(String, Auth), OvhError> {
    let config = Config::read(files, env)?;

    let endpoint_name = match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        Some(job) => job.to_string(),
        None => config
            .get("default", "endpoint")
            .map(|(value, _)| value)
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
    };
    let base_url = resolve_endpoint(&endpoint_name)?;
    let section = endpoint_name.as_str();

    let application_key = config.get(section, "application_key");
    let application_secret = config.get(section, "application_secret");
    let consumer_key = config.get(section, "consumer_key");
    let client_id = config.get(section, "client_id");
    let client_secret = config.get(section, "client_secret");

    let signed_origin = [&application_key, &application_secret, &consumer_key]
        .into_iter()
        .flatten()
        .map(|(_, origin)| origin)
        .next();
    let oauth2_origin = [&client_id, &client_secret]
        .into_iter()
        .flatten()
        .map(|(_, origin)| origin)
        .next();

    match (signed_origin, oauth2_origin) {
        (Some(signed), Some(oauth2)) => Err(OvhError::Config {
            message: format!(
                "both an application key/secret/consumer key ({signed}) and an OAuth2 client \
                 ({oauth2}) are configured for endpoint '{section}'; use one method only"
            ),
        }),
        (Some(_), None) => {
            let missing = missing_names(&[
                ("application_key", &application_key),
                ("application_secret", &application_secret),
                ("consumer_key", &consumer_key),
            ]);
            match (application_key, application_secret, consumer_key) {
                (Some((ak, _)), Some((secret, _)), Some((ck, _))) => Ok((
                    base_url,
                    Auth::Signed {
                        application_key: ak,
                        application_secret: Secret::new(secret),
                        consumer_key: Secret::new(ck),
                    },
                )),
                _ => Err(OvhError::MissingCredentials {
                    hint: missing_hint(&missing, section),
                }),
            }
        }
        (None, Some(_)) => {
            let missing =
                missing_names(&[("client_id", &client_id), ("client_secret", &client_secret)]);
            match (client_id, client_secret) {
                (Some((id, _)), Some((secret, _))) => Ok((
                    base_url.clone(),
                    Auth::OAuth2 {
                        client_id: id,
                        client_secret: Secret::new(secret),
                        token_url: oauth2_token_url(&base_url, section, env)?,
                    },
                )),
                _ => Err(OvhError::MissingCredentials {
                    hint: missing_hint(&missing, section),
                }),
            }
        }
        (None, None) => Err(OvhError::MissingCredentials {
            hint: format!(
                "set OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET and OVH_CONSUMER_KEY (or \
                 OVH_CLIENT_ID and OVH_CLIENT_SECRET for an OAuth2 service account), or put \
                 application_key, application_secret and consumer_key (or client_id and \
                 client_secret) in the [{section}] section of {SYSTEM_CONF}, ~/{USER_CONF} or \
                 ./{LOCAL_CONF}"
            ),
        }),
    }
}

fn missing_names(values: &[(&'static str, &Option<(String, Origin)>)]) -> Vec<&'static str> {
    values
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect()
}

fn missing_hint(missing: &[&str], section: &str) -> String {
    let vars: Vec<String> = missing
        .iter()
        .map(|key| format!("OVH_{}", key.to_ascii_uppercase()))
        .collect();
    format!(
        "{} missing for endpoint '{section}': set {} or add {} to the [{section}] section of \
         {SYSTEM_CONF}, ~/{USER_CONF} or ./{LOCAL_CONF}",
        missing.join(", "),
        vars.join(", "),
        missing.join(", "),
    )
}

/// The token URL for an OAuth2 service account on `base_url` (reached as `section`).
fn oauth2_token_url(
    base_url: &str,
    section: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, OvhError> {
    if let Some(url) = env(OAUTH2_TOKEN_URL_ENV).filter(|u| !u.trim().is_empty()) {
        return checked_url(url.trim(), OAUTH2_TOKEN_URL_ENV);
    }
    if let Some((_, token_url)) = OAUTH2_TOKEN_URLS.iter().find(|(base, _)| *base == base_url) {
        return Ok((*token_url).to_string());
    }
    if ENDPOINTS.iter().any(|(_, base)| *base == base_url) {
        return Err(OvhError::Config {
            message: format!(
                "OAuth2 service accounts are not available on endpoint '{section}' (only ovh-eu, \
                 ovh-ca and ovh-us); use an application key/secret/consumer key"
            ),
        });
    }
    // A URL endpoint (proxy, simulator) of unknown region: the eu token URL, as documented.
    Ok(OAUTH2_TOKEN_URLS[0].1.to_string())
}

/// Where a value came from, for messages (never the value).
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Env(String),
    File { path: PathBuf, section: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(name) => write!(f, "from {name}"),
            Origin::File { path, section } => {
                write!(f, "from [{section}] in {}", path.display())
            }
        }
    }
}

/// The ovh.conf files that exist, highest priority first, plus the environment.
struct Config<'a> {
    files: Vec<(PathBuf, ini::Ini)>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Config<'a> {
    fn read(paths: &[PathBuf], env: &'a dyn Fn(&str) -> Option<String>) -> Result<Self, OvhError> {
        let mut files = Vec::new();
        for path in paths.iter().rev() {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    // The official clients skip files they cannot read (a root-only
                    // /etc/ovh.conf); say so rather than failing.
                    tracing::warn!(path = %path.display(), error = %e, "Skipping an ovh.conf that cannot be read.");
                    continue;
                }
            };
            // configparser semantics: no quote or backslash processing, so secrets stay verbatim.
            let options = ini::ParseOption {
                enabled_quote: false,
                enabled_escape: false,
                ..ini::ParseOption::default()
            };
            let parsed =
                ini::Ini::load_from_str_opt(&text, options).map_err(|e| OvhError::Config {
                    message: format!(
                        "{} is not a valid ovh.conf: line {}: {}",
                        path.display(),
                        e.line,
                        e.msg
                    ),
                })?;
            if holds_secrets(&parsed) {
                warn_if_readable_by_others(path);
            }
            files.push((path.clone(), parsed));
        }
        Ok(Config { files, env })
    }

    /// `OVH_<KEY>` from the environment, else `key` of `[section]` in the highest-priority file
    /// that has it. Empty values count as absent.
    fn get(&self, section: &str, key: &str) -> Option<(String, Origin)> {
        let var = format!("OVH_{}", key.to_ascii_uppercase());
        if let Some(value) = (self.env)(&var).filter(|v| !v.trim().is_empty()) {
            return Some((value.trim().to_string(), Origin::Env(var)));
        }
        self.files.iter().find_map(|(path, ini)| {
            let props = ini.section(Some(section))?;
            // configparser lower-cases keys: `Application_Key` is `application_key`.
            let value = props
                .iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())?;
            Some((
                value.to_string(),
                Origin::File {
                    path: path.clone(),
                    section: section.to_string(),
                },
            ))
        })
    }
}

fn holds_secrets(ini: &ini::Ini) -> bool {
    ini.iter().any(|(_, props)| {
        props.iter().any(|(k, v)| {
            !v.trim().is_empty() && SECRET_KEYS.iter().any(|s| k.trim().eq_ignore_ascii_case(s))
        })
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "An ovh.conf holding secrets is readable by group or others; restrict it with chmod 600."
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    fn signed(auth: &Auth) -> (String, String, String) {
        match auth {
            Auth::Signed {
                application_key,
                application_secret,
                consumer_key,
            } => (
                application_key.clone(),
                application_secret.expose().to_string(),
                consumer_key.expose().to_string(),
            ),
            other => panic!("expected signed credentials, got {other:?}"),
        }
    }

    #[test]
    fn endpoint_names_resolve_to_the_reference_table() {
        assert_eq!(
            resolve_endpoint("ovh-eu").unwrap(),
            "https://eu.api.ovh.com/1.0"
        );
        assert_eq!(
            resolve_endpoint("ovh-ca").unwrap(),
            "https://ca.api.ovh.com/1.0"
        );
        assert_eq!(
            resolve_endpoint("ovh-us").unwrap(),
            "https://api.us.ovhcloud.com/1.0"
        );
        assert_eq!(
            resolve_endpoint("kimsufi-ca").unwrap(),
            "https://ca.api.kimsufi.com/1.0"
        );
        assert_eq!(
            resolve_endpoint("soyoustart-eu").unwrap(),
            "https://eu.api.soyoustart.com/1.0"
        );
        let err = resolve_endpoint("ovh-moon").unwrap_err().to_string();
        assert!(err.contains("ovh-moon") && err.contains("ovh-eu"), "{err}");
    }

    #[test]
    fn endpoint_urls_need_https_except_on_loopback() {
        assert_eq!(
            resolve_endpoint("https://proxy.example.com/1.0/").unwrap(),
            "https://proxy.example.com/1.0"
        );
        for ok in [
            "http://127.0.0.1:8080/1.0",
            "http://127.3.2.1:1/1.0",
            "http://localhost:9/1.0",
            "http://[::1]:8080/1.0",
        ] {
            assert!(resolve_endpoint(ok).is_ok(), "{ok}");
        }
        let err = resolve_endpoint("http://api.example.com/1.0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unencrypted") && err.contains("loopback"),
            "{err}"
        );
        let err = resolve_endpoint("ftp://127.0.0.1/1.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheme 'ftp'"), "{err}");
        let err = resolve_endpoint("https://me:hunter2@api.example.com/1.0")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn files_env_and_job_apply_in_the_official_clients_order() {
        let dir = tempfile::tempdir().unwrap();
        let etc = write(
            dir.path(),
            "etc.conf",
            "[default]\nendpoint=ovh-ca\n[ovh-ca]\napplication_key=etc-ak\napplication_secret=etc-as\nconsumer_key=etc-ck\n[ovh-us]\napplication_key=us-ak\napplication_secret=us-as\nconsumer_key=us-ck\n",
        );
        let home = write(
            dir.path(),
            "home.conf",
            "[ovh-ca]\napplication_secret=home-as\n",
        );
        let local = write(
            dir.path(),
            "local.conf",
            "[ovh-ca]\nConsumer_Key = local-ck\n",
        );
        let files = vec![etc, home, local];

        // Files only: later files win key by key; the endpoint is [default]'s.
        let (base, auth) = load_from(None, &env_of(&[]), &files).unwrap();
        assert_eq!(base, "https://ca.api.ovh.com/1.0");
        assert_eq!(
            signed(&auth),
            ("etc-ak".into(), "home-as".into(), "local-ck".into())
        );

        // The environment beats every file.
        let env = env_of(&[
            ("OVH_APPLICATION_KEY", "env-ak"),
            ("OVH_ENDPOINT", "ovh-us"),
        ]);
        let (base, auth) = load_from(None, &env, &files).unwrap();
        assert_eq!(base, "https://api.us.ovhcloud.com/1.0");
        assert_eq!(
            signed(&auth),
            ("env-ak".into(), "us-as".into(), "us-ck".into())
        );

        // The job's endpoint beats OVH_ENDPOINT and [default].
        let (base, auth) = load_from(Some("ovh-ca"), &env, &files).unwrap();
        assert_eq!(base, "https://ca.api.ovh.com/1.0");
        assert_eq!(signed(&auth).0, "env-ak");
    }

    #[test]
    fn a_url_endpoint_reads_the_section_named_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write(
            dir.path(),
            "ovh.conf",
            "[default]\nendpoint=http://127.0.0.1:8080/1.0\n[http://127.0.0.1:8080/1.0]\napplication_key=ak\napplication_secret=a\\s'\"\nconsumer_key=ck\n",
        );
        let (base, auth) = load_from(None, &env_of(&[]), &[conf]).unwrap();
        assert_eq!(base, "http://127.0.0.1:8080/1.0");
        // Secrets are taken verbatim (no quote or escape processing).
        assert_eq!(signed(&auth).1, "a\\s'\"");
    }

    #[test]
    fn without_any_endpoint_ovh_eu_is_used() {
        let env = env_of(&[
            ("OVH_APPLICATION_KEY", "ak"),
            ("OVH_APPLICATION_SECRET", "as"),
            ("OVH_CONSUMER_KEY", "ck"),
        ]);
        let (base, _) = load_from(None, &env, &[]).unwrap();
        assert_eq!(base, "https://eu.api.ovh.com/1.0");
    }

    #[test]
    fn mixing_signed_and_oauth2_credentials_is_an_error_naming_both_sources() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write(
            dir.path(),
            "ovh.conf",
            "[ovh-eu]\napplication_key=ak\napplication_secret=top-secret-as\nconsumer_key=top-secret-ck\n",
        );
        let env = env_of(&[
            ("OVH_CLIENT_ID", "id"),
            ("OVH_CLIENT_SECRET", "top-secret-cs"),
        ]);
        let err = load_from(None, &env, std::slice::from_ref(&conf)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, OvhError::Config { .. }), "{err:?}");
        assert!(msg.contains("OVH_CLIENT_ID"), "{msg}");
        assert!(msg.contains(&conf.display().to_string()), "{msg}");
        assert!(!msg.contains("top-secret"), "{msg}");
    }

    #[test]
    fn missing_credentials_say_what_to_set_and_where() {
        let err = load_from(None, &env_of(&[]), &[]).unwrap_err();
        assert!(
            matches!(err, OvhError::MissingCredentials { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        for needle in [
            "OVH_APPLICATION_KEY",
            "OVH_CONSUMER_KEY",
            "OVH_CLIENT_ID",
            "/etc/ovh.conf",
            "~/.ovh.conf",
            "./ovh.conf",
            "[ovh-eu]",
        ] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }

        let env = env_of(&[
            ("OVH_APPLICATION_KEY", "ak"),
            ("OVH_APPLICATION_SECRET", "s3cr3t"),
        ]);
        let msg = load_from(Some("ovh-ca"), &env, &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("consumer_key missing for endpoint 'ovh-ca'"),
            "{msg}"
        );
        assert!(
            msg.contains("OVH_CONSUMER_KEY") && !msg.contains("OVH_APPLICATION_KEY"),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn oauth2_token_urls_follow_the_region() {
        let env = |extra: &[(&str, &str)]| {
            let mut pairs = vec![("OVH_CLIENT_ID", "id"), ("OVH_CLIENT_SECRET", "cs")];
            pairs.extend_from_slice(extra);
            env_of(&pairs)
        };
        let token_url = |endpoint: &str, extra: &[(&str, &str)]| match load_from(
            Some(endpoint),
            &env(extra),
            &[],
        ) {
            Ok((_, Auth::OAuth2 { token_url, .. })) => Ok(token_url),
            Ok((_, other)) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            token_url("ovh-eu", &[]).unwrap(),
            "https://www.ovh.com/auth/oauth2/token"
        );
        assert_eq!(
            token_url("ovh-ca", &[]).unwrap(),
            "https://ca.ovh.com/auth/oauth2/token"
        );
        assert_eq!(
            token_url("ovh-us", &[]).unwrap(),
            "https://us.ovhcloud.com/auth/oauth2/token"
        );
        assert_eq!(
            token_url("http://127.0.0.1:1/1.0", &[]).unwrap(),
            "https://www.ovh.com/auth/oauth2/token"
        );
        assert_eq!(
            token_url(
                "http://127.0.0.1:1/1.0",
                &[(OAUTH2_TOKEN_URL_ENV, "http://127.0.0.1:2/token")]
            )
            .unwrap(),
            "http://127.0.0.1:2/token"
        );
        assert!(token_url("kimsufi-eu", &[])
            .unwrap_err()
            .contains("not available"));
        assert!(token_url(
            "ovh-eu",
            &[(OAUTH2_TOKEN_URL_ENV, "http://tokens.example.com/token")]
        )
        .unwrap_err()
        .contains("unencrypted"));
    }

    #[test]
    fn an_unparsable_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let conf = write(dir.path(), "ovh.conf", "[ovh-eu\napplication_key=x\n");
        let msg = load_from(None, &env_of(&[]), std::slice::from_ref(&conf))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&conf.display().to_string()), "{msg}");
    }

    /// Collects formatted log lines for assertions.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = write(
            dir.path(),
            "open.conf",
            "[ovh-eu]\napplication_key=ak\napplication_secret=as\nconsumer_key=ck\n",
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let closed = write(dir.path(), "closed.conf", "[ovh-eu]\nconsumer_key=ck\n");

        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            load_from(None, &env_of(&[]), &[open.clone(), closed.clone()]).unwrap();
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("readable by group or others"), "{text}");
        assert!(text.contains("open.conf") && text.contains("644"), "{text}");
        assert!(!text.contains("closed.conf"), "{text}");
    }
}
