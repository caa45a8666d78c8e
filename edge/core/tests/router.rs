//! The router as a client meets it: problems for unknown paths and bad tokens, the OpenAPI
//! document, metrics.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloudos_core::{router, App};
use cloudos_testing::TestApp;
use tower::ServiceExt;

async fn call(app: &App, path: &str, auth: Option<&str>) -> (StatusCode, String, String) {
    let mut req = Request::get(path);
    if let Some(token) = auth {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn unknown_paths_and_missing_tokens_are_problems() {
    let t = TestApp::new().await;
    let (status, ct, body) = call(&t.app, "/nope", None).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    assert!(body.contains("\"type\":\"/errors/not-found\""), "{body}");
    let (status, ct, body) = call(&t.app, "/me", None).await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::UNAUTHORIZED, "application/problem+json")
    );
    assert!(body.contains("/errors/unauthorized"), "{body}");
    let (status, _, _) = call(&t.app, "/files", Some("garbage")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_valid_token_for_a_deleted_account_is_refused() {
    let t = TestApp::new().await;
    let (ann, token) = t.session("ann").await;
    let (status, _, _) = call(&t.app, "/files", Some(&token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the token works while the account exists"
    );
    t.remove_account(&ann).await;
    let (status, _, body) = call(&t.app, "/files", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("no longer exists"), "{body}");
}

#[tokio::test]
async fn openapi_and_metrics_are_served() {
    let t = TestApp::new().await;
    let (status, _, body) = call(&t.app, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["paths"]["/files/{id}/content"]["put"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    call(&t.app, "/healthz", None).await;
    let text = t.app.metrics.as_ref().expect("counted").render();
    assert!(
        text.contains(
            "cloudos_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    let quiet = TestApp::new().await;
    let app = quiet.app.clone().without_metrics();
    let (status, _, body) = call(&app, "/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("/errors/metrics-unavailable"), "{body}");
}

/// Every operation in `/openapi.json` is answered by a route of the router, not by the
/// fallback: the document is read, not a list kept in this test.
#[tokio::test]
async fn every_documented_operation_is_routed_and_sockets_are_documented() {
    let t = TestApp::new().await;
    let doc = cloudos_core::openapi();
    let mut operations = 0;
    for (path, item) in &doc.paths.paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let item = serde_json::to_value(item).unwrap();
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let res = router(t.app.clone()).oneshot(req).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("no such endpoint"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    assert!(operations >= 20, "{operations} operations");
    for socket in ["/events", "/terminal/{sandbox_id}/attach"] {
        assert!(
            doc.paths.paths.contains_key(socket),
            "{socket} is documented"
        );
    }
}
