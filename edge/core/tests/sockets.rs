//! Socket routes are the core's: the token, the upgrade and who may attach are checked before
//! the host's `Sockets` port is asked to carry anything, and the port gets the target the
//! core decided.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudos_core::ports::{
    AgentEndpoint, SandboxError, SandboxSpec, Sandboxes, SocketTarget, Sockets,
};
use cloudos_core::sandboxes::lifecycle;
use cloudos_core::{router, ApiError, App};
use cloudos_testing::TestApp;
use tower::ServiceExt;

/// Records what it was asked to carry and answers 101 with no socket behind it.
#[derive(Default)]
struct RecordingSockets(Mutex<Vec<SocketTarget>>);

#[async_trait]
impl Sockets for RecordingSockets {
    async fn open(&self, _req: Request, target: SocketTarget) -> Result<Response, ApiError> {
        self.0.lock().unwrap().push(target);
        Ok(StatusCode::SWITCHING_PROTOCOLS.into_response())
    }
}

/// A provider whose agents "run" at a fixed address; counts its starts and keeps what was
/// posted to them.
#[derive(Default)]
struct FakeAgents(std::sync::atomic::AtomicUsize, Mutex<Vec<(String, String)>>);

#[async_trait]
impl Sandboxes for FakeAgents {
    fn provider(&self) -> &'static str {
        "local"
    }
    async fn start(&self, spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(AgentEndpoint {
            url: format!("http://agent.test/{}", spec.id),
            headers: vec![("fly-force-instance-id".into(), "m1".into())],
            machine_id: Some("m1".into()),
        })
    }
    async fn stop(&self, _spec: &SandboxSpec) -> Result<(), SandboxError> {
        Ok(())
    }
    async fn post_to_agent(
        &self,
        spec: &SandboxSpec,
        path: &str,
        _bearer: &str,
        body: Vec<u8>,
    ) -> Result<Option<u16>, SandboxError> {
        let body = String::from_utf8(body).unwrap();
        self.1
            .lock()
            .unwrap()
            .push((format!("{}/{path}", spec.id), body));
        Ok(Some(204))
    }
}

async fn setup() -> (TestApp, Arc<RecordingSockets>, Arc<FakeAgents>) {
    let sockets = Arc::new(RecordingSockets::default());
    let agents = Arc::new(FakeAgents::default());
    let t = TestApp::builder()
        .sockets(sockets.clone())
        .sandboxes(agents.clone())
        .build()
        .await;
    (t, sockets, agents)
}

