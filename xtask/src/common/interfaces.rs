//! This machine's interface addresses, read with `if-addrs` (getifaddrs on Linux and macOS).

use std::net::IpAddr;

/// An address of this machine: its interface, the address, and the network's prefix length.
pub struct Local {
    pub interface: String,
    pub ip: IpAddr,
    pub prefix: u8,
}

/// Every address of this machine's interfaces (none when they cannot be read).
pub fn addresses() -> Vec<Local> {
    let found = if_addrs::get_if_addrs().unwrap_or_default();
    found
        .into_iter()
        .map(|i| {
            let prefix = match &i.addr {
                if_addrs::IfAddr::V4(a) => a.prefixlen,
                if_addrs::IfAddr::V6(a) => a.prefixlen,
            };
            Local { ip: i.ip(), interface: i.name, prefix }
        })
        .collect()
}
