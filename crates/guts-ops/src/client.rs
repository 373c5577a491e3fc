//! [`Client`]: who sent a request, as the HTTP edge decided once per request (the TCP
//! peer, or what a trusted proxy forwarded for). Here, not in the API crate, because
//! every HTTP front end (REST, git, web) reads it from the request's extensions and
//! none of them imports another.

use std::net::IpAddr;

/// The request's client as this node believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The TCP peer, or the address a trusted proxy forwarded for.
    pub ip: IpAddr,
    /// The TCP peer is a trusted proxy, so its `X-Forwarded-Host`/`-Proto` count.
    pub via_trusted_proxy: bool,
}

impl Client {
    /// `scheme://host[:port]` of the request `parts` as its client addressed it: the
    /// `Host` header, or `X-Forwarded-Proto` / `X-Forwarded-Host` when the request came
    /// through a trusted proxy (a [`Client`] in its extensions says so). From anyone
    /// else those headers would let a client write its own host into the URLs a
    /// response hands out; a host that is not plausible becomes `localhost`.
    pub fn origin(parts: &http::request::Parts) -> String {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let proxied = parts
            .extensions
            .get::<Client>()
            .is_some_and(|c| c.via_trusted_proxy);
        let forwarded = |name: &str| header(name).filter(|_| proxied);
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| plausible_host(h))
            .unwrap_or("localhost");
        let scheme = match forwarded("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        format!("{scheme}://{host}")
    }
}

fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Longest cookie value looked at.
const MAX_COOKIE_CHARS: usize = 512;

/// The value of cookie `name` in `headers` (every `Cookie` header), if present and of a
/// plausible length.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            http::HeaderValue::from_static("xguts_session=evil; guts_session=good"),
        );
        headers.append(
            http::header::COOKIE,
            http::HeaderValue::from_static("guts_csrf=c"),
        );
        assert_eq!(cookie(&headers, "guts_session"), Some("good"));
        assert_eq!(cookie(&headers, "guts_csrf"), Some("c"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
