//! History and the Trash, called as any capability calls them, over a real in-memory libSQL:
//! every save is a version with its origin and authors, any version comes back byte for
//! byte, deletes wait in the Trash with their versions, and the retention rule and the
//! Trash's expiry free what they promise and nothing else.

use cloudos_core::files::organize::{create_folder, delete};
use cloudos_core::files::upload::write_new_file;
use cloudos_core::files::{
    content::save_content, history, listing, trash, used_bytes, FilesError, Made, Origin,
};
use cloudos_core::ids::{FileId, UserId};
use cloudos_core::sweep::sweep;
use cloudos_proto::File;
use cloudos_testing::TestApp;

use cloudos_testing::text_body as body;

async fn write(t: &TestApp, who: &UserId, parent: Option<&FileId>, name: &str, text: &str) -> File {
    t.write_text(who, parent, name, text).await
}

async fn save(t: &TestApp, made: &Made, id: &FileId, version: i64, text: &str) -> File {
    let owner = &made.by[0];
    save_content(&t.app, owner, id, version, made, &mut body(text), None)
        .await
        .unwrap()
}

async fn text_of(t: &TestApp, who: &UserId, id: &FileId, version: i64) -> String {
    let (file, key) = history::version(&t.app, who, id, version).await.unwrap();
    let content = listing::open(&t.app, file, &key.unwrap(), None)
        .await
        .unwrap();
    let mut out = Vec::new();
    if let Some(mut s) = content.bytes {
        use futures_util::TryStreamExt;
        while let Some(chunk) = s.try_next().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
    }
    String::from_utf8(out).unwrap()
}

fn id(f: &File) -> FileId {
    FileId::from(f.id.as_str())
}

#[tokio::test]
async fn every_save_is_a_version_with_its_origin_and_authors_and_any_one_comes_back() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    let f = write(&t, &ann, None, "notes.txt", "one").await;
    save(&t, &Made::by(Origin::Editor, &ann), &id(&f), 1, "two").await;
    let room = Made {
        origin: Origin::Collab,
        by: vec![ann.clone(), bob.clone()],
    };
    save(&t, &room, &id(&f), 2, "three").await;
    let versions = history::list(&t.app, &ann, &id(&f)).await.unwrap();
    let seen: Vec<_> = versions
        .iter()
        .map(|v| (v.version, v.origin.as_str(), v.size, v.current))
        .collect();
    assert_eq!(
        seen,
        [
            (3, "collab", 5, true),
            (2, "editor", 3, false),
            (1, "upload", 3, false)
        ]
    );
    let names: Vec<_> = versions[0]
        .authors
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert_eq!(versions[2].authors[0].id, ann.as_str());
    assert_eq!(text_of(&t, &ann, &id(&f), 1).await, "one");
    assert_eq!(text_of(&t, &ann, &id(&f), 2).await, "two");

    let restored = history::restore(&t.app, &ann, &id(&f), 1).await.unwrap();
    assert_eq!((restored.version, restored.size), (4, 3));
    assert_eq!(
        restored.checksum, f.checksum,
        "the exact bytes of version 1"
    );
    let (_, text) = listing::read_text(&t.app, &ann, &id(&f), 100)
        .await
        .unwrap();
    assert_eq!(text, "one");
    let newest = &history::list(&t.app, &ann, &id(&f)).await.unwrap()[0];
    assert_eq!((newest.version, newest.origin.as_str()), (4, "restore"));
    // Restoring what is current makes nothing new.
    let same = history::restore(&t.app, &ann, &id(&f), 4).await.unwrap();
    assert_eq!(same.version, 4);
    // Every version counts against the quota: 3 + 3 + 5 + 3 bytes.
    assert_eq!(
        used_bytes(t.app.ports.meta.as_ref(), &ann).await.unwrap(),
        14
    );
    // An old one can go early; the current one cannot.
    history::remove(&t.app, &ann, &id(&f), 3).await.unwrap();
    assert_eq!(
        used_bytes(t.app.ports.meta.as_ref(), &ann).await.unwrap(),
        9
    );
    let err = history::remove(&t.app, &ann, &id(&f), 3).await.unwrap_err();
    assert!(matches!(err, FilesError::NoSuchVersion(3)), "{err:?}");
    let err = history::remove(&t.app, &ann, &id(&f), 4).await.unwrap_err();
    assert!(matches!(err, FilesError::CurrentVersion(4)), "{err:?}");
    let err = history::restore(&t.app, &ann, &id(&f), 3)
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::NoSuchVersion(3)), "{err:?}");
}

