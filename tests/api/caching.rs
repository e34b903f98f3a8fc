//! Personal data is never cached: every answer to a request with credentials
//! says `Cache-Control: no-store`, every answer says `nosniff`; public
//! answers keep their own caching.
use reqwest::{Method, StatusCode};

use taskgate::domain::Role;

use crate::helpers::spawn_app;

#[tokio::test]
async fn answers_to_credentialed_requests_are_no_store_and_every_answer_nosniff() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    for path in [
        "/users/me",
        "/me",
        "/users/me/sessions",
        "/tasks",
        "/admin/users",
        "/admin/audit",
        "/admin/dashboard",
        "/reports",
    ] {
        let resp = app.get_with(path, &admin.access).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    // A refusal of credentials that are wrong is not cached either.
    let resp = app.get_with("/users/me", "not-a-token").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // The token answer keeps its own (RFC 6749: no-store).
    let resp = app
        .request(Method::POST, "/token")
        .form(&[
            ("username", admin.email.as_str()),
            ("password", admin.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    // Public answers: nosniff, and no Cache-Control of ours.
    let resp = app.get("/healthz").await;
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers().get("cache-control").is_none());
    let resp = app.get("/no/such/path").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}
