//! Extra `/etc/hosts` entries for RUN steps.

use std::net::IpAddr;
use std::str::FromStr;

use super::InvalidBuild;

/// One `/etc/hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraHost {
    /// The host name.
    pub host: String,
    /// What it resolves to.
    pub addr: HostAddr,
}

/// The address of an [`ExtraHost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAddr {
    /// A fixed address.
    Ip(IpAddr),
    /// The daemon's host as seen from the build (docker's `host-gateway`).
    HostGateway,
}

impl ExtraHost {
    /// `host` resolving to `addr`.
    pub fn new(host: impl Into<String>, addr: HostAddr) -> ExtraHost {
        ExtraHost {
            host: host.into(),
            addr,
        }
    }

    /// The frontend's `host=ip` form.
    pub(crate) fn attr(&self) -> String {
        match self.addr {
            HostAddr::Ip(ip) => format!("{}={ip}", self.host),
            HostAddr::HostGateway => format!("{}=host-gateway", self.host),
        }
    }
}

impl FromStr for ExtraHost {
    type Err = InvalidBuild;

    /// docker's `HOST:IP`; `HOST=IP` and `HOST:host-gateway` too. The split
    /// is at the first separator, since IPv6 addresses hold colons.
    fn from_str(input: &str) -> Result<ExtraHost, InvalidBuild> {
        let bad = || InvalidBuild::ExtraHost {
            input: input.to_string(),
        };
        let (host, addr) = input
            .split_once('=')
            .or_else(|| input.split_once(':'))
            .ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        // docker's `HOST:[IPv6]` form.
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        let addr = match addr {
            "host-gateway" => HostAddr::HostGateway,
            ip => HostAddr::Ip(ip.parse().map_err(|_| bad())?),
        };
        Ok(ExtraHost::new(host, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_forms_parse() {
        let attrs: Vec<String> = ["db:10.0.0.5", "v6:::1", "gw=host-gateway", "b:[fd00::2]"]
            .iter()
            .map(|s| s.parse::<ExtraHost>().unwrap().attr())
            .collect();
        assert_eq!(
            attrs,
            ["db=10.0.0.5", "v6=::1", "gw=host-gateway", "b=fd00::2"]
        );
        for bad in ["db", "db:notanip", ":1.2.3.4"] {
            assert!(bad.parse::<ExtraHost>().is_err(), "{bad}");
        }
    }
}
