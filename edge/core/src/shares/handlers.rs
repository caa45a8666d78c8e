//! Share links over HTTP: `DELETE /shares/:token`; a file's or folder's links (`POST
//! /files/:id/share`, `GET /files/:id/shares`); and the public side, `GET /s/:token` (a
//! page for browsers, JSON for programs) and `GET /s/:token/content`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use cloudos_proto::{
    File, FileKind, FileShare, FileShareRequest, LinkPassword, PublicShare, ShareList, UnlockedLink,
};
use serde::Deserialize;

use super::files::{self as file_links, Opened};
use super::{passwords, revoke, ShareMode, SharesError};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath, ApiQuery, OptionalJson};
use crate::files::listing::{self, Reader};
use crate::ids::FileId;
use crate::{origin, rfc3339, App};

/// `DELETE /shares/:token`: the link stops working at once; whoever watches or edits
/// through it is dropped.
#[utoipa::path(delete, path = "/shares/{token}", tag = "shares", security(("bearer" = [])),
    params(("token" = String, Path, description = "the link's id (from its owner's list), or its token")),
    responses((status = 204, description = "revoked (also when it already was)"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem, description = "no such link of the caller's")))]
pub async fn delete(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(token): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&app, &user.id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /files/:id/share`: a link to the caller's file or folder.
#[utoipa::path(post, path = "/files/{id}/share", tag = "shares", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = FileShareRequest, description = "optional"),
    responses((status = 201, body = FileShare),
        (status = 400, body = cloudos_proto::Problem, description = "a mode other than view or edit"),
        (status = 404, body = cloudos_proto::Problem)))]
pub async fn share_file(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<FileId>,
    OptionalJson(req): OptionalJson<FileShareRequest>,
) -> Result<(StatusCode, Json<FileShare>), ApiError> {
    let mode = match req.mode.as_deref() {
        None | Some("view") => ShareMode::View,
        Some("edit") => ShareMode::Edit,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode is view or edit, not {other:?}"
            )))
        }
    };
    let share = file_links::share(
        &app,
        &user.id,
        &id,
        mode,
        req.expires_in,
        req.password.as_deref(),
    )
    .await?;
    let url = format!("{}/s/{}", origin(&app, &headers), share.token);
    Ok((
        StatusCode::CREATED,
        Json(FileShare {
            id: share.id,
            token: share.token,
            url,
            mode: mode.as_str().to_owned(),
            expires_at: rfc3339(share.expires_at),
        }),
    ))
}

/// `GET /files/:id/shares`: the links to the caller's file or folder, newest first.
#[utoipa::path(get, path = "/files/{id}/shares", tag = "shares", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ShareList), (status = 404, body = cloudos_proto::Problem)))]
pub async fn file_shares(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<FileId>,
) -> Result<Json<ShareList>, ApiError> {
    let links = file_links::links(&app, &user.id, &id).await?;
    let now = app.now_ms();
    Ok(Json(ShareList {
        items: links.iter().map(|l| l.to_proto(now)).collect(),
    }))
}

/// The query of the public side of a link.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct PublicQuery {
    /// A file or folder below a shared folder (default: the shared one).
    pub file: Option<String>,
    /// `1`: download (an attachment) rather than show.
    pub download: Option<String>,
}

/// The most text a link's page shows inline; the rest is a download.
const PREVIEW_BYTES: u64 = 256 * 1024;

fn public_file(mut f: File) -> File {
    // The owner's tree above what they shared is not the holder's business.
    f.parent_id = None;
    f.download_url = None;
    f
}

fn content_path(token: &str, file: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("file", file)
        .finish();
    format!("/s/{token}/content?{q}")
}

fn is_text(f: &File) -> bool {
    f.kind == FileKind::File
        && f.mime.as_deref().is_some_and(|m| {
            m.starts_with("text/")
                || m.ends_with("json")
                || m.ends_with("javascript")
                || m.ends_with("xml")
                || m.ends_with("toml")
                || m.ends_with("yaml")
        })
}

/// What the link shows (`file`: a file or folder below a shared folder).
async fn public_share(
    app: &App,
    token: &str,
    file: Option<&FileId>,
    origin: &str,
) -> Result<(Opened, PublicShare), ApiError> {
    let opened = file_links::open(app, token, file, None).await?;
    let items = if opened.file.kind == FileKind::Folder {
        let children = listing::list(
            app,
            &opened.grant.owner_id,
            Some(&FileId::from(opened.file.id.clone())),
        )
        .await
        .map_err(|e| ApiError::from(SharesError::Files(Box::new(e))))?;
        Some(children.into_iter().map(public_file).collect())
    } else {
        None
    };
    let (content_url, room_url) = if opened.file.kind == FileKind::File {
        let room = is_text(&opened.file).then(|| {
            let ws = origin.replacen("http", "ws", 1);
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("share", token)
                .finish();
            format!("{ws}/collab/{}?{q}", opened.file.id)
        });
        (
            Some(format!("{origin}{}", content_path(token, &opened.file.id))),
            room,
        )
    } else {
        (None, None)
    };
    let share = PublicShare {
        mode: opened.grant.mode.as_str().to_owned(),
        expires_at: rfc3339(opened.grant.expires_at),
        root: public_file(opened.root.clone()),
        file: public_file(opened.file.clone()),
        items,
        content_url,
        room_url,
    };
    Ok((opened, share))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// `GET /s/:token`: what a link shows, to anyone holding it: a page for browsers, or JSON
/// (`Accept: application/json`). A dead link, or a file it does not reach, is 410.
#[utoipa::path(get, path = "/s/{token}", tag = "shares",
    params(("token" = String, Path), PublicQuery),
    responses((status = 200, body = PublicShare, description = "JSON, or an HTML page for browsers"),
        (status = 410, body = cloudos_proto::Problem, description = "revoked, expired, or not reached by the link")))]
pub async fn public(
    State(app): State<App>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PublicQuery>,
) -> Response {
    let file = q.file.map(FileId::from);
    let origin = origin(&app, &headers);
    let json = wants_json(&headers);
    match public_share(&app, &token, file.as_ref(), &origin).await {
        Ok((_, share)) if json => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(share),
        )
            .into_response(),
        Ok((opened, share)) => page(&app, &token, &opened, &share).await.into_response(),
        Err(e) if json => e.into_response(),
        Err(e) if e.slug == "password-required" => {
            password_page(&token, file.as_ref().map(FileId::as_str), None)
        }
        Err(e) => error_page(e),
    }
}

fn error_page(e: ApiError) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Link unavailable</title>\
         <style>{STYLE}</style><main><h1>This link does not work</h1><p>{}</p></main>",
        html_escape::encode_text(&e.detail)
    );
    (e.status, page_headers(), Html(body)).into_response()
}

/// The page a link with a password shows first: a form (no script) that posts the password
/// to `/s/:token/unlock`, which comes back here with a pass.
fn password_page(token: &str, file: Option<&str>, wrong: Option<&str>) -> Response {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let action = format!("/s/{}/unlock", passwords::split(token).0);
    let file = file.map_or(String::new(), |f| {
        format!("<input type=hidden name=file value=\"{}\">", attr(f))
    });
    let wrong = wrong.map_or(String::new(), |w| format!("<p role=alert>{}</p>", text(w)));
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Password needed</title><style>{STYLE}</style><main><h1>This link asks for a password</h1>{wrong}\
         <form method=post action=\"{}\">{file}<label>Password <input type=password name=password \
         autocomplete=off required autofocus></label> <button>Open</button></form></main></html>",
        attr(&action)
    );
    let mut headers = page_headers();
    headers[1].1 = HeaderValue::from_static(
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    (StatusCode::UNAUTHORIZED, headers, Html(body)).into_response()
}

/// `POST /s/:token/unlock`: the link's password (JSON `{password}`, or the password page's
/// form): the token with a pass that opens what the link opens until it ends (JSON), or
/// back to the link's page with it (the form). Attempts are throttled like logins.
#[utoipa::path(post, path = "/s/{token}/unlock", tag = "shares",
    params(("token" = String, Path)),
    request_body(content = LinkPassword, description = "or a form with `password` (and `file`)"),
    responses((status = 200, body = UnlockedLink),
        (status = 303, description = "the form: back to the link's page, with the pass"),
        (status = 401, body = cloudos_proto::Problem, description = "`/errors/wrong-password`"),
        (status = 410, body = cloudos_proto::Problem, description = "revoked or expired"),
        (status = 429, body = cloudos_proto::Problem, description = "too many attempts")))]
pub async fn unlock(
    State(app): State<App>,
    client: Option<axum::Extension<crate::auth::ClientAddr>>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let client = client.map(|axum::Extension(c)| c);
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let (password, file) = if form {
        let mut password = String::new();
        let mut file = None;
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "password" => password = v.into_owned(),
                "file" => file = Some(v.into_owned()),
                _ => {}
            }
        }
        (password, file)
    } else {
        match serde_json::from_slice::<LinkPassword>(&body) {
            Ok(p) => (p.password, None),
            Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
        }
    };
    match passwords::unlock(&app, &token, &password, client.as_ref()).await {
        Ok((unlocked, _)) if form => {
            let mut to = format!("/s/{unlocked}");
            if let Some(f) = &file {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("file", f)
                    .finish();
                to = format!("{to}?{q}");
            }
            let location = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/"));
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response()
        }
        Ok((unlocked, until)) => Json(UnlockedLink {
            token: unlocked,
            expires_at: rfc3339(until),
        })
        .into_response(),
        Err(SharesError::WrongPassword) if form => password_page(
            &token,
            file.as_deref(),
            Some("That is not the link's password."),
        ),
        Err(e) if form => error_page(e.into()),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The page shows user content, so it runs no script at all and loads only its own
/// content URLs.
fn page_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        // A revoked link must not live on in a cache.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ]
}

const STYLE: &str =
    "body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
main{max-width:960px;margin:2rem auto;padding:0 1rem}h1{font-size:1.3rem}\
pre{background:#fff;border:1px solid #d5d9e0;padding:1rem;overflow:auto;white-space:pre-wrap}\
a{color:#0b57d0}ul{background:#fff;border:1px solid #d5d9e0;padding:.5rem 2rem}\
img{max-width:100%;border:1px solid #d5d9e0}.meta{color:#4a5161}";

async fn page(app: &App, token: &str, opened: &Opened, share: &PublicShare) -> impl IntoResponse {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    let f = &share.file;
    let mut body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{name}</title><style>{STYLE}</style><main><h1>{name}</h1>\
         <p class=meta>Shared with you ({mode}) until {until}</p>",
        name = text(&f.name),
        mode = text(&share.mode),
        until = text(&share.expires_at),
    );
    if let Some(items) = &share.items {
        body.push_str("<ul>");
        if f.id != share.root.id {
            let up = format!("/s/{token}");
            body.push_str(&format!(
                "<li><a href=\"{}\">⬑ {}</a></li>",
                attr(&up),
                text(&share.root.name)
            ));
        }
        for item in items {
            let href = match item.kind {
                FileKind::Folder => {
                    let q = form_urlencoded::Serializer::new(String::new())
                        .append_pair("file", &item.id)
                        .finish();
                    format!("/s/{token}?{q}")
                }
                FileKind::File => content_path(token, &item.id),
            };
            let slash = if item.kind == FileKind::Folder {
                "/"
            } else {
                ""
            };
            body.push_str(&format!(
                "<li><a href=\"{}\">{}{slash}</a></li>",
                attr(&href),
                text(&item.name)
            ));
        }
        if items.is_empty() {
            body.push_str("<li>This folder is empty.</li>");
        }
        body.push_str("</ul>");
    } else {
        let content = content_path(token, &f.id);
        body.push_str(&format!(
            "<p class=meta>{} bytes · <a href=\"{}&amp;download=1\">Download</a></p>",
            f.size,
            attr(&content)
        ));
        let mime = f.mime.as_deref().unwrap_or("");
        if mime.starts_with("image/") && mime != "image/svg+xml" {
            body.push_str(&format!(
                "<img alt=\"{}\" src=\"{}\">",
                attr(&f.name),
                attr(&content)
            ));
        } else if is_text(f) && f.size <= PREVIEW_BYTES {
            // The desktop's Editor follows the owner's edits live: signed out too for a view
            // link (a page of its own), signed in to edit with an edit link.
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("file", &f.id)
                .append_pair("share", token)
                .finish();
            let verb = if share.mode == "edit" {
                "Edit live"
            } else {
                "Watch live"
            };
            body.push_str(&format!(
                "<p><a href=\"/#editor?{}\" data-open-editor>{verb} in the Cloud OS editor</a></p>",
                attr(&q)
            ));
            let owner = &opened.grant.owner_id;
            let id = FileId::from(f.id.clone());
            if let Ok((_, t)) = listing::read_text(app, owner, &id, PREVIEW_BYTES).await {
                body.push_str(&format!("<pre>{}</pre>", text(&t)));
            }
        }
    }
    body.push_str("</main></html>");
    (page_headers(), Html(body))
}

/// `GET /s/:token/content`: a file's bytes through a link (the shared file, or `?file=`
/// one below a shared folder). Served as user content: never script on this origin.
#[utoipa::path(get, path = "/s/{token}/content", tag = "shares",
    params(("token" = String, Path), PublicQuery),
    responses((status = 200, description = "the content"), (status = 206, description = "a range of it"),
        (status = 410, body = cloudos_proto::Problem, description = "revoked, expired, or not reached by the link"),
        (status = 422, body = cloudos_proto::Problem, description = "a folder")))]
pub async fn public_content(
    State(app): State<App>,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PublicQuery>,
) -> Result<Response, ApiError> {
    let file = q.file.map(FileId::from);
    let opened = file_links::open(&app, &token, file.as_ref(), None).await?;
    if opened.file.kind == FileKind::Folder {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-a-file",
            "a folder has no content; open its page",
        ));
    }
    let id = FileId::from(opened.file.id.clone());
    let (file, key) = listing::readable(&app, Reader::Owner(&opened.grant.owner_id), &id).await?;
    let attachment = q.download.as_deref() == Some("1");
    crate::files::handlers::serve_content(&app, file, &key, &headers, attachment).await
}
