//! Who joins a file's room, and how: the owner edits; a link's holder views (anyone holding
//! a view link) or edits (a signed-in holder of an edit link), until the link or their
//! session ends, whichever is first.

use super::{Access, RoomError};
use crate::auth::Session;
use crate::files::listing;
use crate::ids::{FileId, UserId};
use crate::shares::{self, ShareMode};
use crate::App;

/// A socket allowed into a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Whose file it is (the room reads and writes it as them).
    pub owner: UserId,
    pub access: Access,
    /// When the socket ends (ms since the epoch).
    pub until_ms: i64,
    /// The link it came through.
    pub share_id: Option<String>,
}

/// Admits the signed-in `who` (or nobody) to `file`'s room, through the link `share` when
/// given. Without a link only the owner is admitted (anyone else: not found); an edit link
/// needs someone signed in (`SignInNeeded`).
pub async fn admit(
    app: &App,
    who: Option<(&UserId, &Session)>,
    file: &FileId,
    share: Option<&str>,
) -> Result<Admitted, RoomError> {
    let Some(token) = share else {
        let (id, session) = who.ok_or(RoomError::SignInNeeded)?;
        listing::get(app, id, file).await?;
        return Ok(Admitted {
            owner: id.clone(),
            access: Access::Edit,
            until_ms: session.expires_at_ms,
            share_id: None,
        });
    };
    let opened = shares::files::open(app, token, Some(file), who.map(|(id, _)| id)).await?;
    let access = match opened.grant.mode {
        ShareMode::Edit if who.is_none() => return Err(RoomError::SignInNeeded),
        ShareMode::Edit => Access::Edit,
        ShareMode::View => Access::View,
    };
    shares::files::joined_room(app, &opened.grant.share_id, file).await?;
    let session_ends = who.map_or(i64::MAX, |(_, s)| s.expires_at_ms);
    Ok(Admitted {
        owner: opened.grant.owner_id,
        access,
        until_ms: opened.grant.expires_at.min(session_ends),
        share_id: Some(opened.grant.share_id),
    })
}
