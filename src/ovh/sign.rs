//! APIv6 request signatures (`reference/ovh-apiv6.md`, "Request signing").

/// `"$1$" + hex(SHA1(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TIMESTAMP))`.
pub fn signature(application_secret: &str, consumer_key: &str, method: &str, url: &str, body: &[u8], timestamp: i64) -> String {
    let _ = (application_secret, consumer_key, method, url, body, timestamp);
    todo!("signing")
}
