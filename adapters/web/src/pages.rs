//! The pages, one function each, in one layout.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use poem::http::StatusCode;
use tooltool_ports::{BatchRecord, FileRecord, FileUpload};

use crate::Ctx;
use crate::manage::Action;
use crate::text::{highlighted, manifest_entry, relative, size, visibility, with_bug_links};

pub(crate) fn layout(title: &str, ctx: &Ctx<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — tooltool" }
                link rel="stylesheet" href="/ui/static/site.css";
                script src="/ui/static/site.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "tooltool" }
                    nav aria-label="Service" {
                        a href="/docs" { "API" }
                        @if let Some(id) = ctx.signed_in() {
                            a href="/ui/me" { "Signed in as " (id) }
                        } @else {
                            a href="/ui/sign-in" { "Sign in" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn search_form(q: &str) -> Markup {
    html! {
        form.search role="search" action="/ui/search" method="get" {
            label for="q" { "Search by filename, digest prefix, author, message or bug number" }
            div.row {
                input #q type="search" name="q" value=(q) maxlength="1024"
                    placeholder="clang.tar.zst, 3f4a…, Bug 1234";
                button type="submit" { "Search" }
            }
        }
    }
}

/// A time in UTC, with how long ago it was beside it.
pub(crate) fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) {
            (t.format("%Y-%m-%d %H:%M UTC"))
        }
        " " span.ago { "(" (relative(t, now)) ")" }
    }
}

fn batches_table(batches: &[BatchRecord], q: &str, ctx: &Ctx<'_>) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "Batch" } th scope="col" { "Uploaded" } th scope="col" { "Author" } th scope="col" { "Message" } th scope="col" { "Files" } } }
            tbody {
                @for b in batches {
                    tr {
                        td { a href={ "/ui/batches/" (b.id) } { "#" (b.id) } }
                        td { (when(b.uploaded, ctx.now)) }
                        td { (highlighted(&b.author, q)) }
                        td {
                            @if q.is_empty() { (with_bug_links(&b.message, &ctx.config.bug_url)) }
                            @else { (highlighted(&b.message, q)) }
                        }
                        td { (b.files.len()) }
                    }
                }
            }
        }
    }
}

/// `paged`: an older page (`?before=`), where an empty list means the
/// end, not an empty service.
pub(crate) fn home(batches: &[BatchRecord], paged: bool, ctx: &Ctx<'_>) -> Markup {
    layout(
        "Artifacts",
        ctx,
        html! {
            h1 { "Build artifacts by SHA-512" }
            (search_form(""))
            h2 { "Recent uploads" }
            @if batches.is_empty() && paged {
                p { "No older uploads. " a href="/" { "Back to the newest" } }
            } @else if batches.is_empty() {
                p { "Nothing has been uploaded yet." }
            } @else {
                (batches_table(batches, "", ctx))
                @if let Some(last) = batches.last() {
                    p.more { a href={ "/?before=" (last.id) } { "Older uploads" } }
                }
            }
        },
    )
}

/// `None`: that section is not on this page (the other one is paged).
pub(crate) fn search(
    q: &str,
    batches: Option<&[BatchRecord]>,
    files: Option<&[FileRecord]>,
    per_page: usize,
    ctx: &Ctx<'_>,
) -> Markup {
    let query = |extra: String| format!("/ui/search?q={}&{extra}", encode(q));
    let first = format!("/ui/search?q={}", encode(q));
    layout(
        &format!("Search {q}"),
        ctx,
        html! {
            h1 { "Search" }
            (search_form(q))
            section aria-labelledby="files" {
                h2 #files { "Files" }
                @if let Some(files) = files {
                @if files.is_empty() { p { "No file matches." } } @else {
                    ul.files {
                        @for f in files {
                            li {
                                a href={ "/ui/files/" (f.digest) } { code { (highlighted(&f.digest.to_string()[..16], q)) "…" } }
                                " " (size(f.size)) " "
                                span class={ "badge " (visibility(f.visibility)) } { (visibility(f.visibility)) }
                            }
                        }
                    }
                    @if files.len() == per_page && let Some(last) = files.last() {
                        p.more { a href=(query(format!("after={}", last.digest))) { "More files" } }
                    }
                }
                } @else {
                    p { a href=(first) { "Files matching from the first page" } }
                }
            }
            section aria-labelledby="batches" {
                h2 #batches { "Batches" }
                @if let Some(batches) = batches {
                @if batches.is_empty() { p { "No batch matches." } } @else {
                    (batches_table(batches, q, ctx))
                    @if let Some(last) = batches.last() {
                        p.more { a href=(query(format!("before={}", last.id))) { "Older batches" } }
                    }
                }
                } @else {
                    p { a href=(first) { "Batches matching from the first page" } }
                }
            }
        },
    )
}

