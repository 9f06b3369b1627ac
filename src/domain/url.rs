//! The one rule for every URL a secret travels to (the metrics token, APIv6 credentials and
//! signatures, OAuth2 client secrets): https anywhere, plain http only to a loopback host (the
//! simulator, a local proxy), where nothing crosses a network.

use std::net::IpAddr;

use reqwest::Url;

/// Why a URL may not carry secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// `http://` to a host that is not loopback.
    PlainHttp,
    /// Neither https nor http, e.g. `ftp`.
    Scheme(String),
}

/// Whether secrets may be sent to `url`.
pub fn check(url: &Url) -> Result<(), Refused> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(Refused::PlainHttp),
        other => Err(Refused::Scheme(other.to_string())),
    }
}

/// `localhost` (with or without the root's dot, in any case), 127.0.0.0/8 or `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    // IPv6 hosts come bracketed: `[::1]`.
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_on_loopback_only() {
        let check = |text: &str| check(&Url::parse(text).unwrap());
        for ok in [
            "https://opentsdb.gra1-ovh.metrics.ovh.net",
            "http://127.0.0.1:4242",
            "http://127.8.9.10",
            "http://localhost:8080/1.0",
            "http://LOCALHOST.",
            "http://[::1]:9000",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for plain in [
            "http://10.0.0.1",
            "http://example.com",
            "http://[::2]",
            "http://localhost.example",
        ] {
            assert_eq!(check(plain), Err(Refused::PlainHttp), "{plain}");
        }
        assert_eq!(check("ftp://127.0.0.1"), Err(Refused::Scheme("ftp".into())));
    }
}
