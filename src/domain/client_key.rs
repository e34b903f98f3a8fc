//! Which client a request counts against: throttles and hashing lines are
//! kept per client key, so that one client's traffic is measured as one.
use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

/// An IPv4 address, or the IPv6 network of `rate_limit.ipv6_prefix` bits
/// around an address: a host with a /64 has 2^64 addresses, so one address
/// per key would give it no limit at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpNet);

impl ClientKey {
    /// The key of `ip` (IPv4-mapped IPv6 addresses count as the IPv4 address).
    /// `ipv6_prefix` is 0..=128 (config validation checks it; larger is 128).
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> ClientKey {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V6(v6) => ClientKey(
                Ipv6Net::new(v6, ipv6_prefix.min(128))
                    .map_or(IpNet::from(ip), |net| IpNet::V6(net.trunc())),
            ),
            v4 => ClientKey(IpNet::from(v4)),
        }
    }
}

/// `203.0.113.7` for IPv4, `2001:db8::/64` for an IPv6 network: the throttle's row key.
impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(v4) => write!(f, "{}", v4.addr()),
            IpNet::V6(v6) => write!(f, "{}/{}", v6.addr(), v6.prefix_len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, prefix: u8) -> String {
        ClientKey::of(ip.parse().unwrap(), prefix).to_string()
    }

    #[test]
    fn ipv4_clients_are_their_address() {
        assert_eq!(key("203.0.113.7", 64), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7", 64), "203.0.113.7");
    }

    #[test]
    fn ipv6_clients_are_their_prefix() {
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(
            ClientKey::of("2001:db8:1:2::1".parse().unwrap(), 64),
            ClientKey::of("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap(), 64)
        );
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8::1", 128), "2001:db8::1/128");
        assert_eq!(key("2001:db8:1:2:3::1", 48), "2001:db8:1::/48");
    }
}
