//! What a search term may be: literal text to find in filenames, digests,
//! authors and messages.

/// Longest search term, in bytes (longer than any filename or digest).
pub const MAX_SEARCH_TERM_BYTES: usize = 1024;

/// Checks `q` before any store sees it: at most [`MAX_SEARCH_TERM_BYTES`]
/// and no control character (nothing stored contains one, and databases
/// refuse some, such as NUL, outright).
///
/// # Errors
/// The sentence the client sees.
pub fn check_search_term(q: &str) -> Result<(), String> {
    if q.len() > MAX_SEARCH_TERM_BYTES {
        Err(format!(
            "q is {} bytes, more than {MAX_SEARCH_TERM_BYTES}",
            q.len()
        ))
    } else if q.chars().any(char::is_control) {
        Err("q must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_term_table() {
        let longest = "q".repeat(MAX_SEARCH_TERM_BYTES);
        let too_long = "q".repeat(MAX_SEARCH_TERM_BYTES + 1);
        for (q, ok) in [
            ("", true),
            ("Bug 1234", true),
            ("%_\\", true),
            ("ünï", true),
            (longest.as_str(), true),
            (too_long.as_str(), false),
            ("nul\0", false),
            ("line\nbreak", false),
        ] {
            assert_eq!(check_search_term(q).is_ok(), ok, "{q:?}");
        }
    }
}
