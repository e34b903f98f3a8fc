//! CORS for the admin dashboards of `cors.allowed_origins`, and nothing for others.
use reqwest::{Method, StatusCode};

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app_with, TestApp};

const DASHBOARD: &str = "https://admin.example.com";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.cors.allowed_origins = vec![DASHBOARD.into(), "https://other.example".into()]
    })
    .await
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, "/admin/users")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_listed_origin_gets_a_preflight_allowing_the_authorization_header() {
    let app = app().await;
    let resp = preflight(&app, DASHBOARD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], DASHBOARD);
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
    assert!(
        h.get("access-control-allow-credentials").is_none(),
        "bearer tokens, no cookies"
    );
    // A dashboard may make its task creates safe to retry.
    let resp = app
        .request(Method::OPTIONS, "/tasks")
        .header("origin", DASHBOARD)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("idempotency-key"));
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = app().await;
    let resp = preflight(&app, "https://evil.example").await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // The refusal is docs/API.md's JSON error body, not an empty 400.
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let resp = app
        .request(Method::GET, "/healthz")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the request itself is not blocked, only unreadable to the page"
    );
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn actual_responses_and_errors_carry_cors_and_expose_the_list_headers() {
    let app = app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let resp = app
        .request(Method::GET, "/admin/users")
        .header("origin", DASHBOARD)
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], DASHBOARD);
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "x-total-count",
        "idempotent-replayed",
        "location",
        "retry-after",
        "www-authenticate",
    ] {
        assert!(exposed.contains(header), "{header} not exposed: {exposed}");
    }
    // A 401 must be readable too, or the dashboard cannot tell "log in again" from a network error.
    let resp = app
        .request(Method::GET, "/admin/users")
        .header("origin", DASHBOARD)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["access-control-allow-origin"], DASHBOARD);
}

#[tokio::test]
async fn with_no_origins_configured_nothing_is_allowed() {
    let app = spawn_app_with(|_| {}).await;
    let resp = preflight(&app, DASHBOARD).await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
