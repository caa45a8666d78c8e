//! A room's durable state and its file: open a room from its snapshot and log (or from the
//! file's text the first time), append each accepted update, merge a save made without the
//! room, and checkpoint the merged text into the file as a new version. Both hosts run
//! these rules over their own [`RoomLog`].

use sha2::{Digest, Sha256};
use yrs::{Doc, ReadTxn, StateVector, Transact};

use super::log::RoomLog;
use super::{Effects, Out, Room, RoomError};
use crate::files::{content, listing, trash, FilesError, Made, Origin};
use crate::ids::{FileId, UserId};
use crate::App;

pub use cloudos_proto::MAX_ROOM_BYTES;

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
pub async fn open(
    app: &App,
    log: &dyn RoomLog,
    owner: &UserId,
    file: &FileId,
) -> Result<Opened, RoomError> {
    match listing::get(app, owner, file).await {
        // In the Trash, what the room stored waits for a restore; removed for good, it is
        // [`RoomError::Removed`] and its host may drop it.
        Err(FilesError::NotFound) if trash::removed_for_good(app, file).await? => {
            return Err(RoomError::Removed)
        }
        other => other?,
    };
    let logged = match log.load().await? {
        Some(logged) => logged,
        None => {
            let (f, text) = listing::read_text(app, owner, file, MAX_ROOM_BYTES).await?;
            let state = full_state(&Room::doc_with_text(&text));
            log.start(state, f.version, app.now_ms()).await?;
            log.load()
                .await?
                .ok_or(RoomError::Files(FilesError::NotFound))?
        }
    };
    let next_seq = logged.updates.last().map_or(logged.upto, |(seq, _)| *seq) + 1;
    let doc = Room::doc_from_log(
        Some(&logged.snapshot),
        logged.updates.iter().map(|(_, u)| u.as_slice()),
    )?;
    Ok(Opened { doc, next_seq })
}

/// A save made to the file without the room (a new version since the room last wrote or
/// read it) merged into the room as a concurrent edit: the save's change from that version
/// is made on a copy of the document as it was then, and the copy's update applied to the
/// room, so the room's own edits since are kept. The merged update is logged (from
/// `next_seq`, which moves on) together with the new base, in one batch: a crash cannot
/// leave the save marked merged without its edit stored. Send the effects' `out`.
pub async fn merge_outside_save(
    app: &App,
    log: &dyn RoomLog,
    owner: &UserId,
    file: &FileId,
    room: &mut Room,
    next_seq: &mut i64,
) -> Result<Effects, RoomError> {
    let (base, based_on) = log.base().await?;
    if listing::get(app, owner, file).await?.version == based_on {
        return Ok(Effects::default());
    }
    let (saved, text) = listing::read_text(app, owner, file, MAX_ROOM_BYTES).await?;
    // The room's own text (its checkpoint wrote it, and the base was not moved on before
    // a crash): only the base moves, or the room's edits would be applied a second time.
    if text == room.text() {
        log.merged(*next_seq, vec![], room.snapshot(), saved.version)
            .await?;
        return Ok(Effects::default());
    }
    let copy = Room::doc_from_log(Some(&base), [])?;
    let before = copy.transact().state_vector();
    let mut then = Room::new(copy, || 0_u64);
    then.merge_text(&text);
    let change = then.doc().transact().encode_state_as_update_v1(&before);
    // Stored before the room applies it: a failure leaves the room as its log says, and
    // the next try merges the same save again from the same base.
    log.merged(
        *next_seq,
        vec![change.clone()],
        full_state(then.doc()),
        saved.version,
    )
    .await?;
    *next_seq += 1;
    let mut fx = room.apply_outside(change)?;
    // Already logged, as the one update above.
    fx.stored.clear();
    Ok(fx)
}

/// Writes the room's text into the file as a new version (when it differs from the file)
/// and folds the log up to `upto` into a new snapshot. A save that landed since the last
/// look makes this `Stale`: merge it ([`merge_outside_save`]) and try again.
pub async fn checkpoint(
    app: &App,
    log: &dyn RoomLog,
    owner: &UserId,
    file: &FileId,
    room: &Room,
    upto: i64,
) -> Result<(), RoomError> {
    let (_, based_on) = log.base().await?;
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
        // file read back after it could already be a later one). Its authors are whoever
        // changed the text since the last write-back (the owner, if a restarted room lost
        // track: edits replayed from the log name nobody).
        let editors = room.editors();
        let made = Made {
            origin: Origin::Collab,
            by: if editors.is_empty() {
                vec![owner.clone()]
            } else {
                editors.into_iter().map(UserId::from).collect()
            },
        };
        content::save_content(app, owner, file, based_on, &made, &mut body, None).await?;
        based_on + 1
    };
    log.compact(room.snapshot(), upto, version, app.now_ms())
        .await
}

