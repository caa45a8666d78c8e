//! `cloudos db serve`, the local libSQL endpoint for `wrangler dev`, checked with the official
//! clients: the Rust `libsql` remote client and `@libsql/client` (TypeScript), plus the
//! protocol's rules for batons and tokens over raw HTTP.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cloudos_tests::{ServerOptions, TestServer};
use serde_json::{json, Value};

const TOKEN: &str = "dev-token-for-tests";

fn endpoint(data_dir: Option<PathBuf>) -> TestServer {
    TestServer::hrana(ServerOptions {
        data_dir,
        ..ServerOptions::default().env("CLOUDOS_DB_AUTH_TOKEN", TOKEN)
    })
}

async fn connect(server: &TestServer, token: &str) -> libsql::Connection {
    libsql::Builder::new_remote(server.base.clone(), token.to_owned())
        .build()
        .await
        .expect("remote database")
        .connect()
        .expect("connection")
}

async fn count(conn: &libsql::Connection) -> i64 {
    let mut rows = conn
        .query("SELECT count(*) FROM notes", ())
        .await
        .expect("count");
    rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
}

#[tokio::test]
async fn the_official_rust_client_reads_writes_and_keeps_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = endpoint(Some(tmp.path().to_owned()));
    let conn = connect(&server, TOKEN).await;

    conn.execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, body BLOB, score REAL)",
        (),
    )
    .await
    .unwrap();
    let changed = conn
        .execute(
            "INSERT INTO notes (title, body, score) VALUES (?1, ?2, ?3)",
            libsql::params!["first", vec![0u8, 1, 255], 1.5],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(conn.last_insert_rowid(), 1);
    conn.execute(
        "INSERT INTO notes (title) VALUES (:title)",
        libsql::named_params! { ":title": "second" },
    )
    .await
    .unwrap();

    let mut rows = conn
        .query("SELECT id, title, body, score FROM notes ORDER BY id", ())
        .await
        .unwrap();
    assert_eq!(rows.column_name(1), Some("title"));
    let first = rows.next().await.unwrap().expect("a first row");
    assert_eq!(first.get::<i64>(0).unwrap(), 1);
    assert_eq!(first.get::<String>(1).unwrap(), "first");
    assert_eq!(first.get::<Vec<u8>>(2).unwrap(), vec![0, 1, 255]);
    assert_eq!(first.get::<f64>(3).unwrap(), 1.5);
    let second = rows.next().await.unwrap().expect("a second row");
    assert_eq!(second.get_value(2).unwrap(), libsql::Value::Null);
    assert!(rows.next().await.unwrap().is_none());

    // SQLite's error reaches the client in its own words, and nothing changed.
    let err = conn
        .execute("INSERT INTO notes (title) VALUES ('first')", ())
        .await
        .expect_err("a duplicate title");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    assert_eq!(count(&conn).await, 2);

    // A transaction spans requests on one stream (its baton), and rolls back cleanly.
    let tx = conn.transaction().await.unwrap();
    tx.execute("INSERT INTO notes (title) VALUES ('draft')", ())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&conn).await, 2);
    let tx = conn.transaction().await.unwrap();
    tx.execute("INSERT INTO notes (title) VALUES ('kept')", ())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&conn).await, 3);

    conn.execute_batch("CREATE TABLE tags (name TEXT); INSERT INTO tags VALUES ('a');")
        .await
        .unwrap();

    // A wrong token gets nothing.
    let intruder = connect(&server, "wrong").await;
    assert!(intruder.execute("SELECT 1", ()).await.is_err());

    // The data is an ordinary file in the data dir: it survives a restart.
    assert!(server.terminate(Duration::from_secs(10)).unwrap());
    let server = endpoint(Some(tmp.path().to_owned()));
    let conn = connect(&server, TOKEN).await;
    assert_eq!(count(&conn).await, 3);
}

/// Runs one of the scripts in `tests/hrana/` against a fresh endpoint.
fn node_script(name: &str) {
    let server = endpoint(None);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("hrana")
        .join(name);
    let status = Command::new("node")
        .arg(&script)
        .env("HRANA_URL", &server.base)
        .env("HRANA_TOKEN", TOKEN)
        .status()
        .expect("running node");
    assert!(status.success(), "{name} failed: {status}");
}

#[test]
fn the_official_typescript_client_works_against_it() {
    node_script("official-client.mjs");
}

#[test]
fn protocol_v3_cursor_conditions_stored_sql_and_describe_work_for_the_typescript_hrana_client() {
    node_script("protocol-v3.mjs");
}

