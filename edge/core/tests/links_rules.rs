//! Share links to files and who a room admits, as services over a real in-memory libSQL:
//! a folder's link reaches below it only; an edit link needs someone signed in; a view
//! link's socket ends with the link; revoking tells the host which open rooms to close; a save
//! made without the room is sent to an open room only.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::Request;
use axum::response::Response;
use cloudos_core::files::content::save_if_based_on;
use cloudos_core::files::organize::create_folder;
use cloudos_core::files::{Made, Origin};
use cloudos_core::ids::{FileId, UserId};
use cloudos_core::ports::{SocketTarget, Sockets};
use cloudos_core::rooms::admit::admit;
use cloudos_core::rooms::{store, Access, RoomError};
use cloudos_core::shares::{self, files as links, ShareMode, SharesError};
use cloudos_core::ApiError;
use cloudos_testing::TestApp;

/// Records what the core tells the host about rooms.
#[derive(Default)]
struct RoomNotices {
    revoked: Mutex<Vec<(String, Vec<FileId>)>>,
    saved: Mutex<Vec<FileId>>,
}

#[async_trait]
impl Sockets for RoomNotices {
    async fn open(&self, _req: Request, _target: SocketTarget) -> Result<Response, ApiError> {
        unreachable!("no socket opens in these rules")
    }
    async fn share_revoked(&self, share_id: &str, files: &[FileId]) {
        self.revoked
            .lock()
            .unwrap()
            .push((share_id.to_owned(), files.to_vec()));
    }
    async fn file_saved(&self, file: &FileId) {
        self.saved.lock().unwrap().push(file.clone());
    }
}

use cloudos_testing::text_body as body;

async fn write(t: &TestApp, who: &UserId, parent: Option<&FileId>, name: &str) -> FileId {
    FileId::from(t.write_text(who, parent, name, "text").await.id)
}

async fn setup() -> (TestApp, Arc<RoomNotices>) {
    let notices = Arc::new(RoomNotices::default());
    let t = TestApp::builder().sockets(notices.clone()).build().await;
    (t, notices)
}

#[tokio::test]
async fn a_folders_link_reaches_below_it_and_nothing_else() {
    let (t, _) = setup().await;
    let ann = t.user("ann").await;
    let site = FileId::from(create_folder(&t.app, &ann, None, "site").await.unwrap().id);
    let css = FileId::from(
        create_folder(&t.app, &ann, Some(&site), "css")
            .await
            .unwrap()
            .id,
    );
    let deep = write(&t, &ann, Some(&css), "main.css").await;
    let beside = write(&t, &ann, None, "secret.txt").await;
    let link = links::share(&t.app, &ann, &site, ShareMode::View, None, None)
        .await
        .unwrap();

    let opened = links::open(&t.app, &link.token, Some(&deep), None)
        .await
        .unwrap();
    assert_eq!(opened.file.id, deep.as_str());
    assert_eq!(opened.root.id, site.as_str());
    for outside in [&beside] {
        assert!(matches!(
            links::open(&t.app, &link.token, Some(outside), None).await,
            Err(SharesError::Gone)
        ));
    }
    // A link to a file reaches that file only, even if it were a "folder" below.
    let file_link = links::share(&t.app, &ann, &deep, ShareMode::View, None, None)
        .await
        .unwrap();
    assert!(matches!(
        links::open(&t.app, &file_link.token, Some(&site), None).await,
        Err(SharesError::Gone)
    ));
    // Someone else cannot share, or list the links of, Ann's files.
    let bob = t.user("bob").await;
    assert!(matches!(
        links::share(&t.app, &bob, &deep, ShareMode::Edit, None, None).await,
        Err(SharesError::NotFound)
    ));
    assert!(matches!(
        links::links(&t.app, &bob, &deep).await,
        Err(SharesError::NotFound)
    ));
}

