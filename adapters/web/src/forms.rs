//! The pages around sessions: sign-in, who am I, and the confirmation of
//! a change to a file.

use maud::{Markup, html};
use tooltool_domain::{Permissions, Visibility};
use tooltool_ports::FileRecord;

use crate::Ctx;
use crate::manage::Action;
use crate::pages::{layout, when};
use crate::text::{size, visibility};

/// `problem`: why the last attempt failed, said above the form.
pub(crate) fn sign_in(
    csrf: &str,
    taskcluster: bool,
    problem: Option<&str>,
    ctx: &Ctx<'_>,
) -> Markup {
    layout(
        "Sign in",
        ctx,
        html! {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                p.problem role="alert" { (problem) }
            }
            p { "Signing in lets you download internal files you may read and, with the manage scope, change files. Browsing needs no sign-in." }
            @if taskcluster {
                p { a.button href="/ui/sign-in/taskcluster" { "Sign in with Taskcluster" } }
                p { "Or paste a token:" }
            }
            form method="post" action="/ui/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Bearer token" }
                textarea #token name="token" rows="4" required autocomplete="off" spellcheck="false" {}
                p { button type="submit" { "Sign in with this token" } }
            }
            p.note { "The token is checked once and not kept: the session cookie holds only who you are, your tooltool scopes and when the session ends." }
        },
    )
}

pub(crate) fn me(permissions: &Permissions, ctx: &Ctx<'_>) -> Markup {
    let principal = ctx.principal();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    layout(
        "Who am I",
        ctx,
        html! {
            h1 { "Who am I" }
            @match &ctx.session {
                Some(session) if session.is_signed_in() => {
                    dl {
                        dt { "Principal" } dd { code { (principal.id().unwrap_or_default()) } }
                        dt { "Session ends" } dd { (when(session.expires, ctx.now)) }
                    }
                }
                _ => {
                    p { "You are not signed in. " a href="/ui/sign-in" { "Sign in" } }
                }
            }
            h2 { "What you may do" }
            table {
                tbody {
                    tr { th scope="row" { "Download public files" } td { (yes_no(permissions.may_download(&principal, Visibility::Public))) } }
                    tr { th scope="row" { "Download internal files" } td { (yes_no(permissions.may_download(&principal, Visibility::Internal))) } }
                    tr { th scope="row" { "Upload public files" } td { (yes_no(permissions.may_upload(&principal, Visibility::Public))) } }
                    tr { th scope="row" { "Upload internal files" } td { (yes_no(permissions.may_upload(&principal, Visibility::Internal))) } }
                    tr { th scope="row" { "Manage files" } td { (yes_no(permissions.may_manage(&principal))) } }
                }
            }
            h2 { "Scopes" }
            @let scopes: Vec<&str> = principal.scopes().iter().collect();
            @if scopes.is_empty() {
                p { "None." }
            } @else {
                ul { @for scope in scopes { li { code { (scope) } } } }
            }
            @if let Some(session) = ctx.session.as_ref().filter(|s| s.is_signed_in()) {
                form method="post" action="/ui/sign-out" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Sign out" }
                }
            }
        },
    )
}

/// The second step of a change: what will happen, and the button that
/// does it.
pub(crate) fn confirm(f: &FileRecord, action: Action, csrf: &str, ctx: &Ctx<'_>) -> Markup {
    let (question, consequence, button) = match action {
        Action::MakePublic => (
            "Make this file public?",
            "Anyone who may download public files will be able to download it.",
            "Yes, make it public",
        ),
        Action::MakeInternal => (
            "Make this file internal?",
            "Only people with the internal download scope will be able to download it.",
            "Yes, make it internal",
        ),
        Action::DeleteCopies => (
            "Delete every stored copy of this file?",
            "Its bytes are deleted from every region and it cannot be downloaded until someone uploads it again. Its batches keep listing it.",
            "Yes, delete every copy",
        ),
    };
    layout(
        question,
        ctx,
        html! {
            h1 { (question) }
            dl {
                dt { "SHA-512" } dd { code.digest { (f.digest) } }
                dt { "Size" } dd { (size(f.size)) }
                dt { "Visibility" } dd { span class={ "badge " (visibility(f.visibility)) } { (visibility(f.visibility)) } }
            }
            p { (consequence) }
            form.inline method="post" action={ "/ui/files/" (f.digest) "/manage" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(action.value());
                input type="hidden" name="confirmed" value="true";
                button.danger[action == Action::DeleteCopies] type="submit" { (button) }
                " "
                a href={ "/ui/files/" (f.digest) } { "Cancel" }
            }
        },
    )
}
