//! Live rooms with the Yjs clients editors run (npm `yjs` + `y-websocket`, in Node): the
//! suite in `tests/collab/` against the suite's server (a native one this test starts, or
//! the Worker under `wrangler dev`).

use std::path::PathBuf;
use std::process::Command;

use cloudos_tests::TestServer;

#[test]
fn real_yjs_clients_edit_together() {
    let server = TestServer::suite();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned();
    let status = Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "tests/collab/",
        ])
        .current_dir(&workspace)
        .env("CLOUDOS_BASE_URL", &server.base)
        .status()
        .expect("running node (installed with the machine; see README)");
    assert!(status.success(), "the Yjs suite failed ({status})");
}