#[tokio::test]
async fn a_room_admits_its_owner_a_view_links_holder_and_a_signed_in_editor() {
    let (t, _) = setup().await;
    let ann = t.signed_in("ann").await;
    let bob = t.signed_in("bob").await;
    let file = write(&t, &ann.user_id, None, "a.txt").await;
    let owner = admit(&t.app, Some((&ann.user_id, &ann)), &file, None)
        .await
        .unwrap();
    assert_eq!((owner.access, owner.share_id), (Access::Edit, None));
    assert_eq!(owner.until_ms, ann.expires_at_ms);
    // Without a link, anyone else is not found, and nobody signed in is refused.
    assert!(matches!(
        admit(&t.app, Some((&bob.user_id, &bob)), &file, None).await,
        Err(RoomError::Files(_))
    ));
    assert!(matches!(
        admit(&t.app, None, &file, None).await,
        Err(RoomError::SignInNeeded)
    ));

    let view = links::share(
        &t.app,
        &ann.user_id,
        &file,
        ShareMode::View,
        Some(3600),
        None,
    )
    .await
    .unwrap();
    let viewer = admit(&t.app, None, &file, Some(&view.token)).await.unwrap();
    assert_eq!(viewer.access, Access::View);
    assert_eq!(viewer.owner, ann.user_id);
    assert_eq!(
        viewer.until_ms, view.expires_at,
        "a signed-out viewer until the link ends"
    );

    let edit = links::share(
        &t.app,
        &ann.user_id,
        &file,
        ShareMode::Edit,
        Some(3600),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        admit(&t.app, None, &file, Some(&edit.token)).await,
        Err(RoomError::SignInNeeded)
    ));
    let editor = admit(&t.app, Some((&bob.user_id, &bob)), &file, Some(&edit.token))
        .await
        .unwrap();
    assert_eq!(editor.access, Access::Edit);
    assert_eq!(editor.until_ms, edit.expires_at.min(bob.expires_at_ms));
    assert_eq!(editor.share_id.as_deref(), Some(edit.id.as_str()));
}

#[tokio::test]
async fn revoking_a_link_names_the_rooms_it_was_used_in_and_ends_it() {
    let (t, notices) = setup().await;
    let ann = t.user("ann").await;
    let dir = FileId::from(create_folder(&t.app, &ann, None, "dir").await.unwrap().id);
    let a = write(&t, &ann, Some(&dir), "a.txt").await;
    let b = write(&t, &ann, Some(&dir), "b.txt").await;
    let closed = write(&t, &ann, Some(&dir), "closed.txt").await;
    let link = links::share(&t.app, &ann, &dir, ShareMode::View, None, None)
        .await
        .unwrap();
    for f in [&a, &b, &closed] {
        admit(&t.app, None, f, Some(&link.token)).await.unwrap();
    }
    // Two rooms are open; the third closed since (no socket left to close there).
    store::mark_open(&t.app, &a).await.unwrap();
    store::mark_open(&t.app, &b).await.unwrap();
    shares::revoke(&t.app, &ann, &link.token).await.unwrap();
    let revoked = notices.revoked.lock().unwrap().clone();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].0, link.id);
    let mut rooms = revoked[0].1.clone();
    rooms.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(rooms, want);
    assert!(matches!(
        admit(&t.app, None, &a, Some(&link.token)).await,
        Err(RoomError::Shares(SharesError::Gone))
    ));
}

#[tokio::test]
async fn a_save_without_the_room_is_sent_to_an_open_room_only() {
    let (t, notices) = setup().await;
    let ann = t.user("ann").await;
    let file = write(&t, &ann, None, "a.txt").await;
    let save = |text: &'static str| {
        let (app, ann, file) = (t.app.clone(), ann.clone(), file.clone());
        async move {
            let made = Made::by(Origin::Editor, &ann);
            save_if_based_on(&app, &ann, &file, |_| true, &made, &mut body(text), None)
                .await
                .unwrap()
        }
    };
    save("closed").await;
    assert!(notices.saved.lock().unwrap().is_empty(), "no room is open");
    store::mark_open(&t.app, &file).await.unwrap();
    save("open").await;
    assert_eq!(
        notices.saved.lock().unwrap().as_slice(),
        std::slice::from_ref(&file)
    );
    store::mark_closed(&t.app, &file).await.unwrap();
    save("closed again").await;
    assert_eq!(notices.saved.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_burst_of_updates_is_logged_all_or_nothing() {
    use cloudos_core::rooms::log::{RoomLog, SqlLog};
    let (t, _) = setup().await;
    let ann = t.user("ann").await;
    let file = write(&t, &ann, None, "notes.txt").await;
    let log = SqlLog::new(&t.app, &file);
    log.start(vec![0], 1, 0).await.unwrap();
    log.append_all(1, vec![vec![1], vec![2], vec![3]])
        .await
        .unwrap();
    log.append(5, &[5]).await.unwrap();
    // A burst that fails part way (its second number is taken) stores none of it: the room
    // then closes and reopens from what is stored, so nothing is half kept.
    assert!(log.append_all(4, vec![vec![9], vec![9]]).await.is_err());
    log.append_all(4, vec![vec![4]]).await.unwrap();
    let logged = log.load().await.unwrap().unwrap();
    assert_eq!(
        logged.updates,
        [
            (1, vec![1]),
            (2, vec![2]),
            (3, vec![3]),
            (4, vec![4]),
            (5, vec![5])
        ]
    );
}