fn regions(f: &FileRecord) -> String {
    if f.instances.is_empty() {
        "none yet".to_owned()
    } else {
        f.instances
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn download_link(f: &FileRecord, label: &str) -> Markup {
    html! { a href={ "/ui/files/" (f.digest) "/download" } { (label) } }
}

pub(crate) fn batch(b: &BatchRecord, ctx: &Ctx<'_>) -> Markup {
    layout(
        &format!("Batch {}", b.id),
        ctx,
        html! {
            h1 { "Batch #" (b.id) }
            dl {
                dt { "Uploaded" } dd { (when(b.uploaded, ctx.now)) }
                dt { "Author" } dd { (b.author) }
                dt { "Message" } dd.message { (with_bug_links(&b.message, &ctx.config.bug_url)) }
            }
            p { a.button href={ "/ui/batches/" (b.id) "/manifest.tt" } download { "Download manifest.tt" } }
            table {
                thead { tr { th scope="col" { "File" } th scope="col" { "Size" } th scope="col" { "Visibility" } th scope="col" { "Regions" } th scope="col" { "State" } th scope="col" { "Download" } } }
                tbody {
                    @for (name, f) in &b.files {
                        tr {
                            td { a href={ "/ui/files/" (f.digest) } { (name) } }
                            td { (size(f.size)) }
                            td { span class={ "badge " (visibility(f.visibility)) } { (visibility(f.visibility)) } }
                            td { (regions(f)) }
                            td { @if f.has_instances() { "verified" } @else { "pending" } }
                            td { @if f.has_instances() { (download_link(f, "download")) } }
                        }
                    }
                }
            }
        },
    )
}

/// The filename the newest batch gave the file (the first, sorted, if it
/// gave two), for its manifest entry.
fn a_filename(uploads: &[FileUpload]) -> &str {
    uploads
        .first()
        .and_then(|u| u.filenames.first())
        .map_or("<filename>", String::as_str)
}

/// A button that copies the text of the element `target` (hidden until
/// the script shows it: without JavaScript there is nothing to click).
fn copy_button(target: &str, what: &str) -> Markup {
    html! {
        button.copy type="button" data-copy=(target) hidden aria-label={ "Copy " (what) } { "Copy" }
    }
}

/// `paged`: an older page of the uploads; `full`: the page is as long as
/// pages get, so older ones may follow.
pub(crate) fn file(
    f: &FileRecord,
    uploads: &[FileUpload],
    (paged, full): (bool, bool),
    may_manage: bool,
    ctx: &Ctx<'_>,
) -> Markup {
    layout(
        "File",
        ctx,
        html! {
            h1 { "File" }
            dl {
                dt { "SHA-512" } dd { code.digest #digest { (f.digest) } " " (copy_button("digest", "the digest")) }
                dt { "Size" } dd { (size(f.size)) " (" (f.size) " bytes)" }
                dt { "Visibility" } dd { span class={ "badge " (visibility(f.visibility)) } { (visibility(f.visibility)) } }
                dt { "Regions" } dd { (regions(f)) }
                dt { "State" } dd { @if f.has_instances() { "verified" } @else { "pending: no copy is verified yet" } }
            }
            @if f.has_instances() {
                p { a.button href={ "/ui/files/" (f.digest) "/download" } { "Download" } }
            } @else {
                p { "No copy is verified yet: it cannot be downloaded." }
            }
            h2 { "manifest.tt entry" " " (copy_button("entry", "the manifest entry")) }
            // Focusable: it scrolls sideways on narrow screens.
            pre tabindex="0" aria-label="manifest.tt entry" { code #entry { (manifest_entry(a_filename(uploads), f)) } }
            section aria-labelledby="uploads" {
                h2 #uploads { "Uploaded as" }
                @if uploads.is_empty() {
                    p { @if paged { "No older uploads." } @else { "No batch lists this file." } }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Filename" } th scope="col" { "Batch" } th scope="col" { "Uploaded" } th scope="col" { "Author" } th scope="col" { "Message" } } }
                        tbody {
                            @for u in uploads {
                                tr {
                                    td { @for (i, name) in u.filenames.iter().enumerate() { @if i > 0 { ", " } (name) } }
                                    td { a href={ "/ui/batches/" (u.batch_id) } { "#" (u.batch_id) } }
                                    td { (when(u.uploaded, ctx.now)) }
                                    td { (u.author) }
                                    td { (with_bug_links(&u.message, &ctx.config.bug_url)) }
                                }
                            }
                        }
                    }
                    @if full && let Some(last) = uploads.last() {
                        p.more { a href={ "/ui/files/" (f.digest) "?before=" (last.batch_id) } { "Older uploads" } }
                    }
                }
            }
            @if may_manage && let Some(session) = &ctx.session {
                section aria-labelledby="manage" {
                    h2 #manage { "Manage" }
                    form.inline method="post" action={ "/ui/files/" (f.digest) "/manage" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        @match f.visibility {
                            tooltool_domain::Visibility::Public => button type="submit" name="action" value=(Action::MakeInternal.value()) { "Make internal…" },
                            tooltool_domain::Visibility::Internal => button type="submit" name="action" value=(Action::MakePublic.value()) { "Make public…" },
                        }
                        " "
                        button.danger type="submit" name="action" value=(Action::DeleteCopies.value()) { "Delete every stored copy…" }
                    }
                }
            }
        },
    )
}

pub(crate) fn error(status: StatusCode, detail: &str, ctx: &Ctx<'_>) -> Markup {
    let reason = status.canonical_reason().unwrap_or("Error");
    layout(
        reason,
        ctx,
        html! {
            h1 { (status.as_u16()) " " (reason) }
            p { (detail) }
            @if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                @if ctx.signed_in().is_some() {
                    p { a href="/ui/me" { "See what you may do" } }
                } @else {
                    p { a href="/ui/sign-in" { "Sign in" } " to see more." }
                }
            }
            (search_form(""))
        },
    )
}

/// `q` as a query value.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
