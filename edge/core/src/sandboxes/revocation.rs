//! Ending access that was granted: every terminal socket rests on a grant (a share link, or
//! the owner's sign-in session), named in its agent token. Revoking a grant tells the
//! sandbox's agent, which drops the grant's sockets at once and refuses it from then on;
//! expiry is in the token too (`until`), so the agent ends a socket when its grant expires.

use cloudos_proto::terminal::{Revoke, Role};

use super::attach::spec;
use super::{by_id, live, tokens, SandboxRow};
use crate::auth::Session;
use crate::ids::SandboxId;
use crate::App;

/// The grant of sockets opened through the share link `share_id`.
pub fn share_grant(share_id: &str) -> String {
    format!("share:{share_id}")
}

/// The grant of the owner's own sockets in one sign-in session (a logout ends it).
pub fn session_grant(session: &Session) -> String {
    format!("session:{}:{}", session.user_id, session.gen)
}

/// Drops the viewers of a revoked share of `sandbox_id`.
pub async fn drop_share(app: &App, sandbox_id: &SandboxId, share_id: &str) {
    if let Ok(row) = by_id(app, sandbox_id).await {
        tell_agent(app, &row, vec![share_grant(share_id)]).await;
    }
}

/// Drops the sockets the user opened in `session`, which just ended: in their own sandbox,
/// and in the sandboxes they watch through others' links.
pub async fn end_session(app: &App, session: &Session) {
    let grant = session_grant(session);
    if let Ok(Some(row)) = live(app, &session.user_id).await {
        tell_agent(app, &row, vec![grant.clone()]).await;
    }
    let watched = crate::shares::visited_sandboxes(app, &session.user_id)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "finding the sandboxes a user watches");
            Vec::new()
        });
    for id in watched {
        if let Ok(row) = by_id(app, &id.into()).await {
            tell_agent(app, &row, vec![grant.clone()]).await;
        }
    }
}

/// Tells the agent of `row`, if it runs, to revoke `grants`. A failure is logged, not
/// returned: the revocation itself is already stored (no new socket opens with it), and
/// the agent ends the grant's sockets at their expiry in any case.
async fn tell_agent(app: &App, row: &SandboxRow, grants: Vec<String>) {
    let token = tokens::agent_token(
        &app.config.secret,
        &row.id,
        &row.user_id,
        Role::Driver,
        &tokens::Grant::default(),
        app.now_ms(),
    );
    let body = serde_json::to_vec(&Revoke { grants }).expect("a list of strings serializes");
    let sent = match spec(app, row).await {
        Ok(spec) => {
            app.ports
                .sandboxes
                .post_to_agent(&spec, "revoke", &token, body)
                .await
        }
        Err(e) => Err(crate::ports::SandboxError::Failed(e.to_string())),
    };
    match sent {
        Ok(None | Some(204)) => {}
        Ok(Some(status)) => {
            tracing::error!(sandbox = %row.id, status, "the agent refused a revocation");
        }
        Err(e) => {
            tracing::error!(sandbox = %row.id, error = %e, "telling the agent of a revocation")
        }
    }
}
