//! The window layout each user's desktop restores after a reload.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cloudos_proto::{DesktopLayout, Problem};

use super::DesktopError;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiJson};
use crate::{rfc3339, stmt, App};

/// A layout is a few windows; anything near this is a client bug, not a desktop.
pub const MAX_LAYOUT_BYTES: usize = 64 * 1024;

/// `GET /desktop`: the saved layout, or an empty object before the first save.
#[utoipa::path(get, path = "/desktop", tag = "desktop", security(("bearer" = [])),
    responses((status = 200, body = DesktopLayout)))]
pub async fn get(State(app): State<App>, user: AuthUser) -> Result<Json<DesktopLayout>, ApiError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT layout, updated_at FROM desktop_layouts WHERE user_id = ?",
            user.id.as_str()
        ))
        .await
        .map_err(DesktopError::from)?;
    let saved = rows.first().map(|r| {
        (
            serde_json::from_str(&r.text(0)).unwrap_or_else(|_| serde_json::json!({})),
            rfc3339(r.int(1)),
        )
    });
    Ok(Json(match saved {
        Some((layout, at)) => DesktopLayout {
            layout,
            updated_at: Some(at),
        },
        None => DesktopLayout {
            layout: serde_json::json!({}),
            updated_at: None,
        },
    }))
}

/// `PUT /desktop`: replaces the saved layout.
#[utoipa::path(put, path = "/desktop", tag = "desktop", request_body = DesktopLayout, security(("bearer" = [])),
    responses((status = 204), (status = 400, body = Problem), (status = 413, body = Problem)))]
pub async fn put(
    State(app): State<App>,
    user: AuthUser,
    ApiJson(body): ApiJson<DesktopLayout>,
) -> Result<StatusCode, ApiError> {
    let text = check(&body.layout)?;
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO desktop_layouts (user_id, layout, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET layout = excluded.layout, updated_at = excluded.updated_at",
            user.id.as_str(),
            text,
            app.now_ms()
        ))
        .await
        .map_err(DesktopError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The layout as stored text, when it is an object of acceptable size.
fn check(layout: &serde_json::Value) -> Result<String, DesktopError> {
    if !layout.is_object() {
        return Err(DesktopError::LayoutNotAnObject);
    }
    let text = layout.to_string();
    if text.len() > MAX_LAYOUT_BYTES {
        return Err(DesktopError::LayoutTooLarge {
            size: text.len(),
            max: MAX_LAYOUT_BYTES,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_must_be_small_objects() {
        assert!(check(&serde_json::json!({"windows": []})).is_ok());
        assert!(matches!(
            check(&serde_json::json!([1, 2])),
            Err(DesktopError::LayoutNotAnObject)
        ));
        let big = serde_json::json!({ "x": "a".repeat(MAX_LAYOUT_BYTES) });
        assert!(matches!(
            check(&big),
            Err(DesktopError::LayoutTooLarge { .. })
        ));
    }
}
