//! The Fly provider end to end against a TEST DOUBLE of the Fly Machines API
//! (`cloudos_tests::fly_double`): the server creates a volume and a Machine, waits for it,
//! relays the terminal to the agent the Machine runs, stops and destroys it, and the next
//! sandbox mounts the same volume. The double checks paths, bodies and the bearer token.

use cloudos_proto::terminal::Sandbox;
use cloudos_tests::agent::{terminal_url, Term};
use cloudos_tests::fly_double::FlyDouble;
use cloudos_tests::{ServerOptions, TestServer, User};
use reqwest::StatusCode;
use serde_json::json;

const APP: &str = "cloudos-sandboxes-test";
const TOKEN: &str = "FlyV1 fm2_test_token_never_in_a_machine";

fn attach_url(server: &TestServer, u: &User, sandbox: &str) -> String {
    terminal_url(&server.base, u.api.token.as_deref().unwrap(), sandbox, "")
}

fn server_on(fly: &FlyDouble) -> TestServer {
    TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_PROVIDER", "fly")
            .env("FLY_API_TOKEN", TOKEN)
            .env("CLOUDOS_FLY_APP", APP)
            .env("CLOUDOS_FLY_API_URL", &fly.url)
            .env("CLOUDOS_FLY_PUBLIC_URL", &fly.public_url)
            .env(
                "CLOUDOS_FLY_IMAGE",
                "registry.fly.io/cloudos-sandboxes:test",
            ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_is_a_machine_with_the_users_volume_as_home() {
    let fly = FlyDouble::start(APP, TOKEN).await;
    let server = server_on(&fly);
    let ann = server.new_user("ann").await;

    let res = ann.api.post("/sandbox", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Sandbox = res.json().await.unwrap();
    let created = fly.created();
    assert_eq!(created.len(), 1);
    let machine = &created[0];
    assert_eq!(machine.name, format!("sbx-{}", first.id));
    assert_eq!(
        machine.config.image,
        "registry.fly.io/cloudos-sandboxes:test"
    );
    assert_eq!(machine.config.mounts[0].path, "/home/user");
    assert_eq!(machine.config.env["CLOUDOS_SANDBOX_ID"], first.id);
    let body = serde_json::to_string(machine).unwrap();
    assert!(
        !body.contains("fm2_test_token"),
        "the Fly token never enters a Machine"
    );

    let mut t = Term::connect(&attach_url(&server, &ann, &first.id)).await;
    t.run("echo on-fly-$((3*7)) > ~/fly.txt; echo F-$((1+1))", "F-2")
        .await;
    t.close().await;

    assert_eq!(
        ann.api
            .delete(&format!("/sandbox/{}", first.id))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        fly.state("m0002"),
        Some(cloudos_fly::MachineState::Destroyed)
    );

    // The next sandbox is a new Machine on the same volume: the home is still there.
    let res = ann.api.post("/sandbox", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let second: Sandbox = res.json().await.unwrap();
    assert_eq!(fly.volumes(), 1, "the user's volume is reused");
    assert_eq!(fly.created().len(), 2);
    assert_eq!(
        fly.created()[1].config.mounts[0].volume,
        machine.config.mounts[0].volume
    );
    let mut t = Term::connect(&attach_url(&server, &ann, &second.id)).await;
    let out = t.run("cat ~/fly.txt; echo G-$((2+2))", "G-4").await;
    assert!(out.contains("on-fly-21"), "{out}");
    // Fly's proxy routed each terminal to its own Machine by the instance header.
    assert_eq!(fly.routed(), ["m0002", "m0003"]);

    let calls = fly.calls();
    assert!(
        calls.iter().all(|c| c.authorized),
        "every call carries the token: {calls:#?}"
    );
    let paths: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    let app = format!("/apps/{APP}");
    for expected in [
        format!("GET {app}/volumes"),
        format!("POST {app}/volumes"),
        format!("POST {app}/machines"),
        format!("GET {app}/machines/m0002/wait?state=started&timeout=60"),
        format!("POST {app}/machines/m0002/stop"),
        format!("GET {app}/machines/m0002/wait?state=stopped&timeout=60&instance_id=inst-m0002"),
        format!("DELETE {app}/machines/m0002?force=true"),
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:#?}"
        );
    }
    assert!(
        !paths.iter().any(|p| p.contains("UNEXPECTED")),
        "only documented endpoints: {paths:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_fly_token_is_a_clear_error() {
    let fly = FlyDouble::start(APP, TOKEN).await;
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_PROVIDER", "fly")
            .env("FLY_API_TOKEN", "FlyV1 wrong")
            .env("CLOUDOS_FLY_APP", APP)
            .env("CLOUDOS_FLY_API_URL", &fly.url)
            .env("CLOUDOS_FLY_PUBLIC_URL", &fly.public_url),
    );
    let ann = server.new_user("ann").await;
    let res = ann.api.post("/sandbox", &json!({})).await;
    let p = cloudos_tests::expect_problem(res, 502, "/errors/sandbox-failed").await;
    assert!(p.detail.contains("401"), "{}", p.detail);
    assert!(fly.created().is_empty());
}
