use std::fmt;

/// Who may download a file: anyone with the public download scope (or
/// anonymous users when the deployment allows it), or only holders of the
/// internal download scope. Neither implies the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Visibility {
    Public,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidVisibility(pub String);

impl fmt::Display for InvalidVisibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a visibility: use 'public' or 'internal'",
            self.0
        )
    }
}

impl std::error::Error for InvalidVisibility {}

impl Visibility {
    pub const ALL: [Visibility; 2] = [Visibility::Public, Visibility::Internal];

    pub fn parse(text: &str) -> Result<Self, InvalidVisibility> {
        match text {
            "public" => Ok(Self::Public),
            "internal" => Ok(Self::Internal),
            other => Err(InvalidVisibility(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_two_names() {
        for (text, expected) in [
            ("public", Some(Visibility::Public)),
            ("internal", Some(Visibility::Internal)),
            ("Public", None),
            ("private", None),
            ("", None),
        ] {
            assert_eq!(Visibility::parse(text).ok(), expected, "{text:?}");
        }
        for v in Visibility::ALL {
            assert_eq!(Visibility::parse(v.as_str()), Ok(v));
        }
    }
}
