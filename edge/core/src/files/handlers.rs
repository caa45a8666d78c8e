//! HTTP endpoints of the file tree: each parses, calls one service and maps the answer.

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cloudos_proto::{CreateFolder, File, FileList, PatchFile, Problem, UploadResponse};
use futures_util::StreamExt;
use headers::{ETag, HeaderMapExt, IfMatch, IfNoneMatch};
use serde::Deserialize;

use super::listing::{self, Reader};
use super::range::parse_range;
use super::upload::{self, Upload, DRAIN_LIMIT};
use super::{content, find, organize, FilesError, Origin};
use crate::auth::{AuthUser, FilesUser};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::ids::FileId;
use crate::App;

/// Multipart framing allowance when judging an upload by its Content-Length.
const MULTIPART_SLACK: u64 = 64 * 1024;

/// `?parent=` of `GET /files`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Folder to list; the root when absent.
    pub parent: Option<String>,
}

/// `?q=&limit=` of `GET /files/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Letters that appear in the name in this order (fuzzy), case-insensitive.
    pub q: String,
    /// At most this many results (default 20, at most 100).
    pub limit: Option<u32>,
}

/// `GET /files/search`: the user's files and folders whose names match, best first.
#[utoipa::path(get, path = "/files/search", tag = "files", params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 400, body = Problem)))]
pub async fn search(
    State(app): State<App>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<FileList>, ApiError> {
    let items = find::search(&app, &user.id, &q.q, q.limit.unwrap_or(20)).await?;
    Ok(Json(FileList { items }))
}

/// `GET /files/:id/ancestors`: the folders from the root down to the item's parent.
#[utoipa::path(get, path = "/files/{id}/ancestors", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 404, body = Problem)))]
pub async fn ancestors(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<FileId>,
) -> Result<Json<FileList>, ApiError> {
    let items = find::ancestors(&app, &user.id, &id).await?;
    Ok(Json(FileList { items }))
}

/// `GET /files`
#[utoipa::path(get, path = "/files", tag = "files", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 404, body = Problem)))]
pub async fn list(
    State(app): State<App>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let parent = q.parent.filter(|p| !p.is_empty()).map(FileId::from);
    let items = listing::list(&app, &user.id, parent.as_ref()).await?;
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
    user: FilesUser,
    ApiJson(req): ApiJson<CreateFolder>,
) -> Result<(StatusCode, Json<File>), ApiError> {
    let parent = req.parent_id.filter(|p| !p.is_empty()).map(FileId::from);
    let folder = organize::create_folder(&app, &user.id, parent.as_ref(), &req.name).await?;
    Ok((StatusCode::CREATED, Json(folder)))
}

/// `POST /files` (multipart: optional `parent_id` first, then one or more `file` parts)
#[utoipa::path(post, path = "/files", tag = "files", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "optional `parent_id` field, then one or more `file` parts"),
    responses((status = 201, body = UploadResponse), (status = 400, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem)))]
pub async fn upload(
    State(app): State<App>,
    user: FilesUser,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let announced = content_length(&headers).map(|len| len.saturating_sub(MULTIPART_SLACK));
    let mut upload = match Upload::begin(&app, &user.id, announced).await {
        Ok(upload) => upload.made_by(user.made(Origin::Upload)),
        Err(e) => {
            // What the client is still sending is read and dropped (bounded), so it gets
            // to see the 413 instead of a reset connection.
            drain_multipart(&mut multipart, None).await;
            return Err(e.into());
        }
    };
    if let Err(e) = read_form(&mut upload, &mut multipart).await {
        // Whatever was refused (a bad field, a folder deleted meanwhile, the quota), the
        // client still sending reads the error instead of a reset connection, and its next
        // request on the same connection does not find it closed: the rest of the form is
        // read and dropped, within one budget, the field that failed included.
        drain_multipart(&mut multipart, e.drained).await;
        return Err(e.error);
    }
    let files = upload.finish().await?;
    Ok((StatusCode::CREATED, Json(UploadResponse { files })))
}

