//! The desktop's and notifications' services: a finished upload tells the user (stored and
//! pushed live), read marks are per user, layouts are small objects kept per user.

use bytes::Bytes;
use cloudos_core::desktop::{apps, layout, DesktopError};
use cloudos_core::files::upload::{finish_upload, store_stream, Budget, NewFile};
use cloudos_core::files::{Made, Origin};
use cloudos_core::notifications::{self, NewNotification};
use cloudos_proto::Event;
use cloudos_testing::TestApp;
use serde_json::json;

#[tokio::test]
async fn a_finished_upload_is_a_stored_notification_pushed_live_to_its_owner_only() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    let mut body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("hi"))]);
    let budget = Budget {
        quota: 100,
        used: 0,
    };
    let stored = store_stream(t.app.ports.blobs.as_ref(), &mut body, budget)
        .await
        .unwrap();
    let new = |name: &str| NewFile {
        name: name.into(),
        mime: "text/plain".into(),
        stored: stored.clone(),
    };
    t.events.take();
    let made = Made::by(Origin::Upload, &ann);
    let files = finish_upload(&t.app, &ann, None, vec![new("a.txt"), new("b.txt")], &made)
        .await
        .unwrap();
    let pushed = t.events.take();
    assert!(
        pushed.iter().all(|(user, _)| user.as_str() == ann.as_str()),
        "{pushed:?}"
    );
    let live = pushed
        .iter()
        .find_map(|(_, e)| match e {
            Event::Notification { notification } => Some(notification.clone()),
            _ => None,
        })
        .expect("a live notification");
    assert_eq!(
        (live.title.as_str(), live.body.as_str()),
        ("2 uploads finished", "a.txt, b.txt")
    );
    assert_eq!(live.file_id.as_deref(), Some(files[0].id.as_str()));
    let anns = notifications::history(&t.app, &ann).await.unwrap();
    assert_eq!((anns.items.len(), anns.unread), (1, 1));
    assert_eq!(anns.items[0].id, live.id);
    assert_eq!(
        notifications::history(&t.app, &bob)
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

#[tokio::test]
async fn read_marks_touch_only_the_callers_notifications() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    let say = |title: &str| NewNotification {
        kind: "test",
        title: title.into(),
        body: String::new(),
        file_id: None,
    };
    let a1 = notifications::notify(&t.app, &ann, say("one"))
        .await
        .unwrap();
    notifications::notify(&t.app, &ann, say("two"))
        .await
        .unwrap();
    let b1 = notifications::notify(&t.app, &bob, say("bob's"))
        .await
        .unwrap();
    let ids = [a1.id.clone(), b1.id.clone()];
    let after = notifications::mark_read(&t.app, &ann, Some(&ids))
        .await
        .unwrap();
    assert_eq!(after.unread, 1, "ann's first is read, her second is not");
    assert_eq!(
        notifications::history(&t.app, &bob).await.unwrap().unread,
        1,
        "bob's untouched"
    );
    let all = notifications::mark_read(&t.app, &ann, None).await.unwrap();
    assert_eq!(all.unread, 0);
    assert!(all.items.iter().all(|n| n.read));
}

#[tokio::test]
async fn a_layout_is_a_small_object_kept_per_user() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    let empty = layout::load(&t.app, &ann).await.unwrap();
    assert_eq!((empty.layout, empty.updated_at), (json!({}), None));
    let windows = json!({"windows": [{"app": "files", "x": 10}]});
    layout::save(&t.app, &ann, &windows).await.unwrap();
    let saved = layout::load(&t.app, &ann).await.unwrap();
    assert_eq!(saved.layout, windows);
    assert!(saved.updated_at.is_some());
    assert_eq!(layout::load(&t.app, &bob).await.unwrap().layout, json!({}));
    let err = layout::save(&t.app, &ann, &json!([1])).await.unwrap_err();
    assert!(matches!(err, DesktopError::LayoutNotAnObject), "{err:?}");
    let huge = json!({"x": "a".repeat(layout::MAX_LAYOUT_BYTES)});
    let err = layout::save(&t.app, &ann, &huge).await.unwrap_err();
    assert!(
        matches!(err, DesktopError::LayoutTooLarge { .. }),
        "{err:?}"
    );
    assert_eq!(
        layout::load(&t.app, &ann).await.unwrap().layout,
        windows,
        "kept"
    );
    let offered = apps::available(&t.app, &ann).await.unwrap();
    assert!(offered.iter().any(|a| a.id == "files"));
}

#[tokio::test]
async fn a_user_keeps_a_bounded_number_of_notifications() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let bob = t.user("bob").await;
    notifications::notify(
        &t.app,
        &bob,
        NewNotification {
            kind: "test",
            title: "bob's".into(),
            body: String::new(),
            file_id: None,
        },
    )
    .await
    .unwrap();
    let extra = 3;
    for i in 0..notifications::KEPT + extra {
        t.clock.advance(1);
        notifications::notify(
            &t.app,
            &ann,
            NewNotification {
                kind: "test",
                title: format!("n{i}"),
                body: String::new(),
                file_id: None,
            },
        )
        .await
        .unwrap();
    }
    let count = |who: &cloudos_core::ids::UserId| {
        let meta = t.app.ports.meta.clone();
        let who = who.clone();
        async move {
            meta.query(cloudos_core::stmt!(
                "SELECT COUNT(*) FROM notifications WHERE user_id = ?",
                &who
            ))
            .await
            .unwrap()[0]
                .int(0)
        }
    };
    assert_eq!(count(&ann).await, notifications::KEPT);
    assert_eq!(count(&bob).await, 1, "another user's are untouched");
    let newest = notifications::history(&t.app, &ann).await.unwrap();
    assert_eq!(
        newest.items[0].title,
        format!("n{}", notifications::KEPT + extra - 1)
    );
    assert_eq!(newest.unread as i64, notifications::KEPT, "the oldest went");
}
