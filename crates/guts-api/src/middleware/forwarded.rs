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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;

use crate::state::AppState;

/// One IP network: an address and how many of its leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `width` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let ignored = width.saturating_sub(u32::from(prefix));
    a.checked_shr(ignored).unwrap_or(0) == b.checked_shr(ignored).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not an IP address or CIDR network (10.0.0.0/8)");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == width {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The proxies whose forwarded headers are believed (`GUTS_TRUSTED_PROXIES`). Empty,
/// the default, trusts nobody: a node reached directly must not believe its clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of IP addresses and CIDR networks; blanks are
    /// ignored, so an empty text trusts nobody.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(IpNet::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// The request's client as this node believes it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The TCP peer, or the address a trusted proxy forwarded for.
    pub ip: IpAddr,
    /// The TCP peer is a trusted proxy, so its `X-Forwarded-Host`/`-Proto` count.
    pub via_trusted_proxy: bool,
}

impl Client {
    /// What `parts` says about its client when the proxies in `trusted` are believed.
    /// A request without a peer address (no socket: an in-process test) is from
    /// nobody in particular and trusted with nothing.
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> Client {
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
}

/// Decides who the client is, once, for every layer and handler after it.
pub(crate) async fn client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let client = Client::of(&parts, &state.limits.trusted_proxies);
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
            Client::of(&forged, &none),
            Client {
                ip: "127.0.0.1".parse().unwrap(),
                via_trusted_proxy: false
            }
        );
        assert_eq!(Client::of(&forged, &local).ip.to_string(), "6.6.6.6");
        // The client forged the leftmost hop; the proxies appended the real one.
        let chain = parts("127.0.0.1:5000", Some("6.6.6.6, 8.8.4.4, 10.1.2.3"));
        assert_eq!(Client::of(&chain, &local).ip.to_string(), "8.8.4.4");
        let direct = parts("127.0.0.1:5000", None);
        assert_eq!(Client::of(&direct, &local).ip.to_string(), "127.0.0.1");
        let outsider = parts("8.8.8.8:5000", Some("6.6.6.6"));
        assert_eq!(Client::of(&outsider, &local).ip.to_string(), "8.8.8.8");
    }
}
