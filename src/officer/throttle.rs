//! Slows officer-token guessing per client address (issue 8 item 3).
//!
//! A client address may present `SEVA_OFFICER_AUTH_FAILURES` wrong tokens within
//! `SEVA_OFFICER_AUTH_WINDOW`; after that, every officer API request from it — **even one with
//! a right token** — is answered 429 with `Retry-After` for one window from the failure that
//! reached the limit. Refusing the right token too is deliberate: otherwise a guess that
//! succeeds during the penalty would be told apart from the ones that fail, and the penalty
//! would not slow guessing at all. A right token does not clear the count either, so an officer
//! with one valid token cannot use it to keep guessing others'. Requests without any
//! `Authorization` header are not counted (a browser or a probe is not guessing), but they are
//! refused during a penalty like any other.
//!
//! The client address comes from [`crate::client_ip`]. IPv6 clients are counted per /64, the
//! block one customer usually gets, so rotating through one's own addresses does not help.
//! Counts live in this process (each replica counts its own): tokens are 256 random bits, so
//! this is about noticing and slowing, not about making guessing infeasible.
//!
//! Trade-off: police stations behind one NAT share an address, so a misbehaving client there
//! can lock its colleagues out for a window. The window is short by default for that reason.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use dashmap::DashMap;

use crate::client_ip::TrustedProxies;
use crate::metrics;

/// Prune expired entries after this many counted failures, so a spray of addresses cannot
/// grow the map without bound.
const PRUNE_EVERY: u64 = 1024;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the current count started.
    since: Instant,
    failures: u32,
    /// Refused until then.
    blocked_until: Option<Instant>,
}

/// Failed-token counts per client address. Cheap to clone; one per process.
#[derive(Clone)]
pub struct AuthThrottle {
    inner: Arc<Inner>,
}

struct Inner {
    /// 0: never refuse.
    max_failures: u32,
    window: Duration,
    proxies: TrustedProxies,
    entries: DashMap<IpAddr, Entry>,
    counted: AtomicU64,
}

/// Refused for this long (whole seconds, at least 1), for `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    pub retry_after_secs: u64,
}

impl AuthThrottle {
    pub fn new(max_failures: u32, window: Duration, proxies: TrustedProxies) -> AuthThrottle {
        AuthThrottle {
            inner: Arc::new(Inner {
                max_failures,
                window,
                proxies,
                entries: DashMap::new(),
                counted: AtomicU64::new(0),
            }),
        }
    }

    pub fn from_config(config: &crate::config::LimitsConfig) -> AuthThrottle {
        AuthThrottle::new(
            config.officer_auth_failures,
            config.officer_auth_window,
            config.trusted_proxies.clone(),
        )
    }

    /// Never refuses (for embedding the officer router without limits).
    pub fn off() -> AuthThrottle {
        AuthThrottle::new(0, Duration::ZERO, TrustedProxies::default())
    }

    /// The counting key of a request: its client address (IPv6 by /64), or `None` when the
    /// server was not started with connect info.
    pub fn client(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()?
            .0
            .ip();
        Some(key(self.inner.proxies.client(peer, &parts.headers)))
    }

    /// `Err` while `client` is serving a penalty.
    pub fn check(&self, client: IpAddr) -> Result<(), Penalty> {
        if self.inner.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let Some(entry) = self.inner.entries.get(&client).map(|e| *e) else {
            return Ok(());
        };
        match entry.blocked_until {
            Some(until) if until > now => {
                metrics::officer_auth_throttled();
                let left = until - now;
                Err(Penalty {
                    retry_after_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                })
            }
            Some(_) => {
                // Served: start afresh.
                self.inner.entries.remove(&client);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A wrong token from `client`.
    pub fn failed(&self, client: IpAddr) {
        if self.inner.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let window = self.inner.window;
        {
            let mut entry = self.inner.entries.entry(client).or_insert(Entry {
                since: now,
                failures: 0,
                blocked_until: None,
            });
            if now.duration_since(entry.since) >= window {
                *entry = Entry {
                    since: now,
                    failures: 0,
                    blocked_until: None,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
            if entry.failures >= self.inner.max_failures && entry.blocked_until.is_none() {
                entry.blocked_until = Some(now + window);
                tracing::warn!(
                    client = %client,
                    failures = entry.failures,
                    penalty_secs = window.as_secs_f64(),
                    "officer API: too many wrong tokens from one address; refusing it for a while"
                );
            }
        }
        if self.inner.counted.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.inner.entries.retain(|_, e| match e.blocked_until {
                Some(until) => until > now,
                None => now.duration_since(e.since) < window,
            });
        }
    }
}

/// IPv6 addresses count per /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_failure_starts_a_penalty_that_ends() {
        let t = AuthThrottle::new(3, Duration::from_millis(300), TrustedProxies::default());
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "198.51.100.9".parse().unwrap();
        for _ in 0..2 {
            t.failed(a);
            assert!(t.check(a).is_ok());
        }
        t.failed(a);
        let p = t.check(a).unwrap_err();
        assert_eq!(p.retry_after_secs, 1, "rounded up to whole seconds");
        assert!(t.check(b).is_ok(), "another address is not affected");
        std::thread::sleep(Duration::from_millis(350));
        assert!(t.check(a).is_ok());
        t.failed(a);
        assert!(t.check(a).is_ok(), "the count started afresh");
    }

    #[test]
    fn ipv6_counts_per_64_and_off_never_refuses() {
        let t = AuthThrottle::new(2, Duration::from_secs(60), TrustedProxies::default());
        t.failed(key("2001:db8:1:2::1".parse().unwrap()));
        t.failed(key("2001:db8:1:2::ffff".parse().unwrap()));
        assert!(t.check(key("2001:db8:1:2::abcd".parse().unwrap())).is_err());
        assert!(t.check(key("2001:db8:1:3::1".parse().unwrap())).is_ok());

        let off = AuthThrottle::off();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..100 {
            off.failed(a);
        }
        assert!(off.check(a).is_ok());
    }
}
