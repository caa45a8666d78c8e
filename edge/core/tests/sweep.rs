//! The orphan sweep removes only old blobs no file references and old unfinished uploads.

use bytes::Bytes;
use cloudos_core::files::upload::write_new_file;
use cloudos_core::files::{Made, Origin};
use cloudos_core::sweep::{sweep_orphans, SweepReport};
use cloudos_testing::TestApp;

#[tokio::test]
async fn removes_only_old_unreferenced_blobs_and_old_pending_uploads() {
    let t = TestApp::new().await;
    let ann = t.user("ann").await;
    let mut body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("kept"))]);
    let made = Made::by(Origin::Upload, &ann);
    let file = write_new_file(&t.app, &ann, None, "a.txt", "text/plain", &made, &mut body)
        .await
        .unwrap();
    let referenced = file.checksum.clone().expect("a file has a checksum");
    let now = t.app.now_ms();
    let old = now - 2 * 3600 * 1000;
    {
        let mut b = t.blobs.blobs.lock().unwrap();
        b.get_mut(&referenced).unwrap().1 = old;
        b.insert("orphan".into(), (vec![2], old));
        b.insert("fresh-orphan".into(), (vec![3], now - 1000));
        let mut p = t.blobs.pending.lock().unwrap();
        p.insert("crashed".into(), (vec![4], old));
        p.insert("in-flight".into(), (vec![5], now));
    }
    assert_eq!(t.app.config.orphan_grace_secs, 3600);
    let report = sweep_orphans(&t.app).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            orphans_removed: 1,
            pending_removed: 1,
            ..SweepReport::default()
        }
    );
    let mut left: Vec<_> = t.blobs.blobs.lock().unwrap().keys().cloned().collect();
    left.sort();
    let mut expected = vec!["fresh-orphan".to_owned(), referenced];
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(
        t.blobs.pending.lock().unwrap().keys().collect::<Vec<_>>(),
        ["in-flight"]
    );
}
