use std::fmt;

use crate::{Digest, Visibility};

/// A file as declared by a client in an upload batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFile {
    pub filename: String,
    pub digest: Digest,
    pub size: u64,
    pub visibility: Visibility,
}

/// What the metadata store already knows about a declared digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingFile {
    pub visibility: Visibility,
    pub size: u64,
    pub has_instance: bool,
}

/// What an acceptable declared file means for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDisposition {
    /// Unknown digest: record the file and hand out an upload slot.
    New,
    /// Known digest without any verified copy yet: hand out an upload slot.
    AwaitingContent,
    /// A verified copy exists: no upload slot (the client says "already exists").
    Present,
}

impl FileDisposition {
    /// Whether the file needs an upload slot (it has no verified copy).
    pub fn needs_upload(self) -> bool {
        !matches!(self, Self::Present)
    }
}

/// Why a batch is refused. Every variant is the client's fault (4xx) and
/// its `Display` is the sentence the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    EmptyMessage,
    /// Longer than [`MAX_MESSAGE_BYTES`], or with a control character
    /// other than tab and line breaks.
    InvalidMessage(String),
    NoFiles,
    /// More than [`MAX_FILES_PER_BATCH`].
    TooManyFiles(usize),
    AuthorGiven,
    InvalidFilename(String),
    TooLarge {
        filename: String,
        size: u64,
        max: u64,
    },
    VisibilityChange {
        filename: String,
    },
    SizeMismatch {
        filename: String,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyMessage => f.write_str("message must be non-empty"),
            Self::InvalidMessage(why) => write!(f, "invalid message: {why}"),
            Self::NoFiles => f.write_str("a batch must include at least one file"),
            Self::TooManyFiles(n) => write!(
                f,
                "a batch declares at most {MAX_FILES_PER_BATCH} files, not {n}; split it"
            ),
            Self::AuthorGiven => f.write_str("Author must NOT be specified for upload."),
            Self::InvalidFilename(name) => write!(
                f,
                "Invalid filename {}: a filename is 1 to {MAX_FILENAME_BYTES} bytes without \
                 '/', '\\' or control characters, and not '.' or '..'",
                Shown(name)
            ),
            Self::TooLarge {
                filename,
                size,
                max,
            } => write!(
                f,
                "{filename} is {size} bytes, more than this server's limit of {max} bytes"
            ),
            // The originals' wording, kept because clients and people know it.
            Self::VisibilityChange { .. } => {
                f.write_str("Cannot change already existing file's visibility level.")
            }
            Self::SizeMismatch { filename } => write!(f, "Size mismatch for {filename}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// Longest filename, in bytes: what file systems store in a name.
pub const MAX_FILENAME_BYTES: usize = 255;
/// Longest batch message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Most files one batch declares. With [`MAX_FILES_PER_PAGE`] it bounds
/// every answer that embeds a batch's files.
pub const MAX_FILES_PER_BATCH: usize = 4096;
/// Most files the batches of one search page embed between them: a page
/// ends before the batch that would go beyond, unless that batch is its
/// first (a batch is never split).
pub const MAX_FILES_PER_PAGE: usize = 4096;
/// Most results a search page may be asked for (`limit`).
pub const MAX_PAGE_LIMIT: usize = 1000;

/// How many of a page's candidate batches (newest first, as their file
/// counts) the page holds under [`MAX_FILES_PER_PAGE`]: at least one when
/// there is one.
pub fn batches_in_page(file_counts: impl IntoIterator<Item = usize>) -> usize {
    let mut files = 0usize;
    let mut taken = 0;
    for count in file_counts {
        files = files.saturating_add(count);
        if taken > 0 && files > MAX_FILES_PER_PAGE {
            break;
        }
        taken += 1;
    }
    taken
}

/// Text from a client, shown back in an error: quoted with control
/// characters escaped, and cut after 64 characters, so that a refusal is
/// never longer than a page nor a way to write into a terminal or a log.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let cut: String = self.0.chars().take(SHOWN).collect();
        if cut.len() < self.0.len() {
            write!(f, "{cut:?}… ({} bytes)", self.0.len())
        } else {
            write!(f, "{cut:?}")
        }
    }
}

