use crate::{ScopeSet, Visibility};

/// Who is asking: an authenticated client (Taskcluster clientId or JWT `sub`)
/// with its scopes, or nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: Option<String>,
    scopes: ScopeSet,
}

impl Principal {
    pub fn anonymous() -> Self {
        Self {
            id: None,
            scopes: ScopeSet::default(),
        }
    }

    pub fn authenticated(id: impl Into<String>, scopes: ScopeSet) -> Self {
        Self {
            id: Some(id.into()),
            scopes,
        }
    }

    /// The principal id, `None` when anonymous. It becomes a batch's author.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    pub fn is_anonymous(&self) -> bool {
        self.id.is_none()
    }
}

/// Longest principal id, in bytes (Taskcluster's clientIds are far shorter).
pub const MAX_PRINCIPAL_ID_BYTES: usize = 256;

/// Checks a principal id taken from a credential (a JWT's `sub`): 1 to
/// [`MAX_PRINCIPAL_ID_BYTES`] bytes without control characters, since it
/// becomes a batch's author and appears in logs.
///
/// # Errors
/// What is wrong, as the end of a sentence ("is empty").
pub fn check_principal_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("is empty".to_owned())
    } else if id.len() > MAX_PRINCIPAL_ID_BYTES {
        Err(format!("is longer than {MAX_PRINCIPAL_ID_BYTES} bytes"))
    } else if id.chars().any(char::is_control) {
        Err("contains control characters".to_owned())
    } else {
        Ok(())
    }
}

/// The permission rules of one deployment: the scope prefix and whether
/// anonymous users may download public files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    prefix: String,
    anonymous_public_download: bool,
}

impl Permissions {
    pub const DEFAULT_PREFIX: &'static str = "project:releng:services/tooltool/api";

    pub fn new(prefix: impl Into<String>, anonymous_public_download: bool) -> Self {
        let mut prefix = prefix.into();
        // `prefix/` and `prefix` name the same scopes; keep one spelling.
        while prefix.ends_with('/') {
            prefix.pop();
        }
        Self {
            prefix,
            anonymous_public_download,
        }
    }

