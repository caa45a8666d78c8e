//! Streaming content into the blob store: the hash names the blob, the quota stops the
//! stream at the first chunk past it, and a failed body leaves nothing behind.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cloudos_core::files::upload::{store_stream, Budget, Stored};
use cloudos_core::files::FilesError;
use cloudos_core::ports::BlobError;
use cloudos_testing::MemoryBlobs;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

fn chunks(n: usize, size: usize) -> Vec<Result<Bytes, std::io::Error>> {
    (0..n)
        .map(|i| Ok(Bytes::from(vec![i as u8; size])))
        .collect()
}

#[tokio::test]
async fn stores_under_the_sha256_of_the_content() {
    let blobs = MemoryBlobs::default();
    let mut body = futures_util::stream::iter(chunks(3, 10));
    let stored = store_stream(
        &blobs,
        &mut body,
        Budget {
            quota: 100,
            used: 0,
        },
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    for i in 0..3u8 {
        all.extend_from_slice(&[i; 10]);
    }
    assert_eq!(
        stored,
        Stored {
            sha256: hex::encode(Sha256::digest(&all)),
            size: 30
        }
    );
    assert_eq!(blobs.blobs.lock().unwrap()[&stored.sha256].0, all);
    assert!(blobs.pending.lock().unwrap().is_empty());
}

#[tokio::test]
async fn stops_at_the_first_chunk_past_the_quota_and_keeps_nothing() {
    let blobs = MemoryBlobs::default();
    let polled = AtomicUsize::new(0);
    let mut body = futures_util::stream::iter(chunks(10, 10)).inspect(|_| {
        polled.fetch_add(1, Ordering::SeqCst);
    });
    let err = store_stream(
        &blobs,
        &mut body,
        Budget {
            quota: 100,
            used: 75,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            FilesError::QuotaExceeded {
                quota: 100,
                used: 75,
                needed: 30
            }
        ),
        "{err:?}"
    );
    // The 413 comes after the third chunk; the rest is read and dropped, never stored.
    assert!(blobs.blobs.lock().unwrap().is_empty());
    assert!(blobs.pending.lock().unwrap().is_empty());
    assert_eq!(
        polled.load(Ordering::SeqCst),
        10,
        "the rest is drained, not stored"
    );
}

#[tokio::test]
async fn an_interrupted_body_is_discarded() {
    let blobs = MemoryBlobs::default();
    let mut items = chunks(2, 10);
    items.push(Err(std::io::Error::other("connection reset")));
    let mut body = futures_util::stream::iter(items);
    let err = store_stream(
        &blobs,
        &mut body,
        Budget {
            quota: 1000,
            used: 0,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, FilesError::Blob(BlobError::Interrupted(_))),
        "{err:?}"
    );
    assert!(blobs.blobs.lock().unwrap().is_empty());
    assert!(blobs.pending.lock().unwrap().is_empty());
}