#[tokio::test]
async fn another_users_history_and_missing_versions_are_not_found() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let eve = t.user("eve").await;
    let f = write(&t, &ann, None, "a.txt", "secret").await;
    for err in [
        history::list(&t.app, &eve, &id(&f)).await.unwrap_err(),
        history::version(&t.app, &eve, &id(&f), 1)
            .await
            .unwrap_err(),
        history::restore(&t.app, &eve, &id(&f), 1)
            .await
            .unwrap_err(),
        history::remove(&t.app, &eve, &id(&f), 1).await.unwrap_err(),
    ] {
        assert!(matches!(err, FilesError::NotFound), "{err:?}");
    }
    let err = history::restore(&t.app, &ann, &id(&f), 7)
        .await
        .unwrap_err();
    assert!(matches!(err, FilesError::NoSuchVersion(7)), "{err:?}");
    let folder = create_folder(&t.app, &ann, None, "d").await.unwrap();
    assert!(history::list(&t.app, &ann, &id(&folder)).await.is_err());
}

#[tokio::test]
async fn a_deleted_folder_waits_in_the_trash_and_comes_back_whole() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let app_dir = create_folder(&t.app, &ann, None, "app").await.unwrap();
    let src = create_folder(&t.app, &ann, Some(&id(&app_dir)), "src")
        .await
        .unwrap();
    let main = write(&t, &ann, Some(&id(&src)), "main.rs", "fn main() {}").await;
    save(
        &t,
        &Made::by(Origin::Sandbox, &ann),
        &id(&main),
        1,
        "fn main() { run() }",
    )
    .await;
    delete(&t.app, &ann, &id(&app_dir)).await.unwrap();

    // Gone from every view of the tree, and for every service.
    assert!(listing::list(&t.app, &ann, None).await.unwrap().is_empty());
    for gone in [&app_dir, &src, &main] {
        let err = listing::get(&t.app, &ann, &id(gone)).await.unwrap_err();
        assert!(matches!(err, FilesError::NotFound), "{err:?}");
    }
    let err = save_content(
        &t.app,
        &ann,
        &id(&main),
        2,
        &Made::by(Origin::Editor, &ann),
        &mut body("lost?"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FilesError::NotFound), "{err:?}");
    // Its name is free again.
    let other = create_folder(&t.app, &ann, None, "app").await.unwrap();

    let listed = trash::list(&t.app, &ann).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{listed:?}");
    let entry = &listed.items[0];
    assert_eq!(
        (
            entry.name.as_str(),
            entry.path.as_str(),
            entry.items,
            entry.size
        ),
        ("app", "/app", 2, 19)
    );
    assert_eq!(listed.bytes, 12 + 19, "both versions of main.rs");

    // Back under a new name (the old one is taken), with ids and history.
    let back = trash::restore(&t.app, &ann, &id(&app_dir)).await.unwrap();
    assert_eq!(
        (back.id.as_str(), back.name.as_str()),
        (app_dir.id.as_str(), "app (restored)")
    );
    assert!(trash::list(&t.app, &ann).await.unwrap().items.is_empty());
    let inside = listing::list(&t.app, &ann, Some(&id(&src))).await.unwrap();
    assert_eq!(inside[0].id, main.id);
    assert_eq!(text_of(&t, &ann, &id(&main), 1).await, "fn main() {}");
    assert_eq!(
        text_of(&t, &ann, &id(&main), 2).await,
        "fn main() { run() }"
    );
    assert!(listing::get(&t.app, &ann, &id(&other)).await.is_ok());
}

#[tokio::test]
async fn a_file_goes_back_where_it_was_or_to_the_root_when_its_folder_is_gone() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let docs = create_folder(&t.app, &ann, None, "docs").await.unwrap();
    let a = write(&t, &ann, Some(&id(&docs)), "a.txt", "a").await;
    let b = write(&t, &ann, Some(&id(&docs)), "b.txt", "b").await;
    delete(&t.app, &ann, &id(&a)).await.unwrap();
    let back = trash::restore(&t.app, &ann, &id(&a)).await.unwrap();
    assert_eq!(back.parent_id.as_deref(), Some(docs.id.as_str()));

    // b is deleted on its own, then its folder; emptying the folder's entry keeps b's.
    delete(&t.app, &ann, &id(&b)).await.unwrap();
    t.clock.advance(1000);
    delete(&t.app, &ann, &id(&docs)).await.unwrap();
    let paths: Vec<_> = trash::list(&t.app, &ann)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(paths, ["/docs", "/docs/b.txt"]);
    trash::purge(&t.app, &ann, &id(&docs)).await.unwrap();
    let back = trash::restore(&t.app, &ann, &id(&b)).await.unwrap();
    assert_eq!(
        back.parent_id, None,
        "its folder is gone for good: the root"
    );
    assert_eq!(text_of(&t, &ann, &id(&b), 1).await, "b");
    let err = trash::restore(&t.app, &ann, &id(&a)).await.unwrap_err();
    assert!(matches!(err, FilesError::NotFound), "{err:?}");
}

