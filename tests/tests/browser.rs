//! The desktop in a real browser: the playwright-core suites in `tests/browser/` drive
//! Debian's Chromium against a server this test starts with the built desktop
//! (`cargo xtask test` builds it first; screenshots land in `artifacts/browser/`).

use std::path::PathBuf;
use std::process::Command;

use cloudos_tests::{ServerOptions, TestServer};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}

/// The built desktop: `CLOUDOS_TEST_WEB_DIR` (set by `cargo xtask test`) or `web/dist`.
fn web_dist() -> PathBuf {
    let dir = std::env::var_os("CLOUDOS_TEST_WEB_DIR")
        .map_or_else(|| workspace().join("web/dist"), PathBuf::from);
    assert!(
        dir.join("index.html").exists(),
        "{} has no built desktop: run `cargo xtask build web` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

#[test]
fn the_desktop_works_in_chromium() {
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_WEB_DIR", web_dist().display()));
    // A host that offers no terminals, for the Terminal app's "not available" state.
    let no_sandboxes = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_WEB_DIR", web_dist().display())
            .env("CLOUDOS_SANDBOX_PROVIDER", "none"),
    );
    let status = Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "tests/browser/",
        ])
        .current_dir(workspace())
        .env("CLOUDOS_BASE_URL", &server.base)
        .env("CLOUDOS_BASE_URL_NO_SANDBOXES", &no_sandboxes.base)
        .status()
        .expect("running node (installed with the machine; see README)");
    assert!(
        status.success(),
        "the browser suite failed ({status}); screenshots are in artifacts/browser/"
    );
}

/// The desktop's page carries the policy every host sends with it (no inline script, no
/// framing by other sites), and the built page has no inline script the policy would block.
/// The browser story runs under this policy and fails on anything it blocks.
#[tokio::test]
async fn the_desktop_page_carries_its_security_headers() {
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_WEB_DIR", web_dist().display()));
    let res = reqwest::get(format!("{}/", server.base)).await.unwrap();
    for (name, value) in cloudos_proto::DESKTOP_HEADERS {
        assert_eq!(
            res.headers().get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name}"
        );
    }
    let page = res.text().await.unwrap();
    let scripts = page.matches("<script").count();
    assert!(scripts > 0);
    for tag in page.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains(" src="), "an inline script: <script{open}>");
    }
    // The same headers for the Worker's static assets.
    let headers = std::fs::read_to_string(web_dist().join("_headers")).unwrap();
    for (name, value) in cloudos_proto::DESKTOP_HEADERS {
        assert!(headers.contains(&format!("  {name}: {value}\n")), "{name}");
    }
}
