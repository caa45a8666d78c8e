//! Where a room's durable state lives: its snapshot, the updates logged after it, and its
//! base (the document as of the file version it last wrote or read). Natively, libSQL
//! ([`SqlLog`]); on the Worker, the room's Durable Object keeps the same state in its own
//! storage. The rules that use it are in [`super::store`], once for both.

use async_trait::async_trait;

use super::RoomError;
use crate::ids::FileId;
use crate::{stmt, App};

/// A room's state as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logged {
    /// The whole document as one update (Yjs v1) as of the last compaction.
    pub snapshot: Vec<u8>,
    /// The last update the snapshot holds.
    pub upto: i64,
    /// The updates logged after the snapshot, by sequence number, in order.
    pub updates: Vec<(i64, Vec<u8>)>,
}

/// A room's durable state. Every call is durable when it returns: an update may be
/// acknowledged once `append` has returned.
#[async_trait]
pub trait RoomLog: Send + Sync {
    /// The snapshot and the log after it; `None` before the room's first opening.
    async fn load(&self) -> Result<Option<Logged>, RoomError>;
    /// Stores the first snapshot (also the base) made from the file at `file_version`,
    /// unless the room has one already.
    async fn start(&self, state: Vec<u8>, file_version: i64, now_ms: i64) -> Result<(), RoomError>;
    /// Logs one accepted update as number `seq`.
    async fn append(&self, seq: i64, update: &[u8]) -> Result<(), RoomError>;
    /// Logs a burst of accepted updates from number `first_seq`, in order: one write, all
    /// or nothing, where the store overrides this (a room under heavy typing stores its
    /// queue at once); one `append` after another otherwise.
    async fn append_all(&self, first_seq: i64, updates: Vec<Vec<u8>>) -> Result<(), RoomError> {
        for (seq, update) in (first_seq..).zip(&updates) {
            self.append(seq, update).await?;
        }
        Ok(())
    }
    /// The base document and the file version it is.
    async fn base(&self) -> Result<(Vec<u8>, i64), RoomError>;
    /// Logs `updates` from number `first_seq` and records the new base, all or nothing.
    async fn merged(
        &self,
        first_seq: i64,
        updates: Vec<Vec<u8>>,
        base: Vec<u8>,
        file_version: i64,
    ) -> Result<(), RoomError>;
    /// Replaces the snapshot and the base with `state`, which holds the log through `upto`
    /// (dropped) and is the file at `file_version`, all or nothing.
    async fn compact(
        &self,
        state: Vec<u8>,
        upto: i64,
        file_version: i64,
        now_ms: i64,
    ) -> Result<(), RoomError>;
}

/// A room's state in the metadata database (`room_snapshots`, `room_updates`): the native
/// host's, and the one whose rows go when the file is deleted.
pub struct SqlLog {
    app: App,
    file: FileId,
}

impl SqlLog {
    /// The stored state of `file`'s room.
    pub fn new(app: &App, file: &FileId) -> Self {
        SqlLog {
            app: app.clone(),
            file: file.clone(),
        }
    }
}

fn insert_update(file: &FileId, seq: i64, update: Vec<u8>) -> crate::ports::Stmt {
    stmt!(
        "INSERT INTO room_updates (file_id, seq, body) VALUES (?, ?, ?)",
        file,
        seq,
        update
    )
}

#[async_trait]
impl RoomLog for SqlLog {
    async fn load(&self) -> Result<Option<Logged>, RoomError> {
        let meta = self.app.ports.meta.as_ref();
        let rows = meta
            .query(stmt!(
                "SELECT snapshot, upto FROM room_snapshots WHERE file_id = ?",
                &self.file
            ))
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (snapshot, upto) = (row.blob(0), row.int(1));
        let updates = meta
            .query(stmt!(
                "SELECT seq, body FROM room_updates WHERE file_id = ? AND seq > ? ORDER BY seq",
                &self.file,
                upto
            ))
            .await?
            .iter()
            .map(|r| (r.int(0), r.blob(1)))
            .collect();
        Ok(Some(Logged {
            snapshot,
            upto,
            updates,
        }))
    }

    async fn start(&self, state: Vec<u8>, file_version: i64, now_ms: i64) -> Result<(), RoomError> {
        self.app
            .ports
            .meta
            .execute(stmt!(
                "INSERT INTO room_snapshots (file_id, snapshot, upto, base, file_version, updated_at)
                 VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT(file_id) DO NOTHING",
                &self.file,
                state.clone(),
                state,
                file_version,
                now_ms
            ))
            .await?;
        Ok(())
    }

    async fn append(&self, seq: i64, update: &[u8]) -> Result<(), RoomError> {
        self.app
            .ports
            .meta
            .execute(insert_update(&self.file, seq, update.to_vec()))
            .await?;
        Ok(())
    }

    async fn append_all(&self, first_seq: i64, updates: Vec<Vec<u8>>) -> Result<(), RoomError> {
        if let [one] = updates.as_slice() {
            return self.append(first_seq, one).await;
        }
        let batch = (first_seq..)
            .zip(updates)
            .map(|(seq, u)| insert_update(&self.file, seq, u))
            .collect();
        self.app.ports.meta.batch(batch).await?;
        Ok(())
    }

    async fn base(&self) -> Result<(Vec<u8>, i64), RoomError> {
        let rows = self
            .app
            .ports
            .meta
            .query(stmt!(
                "SELECT base, file_version FROM room_snapshots WHERE file_id = ?",
                &self.file
            ))
            .await?;
        let row = rows
            .first()
            .ok_or(RoomError::Files(crate::files::FilesError::NotFound))?;
        Ok((row.blob(0), row.int(1)))
    }

    async fn merged(
        &self,
        first_seq: i64,
        updates: Vec<Vec<u8>>,
        base: Vec<u8>,
        file_version: i64,
    ) -> Result<(), RoomError> {
        let mut batch: Vec<_> = (first_seq..)
            .zip(updates)
            .map(|(seq, u)| insert_update(&self.file, seq, u))
            .collect();
        batch.push(stmt!(
            "UPDATE room_snapshots SET base = ?, file_version = ? WHERE file_id = ?",
            base,
            file_version,
            &self.file
        ));
        self.app.ports.meta.batch(batch).await?;
        Ok(())
    }

    async fn compact(
        &self,
        state: Vec<u8>,
        upto: i64,
        file_version: i64,
        now_ms: i64,
    ) -> Result<(), RoomError> {
        self.app
            .ports
            .meta
            .batch(vec![
                stmt!(
                    "UPDATE room_snapshots SET snapshot = ?, upto = ?, base = ?, file_version = ?,
                            updated_at = ?
                     WHERE file_id = ?",
                    state.clone(),
                    upto,
                    state,
                    file_version,
                    now_ms,
                    &self.file
                ),
                stmt!(
                    "DELETE FROM room_updates WHERE file_id = ? AND seq <= ?",
                    &self.file,
                    upto
                ),
            ])
            .await?;
        Ok(())
    }
}
