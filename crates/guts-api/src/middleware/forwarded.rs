//! Who sent a request: the TCP peer, unless the peer is one of the proxies the operator
//! trusts (`GUTS_TRUSTED_PROXIES`), in which case the proxy's `X-Forwarded-*` headers.
//!
//! Forwarded headers are whatever the sender wrote. Believed from anyone, a client
//! could put its own host into every URL of a response (`X-Forwarded-Host`; clients
//! follow those URLs, and a cache in front would serve them to others) or pose as any
//! IP to the rate limiter (`X-Forwarded-For`). So [`client`] decides once per request,
//! from the peer address alone, whether the headers count, and leaves a [`Client`] in
//! the request's extensions; [`crate::links::Links`] and the rate limiter read it.
//! Without a `Client` (a router driven without this layer) nothing is trusted.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;

use super::proxies::TrustedProxies;
use crate::state::AppState;

pub use guts_ops::Client;

/// What `parts` says about its client when the proxies in `trusted` are believed.
/// A request without a peer address (no socket: an in-process test) is from nobody in
/// particular and trusted with nothing.
pub fn client_of(parts: &Parts, trusted: &TrustedProxies) -> Client {
    let Some(peer) = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return Client {
            ip: IpAddr::from([0, 0, 0, 0]),
            via_trusted_proxy: false,
        };
    };
    if !trusted.contains(peer) {
        return Client {
            ip: peer,
            via_trusted_proxy: false,
        };
    }
    // `X-Forwarded-For: client, proxy1, proxy2`: each proxy appends the address it
    // was reached from. Walking from the right, the first address that is not a
    // trusted proxy is the client; what lies left of it the client may have forged.
    let hops: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    let ip = hops
        .iter()
        .rev()
        .find(|hop| !trusted.contains(**hop))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer);
    Client {
        ip,
        via_trusted_proxy: true,
    }
}

/// Decides who the client is, once, for every layer and handler after it.
pub(crate) async fn client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let client = client_of(&parts, &state.limits.trusted_proxies);
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded_for: Option<&str>) -> Parts {
        let mut req = http::Request::builder().uri("/");
        if let Some(xff) = forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let peer: SocketAddr = peer.parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    #[test]
    fn parses_addresses_and_networks() {
        let trusted = TrustedProxies::parse(" 127.0.0.1, 10.0.0.0/8,fd00::/8 ,").unwrap();
        assert_eq!(trusted.to_string(), "127.0.0.1,10.0.0.0/8,fd00::/8");
        for ip in ["127.0.0.1", "10.200.3.4", "fd12::1", "::ffff:10.1.1.1"] {
            assert!(trusted.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.2", "11.0.0.1", "fe80::1"] {
            assert!(!trusted.contains(ip.parse().unwrap()), "{ip}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["localhost", "10.0.0.0/33", "::/129", "1.2.3.4/x", "1.2.3"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let none = TrustedProxies::default();
        let local = TrustedProxies::parse("127.0.0.1,10.0.0.0/8").unwrap();
        let forged = parts("127.0.0.1:5000", Some("6.6.6.6"));
        assert_eq!(
            client_of(&forged, &none),
            Client {
                ip: "127.0.0.1".parse().unwrap(),
                via_trusted_proxy: false
            }
        );
        assert_eq!(client_of(&forged, &local).ip.to_string(), "6.6.6.6");
        // The client forged the leftmost hop; the proxies appended the real one.
        let chain = parts("127.0.0.1:5000", Some("6.6.6.6, 8.8.4.4, 10.1.2.3"));
        assert_eq!(client_of(&chain, &local).ip.to_string(), "8.8.4.4");
        let direct = parts("127.0.0.1:5000", None);
        assert_eq!(client_of(&direct, &local).ip.to_string(), "127.0.0.1");
        let outsider = parts("8.8.8.8:5000", Some("6.6.6.6"));
        assert_eq!(client_of(&outsider, &local).ip.to_string(), "8.8.8.8");
    }
}
