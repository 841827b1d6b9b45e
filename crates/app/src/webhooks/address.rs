//! Where a webhook may be sent: a receiver's address is an administrator's text, and the
//! service runs inside the government's network, so unless INCIDENCIAS_WEBHOOK_ALLOW_INTERNAL
//! says otherwise, nothing is sent to an internal address (loopback, private, link-local —
//! cloud metadata lives there —, shared, unspecified, multicast, IPv6 unique-local): the
//! address literally in the URL is checked before sending, and every name is resolved
//! through [`PublicOnly`], which drops internal addresses at connection time, so a name
//! that resolves publicly for the check and internally a moment later (DNS rebinding)
//! still reaches nothing inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is internal (not a public Internet address).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), RFC 6598.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, benchmarking (RFC 6890, 2544), reserved.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// Why `url` may not be sent to, when its host is an internal address written literally.
pub fn literal_refusal(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let ip = match parsed.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        url::Host::Domain(_) => return None,
    };
    is_internal(ip).then(|| refusal(ip))
}

fn refusal(ip: IpAddr) -> String {
    format!("la dirección del receptor es interna ({ip}): no se envía a la red interna")
}

/// A resolver that keeps only public addresses; a name with none left fails to connect,
/// saying why.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| !is_internal(a.ip()))
                .collect();
            match (public.is_empty(), all.first()) {
                (true, Some(first)) => Err(refusal(first.ip()).into()),
                _ => Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_told_from_public_ones() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = internal.parse().expect("an address");
            assert!(is_internal(ip), "{internal} is internal");
        }
        for public in [
            "8.8.8.8",
            "200.57.7.1",
            "2001:4860:4860::8888",
            "172.32.0.1",
        ] {
            let ip: IpAddr = public.parse().expect("an address");
            assert!(!is_internal(ip), "{public} is public");
        }
    }

    #[test]
    fn literal_internal_hosts_are_refused_and_names_left_to_the_resolver() {
        for url in [
            "http://127.0.0.1:8080/hooks",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "https://LOCALHOST/x",
            "http://10.0.0.5/x",
        ] {
            assert!(
                literal_refusal(url).is_some_and(|w| w.contains("interna")),
                "{url}"
            );
        }
        assert_eq!(literal_refusal("https://portal.gob.mx/webhooks"), None);
        assert_eq!(literal_refusal("https://200.57.7.1/webhooks"), None);
    }
}
