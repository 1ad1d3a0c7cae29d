//! `manifest.tt`, read and written as `tooltool.py` does: a JSON list of
//! file records (`filename`, `size`, `algorithm`, `digest`, and `unpack`,
//! `version`, `visibility` when set), written with two-space indentation
//! and `": "` separators, members in that order, so a manifest either
//! client writes diffs cleanly against the other's. Like `tooltool.py`, a
//! list entry missing a required member is ignored, not an error.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub filename: String,
    pub size: u64,
    pub algorithm: String,
    pub digest: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpack: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

impl FileRecord {
    /// The record's problems, as a sentence: a filename with a path in it
    /// (the file would be written outside the manifest's directory), an
    /// algorithm other than sha512, a digest that is not 128 lower-case
    /// hex digits.
    pub fn check(&self) -> Result<(), String> {
        let name = &self.filename;
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(format!("{name:?}: a filename must not contain a path"));
        }
        if self.algorithm != "sha512" {
            return Err(format!(
                "{name}: unsupported algorithm {:?} (only sha512)",
                self.algorithm
            ));
        }
        if self.digest.len() != 128
            || !self
                .digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "{name}: the digest is not 128 lower-case hex digits"
            ));
        }
        Ok(())
    }
}

/// The records of a manifest, in the order of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub records: Vec<FileRecord>,
}

impl Manifest {
    /// Parses a manifest's text; every record is checked.
    pub fn parse(text: &str) -> Result<Self, String> {
        let items: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("not a manifest (a JSON list of file records): {e}"))?;
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            let complete = ["filename", "size", "algorithm", "digest"]
                .iter()
                .all(|k| item.get(k).is_some());
            if !complete {
                continue;
            }
            let record: FileRecord =
                serde_json::from_value(item).map_err(|e| format!("a bad file record: {e}"))?;
            record.check()?;
            records.push(record);
        }
        Ok(Self { records })
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The text `tooltool.py` would write (no newline at the end, as its
    /// `json.dump`).
    pub fn render(&self) -> String {
        // serde_json's pretty printer is Python's `indent=2,
        // separators=(',', ': ')`, but for non-ASCII text, which Python
        // escapes.
        let pretty = serde_json::to_string_pretty(&self.records).unwrap_or_else(|_| "[]".into());
        escape_non_ascii(&pretty)
    }

    /// Writes the manifest to `path` through a temporary file and a
    /// rename, so a reader never sees half of it.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
        std::fs::write(&tmp, self.render())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot write the manifest {}: {e}", path.display())
            })
    }

    /// Adds `records` as `tooltool.py add` does: the new records first,
    /// in the order given, then the manifest's others. A record equal to
    /// one listed (name, size, digest, version, visibility) is not added
    /// again, and a different file under a name already listed is refused;
    /// both make the result false, the refusals are returned as sentences.
    pub fn add(&mut self, records: Vec<FileRecord>) -> (bool, Vec<String>) {
        let same = |a: &FileRecord, b: &FileRecord| {
            FileRecord {
                unpack: false,
                ..a.clone()
            } == FileRecord {
                unpack: false,
                ..b.clone()
            }
        };
        let mut all = true;
        let mut refusals = Vec::new();
        let mut added: Vec<FileRecord> = Vec::new();
        for record in records {
            let listed = self
                .records
                .iter()
                .chain(&added)
                .find(|r| r.filename == record.filename);
            match listed {
                Some(existing) if same(existing, &record) => all = false,
                Some(_) => {
                    all = false;
                    refusals.push(format!(
                        "the manifest already contains a different file named {}",
                        record.filename
                    ));
                }
                None => added.push(record),
            }
        }
        added.append(&mut self.records);
        self.records = added;
        (all, refusals)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "manifest".into(), |n| n.to_string_lossy().into_owned())
}

/// `\uXXXX` for every non-ASCII character (UTF-16 units, as Python).
fn escape_non_ascii(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> FileRecord {
        FileRecord {
            filename: name.into(),
            size: 5,
            algorithm: "sha512".into(),
            digest: "a".repeat(128),
            unpack: false,
            version: None,
            visibility: None,
        }
    }

    #[test]
    fn incomplete_entries_are_skipped_and_bad_ones_refused() {
        let ok = format!(
            "[{{\"filename\": \"x\"}}, {}]",
            serde_json::to_string(&record("y")).expect("json")
        );
        assert_eq!(
            Manifest::parse(&ok).expect("parses").records,
            vec![record("y")]
        );
        for (bad, why) in [
            (record("../etc/passwd"), "path"),
            (record("a\\b"), "path"),
            (
                FileRecord {
                    algorithm: "md5".into(),
                    ..record("z")
                },
                "algorithm",
            ),
            (
                FileRecord {
                    digest: "A".repeat(128),
                    ..record("z")
                },
                "hex",
            ),
        ] {
            let text = serde_json::to_string(&vec![bad]).expect("json");
            let err = Manifest::parse(&text).expect_err(why);
            assert!(err.contains(why), "{err}");
        }
        assert!(Manifest::parse("{}").is_err());
        assert!(Manifest::parse("[").is_err());
    }

    #[test]
    fn add_puts_new_records_first_once_per_filename() {
        let mut m = Manifest::default();
        assert_eq!(m.add(vec![record("a")]), (true, vec![]));
        assert_eq!(m.add(vec![record("b"), record("c")]), (true, vec![]));
        let names: Vec<&str> = m.records.iter().map(|r| r.filename.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"], "as tooltool.py: the new ones first");
        assert_eq!(m.add(vec![record("a")]), (false, vec![]), "already there");
        let other = FileRecord {
            digest: "b".repeat(128),
            ..record("a")
        };
        let (all, refusals) = m.add(vec![other]);
        assert!(!all);
        assert_eq!(
            refusals,
            ["the manifest already contains a different file named a"]
        );
        assert_eq!(m.records.len(), 3);
    }

    /// The bytes `tooltool.py add` wrote (see tests/fixtures/README.md),
    /// read and written back unchanged, and made again by `add`.
    #[test]
    fn the_manifest_tooltool_py_wrote_is_rewritten_byte_for_byte() {
        let text = include_str!("../tests/fixtures/tooltool-py-add.tt");
        let read = Manifest::parse(text).expect("parses");
        assert_eq!(read.records[0].filename, "café");
        assert!(read.records[1].unpack);
        assert_eq!(read.records[1].visibility.as_deref(), Some("public"));
        assert_eq!(read.render(), text);
        let mut made = Manifest::default();
        let clang = FileRecord {
            unpack: true,
            visibility: Some("public".into()),
            ..read.records[1].clone()
        };
        assert!(made.add(vec![clang]).0);
        assert!(made.add(vec![read.records[0].clone()]).0);
        assert_eq!(made.render(), text);
    }

    #[test]
    fn save_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.tt");
        let mut m = Manifest::default();
        assert!(m.add(vec![record("a")]).0);
        m.save(&path).expect("saved");
        assert_eq!(Manifest::load(&path).expect("loads"), m);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "no temporary file left"
        );
    }
}
