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

/// Picks the region a download is served from, or an upload goes to,
/// among `candidates` (regions holding a copy, or configured regions).
///
/// The preferred region wins when it is a candidate; otherwise one chosen
/// uniformly at random (`pick(n)` answers an index below `n`), so the load
/// spreads over every region. A preference for a region that is not a
/// candidate is not an error: the client asks for its nearest region and
/// any copy is better than none (PROTOCOL.md §2.1, §2.2).
pub fn choose_region<'a>(
    preferred: Option<&RegionName>,
    candidates: &'a [RegionName],
    pick: impl FnOnce(usize) -> usize,
) -> Option<&'a RegionName> {
    preferred
        .and_then(|p| candidates.iter().find(|r| *r == p))
        .or_else(|| match candidates.len() {
            0 => None,
            n => candidates.get(pick(n)),
        })
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
        /// (preferred, candidates, what chance picks, chosen)
        type Case<'a> = (Option<RegionName>, &'a [RegionName], usize, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (None, &both, 0, Some("east")),
            (None, &both, 1, Some("west")),
            (Some(r("west")), &both, 0, Some("west")),
            (Some(r("east")), &both, 1, Some("east")),
            (Some(r("east")), &west_only, 0, Some("west")),
            (Some(r("north")), &both, 1, Some("west")),
            (Some(r("east")), &[], 0, None),
            (None, &[], 0, None),
        ];
        for (preferred, candidates, picked, expected) in cases {
            let mut asked = None;
            let chosen = choose_region(preferred.as_ref(), candidates, |n| {
                asked = Some(n);
                picked
            });
            assert_eq!(
                chosen.map(RegionName::as_str),
                expected,
                "{preferred:?} {candidates:?} {picked}"
            );
            // Chance is asked only when the preference does not decide,
            // and over every candidate.
            let decided = preferred.as_ref().is_some_and(|p| candidates.contains(p));
            let expected_ask = (!decided && !candidates.is_empty()).then_some(candidates.len());
            assert_eq!(asked, expected_ask, "{preferred:?} {candidates:?}");
        }
    }
}
