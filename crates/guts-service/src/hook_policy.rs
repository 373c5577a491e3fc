//! Where webhooks may send: the operator's outbound policy (`GUTS_WEBHOOK_ALLOWED_NETS`).
//!
//! A webhook makes the node send an HTTP request to a URL that any repository admin
//! chooses, from inside the cluster: without a policy, a hook to
//! `http://169.254.169.254/` reads the cloud's instance metadata, and one to
//! `http://10.0.0.7:9090/` reaches a service that trusts the pod network. So by default
//! only public addresses are allowed; the operator names the private networks that
//! are fine (a CI server on the LAN, or loopback in tests).
//!
//! The check runs twice: when a hook is created or changed (so the admin gets a 422 at
//! once) and on every connection the deliverer makes (the resolver it uses refuses the
//! same addresses), since a name that resolved to a public address yesterday may
//! resolve to a private one today.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The outbound policy for webhook targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookPolicy {
    allowed: Vec<IpNet>,
}

/// Why a target URL is refused, as a sentence for the API's 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    #[error("url must be an absolute http or https URL with a host")]
    NotHttp,
    #[error(
        "url resolves to {0}, which this node does not send webhooks to (loopback, link-local, private and reserved addresses need GUTS_WEBHOOK_ALLOWED_NETS)"
    )]
    Address(IpAddr),
}

impl HookPolicy {
    /// A policy that also allows `allowed` (besides public addresses).
    pub fn new(allowed: Vec<IpNet>) -> HookPolicy {
        HookPolicy { allowed }
    }

    /// Parses `GUTS_WEBHOOK_ALLOWED_NETS`: comma-separated addresses and CIDR networks
    /// (blanks ignored, so an empty text allows only public addresses).
    pub fn parse(text: &str) -> Result<HookPolicy, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is not an IP address or CIDR network (10.0.0.0/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(HookPolicy::new)
    }

    /// Whether only public addresses are allowed.
    pub fn is_default(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }

    /// Scheme, host and port of `url`, if it is an http(s) URL with a host.
    pub fn target(url: &str) -> Result<(String, u16), TargetRefused> {
        let parsed = url::Url::parse(url).map_err(|_| TargetRefused::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TargetRefused::NotHttp);
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(TargetRefused::NotHttp),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or(TargetRefused::NotHttp)?;
        Ok((host, port))
    }

    /// Checks `url` now: an http(s) URL whose host, if it resolves, resolves only to
    /// allowed addresses. A name that does not resolve yet is accepted (the deliverer
    /// checks again on every connection).
    pub async fn check(&self, url: &str) -> Result<(), TargetRefused> {
        let (host, port) = Self::target(url)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.permits(ip) {
                Ok(())
            } else {
                Err(TargetRefused::Address(ip))
            };
        }
        let resolved = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        if let Ok(Ok(addrs)) = resolved {
            for addr in addrs {
                if !self.permits(addr.ip()) {
                    return Err(TargetRefused::Address(addr.ip()));
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for HookPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, net) in self.allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is an ordinary public unicast address.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT, 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32; NAT64 64:ff9b::/96 (maps to IPv4 anywhere).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inside_addresses_are_refused_unless_the_operator_allows_their_network() {
        let policy = HookPolicy::default();
        for url in [
            "http://127.0.0.1:9/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.5.4/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://localhost:8080/",
        ] {
            assert!(
                matches!(policy.check(url).await, Err(TargetRefused::Address(_))),
                "{url}"
            );
        }
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://",
            "not a url",
        ] {
            assert_eq!(
                policy.check(url).await,
                Err(TargetRefused::NotHttp),
                "{url}"
            );
        }
        assert_eq!(policy.check("https://93.184.215.14/hook").await, Ok(()));
        assert_eq!(policy.check("https://ci.invalid/hook").await, Ok(()));

        let loopback = HookPolicy::parse(" 127.0.0.0/8 ,").unwrap();
        assert_eq!(loopback.to_string(), "127.0.0.0/8");
        assert!(HookPolicy::parse("10.0.0.0/33").is_err());
        assert_eq!(HookPolicy::parse("::1").unwrap().to_string(), "::1/128");
        assert_eq!(loopback.check("http://127.0.0.1:9/").await, Ok(()));
        assert!(loopback.check("http://169.254.169.254/").await.is_err());
    }
}
