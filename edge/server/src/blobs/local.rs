//! Content-addressed blobs in a local directory: `ab/cdef…` by SHA-256, uploads staged in
//! `.pending/` and renamed into place, so a reader never sees half a blob.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use cloudos_core::ports::{BlobEntry, BlobError, BlobPage, BlobStore, BlobUpload, ByteStream};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{io, valid_key};

const PENDING: &str = ".pending";
/// Each read is one trip to tokio's blocking pool, so reads are large; it is also the most
/// one download holds in memory.
const READ_CHUNK: usize = 1024 * 1024;
/// Chunks read ahead of the socket per download.
const READ_AHEAD: usize = 4;

/// Blobs under one directory.
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Uses (and creates) `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join(PENDING))
            .await
            .map_err(io)?;
        Ok(LocalBlobs { root })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::NotFound);
        }
        Ok(self.root.join(&key[..2]).join(&key[2..]))
    }

    fn pending_path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(BlobError::NotFound);
        }
        Ok(self.root.join(PENDING).join(key))
    }
}

fn modified_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError> {
        let name = uuid::Uuid::now_v7().simple().to_string();
        let path = self.root.join(PENDING).join(&name);
        let file = tokio::fs::File::create(&path).await.map_err(io)?;
        Ok(Box::new(LocalUpload {
            root: self.root.clone(),
            path,
            file: Some(file),
            done: false,
        }))
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream, BlobError> {
        let path = self.path_of(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f.into_std().await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(io(e)),
        };
        let (offset, len) = match range {
            Some(r) => r,
            None => (0, file.metadata().map_err(io)?.len()),
        };
        // One blocking reader per download fills a short queue: disk reads overlap socket
        // writes, each byte is copied once into the buffer that is sent, and memory stays
        // bounded by the queue (READ_AHEAD chunks).
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || read_into(file, offset, len, &tx));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(stream.boxed())
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.path_of(key) {
            Ok(p) => tokio::fs::try_exists(p).await.map_err(io),
            Err(_) => Ok(false),
        }
    }

    async fn delete(&self, key: &str, pending: bool) -> Result<(), BlobError> {
        let path = if pending {
            self.pending_path(key)?
        } else {
            self.path_of(key)?
        };
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn list_page(
        &self,
        pending: bool,
        cursor: Option<String>,
    ) -> Result<BlobPage, BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || list_page(&root, pending, cursor))
            .await
            .map_err(io)?
    }
}

/// Sends `len` bytes from `offset` as chunks until done or the receiver is gone.
fn read_into(
    mut file: std::fs::File,
    offset: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, BlobError>>,
) {
    use std::io::{Read, Seek};
    if let Err(e) = file.seek(SeekFrom::Start(offset)) {
        let _ = tx.blocking_send(Err(io(e)));
        return;
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(READ_CHUNK as u64);
        // read_to_end fills spare capacity without zeroing it first.
        let mut buf = Vec::with_capacity(n as usize);
        let item = match (&mut file).take(n).read_to_end(&mut buf) {
            Ok(got) if got as u64 == n => Ok(Bytes::from(buf)),
            Ok(_) => Err(io("blob is shorter than its recorded size")),
            Err(e) => Err(io(e)),
        };
        let failed = item.is_err();
        left -= item.as_ref().map_or(0, |b| b.len() as u64);
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

/// A page is one shard directory (`ab/`: a 256th of the blobs), the cursor the next shard's
/// name; the pending uploads (as many as uploads in flight) are one page.
fn list_page(root: &Path, pending: bool, cursor: Option<String>) -> Result<BlobPage, BlobError> {
    if pending {
        return Ok(BlobPage {
            entries: list_dir(&root.join(PENDING), "", true)?,
            next: None,
        });
    }
    let mut shards = Vec::new();
    for dir in std::fs::read_dir(root).map_err(io)? {
        let dir = dir.map_err(io)?;
        let name = dir.file_name().to_string_lossy().into_owned();
        if name != PENDING && dir.file_type().map_err(io)?.is_dir() {
            shards.push(name);
        }
    }
    shards.sort();
    let first = cursor.map_or(0, |c| shards.partition_point(|s| *s < c));
    let Some(shard) = shards.get(first) else {
        return Ok(BlobPage::default());
    };
    Ok(BlobPage {
        entries: list_dir(&root.join(shard), shard, false)?,
        next: shards.get(first + 1).cloned(),
    })
}

/// The entries of one directory; a blob's key is its shard's name and its file name.
fn list_dir(dir: &Path, prefix: &str, pending: bool) -> Result<Vec<BlobEntry>, BlobError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(io)?;
        out.push(BlobEntry {
            key: format!("{prefix}{name}"),
            modified_ms: modified_ms(&meta),
            pending,
        });
    }
    Ok(out)
}

struct LocalUpload {
    root: PathBuf,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    done: bool,
}

#[async_trait]
impl BlobUpload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io("upload already closed"))?;
        file.write_all(&chunk).await.map_err(io)
    }

    async fn commit(mut self: Box<Self>, key: &str) -> Result<(), BlobError> {
        if !valid_key(key) {
            return Err(io("commit key is not a SHA-256"));
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io("upload already closed"))?;
        file.flush().await.map_err(io)?;
        file.sync_data().await.map_err(io)?;
        drop(file);
        let target = self.root.join(&key[..2]).join(&key[2..]);
        tokio::fs::create_dir_all(target.parent().expect("has a parent"))
            .await
            .map_err(io)?;
        if tokio::fs::try_exists(&target).await.map_err(io)? {
            // Same bytes already stored: keep one copy, and mark it fresh for the sweep.
            tokio::fs::remove_file(&self.path).await.map_err(io)?;
            let target = target.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::File::options()
                    .write(true)
                    .open(&target)?
                    .set_modified(SystemTime::now())
            })
            .await
            .map_err(io)?
            .map_err(io)?;
        } else {
            tokio::fs::rename(&self.path, &target).await.map_err(io)?;
        }
        self.done = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<(), BlobError> {
        self.file.take();
        self.done = true;
        tokio::fs::remove_file(&self.path).await.map_err(io)
    }
}

impl Drop for LocalUpload {
    // A request cut off mid-body drops the upload without abort: remove the partial file
    // now rather than waiting for the sweep.
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_then_publishes_and_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).await.unwrap();
        let key = "a".repeat(64);
        for _ in 0..2 {
            let mut up = blobs.begin().await.unwrap();
            up.write(Bytes::from_static(b"hello ")).await.unwrap();
            up.write(Bytes::from_static(b"world")).await.unwrap();
            up.commit(&key).await.unwrap();
        }
        let listed = blobs.list().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(!listed[0].pending);
        assert_eq!(listed[0].key, key);
        let mut s = blobs.get(&key, Some((6, 5))).await.unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, b"world");
    }

    #[tokio::test]
    async fn a_listing_pages_by_shard() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).await.unwrap();
        for key in [
            "b".repeat(64),
            "a".repeat(64),
            format!("aa{}", "c".repeat(62)),
        ] {
            let mut up = blobs.begin().await.unwrap();
            up.write(Bytes::from(key.clone())).await.unwrap();
            up.commit(&key).await.unwrap();
        }
        let first = blobs.list_page(false, None).await.unwrap();
        assert_eq!(
            first.entries.len(),
            2,
            "both aa… blobs are one directory: {first:?}"
        );
        assert_eq!(first.next.as_deref(), Some("bb"));
        let second = blobs.list_page(false, first.next).await.unwrap();
        assert_eq!(second.entries[0].key, "b".repeat(64));
        assert_eq!(second.next, None);
    }

    #[tokio::test]
    async fn dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).await.unwrap();
        let mut up = blobs.begin().await.unwrap();
        up.write(Bytes::from_static(b"partial")).await.unwrap();
        assert_eq!(blobs.list().await.unwrap().len(), 1);
        drop(up);
        assert!(blobs.list().await.unwrap().is_empty());
        assert!(matches!(
            blobs.get(&"b".repeat(64), None).await,
            Err(BlobError::NotFound)
        ));
        assert!(matches!(
            blobs.get("../../etc/passwd", None).await,
            Err(BlobError::NotFound)
        ));
    }
}
