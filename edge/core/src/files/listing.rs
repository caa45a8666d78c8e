//! Reading the tree: a folder's children, one file, and a file's content.

use cloudos_proto::{File, FileKind};

use super::repo::{self, ensure_folder, FileRow, FILE_COLS};
use super::{signing, FilesError};
use crate::ids::{FileId, UserId};
use crate::ports::ByteStream;
use crate::{stmt, App};

/// A file's whole content as text (UTF-8, at most `max_bytes`), with the file: what a live
/// room starts from.
pub async fn read_text(
    app: &App,
    who: &UserId,
    id: &FileId,
    max_bytes: u64,
) -> Result<(File, String), FilesError> {
    use futures_util::TryStreamExt;
    let row = repo::get(app.ports.meta.as_ref(), who, id).await?;
    if row.file.kind != FileKind::File {
        return Err(FilesError::NotText("a folder has no text".into()));
    }
    if row.file.size > max_bytes {
        return Err(FilesError::NotText(format!(
            "{} bytes is more than a live document holds ({max_bytes})",
            row.file.size
        )));
    }
    let mut bytes = Vec::with_capacity(row.file.size as usize);
    if let (true, Some(key)) = (row.file.size > 0, &row.blob_key) {
        let mut stream = app.ports.blobs.get(key, None).await?;
        while let Some(chunk) = stream.try_next().await? {
            bytes.extend_from_slice(&chunk);
        }
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| FilesError::NotText("the file is not UTF-8 text".into()))?;
    Ok((row.file, text))
}

/// The children of `parent` (`None`: the root), folders first, each group by name.
pub async fn list(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
) -> Result<Vec<File>, FilesError> {
    let meta = app.ports.meta.as_ref();
    ensure_folder(meta, who, parent).await?;
    // Name order comes from the (user, parent, name) index; folders are moved first here,
    // which is cheaper than a sort in the database.
    let rows = meta
        .query(stmt!(
            format!(
                "SELECT {FILE_COLS} FROM files WHERE user_id = ? AND COALESCE(parent_id, '') = ?
                   AND trashed_at IS NULL
                 ORDER BY name"
            ),
            who,
            parent.map_or("", FileId::as_str)
        ))
        .await?;
    let (mut items, files): (Vec<File>, Vec<File>) = rows
        .into_iter()
        .map(|r| repo::row_to_file(r).file)
        .partition(|f| f.kind == FileKind::Folder);
    items.extend(files);
    Ok(items)
}

/// One file or folder of the user's.
pub async fn get(app: &App, who: &UserId, id: &FileId) -> Result<File, FilesError> {
    repo::get_file(app.ports.meta.as_ref(), who, id).await
}

/// A file with a signed `download_url` under `origin` that works without a token for
/// `ttl_secs` (at most the server's setting).
pub async fn get_with_download_url(
    app: &App,
    who: &UserId,
    id: &FileId,
    origin: &str,
    ttl_secs: Option<i64>,
) -> Result<File, FilesError> {
    let mut file = get(app, who, id).await?;
    if file.kind == FileKind::File {
        let max = app.config.download_ttl_secs;
        let expires = app.now_ms() / 1000 + ttl_secs.unwrap_or(max).clamp(1, max);
        let sig = signing::sign(&app.config.secret, &file.id, expires);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig)
            .finish();
        file.download_url = Some(format!("{origin}/files/{}/content?{query}", file.id));
    }
    Ok(file)
}

/// How a content read is allowed: as the owner, or by a signed download URL.
pub enum Reader<'a> {
    Owner(&'a UserId),
    Signed { expires: i64, sig: &'a str },
}

/// A file's content, whole or a range of it.
pub struct Content {
    pub file: File,
    /// `(offset, len)` when a range was asked for.
    pub range: Option<(u64, u64)>,
    /// `None` for empty content.
    pub bytes: Option<ByteStream>,
}

/// The file a reader may read, without its bytes (for `If-None-Match` and ranges).
pub async fn readable(
    app: &App,
    reader: Reader<'_>,
    id: &FileId,
) -> Result<(File, String), FilesError> {
    let meta = app.ports.meta.as_ref();
    let row = match reader {
        Reader::Owner(who) => repo::get(meta, who, id).await?,
        Reader::Signed { expires, sig } => {
            signing::verify(
                &app.config.secret,
                id.as_str(),
                expires,
                sig,
                app.now_ms() / 1000,
            )?;
            let rows = meta
                .query(stmt!(
                    format!("SELECT {FILE_COLS} FROM files WHERE id = ? AND trashed_at IS NULL"),
                    id
                ))
                .await?;
            rows.into_iter()
                .next()
                .map(repo::row_to_file)
                .ok_or(FilesError::NotFound)?
        }
    };
    let FileRow { file, blob_key } = row;
    match blob_key.filter(|_| file.kind == FileKind::File) {
        Some(key) => Ok((file, key)),
        None => Err(FilesError::BadUpload("a folder has no content".into())),
    }
}

/// Opens the bytes of a file found by [`readable`]; `range` is `(offset, len)`.
pub async fn open(
    app: &App,
    file: File,
    blob_key: &str,
    range: Option<(u64, u64)>,
) -> Result<Content, FilesError> {
    let len = range.map_or(file.size, |(_, len)| len);
    let bytes = if len == 0 {
        None
    } else {
        Some(app.ports.blobs.get(blob_key, range).await?)
    };
    Ok(Content { file, range, bytes })
}
