//! Text shown on the pages: sizes in human units, `Bug NNNN` linked, a
//! search term highlighted, and a batch's files as a `manifest.tt`.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use tooltool_domain::Visibility;
use tooltool_ports::FileRecord;

/// How long before `now` `then` was, in the largest whole unit:
/// `just now`, `5 minutes ago`, `1 day ago`…; a time after `now` (clocks
/// differ) is `just now` too.
pub fn relative(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds().max(0);
    let (n, unit) = match seconds {
        0..60 => return "just now".to_owned(),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `1536` → `1.5 KiB`; bytes below 1 KiB as they are.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss, reason = "one decimal is shown")]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub fn visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Internal => "internal",
    }
}

/// `message` with every `Bug NNNN` (any case) linked to `bug_url` + NNNN.
pub fn with_bug_links(message: &str, bug_url: &str) -> Markup {
    let mut parts: Vec<(&str, Option<&str>)> = Vec::new();
    let lower = message.to_ascii_lowercase();
    let mut rest = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find("bug ").map(|i| i + from) {
        let digits_start = at + 4;
        let digits_len = message[digits_start..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits_len > 0 {
            parts.push((&message[rest..at], None));
            let end = digits_start + digits_len;
            parts.push((&message[at..end], Some(&message[digits_start..end])));
            rest = end;
            from = end;
        } else {
            from = digits_start;
        }
    }
    parts.push((&message[rest..], None));
    html! {
        @for (text, bug) in parts {
            @if let Some(number) = bug {
                a href={ (bug_url) (number) } { (text) }
            } @else {
                (text)
            }
        }
    }
}

/// `text` with each occurrence of `term` (as the search matched it:
/// literally) in `<mark>`.
pub fn highlighted(text: &str, term: &str) -> Markup {
    if term.is_empty() {
        return html! { (text) };
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(term) {
        pieces.push((&rest[..at], false));
        pieces.push((&rest[at..at + term.len()], true));
        rest = &rest[at + term.len()..];
    }
    pieces.push((rest, false));
    html! {
        @for (piece, hit) in pieces {
            @if hit { mark { (piece) } } @else { (piece) }
        }
    }
}

/// The entry of one file in a `manifest.tt`, as `tooltool.py` writes it.
fn entry(filename: &str, f: &FileRecord) -> serde_json::Value {
    serde_json::json!({
        "filename": filename,
        "size": f.size,
        "algorithm": "sha512",
        "digest": f.digest.to_string(),
        "visibility": visibility(f.visibility),
    })
}

/// A `manifest.tt` of `files` (name, file) that `tooltool.py fetch` reads:
/// a JSON list, two-space indented, members in `tooltool.py`'s order.
pub fn manifest(files: &[(String, FileRecord)]) -> String {
    let entries: Vec<_> = files.iter().map(|(n, f)| entry(n, f)).collect();
    serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".to_owned())
}

/// One file's entry, to paste into a manifest's list.
pub fn manifest_entry(filename: &str, f: &FileRecord) -> String {
    serde_json::to_string_pretty(&entry(filename, f)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        for (ago, shown) in [
            (-30, "just now"),
            (0, "just now"),
            (59, "just now"),
            (60, "1 minute ago"),
            (3599, "59 minutes ago"),
            (3600, "1 hour ago"),
            (2 * 86_400, "2 days ago"),
            (40 * 86_400, "1 month ago"),
            (800 * 86_400, "2 years ago"),
        ] {
            let then = now - chrono::Duration::seconds(ago);
            assert_eq!(relative(then, now), shown, "{ago}");
        }
    }

    #[test]
    fn sizes_in_human_units() {
        for (bytes, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (104_857_600, "100.0 MiB"),
            (5 << 30, "5.0 GiB"),
        ] {
            assert_eq!(size(bytes), shown);
        }
    }

    #[test]
    fn bugs_are_linked_and_text_is_escaped() {
        let m = with_bug_links("Bug 123 - <b>x</b>, bug 45; bugs 9", "https://b/?id=");
        assert_eq!(
            m.into_string(),
            "<a href=\"https://b/?id=123\">Bug 123</a> - &lt;b&gt;x&lt;/b&gt;, \
             <a href=\"https://b/?id=45\">bug 45</a>; bugs 9"
        );
    }

    #[test]
    fn terms_are_marked_literally() {
        assert_eq!(
            highlighted("clang-18.tar & clang", "clang").into_string(),
            "<mark>clang</mark>-18.tar &amp; <mark>clang</mark>"
        );
        assert_eq!(highlighted("a%b", "%").into_string(), "a<mark>%</mark>b");
    }
}
