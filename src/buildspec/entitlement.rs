//! Privileges a build asks the daemon for, in buildx's `--allow` spelling.

/// Privileges a build asks the daemon for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entitlement {
    /// RUN steps on the host network.
    NetworkHost,
    /// `RUN --security=insecure`.
    SecurityInsecure,
    /// CDI devices for `RUN --device` (BuildKit v0.20+): `None` allows
    /// every device, `Some("NAME[,alias=ALIAS]")` one.
    Device(Option<String>),
}

impl Entitlement {
    /// BuildKit's spelling, as the Solve request carries it.
    pub(crate) fn wire(&self) -> String {
        match self {
            Entitlement::NetworkHost => "network.host".into(),
            Entitlement::SecurityInsecure => "security.insecure".into(),
            Entitlement::Device(None) => "device".into(),
            Entitlement::Device(Some(d)) => format!("device={d}"),
        }
    }
}

impl std::str::FromStr for Entitlement {
    type Err = String;

    /// buildx's `--allow` values: `network.host`, `security.insecure`,
    /// `device`, `device=NAME[,alias=ALIAS]`.
    fn from_str(s: &str) -> Result<Entitlement, String> {
        match s {
            "network.host" => return Ok(Entitlement::NetworkHost),
            "security.insecure" => return Ok(Entitlement::SecurityInsecure),
            "device" => return Ok(Entitlement::Device(None)),
            _ => {}
        }
        match s.strip_prefix("device=") {
            Some(d) if !d.is_empty() && !d.starts_with(',') => {
                let bad_key = d.split(',').skip(1).find(|f| !f.starts_with("alias="));
                match bad_key {
                    Some(k) => Err(format!(
                        "entitlement {s:?}: unknown device option {k:?} (only alias=NAME)"
                    )),
                    None => Ok(Entitlement::Device(Some(d.to_string()))),
                }
            }
            _ => Err(format!(
                "entitlement {s:?}: use network.host, security.insecure, device or device=NAME[,alias=ALIAS]"
            )),
        }
    }
}
