//! Content digests (`sha256:…`), as OCI names every blob, manifest and
//! image config: one checked type for results, the registry client and the
//! daemon's content store.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A content digest (`sha256:…`) whose characters are safe in a URL path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The whole digest, `algorithm:encoded`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:0123456789ab`, for tables.
    pub fn short(&self) -> &str {
        let end = self.0.find(':').map_or(0, |i| i + 1) + 12;
        self.0.get(..end).unwrap_or(&self.0)
    }

    pub(crate) fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(bytes);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Digest(format!("sha256:{hex}"))
    }
}

impl TryFrom<String> for Digest {
    type Error = String;

    /// OCI image-spec digest grammar: `algorithm:encoded`.
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.len() <= 256
            && s.split_once(':').is_some_and(|(alg, enc)| {
                !alg.is_empty()
                    && !enc.is_empty()
                    && alg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                    && enc
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
            });
        if ok {
            Ok(Digest(s))
        } else {
            Err(format!("invalid digest {s:?}"))
        }
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Digest::try_from(s.to_string())
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = Digest::try_from("sha256:0123456789abcdef0123".to_string()).unwrap();
        assert_eq!(d.short(), "sha256:0123456789ab");
        for bad in [
            "sha256",
            ":ab",
            "sha256:",
            "sha256:../x",
            "SHA:ab",
            "sha256:a/b",
        ] {
            assert!(Digest::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