async fn get(app: &App, uri: &str, upgrade: bool) -> StatusCode {
    let mut req = axum::http::Request::get(uri);
    if upgrade {
        req = req
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    }
    router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_events_socket_needs_a_token_and_an_upgrade_and_carries_the_callers_events() {
    let (t, sockets, _) = setup().await;
    let (ann, token) = t.session("ann").await;
    let expires = t.app.now_ms() + t.app.config.token_ttl_secs * 1000;
    assert_eq!(get(&t.app, "/events", true).await, StatusCode::UNAUTHORIZED);
    let uri = format!("/events?token={token}");
    // A URL token counts only on an upgrade; with the header, a plain request is 426.
    assert_eq!(get(&t.app, &uri, false).await, StatusCode::UNAUTHORIZED);
    let plain = axum::http::Request::get("/events")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = router(t.app.clone()).oneshot(plain).await.unwrap();
    assert_eq!(res.status(), StatusCode::UPGRADE_REQUIRED);
    let keyless = axum::http::Request::get(&uri)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .body(Body::empty())
        .unwrap();
    let res = router(t.app.clone()).oneshot(keyless).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "an incomplete handshake"
    );
    assert!(sockets.0.lock().unwrap().is_empty(), "nothing carried yet");
    assert_eq!(
        get(&t.app, &uri, true).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    assert_eq!(
        *sockets.0.lock().unwrap(),
        [SocketTarget::Events {
            user_id: ann,
            until_ms: expires
        }]
    );
}

#[tokio::test]
async fn a_terminal_attaches_to_its_owners_sandbox_only() {
    let (t, sockets, _) = setup().await;
    let (ann, ann_token) = t.session("ann").await;
    let (_, bob_token) = t.session("bob").await;
    let sandbox = lifecycle::start(&t.app, &ann).await.unwrap().sandbox;
    let path = format!("/terminal/{}/attach", sandbox.id);
    let bobs = format!("{path}?token={bob_token}");
    assert_eq!(get(&t.app, &bobs, true).await, StatusCode::NOT_FOUND);
    let bad_session = format!("{path}?token={ann_token}&session=..%2Fetc");
    assert_eq!(
        get(&t.app, &bad_session, true).await,
        StatusCode::BAD_REQUEST
    );
    assert!(
        sockets.0.lock().unwrap().is_empty(),
        "refused before the host"
    );
    let anns = format!("{path}?token={ann_token}&mode=view&since=42");
    assert_eq!(
        get(&t.app, &anns, true).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    let carried = sockets.0.lock().unwrap().clone();
    let [SocketTarget::Terminal(ticket)] = carried.as_slice() else {
        panic!("one terminal socket expected: {carried:?}");
    };
    let base = format!("ws://agent.test/{}/attach?token=", sandbox.id);
    assert!(ticket.url.starts_with(&base), "{}", ticket.url);
    assert!(
        ticket.url.ends_with("&session=main&mode=view&since=42"),
        "{}",
        ticket.url
    );
    assert_eq!(
        ticket.headers,
        [("fly-force-instance-id".into(), "m1".into())]
    );
}

#[tokio::test]
async fn a_user_has_one_live_sandbox_even_when_two_starts_race() {
    let (t, _, agents) = setup().await;
    let ann = t.user("ann").await;
    let (a, b) = tokio::join!(
        lifecycle::start(&t.app, &ann),
        lifecycle::start(&t.app, &ann)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sandbox.id, b.sandbox.id);
    assert_eq!(a.created as u8 + b.created as u8, 1, "one of them made it");
    // Both found no live sandbox and both inserted; the database refused the second row,
    // whose request then answered with the winner's sandbox without starting another agent.
    assert_eq!(agents.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    lifecycle::stop(&t.app, &ann, &a.sandbox.id).await.unwrap();
    lifecycle::stop(&t.app, &ann, &a.sandbox.id)
        .await
        .expect("stopping twice is fine");
    let again = lifecycle::start(&t.app, &ann).await.unwrap();
    assert!(again.created);
    assert_ne!(
        again.sandbox.id, a.sandbox.id,
        "a stopped sandbox is not restarted"
    );
    let bob = t.user("bob").await;
    let err = lifecycle::stop(&t.app, &bob, &again.sandbox.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, cloudos_core::sandboxes::SandboxesError::NotFound),
        "{err:?}"
    );
    let share = lifecycle::share(&t.app, &ann, &again.sandbox.id, Some(10 * 365 * 86_400))
        .await
        .unwrap();
    assert_eq!(
        share.expires_at,
        t.app.now_ms() + lifecycle::SHARE_MAX_TTL_SECS * 1000
    );
}

/// A provider that keeps the set of running agents, and whose next start can be held at
/// the door until the test lets it through.
#[derive(Default)]
struct GatedAgents {
    running: Mutex<std::collections::HashSet<String>>,
    /// (told when a start waits at the gate, the gate itself)
    gate: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::sync::oneshot::Receiver<()>,
        )>,
    >,
}

#[async_trait]
impl Sandboxes for GatedAgents {
    fn provider(&self) -> &'static str {
        "local"
    }
    async fn start(&self, spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((waiting, open)) = gate {
            let _ = waiting.send(());
            let _ = open.await;
        }
        self.running.lock().unwrap().insert(spec.id.clone());
        Ok(AgentEndpoint {
            url: format!("http://agent.test/{}", spec.id),
            headers: vec![],
            machine_id: None,
        })
    }
    async fn stop(&self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        self.running.lock().unwrap().remove(&spec.id);
        Ok(())
    }
}

/// An attach that (re)starts the agent while the owner stops the sandbox must not leave an
/// agent running that nothing will stop.
#[tokio::test]
async fn an_attach_racing_a_stop_leaves_no_agent_behind() {
    use cloudos_core::sandboxes::attach::{authorize, AttachQuery};
    let agents = Arc::new(GatedAgents::default());
    let t = TestApp::builder().sandboxes(agents.clone()).build().await;
    let (ann, ann_token) = t.session("ann").await;
    let id = lifecycle::start(&t.app, &ann).await.unwrap().sandbox.id;
    // The agent stopped by itself (idle); the next attach starts it again, slowly.
    agents.running.lock().unwrap().clear();
    let (waiting_tx, waiting) = tokio::sync::oneshot::channel();
    let (open, gate) = tokio::sync::oneshot::channel();
    *agents.gate.lock().unwrap() = Some((waiting_tx, gate));
    let app = t.app.clone();
    let who = cloudos_core::auth::accounts::authenticate(&t.app, &ann_token)
        .await
        .unwrap();
    let sandbox = id.clone();
    let attach =
        tokio::spawn(async move { authorize(&app, &who, &sandbox, &AttachQuery::default()).await });
    waiting.await.unwrap();
    lifecycle::stop(&t.app, &ann, &id).await.unwrap();
    open.send(()).unwrap();
    let attached = attach.await.unwrap();
    assert!(
        matches!(
            attached,
            Err(cloudos_core::sandboxes::SandboxesError::Stopped)
        ),
        "{attached:?}"
    );
    assert!(
        agents.running.lock().unwrap().is_empty(),
        "an agent runs for a stopped sandbox"
    );
}

