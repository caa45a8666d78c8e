//! HTTP endpoints of the file tree.

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cloudos_proto::{CreateFolder, File, FileKind, FileList, PatchFile, Problem, UploadResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::names::validate_name;
use super::range::parse_range;
use super::repo::{self, ensure_folder, name_taken, quota_left, FileRow, FILE_COLS};
use super::upload::{drain, store_stream, Budget, Stored, DRAIN_LIMIT};
use super::{changed, signing, FilesError};
use crate::auth::AuthUser;
use crate::desktop::notifications::{notify_logged, NewNotification};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::ports::{DbError, Stmt};
use crate::{stmt, App};

/// Multipart framing allowance when judging an upload by its Content-Length.
const MULTIPART_SLACK: u64 = 64 * 1024;

/// `?parent=` of `GET /files`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Folder to list; the root when absent.
    pub parent: Option<String>,
}

/// `GET /files`
#[utoipa::path(get, path = "/files", tag = "files", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 404, body = Problem)))]
pub async fn list(
    State(app): State<App>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let meta = app.ports.meta.as_ref();
    let parent = q.parent.filter(|p| !p.is_empty());
    ensure_folder(meta, &user.id, parent.as_deref()).await?;
    // Name order comes from the (user, parent, name) index; folders are moved first here,
    // which is cheaper than a sort in the database.
    let rows = meta
        .query(stmt!(
            format!(
                "SELECT {FILE_COLS} FROM files WHERE user_id = ? AND COALESCE(parent_id, '') = ?
                 ORDER BY name"
            ),
            user.id.as_str(),
            parent.as_deref().unwrap_or("")
        ))
        .await?;
    let (mut items, files): (Vec<File>, Vec<File>) = rows
        .into_iter()
        .map(|r| repo::row_to_file(r).file)
        .partition(|f| f.kind == FileKind::Folder);
    items.extend(files);
    // Serialize into a buffer sized for the whole answer instead of growing it.
    let mut body = Vec::with_capacity(64 + items.len() * 384);
    serde_json::to_writer(&mut body, &FileList { items }).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /folders`
#[utoipa::path(post, path = "/folders", tag = "files", request_body = CreateFolder, security(("bearer" = [])),
    responses((status = 201, body = File), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_folder(
    State(app): State<App>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateFolder>,
) -> Result<(StatusCode, Json<File>), ApiError> {
    validate_name(&req.name)?;
    let meta = app.ports.meta.as_ref();
    let parent = req.parent_id.filter(|p| !p.is_empty());
    ensure_folder(meta, &user.id, parent.as_deref()).await?;
    let id = app.ports.ids.new_id();
    let now = app.now_ms();
    let insert = stmt!(
        "INSERT INTO files (id, user_id, parent_id, name, kind, size, version, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'folder', 0, 1, ?, ?)",
        id.as_str(), user.id.as_str(), parent.as_deref(), req.name.as_str(), now, now
    );
    insert_or_conflict(&app, insert, &req.name).await?;
    let folder = repo::get(meta, &user.id, &id).await?.file;
    changed(&app, &user.id, parent.as_deref());
    Ok((StatusCode::CREATED, Json(folder)))
}

async fn insert_or_conflict(app: &App, insert: Stmt, name: &str) -> Result<(), FilesError> {
    match app.ports.meta.execute(insert).await {
        Ok(_) => Ok(()),
        Err(DbError::Constraint(_)) => Err(FilesError::NameTaken(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// A file part that is stored and waits for its row.
struct Staged {
    id: String,
    name: String,
    mime: String,
    stored: Stored,
}

/// `POST /files` (multipart: optional `parent_id` first, then one or more `file` parts)
#[utoipa::path(post, path = "/files", tag = "files", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "optional `parent_id` field, then one or more `file` parts"),
    responses((status = 201, body = UploadResponse), (status = 400, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem)))]
pub async fn upload(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let meta = app.ports.meta.as_ref();
    let (quota, mut used) = quota_left(meta, &user.id).await?;
    // Refuse before storing a byte when the request is certainly too big; what the client
    // is still sending is read and dropped (bounded) so it gets to see the 413.
    if let Some(len) = content_length(&headers) {
        if let Err(e) = (Budget { quota, used }).check(len.saturating_sub(MULTIPART_SLACK)) {
            drain_multipart(&mut multipart).await;
            return Err(e.into());
        }
    }
    let mut parent: Option<String> = None;
    let mut staged: Vec<Staged> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name() {
            Some("parent_id") => {
                if !staged.is_empty() {
                    return Err(FilesError::BadUpload(
                        "send parent_id before the file parts".into(),
                    )
                    .into());
                }
                let value = field.text().await.map_err(bad_multipart)?;
                parent = Some(value).filter(|v| !v.is_empty());
                ensure_folder(meta, &user.id, parent.as_deref()).await?;
            }
            Some("file") => {
                let name = field
                    .file_name()
                    .ok_or_else(|| {
                        FilesError::BadUpload("each `file` part needs a filename".into())
                    })?
                    .to_owned();
                validate_name(&name)?;
                if name_taken(meta, &user.id, parent.as_deref(), &name).await?
                    || staged.iter().any(|s| s.name == name)
                {
                    return Err(FilesError::NameTaken(name).into());
                }
                let mime = field
                    .content_type()
                    .filter(|m| *m != "application/octet-stream")
                    .map(str::to_owned)
                    .unwrap_or_else(|| guess_mime(&name));
                let mut field = field;
                let stored =
                    store_stream(app.ports.blobs.as_ref(), &mut field, Budget { quota, used })
                        .await?;
                used += stored.size;
                staged.push(Staged {
                    id: app.ports.ids.new_id(),
                    name,
                    mime,
                    stored,
                });
            }
            _ => {}
        }
    }
    if staged.is_empty() {
        return Err(FilesError::BadUpload("no `file` part in the form".into()).into());
    }
    let now = app.now_ms();
    let inserts = staged
        .iter()
        .map(|s| {
            stmt!(
                "INSERT INTO files (id, user_id, parent_id, name, kind, size, mime, version, blob_key, checksum, created_at, updated_at)
                 VALUES (?, ?, ?, ?, 'file', ?, ?, 1, ?, ?, ?, ?)",
                s.id.as_str(), user.id.as_str(), parent.as_deref(), s.name.as_str(), s.stored.size,
                s.mime.as_str(), s.stored.sha256.as_str(), s.stored.sha256.as_str(), now, now
            )
        })
        .collect();
    // All rows or none; blobs of a refused batch are left to the orphan sweep.
    match meta.batch(inserts).await {
        Ok(_) => {}
        Err(DbError::Constraint(_)) => {
            let names: Vec<_> = staged.iter().map(|s| s.name.as_str()).collect();
            return Err(FilesError::NameTaken(names.join(", ")).into());
        }
        Err(e) => return Err(e.into()),
    }
    let mut files = Vec::with_capacity(staged.len());
    for s in &staged {
        files.push(repo::get(meta, &user.id, &s.id).await?.file);
    }
    changed(&app, &user.id, parent.as_deref());
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
        &app,
        &user.id,
        NewNotification {
            kind: "upload.finished",
            title,
            body,
            file_id: files.first().map(|f| f.id.as_str()),
        },
    )
    .await;
    Ok((StatusCode::CREATED, Json(UploadResponse { files })))
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of the remaining form.
async fn drain_multipart(multipart: &mut Multipart) {
    let mut seen = 0u64;
    while seen < DRAIN_LIMIT {
        let Ok(Some(mut field)) = multipart.next_field().await else {
            return;
        };
        while let Ok(Some(chunk)) = field.chunk().await {
            seen += chunk.len() as u64;
            if seen >= DRAIN_LIMIT {
                return;
            }
        }
    }
}

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> ApiError {
    FilesError::BadUpload(e.body_text()).into()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn guess_mime(name: &str) -> String {
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// `?url_ttl=` of `GET /files/:id`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct GetQuery {
    /// Lifetime of the signed `download_url` in seconds (capped by the server's default).
    pub url_ttl: Option<i64>,
}

/// `GET /files/:id`
#[utoipa::path(get, path = "/files/{id}", tag = "files", params(("id" = String, Path), GetQuery), security(("bearer" = [])),
    responses((status = 200, body = File), (status = 404, body = Problem)))]
pub async fn get_file(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> Result<Json<File>, ApiError> {
    let mut file = repo::get(app.ports.meta.as_ref(), &user.id, &id)
        .await?
        .file;
    if file.kind == FileKind::File {
        let ttl = q
            .url_ttl
            .unwrap_or(app.config.download_ttl_secs)
            .clamp(1, app.config.download_ttl_secs);
        let expires = app.now_ms() / 1000 + ttl;
        let sig = signing::sign(&app.config.secret, &file.id, expires);
        file.download_url = Some(format!(
            "{}/files/{}/content?expires={expires}&sig={sig}",
            crate::origin(&headers),
            file.id
        ));
    }
    Ok(Json(file))
}

/// Signature of a download URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SignedQuery {
    /// Unix seconds after which the signed URL stops working.
    pub expires: Option<i64>,
    /// Signature from `download_url`; replaces the bearer token.
    pub sig: Option<String>,
}

/// `GET /files/:id/content` (Range, ETag, If-None-Match; a signed URL needs no token)
#[utoipa::path(get, path = "/files/{id}/content", tag = "files", params(("id" = String, Path), SignedQuery), security(("bearer" = [])),
    responses((status = 200, description = "the content"), (status = 206, description = "a range of the content"),
        (status = 304, description = "unchanged"), (status = 404, body = Problem), (status = 416, body = Problem)))]
pub async fn download(
    State(app): State<App>,
    user: Result<AuthUser, ApiError>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SignedQuery>,
) -> Result<Response, ApiError> {
    let meta = app.ports.meta.as_ref();
    let row = match (q.sig.as_deref(), q.expires) {
        (Some(sig), Some(expires)) => {
            signing::verify(&app.config.secret, &id, expires, sig, app.now_ms() / 1000)?;
            let rows = meta
                .query(stmt!(
                    format!("SELECT {FILE_COLS} FROM files WHERE id = ?"),
                    id.as_str()
                ))
                .await?;
            rows.into_iter()
                .next()
                .map(repo::row_to_file)
                .ok_or(FilesError::NotFound)?
        }
        _ => repo::get(meta, &user?.id, &id).await?,
    };
    serve_content(&app, row, &headers).await
}

async fn serve_content(app: &App, row: FileRow, headers: &HeaderMap) -> Result<Response, ApiError> {
    let FileRow { file, blob_key } = row;
    let Some(blob_key) = blob_key.filter(|_| file.kind == FileKind::File) else {
        return Err(FilesError::BadUpload("a folder has no content".into()).into());
    };
    let etag = format!("\"{}\"", file.version);
    let mut res_headers = HeaderMap::new();
    res_headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("digits and quotes"),
    );
    res_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    res_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if etag_matches(headers.get(header::IF_NONE_MATCH), file.version) {
        return Ok((StatusCode::NOT_MODIFIED, res_headers).into_response());
    }
    let mime = file.mime.as_deref().unwrap_or("application/octet-stream");
    res_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // User content must never run script on the app's origin (HTML, SVG, …).
    res_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; media-src 'self'"),
    );
    res_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let encoded =
        percent_encoding::utf8_percent_encode(&file.name, percent_encoding::NON_ALPHANUMERIC);
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{encoded}")) {
        res_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, file.size)?;
    let (status, len, blob_range) = match range {
        Some(r) => {
            let v = format!("bytes {}-{}/{}", r.offset, r.offset + r.len - 1, file.size);
            res_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&v).expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, r.len, Some((r.offset, r.len)))
        }
        None => (StatusCode::OK, file.size, None),
    };
    res_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = if len == 0 {
        Body::empty()
    } else {
        let stream = app.ports.blobs.get(&blob_key, blob_range).await?;
        Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)))
    };
    Ok((status, res_headers, body).into_response())
}

/// Reads a version out of `"3"`, `W/"3"` or `3`.
fn parse_version(v: &str) -> Option<i64> {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

fn etag_matches(if_none_match: Option<&HeaderValue>, version: i64) -> bool {
    let Some(v) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    v.trim() == "*" || v.split(',').any(|tag| parse_version(tag) == Some(version))
}

/// `PUT /files/:id/content` (raw bytes; `If-Match: "<version>"`)
#[utoipa::path(put, path = "/files/{id}/content", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    request_body(content_type = "application/octet-stream", description = "the new content"),
    responses((status = 200, body = File), (status = 404, body = Problem), (status = 412, body = Problem),
        (status = 413, body = Problem), (status = 428, body = Problem)))]
pub async fn replace_content(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<File>, ApiError> {
    let meta = app.ports.meta.as_ref();
    let given = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_version)
        .ok_or(FilesError::IfMatchRequired)?;
    let current = repo::get(meta, &user.id, &id).await?.file;
    if current.kind != FileKind::File {
        return Err(FilesError::BadUpload("a folder has no content".into()).into());
    }
    if current.version != given {
        return Err(FilesError::Stale {
            current: current.version,
            given,
        }
        .into());
    }
    let (quota, used) = quota_left(meta, &user.id).await?;
    // The old content is replaced, so its bytes count as free for the new one.
    let budget = Budget {
        quota,
        used: used.saturating_sub(current.size),
    };
    let mut body = body.into_data_stream();
    if let Some(len) = content_length(&headers) {
        if let Err(e) = budget.check(len) {
            drain(body, DRAIN_LIMIT).await;
            return Err(e.into());
        }
    }
    let stored = store_stream(app.ports.blobs.as_ref(), &mut body, budget).await?;
    let updated = meta
        .execute(stmt!(
            "UPDATE files SET size = ?, blob_key = ?, checksum = ?, version = version + 1, updated_at = ?
             WHERE id = ? AND user_id = ? AND version = ?",
            stored.size, stored.sha256.as_str(), stored.sha256.as_str(), app.now_ms(),
            id.as_str(), user.id.as_str(), given
        ))
        .await?;
    if updated == 0 {
        // Someone saved in between; the new blob is left to the orphan sweep.
        let now = repo::get(meta, &user.id, &id).await?.file;
        return Err(FilesError::Stale {
            current: now.version,
            given,
        }
        .into());
    }
    let file = repo::get(meta, &user.id, &id).await?.file;
    changed(&app, &user.id, file.parent_id.as_deref());
    Ok(Json(file))
}

/// `PATCH /files/:id` (rename and/or move)
#[utoipa::path(patch, path = "/files/{id}", tag = "files", params(("id" = String, Path)), request_body = PatchFile, security(("bearer" = [])),
    responses((status = 200, body = File), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn patch(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatchFile>,
) -> Result<Json<File>, ApiError> {
    let meta = app.ports.meta.as_ref();
    let current = repo::get(meta, &user.id, &id).await?.file;
    let name = req.name.unwrap_or_else(|| current.name.clone());
    validate_name(&name)?;
    let parent = match req.parent_id {
        None => current.parent_id.clone(),
        Some(p) => p.filter(|p| !p.is_empty()),
    };
    if parent != current.parent_id {
        ensure_folder(meta, &user.id, parent.as_deref()).await?;
        if let Some(target) = parent.as_deref() {
            if repo::is_ancestor_or_self(meta, &id, target).await? {
                return Err(FilesError::IntoOwnSubtree.into());
            }
        }
    }
    let update = stmt!(
        "UPDATE files SET name = ?, parent_id = ?, updated_at = ? WHERE id = ? AND user_id = ?",
        name.as_str(),
        parent.as_deref(),
        app.now_ms(),
        id.as_str(),
        user.id.as_str()
    );
    insert_or_conflict(&app, update, &name).await?;
    changed(&app, &user.id, current.parent_id.as_deref());
    if parent != current.parent_id {
        changed(&app, &user.id, parent.as_deref());
    }
    Ok(Json(repo::get(meta, &user.id, &id).await?.file))
}

/// `DELETE /files/:id` (folders recursively)
#[utoipa::path(delete, path = "/files/{id}", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let parent = repo::get(app.ports.meta.as_ref(), &user.id, &id)
        .await?
        .file
        .parent_id;
    let deleted = app
        .ports
        .meta
        .execute(stmt!(
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM files WHERE id = ? AND user_id = ?
                 UNION ALL
                 SELECT f.id FROM files f JOIN tree ON f.parent_id = tree.id
             )
             DELETE FROM files WHERE id IN (SELECT id FROM tree)",
            id.as_str(),
            user.id.as_str()
        ))
        .await?;
    if deleted == 0 {
        return Err(FilesError::NotFound.into());
    }
    changed(&app, &user.id, parent.as_deref());
    // Blobs no row references any more are removed by the orphan sweep.
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_etags() {
        assert_eq!(parse_version("\"3\""), Some(3));
        assert_eq!(parse_version("W/\"12\""), Some(12));
        assert_eq!(parse_version("7"), Some(7));
        assert_eq!(parse_version("\"x\""), None);
    }

    #[test]
    fn if_none_match() {
        let v = HeaderValue::from_static("\"1\", \"2\"");
        assert!(etag_matches(Some(&v), 2));
        assert!(!etag_matches(Some(&v), 3));
        assert!(etag_matches(Some(&HeaderValue::from_static("*")), 9));
        assert!(!etag_matches(None, 1));
    }
}