/// Checks what a batch must be before its files are looked at.
pub fn check_batch_shape(
    message: &str,
    file_count: usize,
    author_given: bool,
) -> Result<(), BatchError> {
    if author_given {
        Err(BatchError::AuthorGiven)
    } else if message.trim().is_empty() {
        Err(BatchError::EmptyMessage)
    } else if message.len() > MAX_MESSAGE_BYTES {
        Err(BatchError::InvalidMessage(format!(
            "{} bytes, more than {MAX_MESSAGE_BYTES}",
            message.len()
        )))
    } else if message
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Err(BatchError::InvalidMessage(
            "control characters other than tab and line breaks are not allowed".into(),
        ))
    } else if file_count == 0 {
        Err(BatchError::NoFiles)
    } else if file_count > MAX_FILES_PER_BATCH {
        Err(BatchError::TooManyFiles(file_count))
    } else {
        Ok(())
    }
}

/// Checks a declared file on its own, before anything stored is looked at:
/// its filename, and its size against the largest this server accepts.
pub fn check_declared(declared: &DeclaredFile, max_size: u64) -> Result<(), BatchError> {
    check_filename(&declared.filename)?;
    if declared.size > max_size {
        return Err(BatchError::TooLarge {
            filename: declared.filename.clone(),
            size: declared.size,
            max: max_size,
        });
    }
    Ok(())
}

/// A filename is what the client writes into its working directory: 1 to
/// [`MAX_FILENAME_BYTES`] bytes, not a path, not a name that means
/// "this/parent directory", and no control character (a newline or an
/// escape sequence would reach terminals and logs).
pub fn check_filename(name: &str) -> Result<(), BatchError> {
    let bad = name.is_empty()
        || name.len() > MAX_FILENAME_BYTES
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        Err(BatchError::InvalidFilename(name.to_owned()))
    } else {
        Ok(())
    }
}