#[tokio::test]
async fn another_user_cannot_see_restore_or_purge_my_trash() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let eve = t.user("eve").await;
    let f = write(&t, &ann, None, "a.txt", "a").await;
    delete(&t.app, &ann, &id(&f)).await.unwrap();
    assert!(trash::list(&t.app, &eve).await.unwrap().items.is_empty());
    for err in [
        trash::restore(&t.app, &eve, &id(&f)).await.unwrap_err(),
        trash::purge(&t.app, &eve, &id(&f)).await.unwrap_err(),
    ] {
        assert!(matches!(err, FilesError::NotFound), "{err:?}");
    }
    assert_eq!(trash::empty(&t.app, &eve).await.unwrap(), 0);
    assert_eq!(trash::list(&t.app, &ann).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn emptying_the_trash_gives_its_bytes_back_to_the_quota() {
    let t = TestApp::builder().quota(100).build().await;
    let ann = t.user("ann").await;
    let f = write(&t, &ann, None, "big.bin", &"x".repeat(60)).await;
    delete(&t.app, &ann, &id(&f)).await.unwrap();
    let made = Made::by(Origin::Upload, &ann);
    let err = write_new_file(
        &t.app,
        &ann,
        None,
        "next.bin",
        "text/plain",
        &made,
        &mut body(&"y".repeat(60)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, FilesError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(trash::empty(&t.app, &ann).await.unwrap(), 1);
    assert_eq!(
        used_bytes(t.app.ports.meta.as_ref(), &ann).await.unwrap(),
        0
    );
    write(&t, &ann, None, "next.bin", &"y".repeat(60)).await;
}

#[tokio::test]
async fn the_sweep_thins_old_versions_to_one_a_day_and_ends_old_trash_entries() {
    let t = TestApp::builder()
        .config(|c| {
            c.history_keep_all_secs = 86_400;
            c.trash_keep_secs = 7 * 86_400;
        })
        .build()
        .await;
    let ann = t.user("ann").await;
    let hour = 3_600_000;
    // The clock starts at 22:13 UTC: three saves today, two the next day.
    let f = write(&t, &ann, None, "a.txt", "v1").await;
    let ed = Made::by(Origin::Editor, &ann);
    t.clock.advance(hour / 2);
    save(&t, &ed, &id(&f), 1, "v2").await;
    t.clock.advance(hour / 2);
    save(&t, &ed, &id(&f), 2, "v3").await;
    t.clock.advance(3 * hour);
    save(&t, &ed, &id(&f), 3, "v4").await;
    save(&t, &ed, &id(&f), 4, "v5").await;
    let gone = write(&t, &ann, None, "old.txt", "old").await;
    delete(&t.app, &ann, &id(&gone)).await.unwrap();

    // Within the first day nothing is thinned.
    let report = sweep(&t.app).await.unwrap();
    assert_eq!((report.versions_pruned, report.trash_expired), (0, 0));

    // Three days on: each old day keeps its last version, the current one stays.
    t.clock.advance(3 * 86_400_000);
    let report = sweep(&t.app).await.unwrap();
    assert_eq!(report.versions_pruned, 3, "v1, v2 and v4 go");
    let kept: Vec<_> = history::list(&t.app, &ann, &id(&f))
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [5, 3]);
    assert_eq!(text_of(&t, &ann, &id(&f), 3).await, "v3");
    assert_eq!(report.trash_expired, 0, "the Trash keeps a week");

    t.clock.advance(5 * 86_400_000);
    let report = sweep(&t.app).await.unwrap();
    assert_eq!(report.trash_expired, 1);
    assert!(trash::list(&t.app, &ann).await.unwrap().items.is_empty());
    assert_eq!(
        used_bytes(t.app.ports.meta.as_ref(), &ann).await.unwrap(),
        4,
        "v3 and v5 of a.txt"
    );
}

/// A room tells a file in the Trash (its stored edits wait for a restore) from one removed
/// for good (whatever a host keeps of the room may go): the Worker wipes a room's storage
/// only on the second.
#[tokio::test]
async fn a_room_of_a_trashed_file_keeps_its_edits_and_one_removed_for_good_is_removed() {
    use cloudos_core::rooms::log::SqlLog;
    use cloudos_core::rooms::{store, RoomError};
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let f = write(&t, &ann, None, "a.txt", "text").await;
    let log = SqlLog::new(&t.app, &id(&f));
    assert!(store::open(&t.app, &log, &ann, &id(&f)).await.is_ok());
    delete(&t.app, &ann, &id(&f)).await.unwrap();
    let err = store::open(&t.app, &log, &ann, &id(&f))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, RoomError::Files(FilesError::NotFound)),
        "{err:?}"
    );
    trash::restore(&t.app, &ann, &id(&f)).await.unwrap();
    assert!(store::open(&t.app, &log, &ann, &id(&f)).await.is_ok());
    delete(&t.app, &ann, &id(&f)).await.unwrap();
    trash::purge(&t.app, &ann, &id(&f)).await.unwrap();
    let err = store::open(&t.app, &log, &ann, &id(&f))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, RoomError::Removed), "{err:?}");
    // Another user's file is never "removed" for them: it is not found.
    let g = write(&t, &ann, None, "b.txt", "text").await;
    let eve = t.user("eve").await;
    let err = store::open(&t.app, &log, &eve, &id(&g))
        .await
        .err()
        .unwrap();
    assert!(!matches!(err, RoomError::Removed), "{err:?}");
}
