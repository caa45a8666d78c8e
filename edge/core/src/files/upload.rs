//! Streaming content into the blob store: hashed on the way, quota checked per chunk.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use cloudos_proto::File;

use super::organize::PARENT_IS_FOLDER;
use super::repo::{self, ensure_folder, ensure_room_for, quota_left, ROOM_FOR_ITEMS, USED_BY};
use super::{changed, FilesError, Made, Origin};
use crate::ids::{FileId, UserId};
use crate::notifications::{notify_logged, NewNotification};
use crate::ports::{BlobError, BlobStore, BlobUpload, DbError, Value};
use crate::App;

/// How many bytes an upload may still store.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub quota: u64,
    pub used: u64,
}

impl Budget {
    /// Bytes left before the quota.
    pub fn left(&self) -> u64 {
        self.quota.saturating_sub(self.used)
    }

    /// Fails when `needed` more bytes would pass the quota.
    pub fn check(&self, needed: u64) -> Result<(), FilesError> {
        if needed > self.left() {
            return Err(FilesError::QuotaExceeded {
                quota: self.quota,
                used: self.used,
                needed,
            });
        }
        Ok(())
    }
}

/// Content that is now in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lowercase hex SHA-256: the blob key and the file's checksum.
    pub sha256: String,
    pub size: u64,
}

/// How much of a refused body is still read (and thrown away) so that an HTTP/1.1 client
/// that is still sending gets to read the 413 instead of a reset connection.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads and discards up to `limit` bytes of what is left of a stream.
pub async fn drain<S, E>(mut body: S, limit: u64)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut seen = 0u64;
    while seen < limit {
        match body.next().await {
            Some(Ok(chunk)) => seen += chunk.len() as u64,
            _ => break,
        }
    }
}

/// Streams `body` into a new blob, never holding more than one chunk, and stops at the
/// first chunk that would pass the budget (nothing past the quota is stored; the rest of
/// the body is drained, up to [`DRAIN_LIMIT`], so the client reads the 413).
pub async fn store_stream<S, E>(
    blobs: &dyn BlobStore,
    body: &mut S,
    budget: Budget,
) -> Result<Stored, FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut upload = blobs.begin().await?;
    match write_all(upload.as_mut(), body, budget).await {
        Ok((sha256, size)) => {
            upload.commit(&sha256).await?;
            Ok(Stored { sha256, size })
        }
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, "could not discard a failed upload; the sweep will");
            }
            if matches!(e, FilesError::QuotaExceeded { .. }) {
                drain(body, DRAIN_LIMIT).await;
            }
            Err(e)
        }
    }
}

async fn write_all<S, E>(
    upload: &mut dyn BlobUpload,
    body: &mut S,
    budget: Budget,
) -> Result<(String, u64), FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BlobError::Interrupted(e.to_string()))?;
        size += chunk.len() as u64;
        budget.check(size)?;
        hasher.update(&chunk);
        upload.write(chunk).await?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// How many files one upload may add (one statement binds five values per file).
pub const MAX_FILES_PER_UPLOAD: usize = 1000;

/// A file whose content is stored and that waits for its row.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub mime: String,
    pub stored: Stored,
}