/// Brings the room and its file together: merges any save made without the room, then
/// writes the room's text into the file, trying again (a few times) when a save lands in
/// between. What the merges say to send is returned even when a later step failed (their
/// updates are stored by then).
pub async fn write_back(
    app: &App,
    log: &dyn RoomLog,
    owner: &UserId,
    file: &FileId,
    room: &mut Room,
    next_seq: &mut i64,
) -> (Vec<Out>, Result<(), RoomError>) {
    let mut out = Vec::new();
    let mut last = Ok(());
    for _ in 0..3 {
        match merge_outside_save(app, log, owner, file, room, next_seq).await {
            Ok(fx) => out.extend(fx.out),
            Err(e) => return (out, Err(e)),
        }
        match checkpoint(app, log, owner, file, room, *next_seq - 1).await {
            Ok(()) => {
                room.written_back();
                return (out, Ok(()));
            }
            // A save landed in between: merge it too, and try again.
            Err(e @ RoomError::Files(FilesError::Stale { .. })) => last = Err(e),
            Err(e) => return (out, Err(e)),
        }
    }
    (out, last)
}

/// Records that `file`'s room is open on this host, so saves made without it are sent to it.
pub async fn mark_open(app: &App, file: &FileId) -> Result<(), RoomError> {
    app.ports
        .meta
        .execute(crate::stmt!(
            "INSERT INTO live_rooms (file_id, since) VALUES (?, ?)
             ON CONFLICT(file_id) DO UPDATE SET since = excluded.since",
            file,
            app.now_ms()
        ))
        .await?;
    Ok(())
}

/// Records that `file`'s room closed (written back, nobody in it).
pub async fn mark_closed(app: &App, file: &FileId) -> Result<(), RoomError> {
    app.ports
        .meta
        .execute(crate::stmt!(
            "DELETE FROM live_rooms WHERE file_id = ?",
            file
        ))
        .await?;
    Ok(())
}

/// A save was made to `file` without its room: if the room is open, its host merges the
/// save in now (rather than at the room's next checkpoint, which an idle room may not have
/// for a while). Failing to tell is logged, not the save's failure: the room merges the
/// save at its next checkpoint anyway.
pub async fn saved_without_room(app: &App, file: &FileId) {
    if is_live(app, file).await {
        app.ports.sockets.file_saved(file).await;
    }
}

/// Whether `file`'s room is open on some host (as far as the hosts recorded).
pub async fn is_live(app: &App, file: &FileId) -> bool {
    let open = app
        .ports
        .meta
        .query(crate::stmt!(
            "SELECT 1 FROM live_rooms WHERE file_id = ?",
            file
        ))
        .await;
    match open {
        Ok(rows) => !rows.is_empty(),
        Err(e) => {
            tracing::warn!(file = %file, error = %e, "looking for a file's live room");
            false
        }
    }
}

/// The room reads its file's lock again (when it opens, and when told the lock changed):
/// what to send.
pub async fn refresh_lock(app: &App, room: &mut Room, file: &FileId) -> Effects {
    match crate::locks::for_room(app, file).await {
        Ok(lock) => room.set_lock(lock),
        Err(e) => {
            tracing::warn!(file = %file, error = %e, "reading a file's lock");
            Effects::default()
        }
    }
}

/// What the host does after a room's effects are stored and sent: the lock of a holder
/// who left ends soon.
pub async fn after(app: &App, file: &FileId, holder_left: Option<String>) {
    if let Some(holder) = holder_left {
        crate::locks::left_room(app, file, &holder).await;
    }
}

/// The live room over an opened file: dated by the app's clock, speaking for itself under
/// an id derived from the file, enforcing the file's lock.
pub async fn room(app: &App, doc: Doc, file: &FileId) -> Room {
    let digest = Sha256::digest(file.as_str().as_bytes());
    // A Yjs client id as JavaScript clients make them (32 bits).
    let id = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut room = Room::new(doc, super::clock_of(app)).with_presence_id(u64::from(id));
    // Nobody has joined yet to be told: the lock goes out with each join.
    let _ = refresh_lock(app, &mut room, file).await;
    room
}

/// `who` signed out: their sockets in every open room end (their own files' rooms, and the
/// rooms they joined through links). Best effort, like the rest of a sign-out's fan-out:
/// their tokens are already refused, so nothing new opens.
pub async fn end_session(app: &App, who: &UserId) {
    let rows = app
        .ports
        .meta
        .query(crate::stmt!(
            "SELECT l.file_id FROM live_rooms l JOIN files f ON f.id = l.file_id
             WHERE f.user_id = ?
             UNION
             SELECT l.file_id FROM live_rooms l
             JOIN share_rooms r ON r.file_id = l.file_id
             JOIN share_visits v ON v.share_id = r.share_id
             WHERE v.visitor_id = ?
             LIMIT 1000",
            who,
            who
        ))
        .await;
    match rows {
        Ok(rows) => {
            let files: Vec<FileId> = rows.iter().map(|r| FileId::from(r.text(0))).collect();
            app.ports.sockets.session_ended(who, &files).await;
        }
        Err(e) => tracing::warn!(error = %e, "looking for a signed-out user's rooms"),
    }
}
