//! Network values in profiles: CIDR blocks and domain patterns for the egress allowlist.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// An IPv4 or IPv6 network in CIDR notation; a bare address means a single host (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr =
            addr_text.parse().map_err(|_| format!("`{text}` is not an IP address or CIDR block like `10.0.0.0/8`"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has an invalid prefix length (0 to {max})"))?,
        };
        let cidr = Cidr { addr, prefix };
        if cidr.network() != addr {
            return Err(format!("`{text}` has host bits set; the network is `{}/{prefix}`", cidr.network()));
        }
        Ok(cidr)
    }

    fn network(self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    pub(crate) fn is_ipv6(self) -> bool {
        self.addr.is_ipv6()
    }

    /// Covers all or a large part of the address space.
    pub(crate) fn is_wide(self) -> bool {
        if self.is_ipv6() { self.prefix < 32 } else { self.prefix < 8 }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `example.com` (that host only) or `*.example.com` (every subdomain, not the apex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DomainPattern {
    pub(crate) wildcard: bool,
    /// Lower-case, without the `*.` prefix and without a trailing dot.
    pub(crate) domain: String,
}

impl DomainPattern {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (wildcard, rest) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let rest = rest.strip_suffix('.').unwrap_or(rest);
        let labels: Vec<&str> = rest.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if rest.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(format!(
                "`{text}` is not a domain name; write `example.com` or `*.example.com` (a bare `*` is not allowed)"
            ));
        }
        if rest.parse::<IpAddr>().is_ok() || labels.last().is_some_and(|l| l.chars().all(|c| c.is_ascii_digit())) {
            return Err(format!("`{text}` is an IP address; put addresses in `network.egress.allow` as a CIDR"));
        }
        Ok(DomainPattern { wildcard, domain: rest.to_owned() })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard { write!(f, "*.{}", self.domain) } else { f.write_str(&self.domain) }
    }
}

impl Serialize for DomainPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("192.168.1.7").unwrap().to_string(), "192.168.1.7/32");
        assert_eq!(Cidr::parse("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert!(Cidr::parse("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().is_wide());
    }

    #[test]
    fn domains() {
        let d = DomainPattern::parse("*.OpenAI.com.").unwrap();
        assert!(d.wildcard);
        assert_eq!(d.to_string(), "*.openai.com");
        assert!(!DomainPattern::parse("api.anthropic.com").unwrap().wildcard);
        for bad in ["*", "*.com", "localhost", "a..b", "-a.com", "1.2.3.4", "exa mple.com", "x.*.com"] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
