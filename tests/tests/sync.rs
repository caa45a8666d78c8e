//! One file system: the drive is the home of the user's sandbox, synced both ways by the
//! sandbox's agent through the public API (native server, local sandboxes). What Files
//! holds, `ls` shows; what a command writes, Files shows, as a version from the sandbox;
//! renames stay moves; deletes go to the Trash; conflicts keep both sides; the agent's token
//! stays outside the sandbox and opens nothing but the owner's files.

use std::path::PathBuf;
use std::time::Duration;

use cloudos_proto::terminal::{NoticeKind, Sandbox, ServerControl};
use cloudos_proto::{NotificationList, TrashList, VersionList};
use cloudos_tests::agent::{terminal_url, Term};
use cloudos_tests::sync::{tree, until_path, when_in_home};
use cloudos_tests::{Client, ServerOptions, TestServer, User};
use reqwest::Method;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(20);

fn server(opts: ServerOptions) -> TestServer {
    TestServer::native(opts)
}

async fn start_sandbox(u: &User) -> Sandbox {
    let res = u.api.post("/sandbox", &json!({})).await;
    assert!(res.status().is_success(), "POST /sandbox: {}", res.status());
    res.json().await.unwrap()
}

async fn stop_sandbox(u: &User, sbx: &Sandbox) {
    let res = u.api.delete(&format!("/sandbox/{}", sbx.id)).await;
    assert_eq!(res.status(), 204, "DELETE /sandbox");
}

async fn terminal(server: &TestServer, u: &User, sbx: &Sandbox) -> Term {
    Term::connect(&terminal_url(
        &server.base,
        u.api.token.as_deref().unwrap(),
        &sbx.id,
        "",
    ))
    .await
}

async fn put_text(u: &User, id: &str, version: i64, text: &str) {
    let res = u
        .api
        .req(Method::PUT, &format!("/files/{id}/content"))
        .header("if-match", format!("\"{version}\""))
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "saving {id}");
}

/// The home of `u` on the server's disk (a plain directory when homes have no image).
fn home_dir(server: &TestServer, u: &User) -> PathBuf {
    server
        .data_dir
        .as_ref()
        .unwrap()
        .join("sandboxes")
        .join(&u.id)
        .join("home")
}

/// The environment variable `name` of the agent of sandbox `id`, read as root from the
/// host (what a process inside the sandbox must never manage).
fn agent_env(sandbox_id: &str, name: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_agent = args.first().is_some_and(|a| a.ends_with(b"cloudos-agent"))
            && args.contains(&sandbox_id.as_bytes());
        if !is_agent {
            continue;
        }
        let env = std::fs::read(entry.path().join("environ")).ok()?;
        let prefix = format!("{name}=");
        return env
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned());
    }
    None
}

