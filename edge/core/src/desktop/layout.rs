//! The window layout each user's desktop restores after a reload.

use cloudos_proto::DesktopLayout;

use super::DesktopError;
use crate::ids::UserId;
use crate::{rfc3339, stmt, App};

/// A layout is a few windows; anything near this is a client bug, not a desktop.
pub const MAX_LAYOUT_BYTES: usize = 64 * 1024;

/// The user's saved layout, or an empty object before the first save.
pub async fn load(app: &App, who: &UserId) -> Result<DesktopLayout, DesktopError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT layout, updated_at FROM desktop_layouts WHERE user_id = ?",
            who
        ))
        .await?;
    Ok(match rows.first() {
        Some(r) => DesktopLayout {
            layout: serde_json::from_str(&r.text(0)).unwrap_or_else(|_| serde_json::json!({})),
            updated_at: Some(rfc3339(r.int(1))),
        },
        None => DesktopLayout {
            layout: serde_json::json!({}),
            updated_at: None,
        },
    })
}

/// Replaces the user's saved layout: a JSON object of at most [`MAX_LAYOUT_BYTES`].
pub async fn save(app: &App, who: &UserId, layout: &serde_json::Value) -> Result<(), DesktopError> {
    let text = check(layout)?;
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO desktop_layouts (user_id, layout, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET layout = excluded.layout, updated_at = excluded.updated_at",
            who,
            text,
            app.now_ms()
        ))
        .await?;
    Ok(())
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