async fn pipeline(server: &TestServer, body: Value) -> (u16, Value) {
    let res = cloudos_tests::http_client()
        .post(format!("{}/v3/pipeline", server.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn a_baton_is_good_for_one_request_and_close_ends_the_stream() {
    let server = endpoint(None);
    let begin = json!({"type": "execute", "stmt": {"sql": "BEGIN"}});
    let (status, first) = pipeline(&server, json!({"baton": null, "requests": [begin]})).await;
    assert_eq!(status, 200);
    let baton = first["baton"]
        .as_str()
        .expect("an open stream has a baton")
        .to_owned();

    // The stream is still inside its transaction on the next request.
    let autocommit = json!({"type": "get_autocommit"});
    let (_, next) = pipeline(&server, json!({"baton": baton, "requests": [autocommit]})).await;
    assert_eq!(next["results"][0]["response"]["is_autocommit"], false);
    assert_ne!(next["baton"], baton, "every answer names a new baton");

    // The old baton is spent.
    let (status, spent) = pipeline(&server, json!({"baton": baton, "requests": []})).await;
    assert_eq!(status, 400);
    assert_eq!(spent["code"], "STREAM_EXPIRED");

    // Closing gives no baton back; a statement after the close in the same pipeline fails.
    let close = json!({"type": "close"});
    let after = json!({"type": "execute", "stmt": {"sql": "SELECT 1"}});
    let (_, closed) = pipeline(
        &server,
        json!({"baton": next["baton"], "requests": [close, after]}),
    )
    .await;
    assert_eq!(closed["baton"], Value::Null);
    assert_eq!(closed["results"][1]["type"], "error");

    // A body that is not Hrana: 400 with a code, not a dropped connection.
    let res = cloudos_tests::http_client()
        .post(format!("{}/v3/pipeline", server.base))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "HTTP_PARSE_ERROR"
    );

    // Without the token: 401.
    let res = cloudos_tests::http_client()
        .post(format!("{}/v3/pipeline", server.base))
        .body(r#"{"baton":null,"requests":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A web page (a browser always sends Origin on a cross-site POST) gets nothing, even
    // with the token: a page on any site could otherwise reach a loopback endpoint.
    let res = cloudos_tests::http_client()
        .post(format!("{}/v3/pipeline", server.base))
        .bearer_auth(TOKEN)
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"baton":null,"requests":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// Serving without a token must be asked for: by default `cloudos db serve` refuses to start.
#[test]
fn without_a_token_the_endpoint_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(cloudos_tests::cloudos_bin())
        .args(["db", "serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(tmp.path())
        .env_remove("CLOUDOS_DB_AUTH_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a token"), "{stderr}");
}

/// Like Turso, the endpoint enforces foreign keys, so the schema's REFERENCES hold on the
/// Worker's path as they do embedded.
#[tokio::test]
async fn foreign_keys_are_enforced() {
    let server = endpoint(None);
    let conn = connect(&server, TOKEN).await;
    conn.execute("CREATE TABLE folders (id TEXT PRIMARY KEY)", ())
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE items (id TEXT PRIMARY KEY, folder TEXT REFERENCES folders(id))",
        (),
    )
    .await
    .unwrap();
    conn.execute("INSERT INTO folders VALUES ('f')", ())
        .await
        .unwrap();
    conn.execute("INSERT INTO items VALUES ('a', 'f')", ())
        .await
        .unwrap();
    let err = conn
        .execute("INSERT INTO items VALUES ('b', 'gone')", ())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    let err = conn
        .execute("DELETE FROM folders WHERE id = 'f'", ())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

/// A client of the endpoint reaches its database and no other file: `ATTACH` (which would
/// open any path the server's user can read or create) and `VACUUM INTO` are refused, and
/// nothing is made.
#[tokio::test]
async fn attaching_another_database_file_is_refused() {
    let server = endpoint(None);
    let conn = connect(&server, TOKEN).await;
    let outside = std::env::temp_dir().join(format!("cloudos-attach-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&outside);
    let err = conn
        .execute(
            &format!("ATTACH DATABASE '{}' AS other", outside.display()),
            (),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");
    assert!(!outside.exists(), "no file was created");
    // VACUUM INTO writes a copy through an attached database: refused the same way (sent
    // as a raw pipeline: the Rust client will not send a VACUUM at all).
    let vacuum = json!({"type": "execute",
        "stmt": {"sql": format!("VACUUM INTO '{}'", outside.display())}});
    let (_, answer) = pipeline(&server, json!({"baton": null, "requests": [vacuum]})).await;
    let error = answer["results"][0]["error"]["message"].to_string();
    assert!(error.contains("authorization denied"), "{answer}");
    assert!(!outside.exists(), "no copy was written");
    let mut rows = conn.query("SELECT 40 + 2", ()).await.expect("still usable");
    let row = rows.next().await.unwrap().unwrap();
    assert_eq!(row.get::<i64>(0).unwrap(), 42);
}
