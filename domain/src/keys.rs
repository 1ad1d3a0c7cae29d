//! The layout of a region's objects: `sha512/<digest>` for verified files,
//! `pending/<digest>/<slot>` for upload slots. Keys are parsed once, into
//! [`ObjectKey`], wherever their text comes from (a signed URL, a listing,
//! a database row); everything past that point handles typed keys.

use std::fmt;

use crate::Digest;

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

/// The key of any object a store holds: a verified file (the same key in
/// every region) or an upload slot. Nothing else is ever written, so a key
/// that does not parse names nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    /// `sha512/<digest>`: verified content, downloadable.
    File(Digest),
    /// `pending/<digest>/<slot>`: an upload slot's object.
    Staging(StagingKey),
}

impl ObjectKey {
    const FILE_PREFIX: &'static str = "sha512/";

    pub fn parse(key: &str) -> Option<Self> {
        match key.strip_prefix(Self::FILE_PREFIX) {
            Some(digest) => Digest::parse(digest).ok().map(Self::File),
            None => StagingKey::parse(key).map(Self::Staging),
        }
    }

    /// The digest the object's content must have.
    pub fn digest(&self) -> &Digest {
        match self {
            Self::File(digest) => digest,
            Self::Staging(key) => key.digest(),
        }
    }
}

impl From<StagingKey> for ObjectKey {
    fn from(key: StagingKey) -> Self {
        Self::Staging(key)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(digest) => write!(f, "{}{digest}", Self::FILE_PREFIX),
            Self::Staging(key) => key.fmt(f),
        }
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_reject_junk() {
        let d = Digest::parse(&"b".repeat(128)).expect("valid");
        let slot = StagingKey::new(d.clone(), "abcdefghijklmnop").expect("valid slot");
        assert_eq!(StagingKey::parse(&slot.to_string()), Some(slot.clone()));
        let file = ObjectKey::File(d.clone());
        assert_eq!(file.to_string(), format!("sha512/{}", "b".repeat(128)));
        let staging = ObjectKey::from(slot.clone());
        for key in [&file, &staging] {
            assert_eq!(ObjectKey::parse(&key.to_string()).as_ref(), Some(key));
            assert_eq!(key.digest(), &d);
        }
        for bad in [
            format!("pending/{}/short", "b".repeat(128)),
            format!("pending/{}/../../../../etc/passwdxx", "b".repeat(128)),
            format!("pending/{}/abcdefghijklmnop", "B".repeat(128)),
            format!("sha512/{}/abcdefghijklmnop", "b".repeat(128)),
            format!("sha512/{}", "b".repeat(127)),
            format!("/sha512/{}", "b".repeat(128)),
            "pending/".to_owned(),
            "sha512/".to_owned(),
            String::new(),
        ] {
            assert_eq!(ObjectKey::parse(&bad), None, "{bad}");
        }
        assert_eq!(
            StagingKey::parse(&file.to_string()),
            None,
            "a final key is no slot"
        );
    }
}
