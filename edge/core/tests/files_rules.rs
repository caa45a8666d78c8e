//! The files services' rules, called as any capability calls them (a principal and the
//! app), over a real in-memory libSQL: the SQL that enforces each rule is what runs.

use cloudos_core::files::organize::{create_folder, delete, rename_or_move, Change};
use cloudos_core::files::upload::{write_new_file, Upload};
use cloudos_core::files::{content::save_content, listing, FilesError, Made, Origin};
use cloudos_core::ids::{FileId, UserId};
use cloudos_core::ports::DbError;
use cloudos_core::stmt;
use cloudos_proto::File;
use cloudos_testing::TestApp;

use cloudos_testing::text_body as body;

async fn write(t: &TestApp, who: &UserId, parent: Option<&FileId>, name: &str, text: &str) -> File {
    t.write_text(who, parent, name, text).await
}

async fn save(
    t: &TestApp,
    who: &UserId,
    id: &FileId,
    version: i64,
    text: &str,
) -> Result<File, FilesError> {
    let len = Some(text.len() as u64);
    let made = Made::by(Origin::Editor, who);
    save_content(&t.app, who, id, version, &made, &mut body(text), len).await
}

fn id(f: &File) -> FileId {
    FileId::from(f.id.as_str())
}

#[tokio::test]
async fn a_save_based_on_an_old_version_is_stale_and_changes_nothing() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let f = write(&t, &ann, None, "notes.md", "one").await;
    assert_eq!(f.version, 1);
    let v2 = save(&t, &ann, &id(&f), 1, "two").await.unwrap();
    assert_eq!(v2.version, 2);
    let err = save(&t, &ann, &id(&f), 1, "clobber").await.unwrap_err();
    assert!(
        matches!(
            err,
            FilesError::Stale {
                current: 2,
                given: 1
            }
        ),
        "{err:?}"
    );
    let now = listing::get(&t.app, &ann, &id(&f)).await.unwrap();
    assert_eq!(
        (now.version, now.size),
        (2, 3),
        "the stale save wrote nothing"
    );
}

#[tokio::test]
async fn two_saves_of_one_version_at_once_exactly_one_wins() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let f = write(&t, &ann, None, "notes.md", "one").await;
    let fid = id(&f);
    let (a, b) = tokio::join!(
        save(&t, &ann, &fid, 1, "from the editor"),
        save(&t, &ann, &fid, 1, "from the copilot")
    );
    let stale = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(FilesError::Stale { .. })))
        .count();
    assert_eq!(
        (a.is_ok() as u8 + b.is_ok() as u8, stale),
        (1, 1),
        "{a:?} {b:?}"
    );
    assert_eq!(
        listing::get(&t.app, &ann, &id(&f)).await.unwrap().version,
        2
    );
}

#[tokio::test]
async fn names_are_unique_in_a_folder_and_checked_on_every_path() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let src = create_folder(&t.app, &ann, None, "src").await.unwrap();
    let err = create_folder(&t.app, &ann, None, "src").await.unwrap_err();
    assert!(
        matches!(err, FilesError::NameTaken(ref n) if n == "src"),
        "{err:?}"
    );
    write(&t, &ann, Some(&id(&src)), "main.rs", "fn main() {}").await;
    let other = write(&t, &ann, None, "main.rs", "// root").await;
    let err = rename_or_move(
        &t.app,
        &ann,
        &id(&other),
        Change {
            parent: Some(Some(id(&src))),
            ..Change::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FilesError::NameTaken(_)), "{err:?}");
    let err = write_new_file(
        &t.app,
        &ann,
        Some(&id(&src)),
        "main.rs",
        "text/plain",
        &Made::by(Origin::Upload, &ann),
        &mut body("x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FilesError::NameTaken(_)), "{err:?}");
    let err = create_folder(&t.app, &ann, None, "a/b").await.unwrap_err();
    assert!(matches!(err, FilesError::BadName(_)), "{err:?}");
}

#[tokio::test]
async fn another_users_ids_are_not_found_whatever_the_service() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    let folder = create_folder(&t.app, &ann, None, "private").await.unwrap();
    let f = write(&t, &ann, Some(&id(&folder)), "secret.txt", "s3cret").await;
    assert!(matches!(
        listing::get(&t.app, &bob, &id(&f)).await,
        Err(FilesError::NotFound)
    ));
    assert!(matches!(
        listing::list(&t.app, &bob, Some(&id(&folder))).await,
        Err(FilesError::NotFound)
    ));
    assert!(matches!(
        save(&t, &bob, &id(&f), 1, "mine").await,
        Err(FilesError::NotFound)
    ));
    assert!(matches!(
        delete(&t.app, &bob, &id(&f)).await,
        Err(FilesError::NotFound)
    ));
    let err = create_folder(&t.app, &bob, Some(&id(&folder)), "in")
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::NotFound), "{err:?}");
    let mine = create_folder(&t.app, &bob, None, "mine").await.unwrap();
    let into_anns = Change {
        parent: Some(Some(id(&folder))),
        ..Change::default()
    };
    let err = rename_or_move(&t.app, &bob, &id(&mine), into_anns)
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::NotFound), "{err:?}");
    assert_eq!(
        listing::get(&t.app, &ann, &id(&f)).await.unwrap().version,
        1
    );
}

