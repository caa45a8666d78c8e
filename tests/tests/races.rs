//! Requests of one user that race each other: whatever the interleaving, the quota holds,
//! one of two saves of the same version wins, and two opposite moves never make a cycle.
//! Runs against `CLOUDOS_TEST_BASE_URL` (the Worker under `wrangler dev` in `cargo xtask
//! test`) or a native server it starts.

use cloudos_proto::File;
use cloudos_tests::{expect_problem, pattern, TestServer, SUITE_QUOTA_BYTES};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// How many answers are `ok`; every other one must be the quota's 413.
async fn succeeded(answers: Vec<reqwest::Response>, ok: StatusCode) -> usize {
    let mut n = 0;
    for res in answers {
        if res.status() == ok {
            n += 1;
        } else {
            expect_problem(res, 413, "/errors/quota-exceeded").await;
        }
    }
    n
}

#[tokio::test]
async fn concurrent_uploads_never_store_more_than_the_quota() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    // Six 4 MiB uploads at once against a 16 MiB quota: each alone would fit.
    let size = 4 * MIB;
    let uploads = (0..6u64).map(|i| {
        let ann = ann.clone();
        async move {
            let name = format!("part-{i}.bin");
            ann.upload_raw(None, &[(name.as_str(), pattern(size, 100 + i))])
                .await
        }
    });
    let stored = succeeded(join_all(uploads).await, StatusCode::CREATED).await;
    // One writer at a time: exactly as many as fit are stored, never more.
    assert_eq!(
        (stored * size) as u64,
        SUITE_QUOTA_BYTES,
        "{stored} uploads of {size} bytes were stored against a quota of {SUITE_QUOTA_BYTES}"
    );
    assert_eq!(ann.used_bytes().await, (stored * size) as u64);
    assert_eq!(ann.list(None).await.len(), stored);
}

#[tokio::test]
async fn concurrent_saves_never_store_more_than_the_quota() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    let files = ann
        .upload(
            None,
            &[
                ("a.bin", b"a".to_vec()),
                ("b.bin", b"b".to_vec()),
                ("c.bin", b"c".to_vec()),
            ],
        )
        .await;
    // Each save alone fits in the 16 MiB quota; any two do not.
    let size = 9 * MIB;
    let saves = files.iter().enumerate().map(|(i, f)| {
        let ann = ann.clone();
        let id = f.id.clone();
        async move {
            ann.req(Method::PUT, &format!("/files/{id}/content"))
                .header("if-match", "\"1\"")
                .body(pattern(size, 200 + i as u64))
                .send()
                .await
                .unwrap()
        }
    });
    let saved = succeeded(join_all(saves).await, StatusCode::OK).await;
    assert_eq!(saved, 1, "exactly one 9 MiB save fits in 16 MiB");
    // The three 1-byte first versions stay in the history beside it.
    assert_eq!(ann.used_bytes().await, (size + 3) as u64);

    // A save keeps the version it replaces: 9 MiB more do not fit, 6 MiB do.
    let big = ann
        .list(None)
        .await
        .into_iter()
        .find(|f| f.size == size as u64)
        .unwrap();
    let put = |len: usize| {
        ann.req(Method::PUT, &format!("/files/{}/content", big.id))
            .header("if-match", format!("\"{}\"", big.version))
            .body(pattern(len, 300))
            .send()
    };
    expect_problem(put(size).await.unwrap(), 413, "/errors/quota-exceeded").await;
    let res = put(6 * MIB).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a version that fits is saved");
    assert_eq!(ann.used_bytes().await, (15 * MIB + 3) as u64);
}

