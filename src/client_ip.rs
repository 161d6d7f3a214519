//! The client address of an HTTP request, for per-address limits.
//!
//! It is the TCP peer, unless the peer is a proxy the operator trusts (`SEVA_TRUSTED_PROXIES`):
//! then it is the rightmost `X-Forwarded-For` address that is not itself a trusted proxy. Each
//! proxy appends the address it saw, so the rightmost entries are the ones trusted proxies
//! wrote and everything to the left of the first untrusted one may be invented by the client.
//! From a peer that is not trusted the header is ignored: anyone can write one, and honouring
//! it would let an attacker dodge a limit (a new address per request) or frame someone else.
//!
//! The list is hand-rolled (a few lines of masking) rather than a CIDR crate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// The header proxies append the client's address to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// One address block: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `SEVA_TRUSTED_PROXIES`: addresses and CIDR blocks (`10.0.0.0/8, 192.168.1.5, fd00::/8`)
/// whose `X-Forwarded-For` is believed. Empty by default: the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

/// An entry of `SEVA_TRUSTED_PROXIES` that is not an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR block (like 10.0.0.0/8)")]
pub struct BadProxy(pub String);

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    fn from_str(s: &str) -> Result<TrustedProxies, BadProxy> {
        let mut blocks = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || BadProxy(entry.to_owned());
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (entry, None),
            };
            let net = canonical(addr.trim().parse::<IpAddr>().map_err(|_| bad())?);
            let max = if net.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(bad)?,
                None => max,
            };
            blocks.push(Block { net, prefix });
        }
        Ok(TrustedProxies(blocks))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|b| b.contains(ip))
    }

    /// The client of a request from `peer` carrying `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        // Several header lines count as one list, in order (RFC 9110 §5.3).
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.into_iter().rev() {
            // An entry that is not an address ends what can be believed: the last proxy that
            // wrote a readable one is the best we know.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (addr, _) = rest.split_once(']')?;
        return addr
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(IpAddr::V6(ip)));
    }
    let (addr, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4 written as IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener reports it) is IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blocks_match_by_prefix_in_both_families() {
        let t: TrustedProxies = " 10.0.0.0/8, 192.168.1.5 ,fd00::/8,127.0.0.1/32"
            .parse()
            .unwrap();
        assert!(t.contains(ip("10.255.3.4")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(t.contains(ip("192.168.1.5")));
        assert!(!t.contains(ip("192.168.1.6")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(t.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peers");
        assert!(!t.contains(ip("::1")));
        let all: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        assert_eq!(
            t.to_string(),
            "10.0.0.0/8,192.168.1.5/32,fd00::/8,127.0.0.1/32"
        );
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "localhost",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            assert_eq!(err.0, bad);
        }
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let none = TrustedProxies::default();
        let spoofed = xff(&["198.51.100.9"]);
        assert_eq!(none.client(ip("203.0.113.7"), &spoofed), ip("203.0.113.7"));

        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // Peer not trusted: header ignored.
        assert_eq!(t.client(ip("203.0.113.7"), &spoofed), ip("203.0.113.7"));
        // The proxy appended the address it saw; what the client wrote to its left is ignored.
        let h = xff(&["198.51.100.9, 203.0.113.7"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        // Two trusted hops.
        let h = xff(&["198.51.100.9", "203.0.113.7, 10.0.0.5"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        // No header, or only proxies: the leftmost proxy is all there is.
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["10.9.9.9"])),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last readable hop.
        let h = xff(&["198.51.100.9, junk, 10.0.0.5"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.0.0.5"));
        // Ports and brackets as some proxies write them.
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["203.0.113.7:5123"])),
            ip("203.0.113.7")
        );
        assert_eq!(
            t.client(ip("10.0.0.2"), &xff(&["[2001:db8::7]:443"])),
            ip("2001:db8::7")
        );
    }
}
