use std::fmt;

use crate::Digest;

/// The storage key of a verified file: the same in every region.
pub fn final_key(digest: &Digest) -> String {
    format!("sha512/{digest}")
}

/// The storage key of one upload slot: `pending/<digest>/<slot id>`.
///
/// Every pending upload gets its own key, so two clients uploading the same
/// digest never write to the same object, and no signed URL ever points at a
/// final key (PROTOCOL.md §2.3).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StagingKey {
    digest: Digest,
    slot: String,
}

impl StagingKey {
    const PREFIX: &'static str = "pending/";

    /// `slot` must be 16 to 64 characters of `[A-Za-z0-9_-]` (random ids).
    pub fn new(digest: Digest, slot: impl Into<String>) -> Option<Self> {
        let slot = slot.into();
        let ok = (16..=64).contains(&slot.len())
            && slot
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then_some(Self { digest, slot })
    }

    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(Self::PREFIX)?;
        let (digest, slot) = rest.split_once('/')?;
        Self::new(Digest::parse(digest).ok()?, slot)
    }

    /// The prefix under which every staging object lives (for sweeping).
    pub fn prefix() -> &'static str {
        Self::PREFIX
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    pub fn slot(&self) -> &str {
        &self.slot
    }
}

impl fmt::Display for StagingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", Self::PREFIX, self.digest, self.slot)
    }
}

impl fmt::Debug for StagingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StagingKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_keys_round_trip_and_reject_junk() {
        let d = Digest::parse(&"b".repeat(128)).expect("valid");
        let key = StagingKey::new(d.clone(), "abcdefghijklmnop").expect("valid slot");
        assert_eq!(StagingKey::parse(&key.to_string()), Some(key.clone()));
        assert_eq!(final_key(&d), format!("sha512/{}", "b".repeat(128)));
        for bad in [
            format!("pending/{}/short", "b".repeat(128)),
            format!("pending/{}/../../../../etc/passwdxx", "b".repeat(128)),
            format!("pending/{}/abcdefghijklmnop", "B".repeat(128)),
            format!("sha512/{}", "b".repeat(128)),
            "pending/".to_owned(),
        ] {
            assert_eq!(StagingKey::parse(&bad), None, "{bad}");
        }
    }
}