/// The claims of the agent token in a relay URL, checked with the sandbox's key.
fn agent_claims(t: &TestApp, sandbox: &str, url: &str) -> cloudos_proto::terminal::AgentClaims {
    let query = url.split_once('?').unwrap().1;
    let token = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned();
    let key = cloudos_core::sandboxes::tokens::agent_key(&t.app.config.secret, sandbox);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&[cloudos_proto::terminal::AGENT_AUDIENCE]);
    v.validate_exp = false;
    jsonwebtoken::decode(&token, &jsonwebtoken::DecodingKey::from_secret(&key), &v)
        .unwrap()
        .claims
}

/// A view link is a stored share: the viewer's socket rests on it (its agent token names
/// the share and ends with it), revoking it tells the agent at once and it opens nothing
/// more; only its owner can revoke it; a logout tells the agent to drop the owner's own
/// sockets of that session.
#[tokio::test]
async fn a_view_link_is_a_revocable_grant_and_a_logout_ends_the_owners_sockets() {
    use cloudos_core::sandboxes::attach::{authorize, AttachQuery};
    use cloudos_core::shares;
    let (t, _, agents) = setup().await;
    let (ann, ann_token) = t.session("ann").await;
    let ann_session = cloudos_core::auth::accounts::authenticate(&t.app, &ann_token)
        .await
        .unwrap();
    let bob = t.signed_in("bob").await;
    let sandbox = lifecycle::start(&t.app, &ann).await.unwrap().sandbox;
    let link = lifecycle::share(&t.app, &ann, &sandbox.id, Some(600))
        .await
        .unwrap();
    let watch = AttachQuery {
        share: Some(link.token.clone()),
        ..Default::default()
    };
    let ticket = authorize(&t.app, &bob, &sandbox.id, &watch).await.unwrap();
    assert_eq!(ticket.role, cloudos_proto::terminal::Role::Viewer);
    let claims = agent_claims(&t, &sandbox.id, &ticket.url);
    let grant = format!("share:{}", link.id);
    let bobs_session = format!("session:{}:{}", bob.user_id, bob.gen);
    assert_eq!(claims.grants, [grant.clone(), bobs_session.clone()]);
    assert_eq!(claims.until, Some((link.expires_at / 1000) as u64));
    assert_eq!(claims.sub, bob.user_id.to_string());
    // Its owner lists it (with its use), by id, never by token.
    let listed = lifecycle::shares(&t.app, &ann, &sandbox.id).await.unwrap();
    assert_eq!(
        (listed.len(), listed[0].id.as_str(), listed[0].access_count),
        (1, link.id.as_str(), 1)
    );
    assert!(lifecycle::shares(&t.app, &bob.user_id, &sandbox.id)
        .await
        .is_err());

    // The viewer signing out ends what they watch through others' links.
    let bob_signs_out = cloudos_core::auth::accounts::logout(&t.app, &bob);
    bob_signs_out.await.unwrap();
    assert_eq!(
        agents.1.lock().unwrap().drain(..).collect::<Vec<_>>(),
        [(
            format!("{}/revoke", sandbox.id),
            serde_json::json!({ "grants": [bobs_session] }).to_string()
        )]
    );
    let bob = t.signed_in_again("bob").await;

    // Only its owner revokes it.
    let theirs = shares::revoke(&t.app, &bob.user_id, &link.token).await;
    assert!(
        matches!(theirs, Err(shares::SharesError::NotFound)),
        "{theirs:?}"
    );
    assert!(agents.1.lock().unwrap().is_empty());
    // By its id (what the owner's list shows) as well as by its token.
    shares::revoke(&t.app, &ann, &link.id).await.unwrap();
    let told = agents.1.lock().unwrap().clone();
    assert_eq!(
        told,
        [(
            format!("{}/revoke", sandbox.id),
            serde_json::json!({ "grants": [grant] }).to_string()
        )]
    );
    let again = authorize(&t.app, &bob, &sandbox.id, &watch).await;
    assert!(
        matches!(
            again,
            Err(cloudos_core::sandboxes::SandboxesError::BadShare)
        ),
        "{again:?}"
    );
    let unknown = shares::revoke(&t.app, &ann, "made-up").await;
    assert!(
        matches!(unknown, Err(shares::SharesError::NotFound)),
        "{unknown:?}"
    );

    // An expired link opens nothing either.
    let short = lifecycle::share(&t.app, &ann, &sandbox.id, Some(60))
        .await
        .unwrap();
    t.clock.advance(60_000);
    let late = AttachQuery {
        share: Some(short.token),
        ..Default::default()
    };
    assert!(authorize(&t.app, &bob, &sandbox.id, &late).await.is_err());

    // The owner's own sockets rest on the session and end with it.
    let own = authorize(&t.app, &ann_session, &sandbox.id, &AttachQuery::default())
        .await
        .unwrap();
    let claims = agent_claims(&t, &sandbox.id, &own.url);
    let session_grant = format!("session:{ann}:{}", ann_session.gen);
    assert_eq!(claims.grants, std::slice::from_ref(&session_grant));
    assert_eq!(
        claims.until,
        Some((ann_session.expires_at_ms / 1000) as u64)
    );
    agents.1.lock().unwrap().clear();
    cloudos_core::auth::accounts::logout(&t.app, &ann_session)
        .await
        .unwrap();
    let told = agents.1.lock().unwrap().clone();
    assert_eq!(
        told,
        [(
            format!("{}/revoke", sandbox.id),
            serde_json::json!({ "grants": [session_grant] }).to_string()
        )]
    );
}