/// Why the form was refused, and how many bytes of it were already drained: the field
/// that failed is read through `chunk`, which counts against the budget, rather than
/// skipped by `next_field`, which reads it whole whatever its size.
struct Refused {
    error: ApiError,
    drained: Option<u64>,
}

impl<E: Into<ApiError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Refused {
            error: e.into(),
            drained: None,
        }
    }
}

/// Adds the form's files to `upload`, into the folder its `parent_id` names.
async fn read_form(upload: &mut Upload<'_>, multipart: &mut Multipart) -> Result<(), Refused> {
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        let result: Result<(), ApiError> = async {
            match field.name() {
                Some("parent_id") => {
                    let value = small_text(&mut field).await?;
                    let parent = Some(value).filter(|v| !v.is_empty()).map(FileId::from);
                    upload.into_folder(parent).await?;
                }
                Some("file") => {
                    let name = field
                        .file_name()
                        .ok_or_else(|| {
                            FilesError::BadUpload("each `file` part needs a filename".into())
                        })?
                        .to_owned();
                    let mime = field.content_type().map(str::to_owned);
                    upload.add(&name, mime.as_deref(), &mut field).await?;
                }
                _ => {}
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            let seen = drain_field(&mut field, 0).await;
            return Err(Refused {
                error,
                drained: Some(seen),
            });
        }
    }
    Ok(())
}

/// The longest `parent_id` field read (an id is 32 characters; the body limit is off for
/// uploads, so a field must not be read whole).
const MAX_ID_FIELD: usize = 256;

async fn small_text(field: &mut axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ID_FIELD {
            return Err(FilesError::BadUpload(format!(
                "parent_id is at most {MAX_ID_FIELD} bytes"
            ))
            .into());
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| FilesError::BadUpload("parent_id is not UTF-8".into()).into())
}

/// Reads and drops the rest of `field`, counting from `seen`; what has been read in all,
/// capped at [`DRAIN_LIMIT`] (reached: the field did not end within it).
async fn drain_field(field: &mut axum::extract::multipart::Field<'_>, mut seen: u64) -> u64 {
    while seen < DRAIN_LIMIT {
        match field.chunk().await {
            Ok(Some(chunk)) => seen += chunk.len() as u64,
            _ => return seen,
        }
    }
    DRAIN_LIMIT
}

/// Reads and drops the remaining form, up to [`DRAIN_LIMIT`] bytes in all (`seen` already
/// read); past that the connection is left to close.
async fn drain_multipart(multipart: &mut Multipart, seen: Option<u64>) {
    let mut seen = seen.unwrap_or(0);
    while seen < DRAIN_LIMIT {
        let Ok(Some(mut field)) = multipart.next_field().await else {
            return;
        };
        seen = drain_field(&mut field, seen).await;
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
    let file = listing::get_with_download_url(
        &app,
        &user.id,
        &FileId::from(id),
        &crate::origin(&app, &headers),
        q.url_ttl,
    )
    .await?;
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
    user: Result<FilesUser, ApiError>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<SignedQuery>,
) -> Result<Response, ApiError> {
    let id = FileId::from(id);
    let owner;
    let reader = match (q.sig.as_deref(), q.expires) {
        (Some(sig), Some(expires)) => Reader::Signed { expires, sig },
        _ => {
            owner = user?;
            Reader::Owner(&owner.id)
        }
    };
    let (file, blob_key) = listing::readable(&app, reader, &id).await?;
    serve_content(&app, file, &blob_key, &headers, false).await
}

/// Serves a file's content as user content (never script on this origin), with ranges and
/// conditional requests; `attachment` asks the browser to save it rather than show it.
pub(crate) async fn serve_content(
    app: &App,
    file: File,
    blob_key: &str,
    headers: &HeaderMap,
    attachment: bool,
) -> Result<Response, ApiError> {
    let mut res_headers = HeaderMap::new();
    res_headers.typed_insert(etag(file.version));
    res_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    res_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    // Weak comparison, as RFC 9110 §13.1.2 asks of If-None-Match.
    let unchanged = headers
        .typed_get::<IfNoneMatch>()
        .is_some_and(|inm| !inm.precondition_passes(&etag(file.version)));
    if unchanged {
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
    // A link inside an opened file must not hand its (signed) URL to the site it leads to.
    res_headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let encoded =
        percent_encoding::utf8_percent_encode(&file.name, percent_encoding::NON_ALPHANUMERIC);
    let disposition = if attachment { "attachment" } else { "inline" };
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename*=UTF-8''{encoded}")) {
        res_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, file.size)?.map(|r| (r.offset, r.len));
    let size = file.size;
    let content = listing::open(app, file, blob_key, range).await?;
    let (status, len) = match content.range {
        Some((offset, len)) => {
            let v = format!("bytes {}-{}/{size}", offset, offset + len - 1);
            res_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&v).expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, len)
        }
        None => (StatusCode::OK, size),
    };
    res_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = match content.bytes {
        None => Body::empty(),
        Some(stream) => Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other))),
    };
    Ok((status, res_headers, body).into_response())
}

