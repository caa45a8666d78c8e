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
