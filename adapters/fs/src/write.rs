//! Writing an object: the network, the hasher and the writer run at once,
//! joined by bounded queues, and the object appears by renaming a complete,
//! flushed temporary file into place.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tooltool_domain::{ContentHasher, Observed};
use tooltool_ports::{BlobError, ByteStream, ObjectInfo};

use crate::{Region, info_of, io_error};

/// Chunks queued between the network and each of the hashing and writing
/// threads: with hyper's chunks of at most a few hundred KiB, a few MiB.
const WRITE_QUEUE: usize = 32;
/// The writer asks for a flush to disk every this many bytes, so that the
/// flush before the rename waits for little.
const SYNC_EVERY: usize = 64 * 1024 * 1024;

impl Region {
    /// Streams `body` into a new temporary file while hashing it, then
    /// renames it to `dest`. Three stages run concurrently, joined by
    /// bounded queues: the network (this task), the hasher and the writer
    /// (blocking threads), so the slowest of them alone sets the pace. The
    /// writer flushes to disk as it goes, so the final flush is short. The
    /// object is renamed into place only after an explicit end-of-body
    /// message, so an interrupted or oversized transfer leaves nothing.
    pub(crate) async fn write_object(
        &self,
        dest: PathBuf,
        limit: u64,
        mut body: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError> {
        let tmp = self.tmp_path();
        let mut unfinished = RemoveOnDrop(Some(tmp.clone()));
        let (to_hasher, mut hasher_rx) = mpsc::channel::<Option<Bytes>>(WRITE_QUEUE);
        let (to_writer, mut writer_rx) = mpsc::channel::<Option<Bytes>>(WRITE_QUEUE);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = ContentHasher::new();
            loop {
                match hasher_rx.blocking_recv() {
                    Some(Some(chunk)) => hasher.update(&chunk),
                    Some(None) => return Some(hasher.finish()),
                    None => return None,
                }
            }
        });
        let writer_tmp = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<std::fs::File, BlobError> {
            let mut file = std::fs::File::create(&writer_tmp).map_err(io_error)?;
            // A flusher thread pushes what was written to disk while the
            // writer goes on writing, so disk and network overlap instead of
            // the writer stalling on every flush. A request is dropped when
            // a flush is already running: that flush will cover it.
            let flusher_file = file.try_clone().map_err(io_error)?;
            let (flush, flush_requests) = std::sync::mpsc::sync_channel::<()>(1);
            let flusher = std::thread::spawn(move || {
                while flush_requests.recv().is_ok() {
                    let _ = flusher_file.sync_data();
                }
            });
            let mut unflushed = 0usize;
            let result = loop {
                match writer_rx.blocking_recv() {
                    Some(Some(chunk)) => {
                        if let Err(e) = file.write_all(&chunk) {
                            break Err(io_error(e));
                        }
                        unflushed += chunk.len();
                        if unflushed >= SYNC_EVERY {
                            let _ = flush.try_send(());
                            unflushed = 0;
                        }
                    }
                    Some(None) => break Ok(()),
                    // The receiving side gave up: keep nothing.
                    None => break Err(BlobError::interrupted("transfer abandoned")),
                }
            };
            drop(flush);
            let _ = flusher.join();
            if let Err(e) = result {
                // Also when the receiving task was dropped, which then
                // cannot remove what this thread created.
                let _ = std::fs::remove_file(&writer_tmp);
                return Err(e);
            }
            // Durable before it can be promoted: errors of the background
            // flushes surface here too.
            file.sync_data().map_err(io_error)?;
            Ok(file)
        });
        let mut received = 0u64;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if received > limit {
                        failure = Some(BlobError::TooLarge { limit });
                        break;
                    }
                    let (h, w) = tokio::join!(
                        to_hasher.send(Some(chunk.clone())),
                        to_writer.send(Some(chunk))
                    );
                    if h.is_err() || w.is_err() {
                        break; // a stage failed; its error is reported below
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            let _ = tokio::join!(to_hasher.send(None), to_writer.send(None));
        }
        drop((to_hasher, to_writer));
        let observed = hasher.await.map_err(BlobError::unavailable)?;
        let written = writer.await.map_err(BlobError::unavailable)?;
        let result = match (failure, observed, written) {
            (Some(failure), _, _) => Err(failure),
            (None, _, Err(e)) => Err(e),
            (None, None, Ok(_)) => Err(BlobError::interrupted("transfer abandoned")),
            (None, Some(observed), Ok(_file)) => {
                let dest = dest.clone();
                let tmp = tmp.clone();
                tokio::task::spawn_blocking(move || {
                    rename_into_place(&tmp, &dest).map_err(io_error)?;
                    let meta = std::fs::metadata(&dest).map_err(io_error)?;
                    Ok((observed, info_of(&meta)))
                })
                .await
                .map_err(BlobError::unavailable)?
            }
        };
        if result.is_ok() {
            unfinished.0 = None;
        }
        result
    }
}

/// Removes a temporary file when the write that owns it ends without
/// renaming it: failed, or abandoned because its task was dropped.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Renames `tmp` to `dest`, creating `dest`'s directory first. The slots of
/// one digest share their staging directory (`pending/<digest>/`), which
/// whoever empties it (a promotion, a deletion, the sweep) removes; it can
/// therefore vanish between its creation here and the rename. Then it is
/// created again and the rename retried: each retry loses only to another
/// removal of an empty directory, so a few suffice.
fn rename_into_place(tmp: &std::path::Path, dest: &std::path::Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        if let Some(parent) = dest.parent() {
            match std::fs::create_dir_all(parent) {
                Ok(()) => {}
                // create_dir_all found the directory, which a removal then
                // took before it could check it is one: create it again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        match durable_rename(tmp, dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 16 && tmp.exists() => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// Renames `from` to `to`, then flushes `to`'s directory: a rename is an
/// entry in a directory, and only once that directory is on disk does the
/// object survive a power loss under its new name (its bytes were flushed
/// before the rename). Every object of this store appears this way.
pub(crate) fn durable_rename(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}