/// The entity tag of a file version: its number, quoted (a strong validator: the version
/// changes with every byte of content).
fn etag(version: i64) -> ETag {
    format!("\"{version}\"")
        .parse()
        .expect("a quoted number is an entity tag")
}

/// The `If-Match` of a save: one or more entity tags. Absent, malformed (a bare `3`) or `*`
/// (which would overwrite whatever is current, the loss it exists to prevent) is 428.
fn if_match(headers: &HeaderMap) -> Result<IfMatch, FilesError> {
    let raw = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or(FilesError::IfMatchRequired)?;
    // headers' IfMatch skips tags it cannot read, so validity is checked here first.
    let tags_valid = raw.split(',').all(|tag| tag.trim().parse::<ETag>().is_ok());
    if !tags_valid {
        return Err(FilesError::IfMatchRequired);
    }
    headers
        .typed_get::<IfMatch>()
        .ok_or(FilesError::IfMatchRequired)
}

/// `PUT /files/:id/content` (raw bytes; `If-Match: "<version>"`)
#[utoipa::path(put, path = "/files/{id}/content", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    request_body(content_type = "application/octet-stream", description = "the new content"),
    responses((status = 200, body = File), (status = 404, body = Problem), (status = 412, body = Problem),
        (status = 413, body = Problem), (status = 428, body = Problem)))]
pub async fn replace_content(
    State(app): State<App>,
    user: FilesUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Body,
) -> Result<Json<File>, ApiError> {
    let if_match = if_match(&headers)?;
    let id = FileId::from(id);
    let mut body = body.into_data_stream();
    let len = content_length(&headers);
    // Strong comparison (RFC 9110 §13.1.1): `W/"3"` names no version.
    let based_on = |version: i64| if_match.precondition_passes(&etag(version));
    let made = user.made(Origin::Editor);
    match content::save_if_based_on(&app, &user.id, &id, based_on, &made, &mut body, len).await {
        Ok(file) => Ok(Json(file)),
        Err(e @ FilesError::IfMatchFailed { .. }) => {
            // Nothing was read: take the rest, so the connection serves the next request.
            upload::drain(&mut body, DRAIN_LIMIT).await;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `PATCH /files/:id` (rename and/or move)
#[utoipa::path(patch, path = "/files/{id}", tag = "files", params(("id" = String, Path)), request_body = PatchFile, security(("bearer" = [])),
    responses((status = 200, body = File), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn patch(
    State(app): State<App>,
    user: FilesUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatchFile>,
) -> Result<Json<File>, ApiError> {
    let change = organize::Change {
        name: req.name,
        parent: req
            .parent_id
            .map(|p| p.filter(|p| !p.is_empty()).map(FileId::from)),
        executable: req.executable,
    };
    let file = organize::rename_or_move(&app, &user.id, &FileId::from(id), change).await?;
    Ok(Json(file))
}

/// `DELETE /files/:id` (folders recursively)
#[utoipa::path(delete, path = "/files/{id}", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<App>,
    user: FilesUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    organize::delete(&app, &user.id, &FileId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