#[tokio::test]
async fn a_folder_never_moves_into_its_own_subtree_even_two_opposite_moves_at_once() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let a = create_folder(&t.app, &ann, None, "a").await.unwrap();
    let deep = create_folder(&t.app, &ann, Some(&id(&a)), "deep")
        .await
        .unwrap();
    let into = |target: &File| Change {
        parent: Some(Some(id(target))),
        ..Change::default()
    };
    let err = rename_or_move(&t.app, &ann, &id(&a), into(&deep))
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::IntoOwnSubtree), "{err:?}");
    let err = rename_or_move(&t.app, &ann, &id(&a), into(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::IntoOwnSubtree), "{err:?}");
    for _ in 0..10 {
        let x = create_folder(&t.app, &ann, None, "x").await.unwrap();
        let y = create_folder(&t.app, &ann, None, "y").await.unwrap();
        let (xid, yid) = (id(&x), id(&y));
        let (xy, yx) = tokio::join!(
            rename_or_move(&t.app, &ann, &xid, into(&y)),
            rename_or_move(&t.app, &ann, &yid, into(&x))
        );
        assert!(
            xy.is_ok() != yx.is_ok(),
            "exactly one move wins: {xy:?} {yx:?}"
        );
        let top = if xy.is_ok() { &y } else { &x };
        assert_eq!(
            listing::get(&t.app, &ann, &id(top))
                .await
                .unwrap()
                .parent_id,
            None
        );
        delete(&t.app, &ann, &id(top)).await.unwrap();
    }
}

#[tokio::test]
async fn deleting_a_folder_removes_everything_in_it() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let a = create_folder(&t.app, &ann, None, "a").await.unwrap();
    let b = create_folder(&t.app, &ann, Some(&id(&a)), "b")
        .await
        .unwrap();
    let f = write(&t, &ann, Some(&id(&b)), "f.txt", "data").await;
    delete(&t.app, &ann, &id(&a)).await.unwrap();
    for gone in [&a, &b, &f] {
        assert!(matches!(
            listing::get(&t.app, &ann, &id(gone)).await,
            Err(FilesError::NotFound)
        ));
    }
    assert!(listing::list(&t.app, &ann, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn uploads_and_saves_racing_each_other_never_pass_the_quota_together() {
    let t = TestApp::builder().quota(100).build().await;
    let ann = t.user("ann").await;
    let sixty = "x".repeat(60);
    let names = ["a", "b", "c", "d"];
    let results = futures_util::future::join_all(names.iter().map(|n| {
        let (t, ann, sixty) = (&t, &ann, &sixty);
        async move {
            let made = Made::by(Origin::Upload, ann);
            write_new_file(&t.app, ann, None, n, "text/plain", &made, &mut body(sixty)).await
        }
    }))
    .await;
    let stored: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(stored.len(), 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(r, Err(FilesError::QuotaExceeded { quota: 100, .. })),
            "{r:?}"
        );
    }
    let f = stored[0];
    let err = save(&t, &ann, &id(f), 1, &"y".repeat(101))
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::QuotaExceeded { .. }), "{err:?}");
    // The 60 bytes of version 1 stay in the history, so a new version has 40 left.
    let err = save(&t, &ann, &id(f), 1, &"y".repeat(41))
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::QuotaExceeded { .. }), "{err:?}");
    let grown = save(&t, &ann, &id(f), 1, &"y".repeat(40)).await.unwrap();
    assert_eq!((grown.size, grown.version), (40, 2));
    assert_eq!(
        cloudos_core::files::used_bytes(t.app.ports.meta.as_ref(), &ann)
            .await
            .unwrap(),
        100
    );
}

