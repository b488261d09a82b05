//! Flag values that clap parses into types: durations, nodePort ranges, node addresses, platforms,
//! and what a `--toolsets` list turns on.

use anyhow::{anyhow, bail, Result};
use std::net::IpAddr;
use std::time::Duration;

/// Durations longer than a day are refused.
const MAX_DURATION_SECS: u64 = 24 * 3600;

/// `90s`, `5m`, `1h`, `2m30s` or plain seconds; more than zero, at most a day.
pub fn duration(text: &str) -> Result<Duration> {
    let bad = || anyhow!("invalid duration '{text}': use e.g. 90s, 5m, 1h or 2m30s");
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| v.checked_add(total)).unwrap_or(u64::MAX);
        number.clear();
    }
    if !number.is_empty() {
        total = total.saturating_add(number.parse::<u64>().unwrap_or(u64::MAX));
    }
    if total == 0 {
        return Err(bad());
    }
    if total > MAX_DURATION_SECS {
        bail!("duration '{text}' is too long: at most 24h");
    }
    Ok(Duration::from_secs(total))
}

/// The cluster's NodePort range, `MIN-MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

pub fn port_range(text: &str) -> Result<PortRange> {
    let bad = || anyhow!("invalid --nodeport-range '{text}': expected MIN-MAX such as 30000-32767");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (low, high): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if low == 0 || low > high {
        return Err(bad());
    }
    Ok(PortRange { low, high })
}

/// A node address the laptop can reach: not unspecified (0.0.0.0, ::) and not multicast.
pub fn node_ip(text: &str) -> Result<IpAddr> {
    let ip: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("invalid node IP '{text}': pass an IP address, e.g. --node-ip 10.8.0.1"))?;
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) means its IPv4 address.
    let meaning = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let broadcast = matches!(meaning, IpAddr::V4(v4) if v4.is_broadcast());
    if meaning.is_unspecified() || meaning.is_multicast() || broadcast {
        bail!("invalid node IP '{text}': an unspecified or multicast address (or the broadcast address) is no node's address; pass the node's WireGuard IP, e.g. --node-ip 10.8.0.1");
    }
    Ok(ip)
}

/// Platforms to build, `OS/ARCH[/VARIANT]`, comma separated, each once, each in containerd's
/// normal form (`linux/arm64/v8` is `linux/arm64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platforms(pub Vec<String>);

pub fn platforms(list: &str) -> Result<Platforms> {
    const OS: &[&str] = &["linux", "windows", "darwin", "freebsd"];
    const ARCH: &[&str] = &["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"];
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim) {
        let parts: Vec<&str> = p.split('/').collect();
        let ok = matches!(parts.len(), 2 | 3)
            && OS.contains(&parts[0])
            && ARCH.contains(&parts[1])
            && parts.get(2).is_none_or(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            bail!("invalid platform '{p}': expected OS/ARCH[/VARIANT] such as linux/amd64 or linux/arm64");
        }
        let p = crate::common::platform::normalize(p);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(Platforms(out))
}

/// Whether a server given `--toolsets toolsets` (None: its default, core and config) runs `name`.
pub fn runs_toolset(toolsets: Option<&str>, name: &str) -> bool {
    toolsets.unwrap_or("core,config").split(',').any(|t| t.trim() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("2m30s").unwrap(), Duration::from_secs(150));
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        for bad in ["", "5x", "m", "0s", "25h", "5124095576030432h", "99999999999999999999999s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration("24h").unwrap(), Duration::from_secs(86400));
    }

    #[test]
    fn ranges() {
        assert_eq!(port_range("30000-32767").unwrap(), PortRange { low: 30000, high: 32767 });
        assert!(port_range("32767-30000").is_err());
        assert!(port_range("abc").is_err());
        assert!(port_range("30000-32767").unwrap().contains(30000));
    }

    #[test]
    fn node_ips() {
        assert!(node_ip("10.8.0.1").is_ok());
        assert!(node_ip("fd00::1").is_ok());
        assert_eq!(node_ip("::ffff:10.8.0.1").unwrap(), "::ffff:10.8.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            node_ip("10.8.0").unwrap_err().to_string(),
            "invalid node IP '10.8.0': pass an IP address, e.g. --node-ip 10.8.0.1"
        );
        for bad in ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "::ffff:0.0.0.0", "::ffff:224.0.0.1", "255.255.255.255"] {
            assert!(node_ip(bad).unwrap_err().to_string().contains("unspecified or multicast"), "{bad}");
        }
    }

    #[test]
    fn platform_lists() {
        assert_eq!(platforms("linux/amd64, linux/arm64").unwrap().0, ["linux/amd64", "linux/arm64"]);
        assert_eq!(platforms("linux/arm/v7").unwrap().0, ["linux/arm/v7"]);
        assert_eq!(platforms("linux/arm64/v8,linux/amd64/v1,linux/arm64").unwrap().0, ["linux/arm64", "linux/amd64"]);
        for bad in ["linux", "linux/x86", "amd64/linux", "linux/amd64/", ""] {
            assert!(platforms(bad).unwrap_err().to_string().starts_with("invalid platform"), "{bad}");
        }
    }
}
