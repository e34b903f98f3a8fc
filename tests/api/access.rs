//! The role matrix: every protected route against anonymous, user, manager
//! and admin callers. 401 without a token, 403 with the wrong role, and
//! otherwise not a refusal (the route's own answer).
use reqwest::{Method, StatusCode};
use serde_json::json;

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Caller {
    Anon,
    User,
    Manager,
    Admin,
}

/// Who may use each area (docs/API.md, "Roles").
const EVERYONE: &[Caller] = &[Caller::User, Caller::Manager, Caller::Admin];
const STAFF: &[Caller] = &[Caller::Manager, Caller::Admin];
const ADMINS: &[Caller] = &[Caller::Admin];

/// (method, path, body, who may, the 403 detail for the others)
type Route = (
    Method,
    String,
    Option<serde_json::Value>,
    &'static [Caller],
    &'static str,
);

#[tokio::test]
async fn every_protected_route_admits_exactly_its_roles() {
    let app = spawn_app().await;
    let user = app.signup_and_login(Role::User).await;
    let manager = app.signup_and_login(Role::Manager).await;
    let admin = app.signup_and_login(Role::Admin).await;
    let target = user.id;

    let routes: Vec<Route> = vec![
        (Method::GET, "/tasks".into(), None, EVERYONE, ""),
        (
            Method::POST,
            "/tasks".into(),
            Some(json!({"title": "t"})),
            EVERYONE,
            "",
        ),
        (Method::GET, "/tasks/999999".into(), None, EVERYONE, ""),
        (
            Method::PUT,
            "/tasks/999999".into(),
            Some(json!({"title": "t"})),
            EVERYONE,
            "",
        ),
        (
            Method::PATCH,
            "/tasks/999999".into(),
            Some(json!({})),
            EVERYONE,
            "",
        ),
        (Method::DELETE, "/tasks/999999".into(), None, EVERYONE, ""),
        (
            Method::GET,
            "/reports".into(),
            None,
            STAFF,
            "admin or manager role required",
        ),
        (
            Method::GET,
            "/admin".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            "/admin/dashboard".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            "/admin/users".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"email": "made@example.com", "password": "correct horse battery"})),
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            format!("/admin/users/{target}"),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::PATCH,
            format!("/admin/users/{target}"),
            Some(json!({})),
            ADMINS,
            "admin role required",
        ),
        (
            Method::POST,
            "/admin/users/999999/revoke-sessions".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            "/admin/users/999999/sessions".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::DELETE,
            "/admin/users/999999/sessions/00000000-0000-0000-0000-000000000000".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::POST,
            "/admin/users/999999/password".into(),
            Some(json!({"new_password": "a brand new passphrase"})),
            ADMINS,
            "admin role required",
        ),
        (
            Method::DELETE,
            "/admin/users/999999".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            "/admin/tasks".into(),
            None,
            ADMINS,
            "admin role required",
        ),
        (
            Method::GET,
            "/admin/audit".into(),
            None,
            ADMINS,
            "admin role required",
        ),
    ];

    for (method, path, body, allowed, detail) in &routes {
        for caller in [Caller::Anon, Caller::User, Caller::Manager, Caller::Admin] {
            let mut req = app.request(method.clone(), path);
            req = match caller {
                Caller::Anon => req,
                Caller::User => req.bearer_auth(&user.access),
                Caller::Manager => req.bearer_auth(&manager.access),
                Caller::Admin => req.bearer_auth(&admin.access),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            let what = format!("{method} {path} as {caller:?}");
            if caller == Caller::Anon {
                assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
                assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
            } else if allowed.contains(&caller) {
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&resp.status()),
                    "{what}: {}",
                    resp.status()
                );
            } else {
                assert_eq!(
                    resp.headers()["www-authenticate"],
                    r#"Bearer error="insufficient_scope""#,
                    "{what}"
                );
                let err = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
                assert_eq!(err["detail"], *detail, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn a_forbidden_caller_gets_403_before_any_body_validation() {
    let app = spawn_app().await;
    let user = app.signup_and_login(Role::User).await;
    // An invalid body to an admin route: the role decides first, revealing no rules.
    let resp = app
        .request(Method::POST, "/admin/users")
        .bearer_auth(&user.access)
        .json(&json!({"nonsense": true}))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("SELECT count(*) FROM users"), 1);
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_access_on_the_very_next_request() {
    let app = spawn_app().await;
    let boss = app.signup_and_login(Role::Admin).await;
    let other = app.signup_and_login(Role::Admin).await;
    assert_eq!(
        app.get_with("/admin", &other.access).await.status(),
        StatusCode::OK
    );
    let resp = app
        .request(Method::PATCH, &format!("/admin/users/{}", other.id))
        .bearer_auth(&boss.access)
        .json(&json!({"role": "manager"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The same token, whose `role` claim still says admin.
    assert_error(
        app.get_with("/admin", &other.access).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.get_with("/reports", &other.access).await.status(),
        StatusCode::OK,
        "now a manager"
    );
}

#[tokio::test]
async fn a_promotion_takes_effect_on_the_next_request_too() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    assert_error(
        app.get_with("/reports", &ada.access).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    app.set_role(ada.id, Role::Manager);
    assert_eq!(
        app.get_with("/reports", &ada.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_under_guarded_areas_do_not_leak_to_anonymous_callers() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    assert_error(
        app.get("/admin/nothing-here").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.get_with("/admin/nothing-here", &admin.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
