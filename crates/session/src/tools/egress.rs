//! Where webhook tools may connect. An org declares the URL, so without a rule its agent could
//! make this server call into its own network (a cloud metadata address, an internal admin
//! port): server-side request forgery. By default only public addresses are reached; the
//! operator allows private ones with `--webhooks-allow-private` (development, tests, a service
//! inside the same network). The rule applies to the addresses a name resolves to, so no
//! spelling of a host (a DNS name pointing at 10.0.0.5) gets around it, and to IP literals.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// Whether `ip` is reachable on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    let shared = first == 100 && (64..128).contains(&second);
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_unspecified()
        || a.is_documentation()
        || a.is_multicast()
        || shared
        || first == 0)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let first = a.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && a.segments()[1] == 0x0db8;
    !(a.is_loopback() || a.is_unspecified() || a.is_multicast() || unique_local || link_local || documentation)
}

/// The client webhook requests go out on: no redirects (a redirect would carry the signed body
/// and the secret headers to a host nobody declared), and, unless `allow_private`, a resolver
/// that keeps only public addresses.
pub(crate) fn client(allow_private: bool) -> &'static reqwest::Client {
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    static ANY: OnceLock<reqwest::Client> = OnceLock::new();
    let build = |resolver: Option<Arc<PublicOnly>>| {
        let b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent("switchboard-tools");
        let b = match resolver {
            Some(r) => b.dns_resolver(r),
            None => b,
        };
        b.build().unwrap_or_default()
    };
    if allow_private {
        ANY.get_or_init(|| build(None))
    } else {
        PUBLIC.get_or_init(|| build(Some(Arc::new(PublicOnly))))
    }
}

/// An IP-literal host is not resolved, so it is checked here; names are checked by the
/// resolver. `Err` says why, for the model and the logs.
pub(crate) fn check_literal(url: &url::Url, allow_private: bool) -> Result<(), &'static str> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err("the tool's address is on a private network, which this server does not call")
    }
}

struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the tool's host has no public address".into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literals_are_checked_names_are_left_to_the_resolver() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(check_literal(&url("https://169.254.169.254/latest"), false).is_err());
        assert!(check_literal(&url("http://[::1]:9000/x"), false).is_err());
        assert!(check_literal(&url("http://127.0.0.1:9000/x"), true).is_ok());
        assert!(check_literal(&url("https://8.8.8.8/x"), false).is_ok());
        assert!(check_literal(&url("https://crm.example.com/x"), false).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let err = client(false).post("http://localhost:9/tools").send().await.unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
        let text = format!("{err:?}");
        assert!(text.contains("no public address"), "{text}");
    }
}
