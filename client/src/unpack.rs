//! `--unpack`: a fetched archive is unpacked into the folder it was
//! fetched to, as `tooltool.py` does: tar (plain, gzip, bzip2, xz or
//! zstd) or zip, told apart by their first bytes, after removing the
//! folder named after the archive (`clang.tar.xz` → `clang/`) so that no
//! file of an older version survives. Every reader streams.
//!
//! An archive is a stranger's: a member whose path leaves the folder
//! (absolute, `..`), a link pointing out of it, or a setuid or setgid
//! mode refuses the archive, as `tooltool.py` refuses them; modes are
//! kept to their permission bits.

use std::fs::File;
use std::io::{BufReader, Read, Seek as _};
use std::path::{Component, Path, PathBuf};

/// The formats told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Zip,
}

fn sniff(head: &[u8]) -> Option<Format> {
    const TAR_MAGIC_AT: usize = 257;
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if starts(b"BZh") {
        Some(Format::Bzip2)
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if head.get(TAR_MAGIC_AT..TAR_MAGIC_AT + 5) == Some(b"ustar") {
        Some(Format::Tar)
    } else {
        None
    }
}

/// The folder an archive unpacks into, by `tooltool.py`'s rule: its name
/// without the last two extensions for a tar (`a.tar.gz` → `a`, `a.tar`
/// → `a`), without `.zip` for a zip.
fn base_name(filename: &str, format: Format) -> String {
    if format == Format::Zip {
        return filename.replace(".zip", "");
    }
    let stem = |name: &str| match name.rfind('.') {
        Some(i) if i > 0 => name[..i].to_owned(),
        _ => name.to_owned(),
    };
    stem(&stem(filename))
}

/// Unpacks `dir/filename` into `dir`.
pub fn unpack(dir: &Path, filename: &str) -> Result<(), String> {
    let path = dir.join(filename);
    let fail = |e: &dyn std::fmt::Display| format!("{filename}: cannot unpack: {e}");
    let mut file = File::open(&path).map_err(|e| fail(&e))?;
    let mut head = [0u8; 512];
    let n = read_up_to(&mut file, &mut head).map_err(|e| fail(&e))?;
    file.rewind().map_err(|e| fail(&e))?;
    let format = sniff(&head[..n])
        .ok_or_else(|| format!("{filename}: not an archive this client unpacks (tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip)"))?;
    let base = base_name(filename, format);
    if !base.is_empty() && base != "." && base != ".." && base != filename {
        remove_any(&dir.join(&base)).map_err(|e| fail(&e))?;
    }
    let reader = BufReader::with_capacity(1 << 20, file);
    match format {
        Format::Zip => unzip(reader, dir),
        Format::Tar => untar(reader, dir),
        Format::Gzip => untar(flate2::read::MultiGzDecoder::new(reader), dir),
        Format::Bzip2 => untar(bzip2::read::MultiBzDecoder::new(reader), dir),
        Format::Xz => untar(liblzma::read::XzDecoder::new_multi_decoder(reader), dir),
        Format::Zstd => untar(
            ruzstd::decoding::StreamingDecoder::new(reader).map_err(|e| e.to_string())?,
            dir,
        ),
    }
    .map_err(|e| format!("{filename}: cannot unpack: {e}"))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `path` made of plain names only: nothing absolute, no `..`.
fn confined(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Whether a link at `member` pointing at `target` stays in the folder.
fn link_stays_inside(member: &Path, target: &Path) -> bool {
    let mut depth: usize = 0;
    let parent = member.parent().unwrap_or(Path::new(""));
    for part in parent.components().chain(target.components()) {
        match part {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

fn untar(reader: impl Read, dir: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = entry.path().map_err(|e| e.to_string())?.into_owned();
        let shown = raw.display().to_string();
        let path =
            confined(&raw).ok_or_else(|| format!("member {shown:?} would leave the folder"))?;
        let kind = entry.header().entry_type();
        if (kind.is_symlink() || kind.is_hard_link())
            && let Some(target) = entry.link_name().map_err(|e| e.to_string())?
        {
            let inside = if kind.is_hard_link() {
                confined(&target).is_some()
            } else {
                link_stays_inside(&path, &target)
            };
            if !inside {
                return Err(format!(
                    "member {shown:?} links to {:?}, out of the folder",
                    target.display().to_string()
                ));
            }
        }
        if entry.header().mode().unwrap_or(0) & 0o6000 != 0 {
            return Err(format!("member {shown:?} is setuid or setgid"));
        }
        entry
            .unpack_in(dir)
            .map_err(|e| format!("member {shown:?}: {e}"))?;
    }
    Ok(())
}

fn unzip(reader: BufReader<File>, dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| e.to_string())?;
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = member.name().map_err(|e| e.to_string())?.into_owned();
        let path = member
            .enclosed_name()
            .and_then(|p| confined(&p))
            .ok_or_else(|| format!("member {name:?} would leave the folder"))?;
        let dest = dir.join(&path);
        if member.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| format!("{name}: {e}"))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{name}: {e}"))?;
        }
        // A link is written as the file of its target's name, as Python's
        // zipfile does: nothing of the archive points out of the folder.
        remove_any(&dest).map_err(|e| format!("{name}: {e}"))?;
        let mut out = File::create(&dest).map_err(|e| format!("{name}: {e}"))?;
        std::io::copy(&mut member, &mut out).map_err(|e| format!("{name}: {e}"))?;
        if let Some(mode) = member.unix_mode() {
            out.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A tar of `members` (path, content), written by the `tar` crate.
    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, path, *content)
                .expect("append");
        }
        builder.into_inner().expect("tar")
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).expect("write");
    }

    #[test]
    fn every_format_unpacks_and_replaces_the_old_folder() {
        let tar = tar_of(&[("clang/bin/clang", b"#!/bin/sh\n"), ("clang/README", b"r")]);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).expect("gz");
            e.finish().expect("gz")
        };
        let bz = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(&tar).expect("bz2");
            e.finish().expect("bz2")
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&tar).expect("xz");
            e.finish().expect("xz")
        };
        let zst = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (name, bytes) in [
            ("clang.tar", tar.clone()),
            ("clang.tar.gz", gz),
            ("clang.tar.bz2", bz),
            ("clang.tar.xz", xz),
            ("clang.tar.zst", zst),
        ] {
            let dir = tempfile::tempdir().expect("dir");
            std::fs::create_dir_all(dir.path().join("clang")).expect("old");
            write(&dir.path().join("clang"), "stale", b"old version");
            write(dir.path(), name, &bytes);
            unpack(dir.path(), name).expect(name);
            let clang = dir.path().join("clang/bin/clang");
            assert_eq!(std::fs::read(&clang).expect(name), b"#!/bin/sh\n");
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&clang)
                    .expect("meta")
                    .permissions()
                    .mode()
                    & 0o777,
                0o755,
                "{name}"
            );
            assert!(!dir.path().join("clang/stale").exists(), "{name}");
        }
    }

    #[test]
    fn zip_unpacks_with_modes() {
        let dir = tempfile::tempdir().expect("dir");
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(0o750);
        zip.start_file("sdk/tool", options).expect("start");
        zip.write_all(b"tool").expect("write");
        let bytes = zip.finish().expect("zip").into_inner();
        write(dir.path(), "sdk.zip", &bytes);
        unpack(dir.path(), "sdk.zip").expect("unzips");
        assert_eq!(
            std::fs::read(dir.path().join("sdk/tool")).expect("tool"),
            b"tool"
        );
    }

    #[test]
    fn hostile_archives_are_refused() {
        // Built by hand: the tar crate refuses to write such paths itself.
        let with_path = |path: &[u8], kind: tar::EntryType, link: Option<&str>, mode: u32| {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..path.len()].copy_from_slice(path);
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_mode(mode);
            if let Some(link) = link {
                header.set_link_name(link).expect("link");
            }
            header.set_cksum();
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend_from_slice(&[0u8; 1024]);
            bytes
        };
        for (bytes, why) in [
            (
                with_path(b"../evil", tar::EntryType::Regular, None, 0o644),
                "leave the folder",
            ),
            (
                with_path(b"/etc/evil", tar::EntryType::Regular, None, 0o644),
                "leave the folder",
            ),
            (
                with_path(b"a/link", tar::EntryType::Symlink, Some("../../etc"), 0o777),
                "out of the folder",
            ),
            (
                with_path(
                    b"a/link",
                    tar::EntryType::Symlink,
                    Some("/etc/passwd"),
                    0o777,
                ),
                "out of the folder",
            ),
            (
                with_path(b"a/suid", tar::EntryType::Regular, None, 0o4755),
                "setuid",
            ),
        ] {
            let dir = tempfile::tempdir().expect("dir");
            write(dir.path(), "x.tar", &bytes);
            let e = unpack(dir.path(), "x.tar").expect_err(why);
            assert!(e.contains(why), "{e}");
        }
        // A link that stays inside is fine.
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "ok.tar",
            &with_path(b"a/b/link", tar::EntryType::Symlink, Some("../c"), 0o777),
        );
        unpack(dir.path(), "ok.tar").expect("inside");
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), "notes.txt", b"hello");
        let e = unpack(dir.path(), "notes.txt").expect_err("not an archive");
        assert!(e.contains("not an archive"), "{e}");
    }

    #[test]
    fn base_names_follow_tooltool_py() {
        assert_eq!(base_name("clang.tar.xz", Format::Xz), "clang");
        assert_eq!(base_name("clang.tar", Format::Tar), "clang");
        assert_eq!(base_name("sdk.zip", Format::Zip), "sdk");
        assert_eq!(base_name("gcc-13.2.tar.zst", Format::Zstd), "gcc-13.2");
    }
}
