use std::fmt;

/// The name of a storage location (an S3 region, or a local directory's
/// label). Restricted to a conservative alphabet because it appears in URLs,
/// configuration strings and database rows.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionName(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRegion(pub String);

impl fmt::Display for InvalidRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a region name: use 1 to 63 characters among a-z, 0-9, '-' and '_'",
            self.0
        )
    }
}

impl std::error::Error for InvalidRegion {}

impl RegionName {
    pub fn parse(text: &str) -> Result<Self, InvalidRegion> {
        let valid = (1..=63).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidRegion(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.0)
    }
}

/// Picks the region a download is served from.
///
/// The preferred region wins when it holds a copy; otherwise the first region
/// (in the order given, which callers keep stable) that holds one. A preference
/// for a region without a copy is not an error: the client asks for its
/// nearest region and any copy is better than none (PROTOCOL.md §2.1).
pub fn choose_region<'a>(
    preferred: Option<&RegionName>,
    instances: &'a [RegionName],
) -> Option<&'a RegionName> {
    preferred
        .and_then(|p| instances.iter().find(|r| *r == p))
        .or_else(|| instances.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RegionName {
        RegionName::parse(s).expect("valid region")
    }

    #[test]
    fn region_names() {
        for (text, ok) in [
            ("us-east-1", true),
            ("east", true),
            ("a_b", true),
            ("", false),
            ("East", false),
            ("a/b", false),
            ("a;b", false),
            (&"a".repeat(64) as &str, false),
        ] {
            assert_eq!(RegionName::parse(text).is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn choose_region_table() {
        let both = [r("east"), r("west")];
        let west_only = [r("west")];
        let cases: Vec<(Option<RegionName>, &[RegionName], Option<&str>)> = vec![
            (None, &both, Some("east")),
            (Some(r("west")), &both, Some("west")),
            (Some(r("east")), &west_only, Some("west")),
            (Some(r("north")), &both, Some("east")),
            (Some(r("east")), &[], None),
            (None, &[], None),
        ];
        for (preferred, instances, expected) in cases {
            assert_eq!(
                choose_region(preferred.as_ref(), instances).map(RegionName::as_str),
                expected,
                "{preferred:?} {instances:?}"
            );
        }
    }
}