#[tokio::test]
async fn an_upload_into_a_folder_deleted_at_the_same_moment_leaves_nothing_behind() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    for round in 0..8u64 {
        let folder = ann.mkdir(None, &format!("drop-{round}")).await;
        let path = format!("/files/{}", folder.id);
        let files = [("late.bin", pattern(256 * 1024, round))];
        let (uploaded, deleted) =
            tokio::join!(ann.upload_raw(Some(&folder.id), &files), ann.delete(&path));
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT, "round {round}");
        let arrived = u64::from(uploaded.status() == StatusCode::CREATED);
        if uploaded.status() != StatusCode::CREATED {
            expect_problem(uploaded, 404, "/errors/not-found").await;
        }
        // Either the file went with its folder into the Trash or it never arrived: no row
        // is left without a folder, and emptying the Trash gives every byte back.
        assert!(ann.list(None).await.is_empty(), "round {round}");
        let trash: cloudos_proto::TrashList = ann.get("/trash").await.json().await.unwrap();
        assert_eq!(trash.items.len(), 1, "round {round}");
        assert_eq!(trash.items[0].items, arrived, "round {round}");
        assert_eq!(
            ann.used_bytes().await,
            arrived * 256 * 1024,
            "round {round}"
        );
        assert_eq!(ann.delete("/trash").await.status(), StatusCode::NO_CONTENT);
        assert_eq!(ann.used_bytes().await, 0, "round {round}");
    }
}

#[tokio::test]
async fn of_two_saves_of_one_version_exactly_one_wins() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    let file = ann
        .upload(None, &[("notes.md", b"v1".to_vec())])
        .await
        .remove(0);
    let bodies: Vec<Vec<u8>> = (0..8).map(|i| format!("edit {i}").into_bytes()).collect();
    let saves = bodies.iter().map(|body| {
        let ann = ann.clone();
        let path = format!("/files/{}/content", file.id);
        let body = body.clone();
        async move {
            ann.req(Method::PUT, &path)
                .header("if-match", "\"1\"")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    });
    let mut winners = Vec::new();
    for (i, res) in join_all(saves).await.into_iter().enumerate() {
        match res.status() {
            StatusCode::OK => winners.push((i, res.json::<File>().await.unwrap())),
            _ => {
                expect_problem(res, 412, "/errors/stale-version").await;
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one save of version 1 wins, the others get 412"
    );
    let (i, saved) = &winners[0];
    assert_eq!(saved.version, 2);
    assert_eq!(ann.content(&file.id).await, bodies[*i]);
}

#[tokio::test]
async fn opposite_moves_at_once_never_make_a_cycle() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    for round in 0..8 {
        let a = ann.mkdir(None, &format!("a{round}")).await;
        let b = ann.mkdir(None, &format!("b{round}")).await;
        let (path_a, path_b) = (format!("/files/{}", a.id), format!("/files/{}", b.id));
        let (into_b, into_a) = (json!({"parent_id": b.id}), json!({"parent_id": a.id}));
        let (ra, rb) = tokio::join!(ann.patch(&path_a, &into_b), ann.patch(&path_b, &into_a));
        let moved = [ra.status(), rb.status()]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(
            moved, 1,
            "round {round}: exactly one of two opposite moves succeeds"
        );
        for res in [ra, rb] {
            if res.status() != StatusCode::OK {
                expect_problem(res, 400, "/errors/invalid").await;
            }
        }
        // Both folders are still reachable from the root: one in it, the other in there.
        let root: Vec<String> = ann.list(None).await.into_iter().map(|f| f.id).collect();
        let (top, inner) = if root.contains(&a.id) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert!(
            root.contains(&top.id),
            "round {round}: neither folder is in the root"
        );
        let children: Vec<String> = ann
            .list(Some(&top.id))
            .await
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(children, std::slice::from_ref(&inner.id), "round {round}");
    }
}

/// A refused upload (here: into a folder deleted before it arrived) reads what the client
/// is still sending, so the client sees the 404 and its next request on the same
/// connection works (a connection closed under it would fail that request).
#[tokio::test]
async fn a_refused_upload_leaves_the_connection_usable() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await.api;
    // Each round may or may not hit a closed connection without the fix: many rounds make
    // a miss unlikely (it failed 1 run in 3 with 12 rounds).
    for round in 0..40u64 {
        let folder = ann.mkdir(None, &format!("gone-{round}")).await;
        ann.delete(&format!("/files/{}", folder.id)).await;
        let files = [("late.bin", pattern(512 * 1024, round))];
        let refused = ann.upload_raw(Some(&folder.id), &files).await;
        expect_problem(refused, 404, "/errors/not-found").await;
        assert_eq!(ann.used_bytes().await, 0, "round {round}");
    }
}