/// Each user's sandboxes run as a host uid of their own: allocated once and kept (the
/// home keeps its owner), never shared, even when many users start at the same moment.
#[tokio::test]
async fn every_user_gets_a_host_uid_of_their_own() {
    use cloudos_core::sandboxes::uids::host_uid;
    use cloudos_proto::terminal::SANDBOX_UID_BASE;
    let t = TestApp::new().await;
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(t.user(&format!("u{i}")).await);
    }
    let uids = futures_util::future::join_all(users.iter().map(|u| host_uid(&t.app, u))).await;
    let mut uids: Vec<u32> = uids.into_iter().map(Result::unwrap).collect();
    assert_eq!(host_uid(&t.app, &users[3]).await.unwrap(), uids[3], "kept");
    assert!(uids.iter().all(|&u| u >= SANDBOX_UID_BASE), "{uids:?}");
    uids.sort_unstable();
    // Allocated, not derived: the first twelve, one each (so never two users on one).
    let expected: Vec<u32> = (SANDBOX_UID_BASE..SANDBOX_UID_BASE + 12).collect();
    assert_eq!(uids, expected);
}

/// A revocation landing while the agent starts finds no agent to tell; the attach looks
/// again once the agent runs, so the socket is not opened on a revoked link.
#[tokio::test]
async fn a_link_revoked_while_the_agent_starts_opens_nothing() {
    use cloudos_core::sandboxes::attach::{authorize, AttachQuery};
    let agents = Arc::new(GatedAgents::default());
    let t = TestApp::builder().sandboxes(agents.clone()).build().await;
    let ann = t.user("ann").await;
    let bob = t.signed_in("bob").await;
    let id = lifecycle::start(&t.app, &ann).await.unwrap().sandbox.id;
    let link = lifecycle::share(&t.app, &ann, &id, None).await.unwrap();
    agents.running.lock().unwrap().clear();
    let (waiting_tx, waiting) = tokio::sync::oneshot::channel();
    let (open, gate) = tokio::sync::oneshot::channel();
    *agents.gate.lock().unwrap() = Some((waiting_tx, gate));
    let app = t.app.clone();
    let (sandbox, token) = (id.clone(), link.token.clone());
    let attach = tokio::spawn(async move {
        let q = AttachQuery {
            share: Some(token),
            ..Default::default()
        };
        authorize(&app, &bob, &sandbox, &q).await
    });
    waiting.await.unwrap();
    cloudos_core::shares::revoke(&t.app, &ann, &link.token)
        .await
        .unwrap();
    open.send(()).unwrap();
    let attached = attach.await.unwrap();
    assert!(
        matches!(
            attached,
            Err(cloudos_core::sandboxes::SandboxesError::BadShare)
        ),
        "{attached:?}"
    );
}
