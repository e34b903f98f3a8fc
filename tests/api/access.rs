//! The role matrix: every protected route against anonymous, user, manager
//! and admin callers. 401 without a token, 403 with the wrong role, and
//! otherwise not a refusal (the route's own answer). The routes and their
//! roles are read from the served OpenAPI document.
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

/// A concrete path for a documented one: ids that name nothing (a session id
/// as a UUID), so no allowed call changes anything but its own refusal.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{sid}" => "00000000-0000-0000-0000-000000000000",
            "{id}" if path.starts_with("/users/me/sessions") => {
                "00000000-0000-0000-0000-000000000000"
            }
            s if s.starts_with('{') => "999999",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every operation `/openapi.json` marks as needing a token, each with the
/// roles it states (`x-roles`), against anonymous, user, manager and admin
/// callers: the matrix comes from the served document, so a new protected
/// route is in it without being written here.
#[tokio::test]
async fn every_protected_route_admits_exactly_its_roles() {
    let app = spawn_app().await;
    let user = app.signup_and_login(Role::User).await;
    let manager = app.signup_and_login(Role::Manager).await;
    let admin = app.signup_and_login(Role::Admin).await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();

    // The logouts last: `/logout/all` ends every session of its caller.
    let mut paths: Vec<_> = doc["paths"].as_object().unwrap().iter().collect();
    paths.sort_by_key(|(path, _)| path.starts_with("/logout"));
    let mut checked = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if !secured {
                continue;
            }
            let allowed: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no x-roles"))
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = concrete(path);
            for caller in [Caller::Anon, Caller::User, Caller::Manager, Caller::Admin] {
                let who = match caller {
                    Caller::Anon => None,
                    Caller::User => Some(&user),
                    Caller::Manager => Some(&manager),
                    Caller::Admin => Some(&admin),
                };
                let mut req = app.request(method.clone(), &url);
                if let Some(who) = who {
                    // A logout ends the session it is sent with: it gets one of its own.
                    let token = if path.starts_with("/logout") {
                        let pair: serde_json::Value = app
                            .login(&who.email, &who.password)
                            .await
                            .json()
                            .await
                            .unwrap();
                        pair["access_token"].as_str().unwrap().to_owned()
                    } else {
                        who.access.clone()
                    };
                    req = req.bearer_auth(token);
                }
                if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                    req = req.json(&json!({}));
                }
                let resp = req.send().await.unwrap();
                let what = format!("{method} {url} as {caller:?}");
                let role = match caller {
                    Caller::Anon => None,
                    Caller::User => Some("user"),
                    Caller::Manager => Some("manager"),
                    Caller::Admin => Some("admin"),
                };
                match role {
                    None => {
                        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{what}");
                        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;
                    }
                    Some(role) if allowed.contains(&role) => assert!(
                        ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&resp.status()),
                        "{what}: {}",
                        resp.status()
                    ),
                    Some(_) => {
                        assert_eq!(
                            resp.headers()["www-authenticate"],
                            r#"Bearer error="insufficient_scope""#,
                            "{what}"
                        );
                        let err = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
                        let detail = err["detail"].as_str().unwrap();
                        assert!(
                            detail.ends_with("role required")
                                && allowed.iter().all(|r| detail.contains(r)),
                            "{what}: {detail}"
                        );
                    }
                }
            }
            checked.push(format!("{method} {path}"));
        }
    }
    // The document really lists the protected routes: some of each area and
    // of the caller's own.
    for must in [
        "GET /tasks",
        "DELETE /tasks/{id}",
        "GET /reports",
        "GET /admin/audit",
        "DELETE /admin/users/{id}/mfa",
        "POST /admin/users/{id}/password-reset",
        "PATCH /users/me",
        "DELETE /users/me/sessions/{id}",
        "POST /logout/all",
        "GET /me",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} not checked: {checked:?}"
        );
    }
    assert!(
        checked.len() >= 30,
        "{} protected operations",
        checked.len()
    );
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
