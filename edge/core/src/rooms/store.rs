//! A room's durable state and its file: open a room from its snapshot and log (or from the
//! file's text the first time), append each accepted update, merge a save made without the
//! room, and checkpoint the merged text into the file as a new version.

use sha2::{Digest, Sha256};
use yrs::{Doc, ReadTxn, StateVector, Transact};

use super::{Effects, Room, RoomError};
use crate::files::{content, listing, FilesError};
use crate::ids::{FileId, UserId};
use crate::{stmt, App};

/// The most text (UTF-8 bytes) a live room holds; bigger files are edited by saving.
pub const MAX_ROOM_BYTES: u64 = 2 * 1024 * 1024;

/// A room's document as stored, ready to serve.
pub struct Opened {
    pub doc: Doc,
    /// The sequence number the next logged update takes.
    pub next_seq: i64,
}

fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Opens `owner`'s text file `file` as a room: its snapshot and the updates logged after
/// it, or (the first time) a document made of the file's text, stored before anything else
/// happens so every later update has the same base.
pub async fn open(app: &App, owner: &UserId, file: &FileId) -> Result<Opened, RoomError> {
    let meta = app.ports.meta.as_ref();
    listing::get(app, owner, file).await?;
    let mut rows = meta
        .query(stmt!(
            "SELECT snapshot, upto FROM room_snapshots WHERE file_id = ?",
            file
        ))
        .await?;
    if rows.is_empty() {
        let (f, text) = listing::read_text(app, owner, file, MAX_ROOM_BYTES).await?;
        let state = full_state(&Room::doc_with_text(&text));
        meta.execute(stmt!(
            "INSERT INTO room_snapshots (file_id, snapshot, upto, base, file_version, updated_at)
             VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT(file_id) DO NOTHING",
            file,
            state.clone(),
            state,
            f.version,
            app.now_ms()
        ))
        .await?;
        rows = meta
            .query(stmt!(
                "SELECT snapshot, upto FROM room_snapshots WHERE file_id = ?",
                file
            ))
            .await?;
    }
    let row = rows.first().ok_or(RoomError::Files(FilesError::NotFound))?;
    let (snapshot, upto) = (row.blob(0), row.int(1));
    let updates = meta
        .query(stmt!(
            "SELECT seq, body FROM room_updates WHERE file_id = ? AND seq > ? ORDER BY seq",
            file,
            upto
        ))
        .await?;
    let next_seq = updates.last().map_or(upto, |r| r.int(0)) + 1;
    let bodies: Vec<Vec<u8>> = updates.iter().map(|r| r.blob(1)).collect();
    let doc = Room::doc_from_log(Some(&snapshot), bodies.iter().map(Vec::as_slice))?;
    Ok(Opened { doc, next_seq })
}

/// Logs one accepted update as number `seq`; the update may be acknowledged once this
/// returns.
pub async fn append(app: &App, file: &FileId, seq: i64, update: &[u8]) -> Result<(), RoomError> {
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO room_updates (file_id, seq, body) VALUES (?, ?, ?)",
            file,
            seq,
            update
        ))
        .await?;
    Ok(())
}

/// A save made to the file without the room (a new version since the room last wrote or
/// read it) merged into the room as a concurrent edit: the save's change from that version
/// is made on a copy of the document as it was then, and the copy's update applied to the
/// room, so the room's own edits since are kept. The merged update is logged (from
/// `next_seq`, which moves on) together with the new base, in one batch: a crash cannot
/// leave the save marked merged without its edit stored. Send the effects' `out`.
pub async fn merge_outside_save(
    app: &App,
    owner: &UserId,
    file: &FileId,
    room: &mut Room,
    next_seq: &mut i64,
) -> Result<Effects, RoomError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT base, file_version FROM room_snapshots WHERE file_id = ?",
            file
        ))
        .await?;
    let row = rows.first().ok_or(RoomError::Files(FilesError::NotFound))?;
    let (base, based_on) = (row.blob(0), row.int(1));
    if listing::get(app, owner, file).await?.version == based_on {
        return Ok(Effects::default());
    }
    let (saved, text) = listing::read_text(app, owner, file, MAX_ROOM_BYTES).await?;
    let copy = Room::doc_from_log(Some(&base), [])?;
    let before = copy.transact().state_vector();
    let mut then = Room::new(copy, || 0_u64);
    then.merge_text(&text);
    let change = then.doc().transact().encode_state_as_update_v1(&before);
    let mut fx = room.apply_outside(change)?;
    let mut batch = Vec::new();
    for update in std::mem::take(&mut fx.stored) {
        batch.push(stmt!(
            "INSERT INTO room_updates (file_id, seq, body) VALUES (?, ?, ?)",
            file,
            *next_seq + batch.len() as i64,
            update
        ));
    }
    let logged = batch.len() as i64;
    batch.push(stmt!(
        "UPDATE room_snapshots SET base = ?, file_version = ? WHERE file_id = ?",
        full_state(then.doc()),
        saved.version,
        file
    ));
    app.ports.meta.batch(batch).await?;
    *next_seq += logged;
    Ok(fx)
}

/// Writes the room's text into the file as a new version (when it differs from the file)
/// and folds the log up to `upto` into a new snapshot. A save that landed since the last
/// look makes this `Stale`: merge it ([`merge_outside_save`]) and try again.
pub async fn checkpoint(
    app: &App,
    owner: &UserId,
    file: &FileId,
    room: &Room,
    upto: i64,
) -> Result<(), RoomError> {
    let meta = app.ports.meta.as_ref();
    let rows = meta
        .query(stmt!(
            "SELECT file_version FROM room_snapshots WHERE file_id = ?",
            file
        ))
        .await?;
    let based_on = rows
        .first()
        .ok_or(RoomError::Files(FilesError::NotFound))?
        .int(0);
    let current = listing::get(app, owner, file).await?;
    if current.version != based_on {
        return Err(RoomError::Files(FilesError::Stale {
            current: current.version,
            given: based_on,
        }));
    }
    // Compared by checksum: the file may have grown past what a room reads.
    let room_text = room.text();
    let unchanged = current.checksum.as_deref()
        == Some(hex::encode(Sha256::digest(room_text.as_bytes())).as_str());
    let version = if unchanged {
        current.version
    } else {
        let mut body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(
            room_text.into_bytes(),
        ))]);
        // The save succeeds only on `based_on`, so what it made is the next version (the
        // file read back after it could already be a later one).
        content::save_content(app, owner, file, based_on, &mut body, None).await?;
        based_on + 1
    };
    let state = room.snapshot();
    meta.batch(vec![
        stmt!(
            "UPDATE room_snapshots SET snapshot = ?, upto = ?, base = ?, file_version = ?,
                    updated_at = ?
             WHERE file_id = ?",
            state.clone(),
            upto,
            state,
            version,
            app.now_ms(),
            file
        ),
        stmt!(
            "DELETE FROM room_updates WHERE file_id = ? AND seq <= ?",
            file,
            upto
        ),
    ])
    .await?;
    Ok(())
}
