use std::fmt;

/// A SHA-512 digest in its only accepted spelling: 128 lower-case hex digits.
///
/// Upper-case hex is rejected rather than normalized, because the digest is a
/// storage key and two spellings of one key would be two objects.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// The error of [`Digest::parse`]; its text is the protocol's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDigest;

impl fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Invalid sha512 digest")
    }
}

impl std::error::Error for InvalidDigest {}

impl Digest {
    /// Number of hex digits in a SHA-512 digest.
    pub const LEN: usize = 128;

    pub fn parse(text: &str) -> Result<Self, InvalidDigest> {
        let valid = text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidDigest)
        }
    }

    /// Builds a digest from the 64 raw bytes a SHA-512 hasher produces.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(Self::LEN);
        for b in bytes {
            text.push(HEX[usize::from(b >> 4)] as char);
            text.push(HEX[usize::from(b & 0xf)] as char);
        }
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}…)", &self.0[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_128_lowercase_hex_digits() {
        let ok = "a".repeat(128);
        let cases: &[(&str, bool)] = &[
            (&ok, true),
            (&"0123456789abcdef".repeat(8), true),
            ("invalid", false),
            ("", false),
            (&"a".repeat(127), false),
            (&"a".repeat(129), false),
            (&"A".repeat(128), false),
            (&format!("{}g", "a".repeat(127)), false),
            (&format!("{} ", "a".repeat(127)), false),
            (&format!("{}é", "a".repeat(126)), false),
        ];
        for (text, valid) in cases {
            assert_eq!(Digest::parse(text).is_ok(), *valid, "{text:?}");
        }
    }

    #[test]
    fn from_bytes_is_lowercase_hex() {
        let d = Digest::from_bytes(&[0xAB; 64]);
        assert_eq!(d.as_str(), "ab".repeat(64));
        assert!(Digest::parse(d.as_str()).is_ok());
    }

    #[test]
    fn error_text_is_the_protocol_message() {
        assert_eq!(InvalidDigest.to_string(), "Invalid sha512 digest");
    }
}
