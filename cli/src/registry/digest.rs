//! Content digests: parsing `sha256:<hex>` and checking bytes against one
//! while they stream, so nothing unverified is kept or passed on.

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 hex>` digest; other algorithms are refused (docker's
/// registries and containerd use sha256 only for what berth reads).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("unsupported digest {s:?}: only sha256 is supported"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("invalid digest {s:?}"));
        }
        Ok(Self(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// docker's short layer ID in progress output: 12 hex characters.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes bytes as they pass and counts them; `finish` says whether they
/// were exactly the expected content.
pub struct Verifier {
    want: Digest,
    size: Option<u64>,
    hasher: Sha256,
    seen: u64,
}

impl Verifier {
    pub fn new(want: &Digest, size: Option<u64>) -> Self {
        Self {
            want: want.clone(),
            size,
            hasher: Sha256::new(),
            seen: 0,
        }
    }

    /// Feeds bytes; fails as soon as more arrive than the descriptor's size.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.seen += chunk.len() as u64;
        if let Some(size) = self.size {
            if self.seen > size {
                return Err(format!(
                    "{}: more than the expected {size} bytes received",
                    self.want
                ));
            }
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn finish(self) -> Result<(), String> {
        if let Some(size) = self.size {
            if self.seen != size {
                return Err(format!(
                    "{}: expected {size} bytes, received {}",
                    self.want, self.seen
                ));
            }
        }
        let got = hex::encode(self.hasher.finalize());
        if got != self.want.hex() {
            return Err(format!(
                "digest mismatch: expected {}, got sha256:{got}",
                self.want
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn parses_only_sha256() {
        assert!(Digest::parse(HELLO).is_ok());
        assert!(Digest::parse("sha512:abcd").is_err());
        assert!(Digest::parse("sha256:ABCD").is_err());
        assert!(Digest::parse(&HELLO[..70]).is_err());
        assert_eq!(Digest::parse(HELLO).unwrap().short(), "2cf24dba5fb0");
    }

    #[test]
    fn verifies_streamed_bytes() {
        let d = Digest::parse(HELLO).unwrap();
        let mut v = Verifier::new(&d, Some(5));
        v.update(b"he").unwrap();
        v.update(b"llo").unwrap();
        assert!(v.finish().is_ok());
        assert_eq!(Digest::of(b"hello"), d);
    }

    #[test]
    fn refuses_altered_or_short_or_long_content() {
        let d = Digest::parse(HELLO).unwrap();
        let mut v = Verifier::new(&d, Some(5));
        v.update(b"hellO").unwrap();
        assert!(v.finish().unwrap_err().contains("digest mismatch"));
        let mut v = Verifier::new(&d, Some(5));
        v.update(b"hell").unwrap();
        assert!(v.finish().unwrap_err().contains("expected 5 bytes"));
        let mut v = Verifier::new(&d, Some(5));
        assert!(v.update(b"hello!").is_err());
        let mut v = Verifier::new(&d, None);
        v.update(b"hello").unwrap();
        assert!(v.finish().is_ok());
    }
}