/// Adds stored files to `parent` (`None`: the root): all of them or none. The quota and
/// the parent are checked in the same statement that adds the rows, so uploads racing each
/// other never store more than the quota together, and a folder deleted meanwhile gets no
/// files. Blobs of a refused batch are left to the orphan sweep.
pub async fn create_files(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
    files: Vec<NewFile>,
    made: &Made,
) -> Result<Vec<File>, FilesError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    if files.len() > MAX_FILES_PER_UPLOAD {
        return Err(FilesError::BadUpload(format!(
            "at most {MAX_FILES_PER_UPLOAD} files per upload"
        )));
    }
    for (i, f) in files.iter().enumerate() {
        super::names::validate_name(&f.name)?;
        if files[..i].iter().any(|g| g.name == f.name) {
            return Err(FilesError::NameTaken(f.name.clone()));
        }
    }
    let meta = app.ports.meta.as_ref();
    let now = app.now_ms();
    let total: u64 = files.iter().map(|f| f.stored.size).sum();
    let ids: Vec<FileId> = files
        .iter()
        .map(|_| FileId::from(app.ports.ids.new_id()))
        .collect();
    let rows = vec!["(?, ?, ?, ?, ?)"; files.len()].join(", ");
    let mut params: Vec<Value> = vec![
        who.into(),
        parent.into(),
        now.into(),
        now.into(),
        made.origin.as_str().into(),
        made.author_ids().into(),
    ];
    for (id, f) in ids.iter().zip(&files) {
        params.extend([
            id.into(),
            f.name.as_str().into(),
            f.stored.size.into(),
            f.mime.as_str().into(),
            f.stored.sha256.as_str().into(),
        ]);
    }
    params.extend([who.into(), total.into(), who.into()]);
    params.extend([parent.into(), parent.into(), who.into()]);
    let (count, max) = (files.len() as u64, app.config.max_items_per_user);
    params.extend([who.into(), count.into(), max.into()]);
    let insert = crate::ports::Stmt::new(
        format!(
            "INSERT INTO files (id, user_id, parent_id, created_at, updated_at, origin, author_ids,
                                name, size, mime, blob_key, checksum, kind, version)
             SELECT v.column1, ?, ?, ?, ?, ?, ?, v.column2, v.column3, v.column4, v.column5,
                    v.column5, 'file', 1
             FROM (VALUES {rows}) AS v
             WHERE {USED_BY} + ? <= (SELECT quota_bytes FROM users WHERE id = ?)
               AND {PARENT_IS_FOLDER}
               AND {ROOM_FOR_ITEMS}"
        ),
        params,
    );
    let inserted = match meta.execute(insert).await {
        Ok(n) => n,
        Err(DbError::Constraint(_)) => {
            let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            let taken = taken_names(app, who, parent, &names).await?;
            let named = if taken.is_empty() {
                names.join(", ")
            } else {
                taken.join(", ")
            };
            return Err(FilesError::NameTaken(named));
        }
        Err(e) => return Err(e.into()),
    };
    if inserted == 0 {
        ensure_folder(meta, who, parent).await?;
        ensure_room_for(meta, who, count, max).await?;
        let (quota, used) = quota_left(meta, who).await?;
        return Err(FilesError::QuotaExceeded {
            quota,
            used,
            needed: total,
        });
    }
    let created = repo::get_files(meta, who, &ids).await?;
    changed(app, who, parent);
    Ok(created)
}

/// Which of `names` are taken in `parent`, for saying which ones an upload ran into.
async fn taken_names(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
    names: &[&str],
) -> Result<Vec<String>, FilesError> {
    let mut taken = Vec::new();
    for chunk in names.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params: Vec<Value> = vec![who.into(), parent.map_or("", FileId::as_str).into()];
        params.extend(chunk.iter().map(|n| Value::from(*n)));
        let rows = app
            .ports
            .meta
            .query(crate::ports::Stmt::new(
                format!(
                    "SELECT name FROM files WHERE user_id = ? AND COALESCE(parent_id, '') = ?
                       AND trashed_at IS NULL AND name IN ({marks}) ORDER BY name"
                ),
                params,
            ))
            .await?;
        taken.extend(rows.iter().map(|r| r.text(0)));
    }
    Ok(taken)
}