#[tokio::test]
async fn foreign_keys_refuse_a_row_that_points_at_nothing() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let err = t
        .app
        .ports
        .meta
        .execute(stmt!(
            "INSERT INTO files (id, user_id, parent_id, name, kind, size, version, created_at, updated_at)
             VALUES ('f1', ?, 'no-such-folder', 'x', 'file', 0, 1, 0, 0)",
            &ann
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Constraint(ref m) if m.contains("FOREIGN KEY")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_upload_stores_as_it_goes_and_shows_its_files_together_at_the_end() {
    let t = TestApp::builder().quota(10).build().await;
    let ann = t.user("ann").await;
    let docs = create_folder(&t.app, &ann, None, "docs").await.unwrap();
    let err = Upload::begin(&t.app, &ann, Some(11)).await.err().unwrap();
    assert!(
        matches!(err, FilesError::QuotaExceeded { .. }),
        "refused by its announced size"
    );
    let mut up = Upload::begin(&t.app, &ann, None).await.unwrap();
    up.into_folder(Some(id(&docs))).await.unwrap();
    up.add("a.md", None, &mut body("aaaa")).await.unwrap();
    let err = up.add("a.md", None, &mut body("again")).await.unwrap_err();
    assert!(matches!(err, FilesError::NameTaken(_)), "{err:?}");
    let err = up.into_folder(None).await.unwrap_err();
    assert!(
        matches!(err, FilesError::BadUpload(_)),
        "the folder comes first: {err:?}"
    );
    let err = up
        .add("b.bin", None, &mut body("bbbbbbb"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FilesError::QuotaExceeded { used: 4, .. }),
        "{err:?}"
    );
    up.add("c.json", Some("application/octet-stream"), &mut body("{}"))
        .await
        .unwrap();
    assert!(
        listing::list(&t.app, &ann, Some(&id(&docs)))
            .await
            .unwrap()
            .is_empty(),
        "nothing shows before the end"
    );
    let files = up.finish().await.unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| (f.name.as_str(), f.mime.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("a.md", Some("text/markdown")),
            ("c.json", Some("application/json"))
        ]
    );
    assert_eq!(
        listing::list(&t.app, &ann, Some(&id(&docs)))
            .await
            .unwrap()
            .len(),
        2
    );
    let empty = Upload::begin(&t.app, &ann, None).await.unwrap();
    assert!(matches!(
        empty.finish().await,
        Err(FilesError::BadUpload(_))
    ));
}

/// The byte quota bounds what files weigh; the item cap bounds how many rows a user makes
/// (empty files and folders weigh nothing). Files and folders count alike, two uploads at
/// once cannot pass it together, and emptying them out of the Trash makes room again.
#[tokio::test]
async fn a_user_has_at_most_the_item_cap_of_files_and_folders() {
    let t = TestApp::builder()
        .config(|c| c.max_items_per_user = 3)
        .build()
        .await;
    let ann = t.user("ann").await;
    let folder = create_folder(&t.app, &ann, None, "a").await.unwrap();
    write(&t, &ann, Some(&id(&folder)), "one.txt", "").await;
    let (mut bx, mut by) = (body(""), body(""));
    let made = Made::by(Origin::Upload, &ann);
    let (x, y) = tokio::join!(
        write_new_file(&t.app, &ann, None, "x.txt", "text/plain", &made, &mut bx),
        write_new_file(&t.app, &ann, None, "y.txt", "text/plain", &made, &mut by)
    );
    let lost = [x, y]
        .into_iter()
        .filter_map(Result::err)
        .collect::<Vec<_>>();
    assert!(
        matches!(lost.as_slice(), [FilesError::TooManyItems { max: 3 }]),
        "exactly one of two fits: {lost:?}"
    );
    let err = create_folder(&t.app, &ann, None, "b").await.unwrap_err();
    assert!(
        matches!(err, FilesError::TooManyItems { max: 3 }),
        "{err:?}"
    );
    let listed = listing::list(&t.app, &ann, None).await.unwrap();
    assert_eq!(listed.len(), 2, "nothing more was added: {listed:?}");
    // Another user has their own cap.
    let bob = t.user("bob").await;
    create_folder(&t.app, &bob, None, "b").await.unwrap();
    // What waits in the Trash still counts; gone from it, it makes room again.
    delete(&t.app, &ann, &id(&folder)).await.unwrap();
    let err = create_folder(&t.app, &ann, None, "b").await.unwrap_err();
    assert!(matches!(err, FilesError::TooManyItems { .. }), "{err:?}");
    cloudos_core::files::trash::purge(&t.app, &ann, &id(&folder))
        .await
        .unwrap();
    create_folder(&t.app, &ann, None, "b")
        .await
        .expect("room again");
}
