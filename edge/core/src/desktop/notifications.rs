//! Notifications: stored per user with a read mark, and pushed live as they happen.

use axum::extract::State;
use axum::Json;
use cloudos_proto::{Event, MarkRead, Notification, NotificationList};

use super::DesktopError;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiJson};
use crate::ports::Row;
use crate::{rfc3339, stmt, App};

/// How many notifications the center shows.
const HISTORY: i64 = 100;

/// What a new notification says.
pub struct NewNotification<'a> {
    pub kind: &'a str,
    pub title: String,
    pub body: String,
    pub file_id: Option<&'a str>,
}

/// Stores a notification for `user_id` and pushes it to their open desktops.
pub async fn notify(
    app: &App,
    user_id: &str,
    n: NewNotification<'_>,
) -> Result<Notification, DesktopError> {
    let id = app.ports.ids.new_id();
    let now = app.now_ms();
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO notifications (id, user_id, kind, title, body, file_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            id.as_str(),
            user_id,
            n.kind,
            n.title.as_str(),
            n.body.as_str(),
            n.file_id,
            now
        ))
        .await?;
    let notification = Notification {
        id,
        kind: n.kind.into(),
        title: n.title,
        body: n.body,
        file_id: n.file_id.map(str::to_owned),
        read: false,
        created_at: rfc3339(now),
    };
    app.ports.events.publish(
        user_id,
        &Event::Notification {
            notification: notification.clone(),
        },
    );
    Ok(notification)
}

/// Like [`notify`], for callers whose own work already succeeded: a failure is logged.
pub async fn notify_logged(app: &App, user_id: &str, n: NewNotification<'_>) {
    if let Err(e) = notify(app, user_id, n).await {
        tracing::warn!(error = %e, "could not store a notification");
    }
}

fn row_to_notification(mut row: Row) -> Notification {
    Notification {
        read: row.int(5) != 0,
        created_at: rfc3339(row.int(6)),
        id: row.take_text(0).unwrap_or_default(),
        kind: row.take_text(1).unwrap_or_default(),
        title: row.take_text(2).unwrap_or_default(),
        body: row.take_text(3).unwrap_or_default(),
        file_id: row.take_text(4),
    }
}

async fn history(app: &App, user_id: &str) -> Result<NotificationList, DesktopError> {
    let meta = app.ports.meta.as_ref();
    let rows = meta
        .query(stmt!(
            "SELECT id, kind, title, body, file_id, read_at IS NOT NULL, created_at
             FROM notifications WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            user_id,
            HISTORY
        ))
        .await?;
    let unread = meta
        .query(stmt!(
            "SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL",
            user_id
        ))
        .await?;
    Ok(NotificationList {
        items: rows.into_iter().map(row_to_notification).collect(),
        unread: unread.first().map_or(0, |r| r.int(0)) as u64,
    })
}

/// `GET /notifications`: the newest 100, and how many are unread in all.
#[utoipa::path(get, path = "/notifications", tag = "desktop", security(("bearer" = [])),
    responses((status = 200, body = NotificationList)))]
pub async fn list(
    State(app): State<App>,
    user: AuthUser,
) -> Result<Json<NotificationList>, ApiError> {
    Ok(Json(history(&app, &user.id).await?))
}

/// `POST /notifications/read`: marks the given ids (or all) read.
#[utoipa::path(post, path = "/notifications/read", tag = "desktop", request_body = MarkRead, security(("bearer" = [])),
    responses((status = 200, body = NotificationList)))]
pub async fn mark_read(
    State(app): State<App>,
    user: AuthUser,
    ApiJson(req): ApiJson<MarkRead>,
) -> Result<Json<NotificationList>, ApiError> {
    let now = app.now_ms();
    let meta = app.ports.meta.as_ref();
    match req.ids {
        None => {
            meta.execute(stmt!(
                "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
                now,
                user.id.as_str()
            ))
            .await
            .map_err(DesktopError::from)?;
        }
        Some(ids) => {
            let updates = ids
                .iter()
                .map(|id| {
                    stmt!(
                        "UPDATE notifications SET read_at = ? WHERE id = ? AND user_id = ? AND read_at IS NULL",
                        now,
                        id.as_str(),
                        user.id.as_str()
                    )
                })
                .collect();
            meta.batch(updates).await.map_err(DesktopError::from)?;
        }
    }
    Ok(Json(history(&app, &user.id).await?))
}
