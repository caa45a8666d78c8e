//! In-memory fakes of the ports a test does not need real: time, ids, blobs, events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use cloudos_core::ports::*;

/// A clock that only moves when told.
#[derive(Default)]
pub struct FakeClock(pub AtomicI64);

impl FakeClock {
    /// A clock showing `ms`.
    pub fn at(ms: i64) -> Self {
        FakeClock(AtomicI64::new(ms))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Ids `id1`, `id2`, … and non-random bytes (different on every call, so tokens made from
/// them are distinct as real ones are).
#[derive(Default)]
pub struct SeqIds(AtomicU64);

impl Ids for SeqIds {
    fn new_id(&self) -> String {
        format!("id{}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let call = self.0.fetch_add(1, Ordering::SeqCst).to_le_bytes();
        (0..n).map(|i| call[i % call.len()] ^ 7).collect()
    }
}

/// Keys per listing page: small, so every walk in a test crosses pages.
const PAGE: usize = 2;

/// Blobs by key: (bytes, modified ms).
pub type BlobMap = Arc<Mutex<HashMap<String, (Vec<u8>, i64)>>>;

/// Blobs in a map: committed ones by key, pending ones by upload number.
#[derive(Default, Clone)]
pub struct MemoryBlobs {
    pub blobs: BlobMap,
    pub pending: BlobMap,
    next: Arc<AtomicU64>,
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError> {
        let key = format!("p{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.pending
            .lock()
            .unwrap()
            .insert(key.clone(), (Vec::new(), 0));
        Ok(Box::new(MemoryUpload {
            store: self.clone(),
            key,
        }))
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream, BlobError> {
        let (bytes, _) = self
            .blobs
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or(BlobError::NotFound)?;
        let slice = match range {
            Some((o, l)) => bytes[o as usize..(o + l) as usize].to_vec(),
            None => bytes,
        };
        Ok(futures_util::stream::iter([Ok(Bytes::from(slice))]).boxed())
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.blobs.lock().unwrap().contains_key(key))
    }

    async fn delete(&self, key: &str, pending: bool) -> Result<(), BlobError> {
        let map = if pending { &self.pending } else { &self.blobs };
        map.lock().unwrap().remove(key);
        Ok(())
    }

    async fn list_page(
        &self,
        pending: bool,
        cursor: Option<String>,
    ) -> Result<BlobPage, BlobError> {
        let map = if pending { &self.pending } else { &self.blobs };
        let map = map.lock().unwrap();
        let mut keys: Vec<&String> = map
            .keys()
            .filter(|k| cursor.as_ref().is_none_or(|c| *k > c))
            .collect();
        keys.sort();
        let entries: Vec<BlobEntry> = keys
            .iter()
            .take(PAGE)
            .map(|k| BlobEntry {
                key: (*k).clone(),
                modified_ms: map[*k].1,
                pending,
            })
            .collect();
        let next = (keys.len() > PAGE).then(|| entries[PAGE - 1].key.clone());
        Ok(BlobPage { entries, next })
    }
}

struct MemoryUpload {
    store: MemoryBlobs,
    key: String,
}

#[async_trait]
impl BlobUpload for MemoryUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let mut pending = self.store.pending.lock().unwrap();
        pending
            .get_mut(&self.key)
            .ok_or(BlobError::NotFound)?
            .0
            .extend_from_slice(&chunk);
        Ok(())
    }

    async fn commit(self: Box<Self>, key: &str) -> Result<(), BlobError> {
        let (bytes, _) = self
            .store
            .pending
            .lock()
            .unwrap()
            .remove(&self.key)
            .ok_or(BlobError::NotFound)?;
        self.store
            .blobs
            .lock()
            .unwrap()
            .insert(key.to_owned(), (bytes, 0));
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        self.store.pending.lock().unwrap().remove(&self.key);
        Ok(())
    }
}

/// Keeps published events for assertions.
#[derive(Default)]
pub struct RecordedEvents(pub Mutex<Vec<(String, cloudos_proto::Event)>>);

impl RecordedEvents {
    /// Takes what was published so far.
    pub fn take(&self) -> Vec<(String, cloudos_proto::Event)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Events for RecordedEvents {
    fn publish(&self, user_id: &str, event: &cloudos_proto::Event) {
        self.0
            .lock()
            .unwrap()
            .push((user_id.to_owned(), event.clone()));
    }
}

/// A metadata store that lets other tasks run before each statement, as a real database's
/// round trip does. Without it, every statement on the in-memory database is ready at once
/// and futures joined in a test would run one after the other, never interleaved, so a
/// check-then-write race could not show.
pub struct Interleaving<M>(pub M);

#[async_trait]
impl<M: MetaStore> MetaStore for Interleaving<M> {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        tokio::task::yield_now().await;
        self.0.query(stmt).await
    }

    async fn execute(&self, stmt: Stmt) -> Result<u64, DbError> {
        tokio::task::yield_now().await;
        self.0.execute(stmt).await
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        tokio::task::yield_now().await;
        self.0.batch(stmts).await
    }

    async fn run_script(&self, sql: &str) -> Result<(), DbError> {
        tokio::task::yield_now().await;
        self.0.run_script(sql).await
    }
}
