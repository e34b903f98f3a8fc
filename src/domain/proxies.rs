//! `server.trusted_proxies` and the rule that finds the client behind them.
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;

/// The peers whose `X-Forwarded-For` header is believed. Read from the
/// configuration as a list of addresses and CIDRs: parsing is its validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<IpNet>);

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;

    /// Every entry an address or a CIDR; blank entries are none.
    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                TrustedProxies::parse_one(e).ok_or_else(|| {
                    format!(
                        "entry {e:?} is not an address or CIDR like 10.0.0.0/8 (comma-separated)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    /// Parses every entry; `None` when one is not an address or CIDR.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Option<TrustedProxies> {
        TrustedProxies::try_from(
            entries
                .iter()
                .map(|e| e.as_ref().to_owned())
                .collect::<Vec<_>>(),
        )
        .ok()
    }

    /// The networks trusted.
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// `10.0.0.1` (one address) or `10.0.0.0/8`.
    fn parse_one(entry: &str) -> Option<IpNet> {
        let entry = entry.trim();
        entry
            .parse::<IpNet>()
            .ok()
            .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer`: the peer itself unless it is a
    /// trusted proxy; then the right-most `X-Forwarded-For` address that is not
    /// itself trusted (each proxy appends the address it saw, so only the part
    /// our own proxies wrote can be believed). Unparseable entries end the walk.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            let Some(ip) = forwarded_address(hop) else {
                log_unparsed_once(hop);
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The address of one `X-Forwarded-For` entry, as proxies write them:
/// `1.2.3.4`, `2001:db8::1`, and with a port or brackets (`1.2.3.4:5678`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`).
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .or_else(|| {
            let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })
}

/// An entry no rule reads means a proxy writes something unexpected: worth
/// one warning, not one per request.
fn log_unparsed_once(hop: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        let shown: String = hop.trim().chars().take(64).collect();
        log::warn!("an X-Forwarded-For entry is not an address ({shown:?}); the client is the hop after it (logged once)");
    } else {
        log::debug!("an X-Forwarded-For entry is not an address");
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`: a dual-stack listener reports IPv4 peers so.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("1.2.3.4"), Some("9.9.9.9")), ip("1.2.3.4"));
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            proxies.client(ip("1.2.3.4"), Some("9.9.9.9")),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        let peer = ip("127.0.0.1");
        assert_eq!(proxies.client(peer, Some("203.0.113.7")), ip("203.0.113.7"));
        // A client-supplied left part is not believed.
        assert_eq!(
            proxies.client(peer, Some("6.6.6.6, 203.0.113.7, 10.1.2.3")),
            ip("203.0.113.7")
        );
        // Every hop trusted: the left-most one.
        assert_eq!(
            proxies.client(peer, Some("10.0.0.9, 10.1.2.3")),
            ip("10.0.0.9")
        );
        // Garbage ends the walk at the last good hop.
        assert_eq!(proxies.client(peer, Some("junk, 10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(proxies.client(peer, None), peer);
        assert_eq!(
            proxies.client(ip("::ffff:127.0.0.1"), Some("203.0.113.7")),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn forwarded_entries_may_carry_a_port_or_brackets() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        let peer = ip("127.0.0.1");
        for (entry, client) in [
            ("203.0.113.7:4711", "203.0.113.7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            (" 2001:db8::7 ", "2001:db8::7"),
            ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
        ] {
            assert_eq!(proxies.client(peer, Some(entry)), ip(client), "{entry}");
        }
        // Still not an address: the walk ends at the hop after it.
        for junk in [
            "[2001:db8::7",
            "203.0.113.7:port",
            "unknown",
            "[203.0.113.7]",
        ] {
            assert_eq!(proxies.client(peer, Some(junk)), peer, "{junk}");
        }
        assert_eq!(
            proxies.client(peer, Some("203.0.113.9, 127.0.0.1:5000")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn entries_are_addresses_or_cidrs() {
        assert!(TrustedProxies::parse(&["10.0.0.1", "fd00::/8", "192.168.0.0/16"]).is_some());
        assert!(TrustedProxies::parse(&["10.0.0.300"]).is_none());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_none());
    }
}