/// Adds the files of a finished upload (as [`create_files`]) and tells the user's desktops
/// with a notification.
pub async fn finish_upload(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
    files: Vec<NewFile>,
    made: &Made,
) -> Result<Vec<File>, FilesError> {
    let files = create_files(app, who, parent, files, made).await?;
    // What a sandbox's sync adds is the user's own doing in their terminal: a `git clone`
    // would otherwise flood the desktop with "upload finished".
    if made.origin == Origin::Sandbox {
        return Ok(files);
    }
    let (title, body) = match files.as_slice() {
        [one] => ("Upload finished".to_owned(), one.name.clone()),
        many => (
            format!("{} uploads finished", many.len()),
            many.iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    notify_logged(
        app,
        who,
        NewNotification {
            kind: "upload.finished",
            title,
            body,
            file_id: files.first().map(|f| f.id.as_str()),
        },
    )
    .await;
    Ok(files)
}

/// An upload of one or more files in progress. Each file's bytes are stored as they arrive,
/// checked against the quota chunk by chunk; the files become visible together at
/// [`Upload::finish`], all or none. The HTTP route feeds it the parts of a multipart form;
/// anything else that receives files (an import, a sync) can feed it the same way.
pub struct Upload<'a> {
    app: &'a App,
    who: &'a UserId,
    parent: Option<FileId>,
    budget: Budget,
    staged: Vec<NewFile>,
    made: Made,
}

impl<'a> Upload<'a> {
    /// Starts an upload into the root. `announced` is the size the sender announced, if
    /// any: an upload certainly over the quota is refused before a byte is stored.
    pub async fn begin(
        app: &'a App,
        who: &'a UserId,
        announced: Option<u64>,
    ) -> Result<Self, FilesError> {
        let (quota, used) = quota_left(app.ports.meta.as_ref(), who).await?;
        let budget = Budget { quota, used };
        if let Some(len) = announced {
            budget.check(len)?;
        }
        Ok(Upload {
            app,
            who,
            parent: None,
            budget,
            staged: Vec::new(),
            made: Made::by(Origin::Upload, who),
        })
    }

    /// Records the files as made by `made` instead of an upload by the user.
    pub fn made_by(mut self, made: Made) -> Self {
        self.made = made;
        self
    }

    /// Puts the files into `parent` (`None`: the root) instead; only before the first file.
    pub async fn into_folder(&mut self, parent: Option<FileId>) -> Result<(), FilesError> {
        if !self.staged.is_empty() {
            return Err(FilesError::BadUpload(
                "send parent_id before the file parts".into(),
            ));
        }
        ensure_folder(self.app.ports.meta.as_ref(), self.who, parent.as_ref()).await?;
        self.parent = parent;
        Ok(())
    }

    /// Stores one file's bytes. `mime` is what the sender said; a missing or generic type
    /// is guessed from the name.
    pub async fn add<S, E>(
        &mut self,
        name: &str,
        mime: Option<&str>,
        body: &mut S,
    ) -> Result<(), FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        super::names::validate_name(name)?;
        if self.staged.len() == MAX_FILES_PER_UPLOAD {
            return Err(FilesError::BadUpload(format!(
                "at most {MAX_FILES_PER_UPLOAD} files per upload"
            )));
        }
        // A name taken in the folder is found when the rows are added, all at once: one
        // query per file would be a round trip each on the Worker (and a subrequest each).
        if self.staged.iter().any(|s| s.name == name) {
            return Err(FilesError::NameTaken(name.to_owned()));
        }
        let mime = match mime {
            Some(m) if m != "application/octet-stream" => m.to_owned(),
            _ => guess_mime(name),
        };
        let stored = store_stream(self.app.ports.blobs.as_ref(), body, self.budget).await?;
        self.budget.used += stored.size;
        self.staged.push(NewFile {
            name: name.to_owned(),
            mime,
            stored,
        });
        Ok(())
    }

    /// Adds every stored file at once ([`finish_upload`]: the quota and the folder are
    /// checked again in the same statement) and tells the user's desktops.
    pub async fn finish(self) -> Result<Vec<File>, FilesError> {
        if self.staged.is_empty() {
            return Err(FilesError::BadUpload("no `file` part in the form".into()));
        }
        finish_upload(
            self.app,
            self.who,
            self.parent.as_ref(),
            self.staged,
            &self.made,
        )
        .await
    }
}

/// The type of a file by its name's extension (`application/octet-stream` when unknown).
pub fn guess_mime(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// Stores `body` as a new file `name` in `parent`, under the same rules as an upload.
pub async fn write_new_file<S, E>(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
    name: &str,
    mime: &str,
    made: &Made,
    body: &mut S,
) -> Result<File, FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    super::names::validate_name(name)?;
    let meta = app.ports.meta.as_ref();
    ensure_folder(meta, who, parent).await?;
    // Refused before storing a byte; `create_files` checks again when it adds the row.
    if repo::name_taken(meta, who, parent, name).await? {
        return Err(FilesError::NameTaken(name.to_owned()));
    }
    let (quota, used) = quota_left(meta, who).await?;
    let stored = store_stream(app.ports.blobs.as_ref(), body, Budget { quota, used }).await?;
    let file = NewFile {
        name: name.to_owned(),
        mime: mime.to_owned(),
        stored,
    };
    let mut created = create_files(app, who, parent, vec![file], made).await?;
    Ok(created.remove(0))
}