    /// The prefix of every tooltool scope, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn anonymous_public_download(&self) -> bool {
        self.anonymous_public_download
    }

    pub fn download_scope(&self, visibility: Visibility) -> String {
        format!("{}/download/{}", self.prefix, visibility.as_str())
    }

    pub fn upload_scope(&self, visibility: Visibility) -> String {
        format!("{}/upload/{}", self.prefix, visibility.as_str())
    }

    pub fn manage_scope(&self) -> String {
        format!("{}/manage", self.prefix)
    }

    /// Anonymous public download is a property of the deployment, applied to
    /// everybody: an authenticated client without download scopes may fetch
    /// what an anonymous one may.
    pub fn may_download(&self, principal: &Principal, visibility: Visibility) -> bool {
        (visibility == Visibility::Public && self.anonymous_public_download)
            || principal
                .scopes()
                .satisfies(&self.download_scope(visibility))
    }

    pub fn may_upload(&self, principal: &Principal, visibility: Visibility) -> bool {
        !principal.is_anonymous() && principal.scopes().satisfies(&self.upload_scope(visibility))
    }

    pub fn may_manage(&self, principal: &Principal) -> bool {
        !principal.is_anonymous() && principal.scopes().satisfies(&self.manage_scope())
    }

    /// The scopes of `scopes` that can grant a tooltool scope (those under
    /// the prefix, and patterns such as `project:releng:*` or `*` that
    /// cover it): a principal keeps every permission with only these, so
    /// a session need not carry the rest (Taskcluster users have hundreds).
    pub fn relevant_scopes<'s>(&self, scopes: &'s ScopeSet) -> Vec<&'s str> {
        let under = format!("{}/", self.prefix);
        scopes
            .iter()
            .filter(|s| {
                s.starts_with(&under)
                    || s.strip_suffix('*')
                        .is_some_and(|pattern| under.starts_with(pattern))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Visibility::{Internal, Public};

    const P: &str = "project:releng:services/tooltool/api";

    fn who(scopes: &[&str]) -> Principal {
        Principal::authenticated("someone", ScopeSet::new(scopes.iter().copied()))
    }

    #[test]
    fn relevant_scopes_keep_every_permission() {
        let all = ScopeSet::new([
            format!("{P}/download/internal"),
            format!("{P}/up*"),
            "project:releng:*".to_owned(),
            "*".to_owned(),
            "assume:mozilla-group:releng".to_owned(),
            "queue:create-task:*".to_owned(),
            "project:releng:services/tooltool/apiary".to_owned(),
            P.to_owned(),
        ]);
        let permissions = Permissions::new(P, false);
        assert_eq!(
            permissions.relevant_scopes(&all),
            [
                format!("{P}/download/internal").as_str(),
                &format!("{P}/up*"),
                "project:releng:*",
                "*"
            ]
        );
        let kept = who(&permissions.relevant_scopes(&all));
        for scope in [
            permissions.manage_scope(),
            permissions.upload_scope(Internal),
            permissions.download_scope(Public),
        ] {
            assert_eq!(
                kept.scopes().satisfies(&scope),
                who(&all.iter().collect::<Vec<_>>())
                    .scopes()
                    .satisfies(&scope),
                "{scope}"
            );
        }
    }

    #[test]
    fn prefix_trailing_slash_is_ignored() {
        assert_eq!(
            Permissions::new(format!("{P}/"), true).manage_scope(),
            format!("{P}/manage")
        );
    }

    #[test]
    fn download_matrix() {
        let dp = format!("{P}/download/public");
        let di = format!("{P}/download/internal");
        let star = format!("{P}/*");
        // (anonymous public download enabled, principal, visibility, allowed)
        let cases: Vec<(bool, Principal, Visibility, bool)> = vec![
            (true, Principal::anonymous(), Public, true),
            (true, Principal::anonymous(), Internal, false),
            (false, Principal::anonymous(), Public, false),
            (false, who(&[]), Public, false),
            (false, who(&[&dp]), Public, true),
            (false, who(&[&dp]), Internal, false),
            (false, who(&[&di]), Internal, true),
            (false, who(&[&di]), Public, false),
            (true, who(&[&di]), Public, true),
            (false, who(&[&star]), Internal, true),
            (false, who(&["*"]), Internal, true),
        ];
        for (anon, principal, vis, allowed) in cases {
            assert_eq!(
                Permissions::new(P, anon).may_download(&principal, vis),
                allowed,
                "anon={anon} {principal:?} {vis}"
            );
        }
    }

    #[test]
    fn upload_and_manage_matrix() {
        let perms = Permissions::new(P, true);
        let up = format!("{P}/upload/public");
        let ui = format!("{P}/upload/internal");
        let m = format!("{P}/manage");
        let cases: Vec<(Principal, Option<Visibility>, bool)> = vec![
            (Principal::anonymous(), Some(Public), false),
            (Principal::anonymous(), None, false),
            (who(&[&up]), Some(Public), true),
            (who(&[&up]), Some(Internal), false),
            (who(&[&ui]), Some(Internal), true),
            (who(&[&format!("{P}/upload/*")]), Some(Internal), true),
            (who(&[&up]), None, false),
            (who(&[&m]), None, true),
            (who(&[&m]), Some(Public), false),
            (who(&["*"]), None, true),
        ];
        for (principal, vis, allowed) in cases {
            let got = match vis {
                Some(v) => perms.may_upload(&principal, v),
                None => perms.may_manage(&principal),
            };
            assert_eq!(got, allowed, "{principal:?} {vis:?}");
        }
    }

    #[test]
    fn anonymous_star_scopes_are_impossible() {
        // Even a misconfigured anonymous principal carrying scopes cannot upload.
        let anon = Principal {
            id: None,
            scopes: ScopeSet::new(["*"]),
        };
        assert!(!Permissions::new(P, false).may_upload(&anon, Public));
    }
}