#[tokio::test]
async fn the_terminal_home_is_the_drive_both_ways() {
    let server = server(ServerOptions::default().env("CLOUDOS_SANDBOX_HOME_MB", 64));
    let ann = server.new_user("ann").await;
    let proj = ann.api.mkdir(None, "proj").await;
    let up = ann
        .api
        .upload(
            Some(&proj.id),
            &[
                ("hello.sh", b"#!/bin/sh\necho hi-from-files\n".to_vec()),
                ("README.md", b"# readme\n".to_vec()),
            ],
        )
        .await;
    let (hello, readme) = (&up[0], &up[1]);
    let sbx = start_sandbox(&ann).await;
    let mut t = terminal(&server, &ann, &sbx).await;

    // What Files holds, the home shows.
    let out = when_in_home(&mut t, "[ -f ~/proj/README.md ]", "cat ~/proj/README.md").await;
    assert!(out.contains("# readme"), "{out}");

    // What the terminal writes, Files shows: a version from the sandbox, the executable bit
    // kept; dependencies stay local.
    t.run(
        "chmod +x ~/proj/hello.sh && echo built > ~/proj/out.txt && mkdir -p ~/proj/node_modules/dep && echo x > ~/proj/node_modules/dep/i.js && echo W-$((2+2))",
        "W-4",
    )
    .await;
    let out_txt = until_path(&ann.api, "proj/out.txt", WITHIN, |i| i.is_some())
        .await
        .unwrap();
    assert_eq!(ann.api.content(&out_txt.id).await, b"built\n");
    let versions: VersionList = ann
        .api
        .get(&format!("/files/{}/versions", out_txt.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions.items[0].origin, "sandbox");
    assert_eq!(versions.items[0].authors[0].id, ann.id);
    let h = until_path(&ann.api, "proj/hello.sh", WITHIN, |i| {
        i.is_some_and(|i| i.executable)
    })
    .await
    .unwrap();
    assert_eq!(h.id, hello.id, "the same file, not a new one");
    assert!(
        tree(&ann.api)
            .await
            .iter()
            .all(|i| !i.path.contains("node_modules")),
        "node_modules stays in the sandbox"
    );

    // A save in Files reaches the home.
    put_text(&ann, &readme.id, readme.version, "# edited in Files\n").await;
    let out = when_in_home(
        &mut t,
        "grep -q edited ~/proj/README.md",
        "cat ~/proj/README.md",
    )
    .await;
    assert!(out.contains("# edited in Files"), "{out}");

    // A rename in the terminal is a move in Files: the file keeps its id, history and links.
    let link: serde_json::Value = ann
        .api
        .post(&format!("/files/{}/share", readme.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = link["token"].as_str().unwrap().to_owned();
    t.run(
        "mv ~/proj/README.md ~/proj/GUIDE.md && echo M-$((4+4))",
        "M-8",
    )
    .await;
    let guide = until_path(&ann.api, "proj/GUIDE.md", WITHIN, |i| i.is_some())
        .await
        .unwrap();
    assert_eq!(guide.id, readme.id, "moved, not copied");
    let public = ann.api.get(&format!("/s/{token}")).await;
    assert_eq!(public.status(), 200, "the link still opens the moved file");
    until_path(&ann.api, "proj/README.md", WITHIN, |i| i.is_none()).await;
    // So is a folder's.
    t.run("mv ~/proj ~/project && echo F-$((5+4))", "F-9").await;
    let moved = until_path(&ann.api, "project", WITHIN, |i| i.is_some())
        .await
        .unwrap();
    assert_eq!(moved.id, proj.id);
    until_path(&ann.api, "project/GUIDE.md", WITHIN, |i| {
        i.is_some_and(|i| i.id == readme.id)
    })
    .await;

    // A delete in the terminal goes to the Trash.
    t.run("rm ~/project/out.txt && echo R-$((5+5))", "R-10")
        .await;
    until_path(&ann.api, "project/out.txt", WITHIN, |i| i.is_none()).await;
    let trash: TrashList = ann.api.get("/trash").await.json().await.unwrap();
    assert!(trash.items.iter().any(|i| i.id == out_txt.id));

    // A delete in Files leaves the home.
    assert_eq!(
        ann.api
            .delete(&format!("/files/{}", hello.id))
            .await
            .status(),
        204
    );
    let out = when_in_home(&mut t, "[ ! -e ~/project/hello.sh ]", "echo HELLO=$(ls -a ~/project | grep -c hello) DEPS=$(ls -a ~/project | grep -c node_modules)").await;
    assert!(
        out.contains("HELLO=0 DEPS=1"),
        "gone from the home; the local-only folder stays: {out}"
    );

    // Deleted by mistake in Files, the project leaves the home (what stays local stays, and
    // does not bring the folder back to Files) and returns from the Trash, exact bytes and
    // history included.
    assert_eq!(
        ann.api
            .delete(&format!("/files/{}", proj.id))
            .await
            .status(),
        204
    );
    let out = when_in_home(
        &mut t,
        "[ ! -e ~/project/GUIDE.md ]",
        "echo LEFT=$(ls -A ~/project | tr '\\n' ,)",
    )
    .await;
    assert!(out.contains("LEFT=node_modules,"), "{out}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        tree(&ann.api)
            .await
            .iter()
            .all(|i| !i.path.starts_with("project")),
        "a folder kept only for what stays local is not made again in Files"
    );
    let res = ann
        .api
        .post(&format!("/trash/{}/restore", proj.id), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let out = when_in_home(
        &mut t,
        "[ -f ~/project/GUIDE.md ]",
        "sha256sum ~/project/GUIDE.md",
    )
    .await;
    assert!(
        out.contains(&cloudos_tests::sha256_hex(b"# edited in Files\n")),
        "{out}"
    );
    // An old version restored in Files is what the home has next.
    let res = ann
        .api
        .post(
            &format!("/files/{}/versions/1/restore", readme.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let out = when_in_home(
        &mut t,
        "grep -q '^# readme' ~/project/GUIDE.md",
        "sha256sum ~/project/GUIDE.md",
    )
    .await;
    assert!(
        out.contains(&cloudos_tests::sha256_hex(b"# readme\n")),
        "{out}"
    );
}

#[tokio::test]
async fn the_sync_token_stays_outside_the_sandbox_and_opens_only_the_owners_files() {
    let server = server(ServerOptions::default().env("CLOUDOS_SANDBOX_HOME_MB", 64));
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let bobs = bob.api.upload_one("bob.txt", b"bob's").await;
    let sbx = start_sandbox(&ann).await;
    let mut t = terminal(&server, &ann, &sbx).await;
    // Nothing in the sandbox sees the agent's settings: not its environment, not any
    // process's it can see.
    let out = t
        .run(
            "echo ENV=$(env | grep -c CLOUDOS) PROC=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c CLOUDOS_AGENT) P-$((7+7))",
            "P-14",
        )
        .await;
    assert!(out.contains("ENV=0 PROC=0 P-14"), "{out}");

    // Taken from the agent (as root on the host), the token acts for ann on files only.
    let token = agent_env(&sbx.id, "CLOUDOS_AGENT_SYNC_TOKEN").expect("the agent has a sync token");
    let agent = Client {
        token: Some(token),
        ..ann.api.clone()
    };
    assert_eq!(agent.get("/files/tree").await.status(), 200);
    // What a sync needs, and nothing more: not listings, searches, nor a file's signed
    // download link (which would outlive the sandbox).
    let bob_file = format!("/files/{}", bobs.id);
    for (method, path) in [
        (Method::GET, "/files"),
        (Method::GET, "/files/search?q=bob"),
        (Method::GET, bob_file.as_str()),
        (Method::GET, "/me"),
        (Method::POST, "/auth/ticket"),
        (Method::GET, "/notifications"),
        (Method::POST, "/sandbox"),
        (Method::GET, "/desktop"),
        (Method::POST, "/auth/logout"),
    ] {
        let status = agent
            .req(method.clone(), path)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{method} {path} with a sync token");
    }
    // Another user's file is no more there for it than for ann.
    assert_eq!(
        agent
            .get(&format!("/files/{}/content", bobs.id))
            .await
            .status(),
        404
    );
    // Only a sync reports as one.
    let report = json!({"kind": "conflict", "path": "x.txt"});
    assert_eq!(ann.api.post("/sync/report", &report).await.status(), 403);
    assert_eq!(agent.post("/sync/report", &report).await.status(), 204);

    // Once the sandbox has stopped (and its agent had its last pass), the token is dead.
    stop_sandbox(&ann, &sbx).await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(agent.get("/files/tree").await.status(), 401);
}

#[tokio::test]
async fn changes_on_both_sides_while_stopped_keep_both_and_the_user_is_told() {
    // No home image: the test edits the home on disk while the sandbox is stopped, as a
    // command would have just before the stop.
    let server = server(ServerOptions::default().env("CLOUDOS_SANDBOX_HOME_MB", 0));
    let ann = server.new_user("ann").await;
    let notes = ann.api.upload_one("notes.txt", b"v1\n").await;
    let sbx = start_sandbox(&ann).await;
    let home = home_dir(&server, &ann);
    let deadline = tokio::time::Instant::now() + WITHIN;
    while std::fs::read(home.join("notes.txt")).ok().as_deref() != Some(b"v1\n".as_slice()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "notes.txt never reached the home"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_sandbox(&ann, &sbx).await;

    put_text(&ann, &notes.id, notes.version, "from Files\n").await;
    std::fs::write(home.join("notes.txt"), "from the terminal\n").unwrap();
    std::fs::write(home.join("offline.txt"), "written while stopped\n").unwrap();

    // The next start reconciles: Files' version stays at the path, the terminal's beside it.
    let again = start_sandbox(&ann).await;
    let copy = until_path(
        &ann.api,
        "notes (conflict from terminal).txt",
        WITHIN,
        |i| i.is_some(),
    )
    .await
    .unwrap();
    assert_eq!(ann.api.content(&copy.id).await, b"from the terminal\n");
    assert_eq!(ann.api.content(&notes.id).await, b"from Files\n");
    let offline = until_path(&ann.api, "offline.txt", WITHIN, |i| i.is_some())
        .await
        .unwrap();
    assert_eq!(
        ann.api.content(&offline.id).await,
        b"written while stopped\n"
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    while std::fs::read(home.join("notes.txt")).ok().as_deref() != Some(b"from Files\n".as_slice())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Files' version never reached the home"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read(home.join("notes (conflict from terminal).txt")).unwrap(),
        b"from the terminal\n"
    );
    let list: NotificationList = ann.api.get("/notifications").await.json().await.unwrap();
    let told = list
        .items
        .iter()
        .find(|n| n.kind == "sync-conflict")
        .expect("a conflict notification");
    assert!(
        told.body.contains("notes (conflict from terminal).txt"),
        "{}",
        told.body
    );

    // A home that is not the one the agent last synced (a new, empty image over the old
    // mount point) takes nothing for deleted: the drive fills it again.
    stop_sandbox(&ann, &again).await;
    std::fs::remove_dir_all(&home).unwrap();
    std::fs::create_dir(&home).unwrap();
    let _third = start_sandbox(&ann).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while std::fs::read(home.join("offline.txt")).ok().as_deref()
        != Some(b"written while stopped\n".as_slice())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drive never filled the new home"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trash: TrashList = ann.api.get("/trash").await.json().await.unwrap();
    assert!(
        trash.items.is_empty(),
        "nothing went to the Trash: {:?}",
        trash.items
    );
    assert_eq!(tree(&ann.api).await.len(), 3);
}

#[tokio::test]
async fn a_file_past_the_quota_stays_local_and_the_user_is_told_in_the_terminal_and_on_the_desktop()
{
    let server = server(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_HOME_MB", 64)
            .env("CLOUDOS_DEFAULT_QUOTA_BYTES", 1 << 20),
    );
    let ann = server.new_user("ann").await;
    let sbx = start_sandbox(&ann).await;
    let mut t = terminal(&server, &ann, &sbx).await;
    t.run(
        "head -c 2000000 /dev/zero > ~/big.bin && echo small > ~/small.txt && echo Q-$((8+8))",
        "Q-16",
    )
    .await;
    until_path(&ann.api, "small.txt", WITHIN, |i| i.is_some()).await;
    t.wait_for("the sync's notice", WITHIN, |t| {
        t.controls.iter().any(|c| {
            matches!(c, ServerControl::Notice { kind: NoticeKind::Sync, message } if message.contains("big.bin"))
        })
    })
    .await;
    let list: NotificationList = ann.api.get("/notifications").await.json().await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|n| n.kind == "sync-quota" && n.body.contains("big.bin")),
        "{:?}",
        list.items
    );
    assert!(tree(&ann.api).await.iter().all(|i| i.path != "big.bin"));
    let out = t.run("ls -l ~/big.bin && echo L-$((9+9))", "L-18").await;
    assert!(out.contains("2000000"), "it stays in the home: {out}");
}
