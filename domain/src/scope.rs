/// A Taskcluster scope string, e.g. `project:releng:services/tooltool/api/manage`.
pub type Scope = String;

/// The scopes a principal holds, with Taskcluster's satisfaction rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn new(scopes: impl IntoIterator<Item = impl Into<Scope>>) -> Self {
        Self(scopes.into_iter().map(Into::into).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Taskcluster's rule: a held scope ending in `*` satisfies every required
    /// scope that starts with the text before the `*`; any other held scope
    /// satisfies only itself. (So a bare `*` satisfies everything.)
    pub fn satisfies(&self, required: &str) -> bool {
        self.0.iter().any(|held| match held.strip_suffix('*') {
            Some(prefix) => required.starts_with(prefix),
            None => held == required,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taskcluster_star_matching() {
        let p = "project:releng:services/tooltool/api";
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "a", false),
            (&["a"], "a", true),
            (&["a"], "ab", false),
            (&["ab"], "a", false),
            (&["*"], "anything", true),
            (&["*"], "", true),
            (&["a*"], "a", true),
            (&["a*"], "abc", true),
            (&["a*"], "b", false),
            // a star only counts at the end
            (&["a*c"], "abc", false),
            (&["a*c"], "a*c", true),
            (
                &[&format!("{p}/download/*")],
                &format!("{p}/download/internal"),
                true,
            ),
            (
                &[&format!("{p}/download/*")],
                &format!("{p}/upload/public"),
                false,
            ),
            (
                &[&format!("{p}/download/public")],
                &format!("{p}/download/internal"),
                false,
            ),
            (&[&format!("{p}/*")], &format!("{p}/manage"), true),
            (&["project:releng:*"], &format!("{p}/manage"), true),
            (
                &["x", "y", &format!("{p}/manage")],
                &format!("{p}/manage"),
                true,
            ),
        ];
        for (held, required, expected) in cases {
            assert_eq!(
                ScopeSet::new(held.iter().copied()).satisfies(required),
                *expected,
                "{held:?} ⊢ {required:?}"
            );
        }
    }
}
