//! The pages, one function each, in one layout.

use maud::{DOCTYPE, Markup, html};
use poem::http::StatusCode;
use tooltool_ports::{BatchRecord, FileRecord};

use crate::WebConfig;
use crate::text::{highlighted, manifest_entry, size, visibility, with_bug_links};

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — tooltool" }
                link rel="stylesheet" href="/ui/static/site.css";
            }
            body {
                header {
                    a.brand href="/" { "tooltool" }
                    nav aria-label="Service" {
                        a href="/docs" { "API" }
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

fn uploaded(b: &BatchRecord) -> String {
    b.uploaded.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn batches_table(batches: &[BatchRecord], q: &str, config: &WebConfig) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { "Batch" } th scope="col" { "Uploaded" } th scope="col" { "Author" } th scope="col" { "Message" } th scope="col" { "Files" } } }
            tbody {
                @for b in batches {
                    tr {
                        td { a href={ "/ui/batches/" (b.id) } { "#" (b.id) } }
                        td { time datetime=(b.uploaded.to_rfc3339()) { (uploaded(b)) } }
                        td { (highlighted(&b.author, q)) }
                        td {
                            @if q.is_empty() { (with_bug_links(&b.message, &config.bug_url)) }
                            @else { (highlighted(&b.message, q)) }
                        }
                        td { (b.files.len()) }
                    }
                }
            }
        }
    }
}

pub fn home(batches: &[BatchRecord], config: &WebConfig) -> Markup {
    layout(
        "Artifacts",
        html! {
            h1 { "Build artifacts by SHA-512" }
            (search_form(""))
            h2 { "Recent uploads" }
            @if batches.is_empty() {
                p { "Nothing has been uploaded yet." }
            } @else {
                (batches_table(batches, "", config))
                @if let Some(last) = batches.last() {
                    p.more { a href={ "/?before=" (last.id) } { "Older uploads" } }
                }
            }
        },
    )
}

/// `None`: that section is not on this page (the other one is paged).
pub fn search(
    q: &str,
    batches: Option<&[BatchRecord]>,
    files: Option<&[FileRecord]>,
    per_page: usize,
    config: &WebConfig,
) -> Markup {
    let query = |extra: String| format!("/ui/search?q={}&{extra}", encode(q));
    let first = format!("/ui/search?q={}", encode(q));
    layout(
        &format!("Search {q}"),
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
                    (batches_table(batches, q, config))
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

pub fn batch(b: &BatchRecord, config: &WebConfig) -> Markup {
    layout(
        &format!("Batch {}", b.id),
        html! {
            h1 { "Batch #" (b.id) }
            dl {
                dt { "Uploaded" } dd { time datetime=(b.uploaded.to_rfc3339()) { (uploaded(b)) } }
                dt { "Author" } dd { (b.author) }
                dt { "Message" } dd.message { (with_bug_links(&b.message, &config.bug_url)) }
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
                            td { @if f.has_instances() { a href={ "/sha512/" (f.digest) } { "download" } } }
                        }
                    }
                }
            }
        },
    )
}

pub fn file(f: &FileRecord) -> Markup {
    layout(
        "File",
        html! {
            h1 { "File" }
            dl {
                dt { "SHA-512" } dd { code.digest { (f.digest) } }
                dt { "Size" } dd { (size(f.size)) " (" (f.size) " bytes)" }
                dt { "Visibility" } dd { span class={ "badge " (visibility(f.visibility)) } { (visibility(f.visibility)) } }
                dt { "Regions" } dd { (regions(f)) }
            }
            @if f.has_instances() {
                p { a.button href={ "/sha512/" (f.digest) } { "Download" } }
            } @else {
                p { "No copy is verified yet: it cannot be downloaded." }
            }
            h2 { "manifest.tt entry" }
            pre { code { (manifest_entry("<filename>", f)) } }
        },
    )
}

pub fn error(status: StatusCode, detail: &str) -> Markup {
    let reason = status.canonical_reason().unwrap_or("Error");
    layout(
        reason,
        html! {
            h1 { (status.as_u16()) " " (reason) }
            p { (detail) }
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
