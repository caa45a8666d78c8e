//! Single-use tickets for opening one WebSocket: what a browser puts in a socket's URL
//! (it cannot set headers there) instead of its API token, which would then sit in proxies'
//! access logs, valid for hours.

use cloudos_proto::Ticket;
use sha2::{Digest, Sha256};

use super::{AuthError, Session};
use crate::{stmt, App};

/// How long a ticket works.
pub const TICKET_TTL_SECS: i64 = 60;

/// Stored by hash: the database never holds a usable ticket.
fn hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// A new ticket for the caller's `session` (expired ones are pruned on the way).
pub async fn issue(app: &App, session: &Session) -> Result<Ticket, AuthError> {
    let now = app.now_ms();
    let ticket = hex::encode(app.ports.ids.random_bytes(32));
    let expires_at = now + TICKET_TTL_SECS * 1000;
    app.ports
        .meta
        .batch(vec![
            stmt!("DELETE FROM ws_tickets WHERE expires_at <= ?", now),
            stmt!(
                "INSERT INTO ws_tickets (hash, user_id, expires_at, gen, session_expires_at)
                 VALUES (?, ?, ?, ?, ?)",
                hash(&ticket),
                &session.user_id,
                expires_at,
                session.gen,
                session.expires_at_ms
            ),
        ])
        .await?;
    Ok(Ticket { ticket, expires_at })
}

/// The session `ticket` was asked in, if it still stands (a logout since voids it); the
/// ticket is used up by this call. Two sockets racing with one ticket: the one whose delete
/// took the row wins.
pub async fn redeem(app: &App, ticket: &str) -> Result<Session, AuthError> {
    let unusable = || AuthError::Unauthorized("unknown, used or expired ticket");
    let hash = hash(ticket);
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT t.user_id, t.gen, t.session_expires_at
             FROM ws_tickets t JOIN users u ON u.id = t.user_id AND u.token_gen = t.gen
             WHERE t.hash = ? AND t.expires_at > ?",
            hash.as_str(),
            app.now_ms()
        ))
        .await?;
    let row = rows.first().ok_or_else(unusable)?;
    let session = Session {
        user_id: row.text(0).into(),
        gen: row.int(1),
        expires_at_ms: row.int(2),
    };
    let taken = app
        .ports
        .meta
        .execute(stmt!(
            "DELETE FROM ws_tickets WHERE hash = ?",
            hash.as_str()
        ))
        .await?;
    if taken == 0 {
        return Err(unusable());
    }
    Ok(session)
}