/// Decides what a declared file means given what the store already holds.
///
/// Called inside the store's batch transaction so that the answer and the
/// writes it leads to see the same state.
pub fn reconcile(
    declared: &DeclaredFile,
    existing: Option<&ExistingFile>,
    max_size: u64,
) -> Result<FileDisposition, BatchError> {
    check_declared(declared, max_size)?;
    let Some(existing) = existing else {
        return Ok(FileDisposition::New);
    };
    if existing.visibility != declared.visibility {
        return Err(BatchError::VisibilityChange {
            filename: declared.filename.clone(),
        });
    }
    if existing.has_instance {
        if existing.size != declared.size {
            return Err(BatchError::SizeMismatch {
                filename: declared.filename.clone(),
            });
        }
        Ok(FileDisposition::Present)
    } else {
        // Nothing verified yet, so an earlier declaration's size proves
        // nothing; verification will check this slot's declared size.
        Ok(FileDisposition::AwaitingContent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Visibility::{Internal, Public};

    fn declared(name: &str, size: u64, visibility: Visibility) -> DeclaredFile {
        DeclaredFile {
            filename: name.into(),
            digest: Digest::parse(&"a".repeat(128)).expect("valid"),
            size,
            visibility,
        }
    }

    #[test]
    fn shape_table() {
        use BatchError::*;
        let cases = [
            (("msg", 1, false), Ok(())),
            (("", 1, false), Err(EmptyMessage)),
            (("  ", 1, false), Err(EmptyMessage)),
            (("msg", 0, false), Err(NoFiles)),
            (("msg", MAX_FILES_PER_BATCH, false), Ok(())),
            (
                ("msg", MAX_FILES_PER_BATCH + 1, false),
                Err(TooManyFiles(MAX_FILES_PER_BATCH + 1)),
            ),
            (("msg", 1, true), Err(AuthorGiven)),
            (("", 0, true), Err(AuthorGiven)),
            (("Bug 1 - two\nlines\twith a tab\r\n", 1, false), Ok(())),
        ];
        for ((message, count, author), expected) in cases {
            assert_eq!(check_batch_shape(message, count, author), expected);
        }
        let long = "m".repeat(MAX_MESSAGE_BYTES + 1);
        for (message, why) in [
            (long.as_str(), "4097 bytes, more than 4096"),
            ("nul\0byte", "control characters"),
            ("escape \u{1b}[31m", "control characters"),
        ] {
            match check_batch_shape(message, 1, false) {
                Err(InvalidMessage(text)) => assert!(text.contains(why), "{text}"),
                other => panic!("{message:?}: {other:?}"),
            }
        }
        assert!(check_batch_shape(&"m".repeat(MAX_MESSAGE_BYTES), 1, false).is_ok());
    }

    #[test]
    fn page_table() {
        let most = MAX_FILES_PER_PAGE;
        let cases: &[(&[usize], usize)] = &[
            (&[], 0),
            (&[1, 2, 3], 3),
            (&[most], 1),
            (&[most, 1], 1),
            (&[most - 1, 1, 1], 2),
            (&[most + 10, 1], 1), // a larger batch (imported) still shows, alone
            (&[1, most], 1),
            (&[0, 0, most, 0], 4),
        ];
        for (counts, taken) in cases {
            assert_eq!(
                batches_in_page(counts.iter().copied()),
                *taken,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn filename_table() {
        for (name, ok) in [
            ("gcc.tar.xz", true),
            ("with space", true),
            (".hidden", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("/abs", false),
            ("a\\b", false),
            ("nul\0", false),
            ("new\nline", false),
            ("esc\u{1b}[2J", false),
            ("del\u{7f}", false),
            ("c1\u{85}", false),
            ("ünïcödé-✓.txt", true),
        ] {
            assert_eq!(check_filename(name).is_ok(), ok, "{name:?}");
        }
        let longest = "n".repeat(MAX_FILENAME_BYTES);
        assert!(check_filename(&longest).is_ok());
        let too_long = "n".repeat(MAX_FILENAME_BYTES + 1);
        assert!(check_filename(&too_long).is_err());
        // 128 two-byte characters: 256 bytes.
        assert!(
            check_filename(&"é".repeat(128)).is_err(),
            "bytes, not characters"
        );
    }

    #[test]
    fn refusals_show_client_text_escaped_and_cut() {
        let e = check_filename(&format!("{}\n", "x".repeat(3000))).expect_err("invalid");
        let text = e.to_string();
        assert!(text.len() < 250, "{text}");
        assert!(text.contains("… (3001 bytes)"), "{text}");
        let e = check_filename("bad\u{1b}[2Jname").expect_err("invalid");
        assert!(e.to_string().contains(r#""bad\u{1b}[2Jname""#), "{e}");
        assert!(!e.to_string().contains('\u{1b}'), "never raw");
    }

    #[test]
    fn only_files_without_a_verified_copy_need_an_upload() {
        use FileDisposition::*;
        assert!(New.needs_upload());
        assert!(AwaitingContent.needs_upload());
        assert!(!Present.needs_upload());
    }

    #[test]
    fn reconcile_table() {
        use FileDisposition::*;
        let existing = |visibility, size, has_instance| ExistingFile {
            visibility,
            size,
            has_instance,
        };
        let cases: Vec<(
            DeclaredFile,
            Option<ExistingFile>,
            Result<FileDisposition, &str>,
        )> = vec![
            (declared("f", 10, Public), None, Ok(New)),
            (
                declared("f", 10, Public),
                Some(existing(Public, 10, true)),
                Ok(Present),
            ),
            (
                declared("f", 10, Public),
                Some(existing(Public, 10, false)),
                Ok(AwaitingContent),
            ),
            (
                declared("f", 11, Public),
                Some(existing(Public, 10, false)),
                Ok(AwaitingContent),
            ),
            (
                declared("f", 11, Public),
                Some(existing(Public, 10, true)),
                Err("Size mismatch for f"),
            ),
            (
                declared("f", 10, Internal),
                Some(existing(Public, 10, true)),
                Err("Cannot change already existing file's visibility level."),
            ),
            (
                declared("f", 10, Public),
                Some(existing(Internal, 10, false)),
                Err("Cannot change already existing file's visibility level."),
            ),
            (
                declared("f", 101, Public),
                None,
                Err("f is 101 bytes, more than this server's limit of 100 bytes"),
            ),
            (declared("f", 100, Public), None, Ok(New)),
            (
                declared("a/b", 1, Public),
                None,
                Err(
                    "Invalid filename \"a/b\": a filename is 1 to 255 bytes without '/', '\\' or \
                     control characters, and not '.' or '..'",
                ),
            ),
        ];
        for (decl, ex, expected) in cases {
            let got = reconcile(&decl, ex.as_ref(), 100).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{decl:?} {ex:?}");
        }
    }
}
