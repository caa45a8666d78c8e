//! Notifications: stored per user with a read mark, and pushed live (through the host's
//! `Events` port) as they happen. Any capability tells a user something through [`notify`].

pub mod handlers;

use cloudos_proto::{Event, Notification, NotificationList};

use crate::ids::UserId;
use crate::ports::{DbError, Row};
use crate::{rfc3339, stmt, App};

/// Why a notification could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How many notifications the center shows.
const HISTORY: i64 = 100;
/// How many notifications are kept per user (the oldest beyond go).
pub const KEPT: i64 = 500;

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
    user_id: &UserId,
    n: NewNotification<'_>,
) -> Result<Notification, NotificationsError> {
    let id = app.ports.ids.new_id();
    let now = app.now_ms();
    // One transaction: the new row, and the user's oldest beyond what is kept, so a user
    // (or a loop of uploads) can never grow the table without bound.
    app.ports
        .meta
        .batch(vec![
            stmt!(
                "INSERT INTO notifications (id, user_id, kind, title, body, file_id, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                id.as_str(),
                user_id,
                n.kind,
                n.title.as_str(),
                n.body.as_str(),
                n.file_id,
                now
            ),
            stmt!(
                "DELETE FROM notifications WHERE user_id = ? AND id NOT IN (
                     SELECT id FROM notifications WHERE user_id = ?
                     ORDER BY created_at DESC, id DESC LIMIT ?)",
                user_id,
                user_id,
                KEPT
            ),
        ])
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
pub async fn notify_logged(app: &App, user_id: &UserId, n: NewNotification<'_>) {
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

/// The newest notifications, and how many are unread in all.
pub async fn history(app: &App, user_id: &UserId) -> Result<NotificationList, NotificationsError> {
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

/// Marks the given notifications (or all, for `None`) read; ids that are not the user's
/// are ignored.
pub async fn mark_read(
    app: &App,
    who: &UserId,
    ids: Option<&[String]>,
) -> Result<NotificationList, NotificationsError> {
    let now = app.now_ms();
    let meta = app.ports.meta.as_ref();
    match ids {
        None => {
            meta.execute(stmt!(
                "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL",
                now,
                who
            ))
            .await?;
        }
        Some(ids) => {
            let updates = ids
                .iter()
                .map(|id| {
                    stmt!(
                        "UPDATE notifications SET read_at = ? WHERE id = ? AND user_id = ? AND read_at IS NULL",
                        now,
                        id.as_str(),
                        who
                    )
                })
                .collect();
            meta.batch(updates).await?;
        }
    }
    history(app, who).await
}
