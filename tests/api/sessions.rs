//! Refresh rotation, reuse detection, the grace window, session lifetimes,
//! listing and ending sessions, logout, password change, and two instances
//! of the service agreeing on all of it through the database.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::num::NonZero;

use taskgate::domain::Role;

use crate::helpers::{
    assert_error, at_once_on_two, decode_jwt_parts, spawn_app, spawn_app_with, spawn_on, TestApp,
    TestUser, PASSWORD,
};

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/refresh", &json!({ "refresh_token": token }))
        .await
}

async fn pair(resp: reqwest::Response) -> (String, String) {
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn strict_app() -> TestApp {
    spawn_app_with(|s| s.jwt.refresh_reuse_grace_seconds = 0).await
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_in_the_same_session() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (access, refreshed) = pair(refresh(&app, &ada.refresh).await).await;
    assert_ne!(refreshed, ada.refresh);
    let (_, old) = decode_jwt_parts(&ada.refresh);
    let (_, new) = decode_jwt_parts(&refreshed);
    assert_eq!(old["sid"], new["sid"], "same session");
    assert_ne!(old["jti"], new["jti"]);
    assert_eq!(app.me(&access).await.status(), StatusCode::OK);

    // The form grant does the same.
    let (_, again) = pair(
        app.post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refreshed),
            ],
        )
        .await,
    )
    .await;
    assert_ne!(again, refreshed);
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'token_refreshed'"),
        2
    );
}

#[tokio::test]
async fn a_retired_refresh_token_after_the_grace_window_revokes_the_whole_session() {
    let app = strict_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (access, newest) = pair(refresh(&app, &ada.refresh).await).await;

    let resp = refresh(&app, &ada.refresh).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // Every token of that login stops working: the newest refresh token and the access tokens.
    assert_error(
        refresh(&app, &newest).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    app.assert_token_dead(&access).await;
    app.assert_token_dead(&ada.access).await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"),
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'refresh_reuse_detected' AND subject_id = {}",
            ada.id
        )),
        1
    );
}

#[tokio::test]
async fn a_retired_token_past_the_default_grace_revokes_the_session() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, newest) = pair(refresh(&app, &ada.refresh).await).await;
    // As if the rotation happened 11 seconds ago (grace is 10).
    app.sql(
        "UPDATE sessions SET previous_retired_at = previous_retired_at - interval '11 seconds'",
    );
    assert_error(
        refresh(&app, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_error(
        refresh(&app, &newest).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn within_the_grace_window_the_retired_token_gets_the_current_refresh_token_and_nothing_is_revoked(
) {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, first) = pair(refresh(&app, &ada.refresh).await).await;
    let (access, second) = pair(refresh(&app, &ada.refresh).await).await;
    assert_eq!(second, first, "the very string the first caller received");
    assert_eq!(
        app.me(&access).await.status(),
        StatusCode::OK,
        "a fresh access token"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    // Only the token just retired gets that courtesy: the current one still rotates normally.
    let (_, third) = pair(refresh(&app, &first).await).await;
    assert_ne!(third, first);
    // And the login's original token is now two rotations old: reuse.
    assert_error(
        refresh(&app, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn racing_refreshes_with_no_grace_let_exactly_one_succeed() {
    let app = strict_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let attempts = (0..8).map(|_| refresh(&app, &ada.refresh));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn racing_refreshes_within_the_grace_all_get_the_same_token_and_the_session_survives() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let attempts = (0..8).map(|_| refresh(&app, &ada.refresh));
    let mut tokens = Vec::new();
    for resp in futures_util::future::join_all(attempts).await {
        tokens.push(pair(resp).await.1);
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "one current refresh token"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    assert_eq!(refresh(&app, &tokens[0]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unusable_refresh_tokens_are_401_invalid_grant() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for (token, why) in [
        (ada.access.as_str(), "an access token"),
        ("garbage", "garbage"),
    ] {
        let body = assert_error(
            refresh(&app, token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        )
        .await;
        assert!(body["detail"].is_string(), "{why}");
    }
    let resp = app
        .post_form("/token", &[("grant_type", "refresh_token")])
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(body["fields"]["refresh_token"], "field required");
    assert_error(
        app.post_json("/refresh", &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    // Presenting an access token revoked nothing.
    assert_eq!(app.me(&ada.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app_with(|s| s.jwt.refresh_ttl_seconds = NonZero::new(1).unwrap()).await;
    let ada = app.signup_and_login(Role::User).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_error(
        refresh(&app, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn refresh_for_a_disabled_or_deleted_user_is_refused() {
    let app = spawn_app().await;
    let (ada, bob) = (
        app.signup_and_login(Role::User).await,
        app.signup_and_login(Role::User).await,
    );
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        ada.id
    ));
    app.sql(&format!("DELETE FROM users WHERE id = {}", bob.id));
    assert_error(
        refresh(&app, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_error(
        refresh(&app, &bob.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn rotation_never_extends_a_session_past_its_absolute_end() {
    let app = spawn_app_with(|s| s.jwt.session_max_seconds = NonZero::new(120).unwrap()).await;
    let ada = app.signup_and_login(Role::User).await;
    let (_, login_claims) = decode_jwt_parts(&ada.refresh);
    let session_end = login_claims["iat"].as_i64().unwrap() + 120;
    assert_eq!(
        login_claims["exp"], session_end,
        "refresh_ttl is longer than the session"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (access, rotated) = pair(refresh(&app, &ada.refresh).await).await;
    assert_eq!(decode_jwt_parts(&rotated).1["exp"], session_end);
    assert!(decode_jwt_parts(&access).1["exp"].as_i64().unwrap() <= session_end);
}

#[tokio::test]
async fn users_see_and_end_their_own_sessions() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let second = app
        .request(Method::POST, "/token")
        .header("user-agent", "second-device")
        .form(&[("username", ada.email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let (second_access, _) = pair(second).await;
    let bob = app.signup_and_login(Role::User).await;

    let resp = app.my_sessions(&ada.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-total-count"], "2");
    let list: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(list.len(), 2, "only Ada's, not Bob's");
    let mut keys: Vec<&str> = list[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "current",
            "expires_at",
            "id",
            "ip",
            "last_used_at",
            "user_agent"
        ]
    );
    assert_eq!(
        (list[0]["current"].as_bool(), list[1]["current"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(list[1]["user_agent"], "second-device");
    assert_eq!(list[0]["ip"], "127.0.0.1");

    let bobs_sid = decode_jwt_parts(&bob.access).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [
        bobs_sid.as_str(),
        "not-a-uuid",
        &uuid::Uuid::new_v4().to_string(),
    ] {
        let resp = app
            .request(Method::DELETE, &format!("/users/me/sessions/{id}"))
            .bearer_auth(&ada.access)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(
        app.me(&bob.access).await.status(),
        StatusCode::OK,
        "Bob unaffected"
    );

    let second_sid = list[1]["id"].as_str().unwrap();
    let resp = app
        .request(Method::DELETE, &format!("/users/me/sessions/{second_sid}"))
        .bearer_auth(&ada.access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&second_access).await;
    let list: Vec<Value> = app.my_sessions(&ada.access).await.json().await.unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn listing_sessions_does_not_touch_last_used_at() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    app.sql("UPDATE sessions SET last_used_at = '2026-01-01T00:00:00Z'");
    let list: Vec<Value> = app.my_sessions(&ada.access).await.json().await.unwrap();
    assert_eq!(list[0]["last_used_at"], "2026-01-01T00:00:00Z");
    pair(refresh(&app, &ada.refresh).await).await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE last_used_at > now() - interval '1 minute'"),
        1
    );
}

#[tokio::test]
async fn logout_ends_this_session_only() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (other_access, other_refresh) = pair(app.login(&ada.email, PASSWORD).await).await;

    assert_eq!(app.logout(&ada).await.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&ada.access).await;
    assert_error(
        refresh(&app, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.me(&other_access).await.status(), StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'logout'"),
        1
    );

    // With a malformed optional body, nothing is revoked.
    let other = TestUser {
        access: other_access.clone(),
        refresh: other_refresh.clone(),
        ..ada.clone()
    };
    let resp = app
        .request(Method::POST, "/logout")
        .bearer_auth(&other.access)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.me(&other_access).await.status(), StatusCode::OK);
    let resp = app.logout_session(&other, &other_refresh).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(
        refresh(&app, &other_refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn logout_all_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    let (other_access, other_refresh) = pair(app.login(&ada.email, PASSWORD).await).await;
    assert_eq!(app.logout_all(&ada).await.status(), StatusCode::NO_CONTENT);
    for token in [&ada.access, &other_access] {
        app.assert_token_dead(token).await;
    }
    assert_error(
        refresh(&app, &other_refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.me(&bob.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'logout_all'"),
        1
    );
    assert_error(
        app.request(Method::POST, "/logout/all")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn a_password_change_checks_the_current_password_and_revokes_every_session() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (other_access, _) = pair(app.login(&ada.email, PASSWORD).await).await;
    let hash_before = app.count("SELECT length(password_hash)::bigint FROM users");

    let wrong =
        json!({"current_password": "not my password", "new_password": "a brand new passphrase"});
    let body = assert_error(
        app.change_password_with(&ada, wrong).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(body["fields"]["current_password"].is_string());
    let weak = json!({"current_password": PASSWORD, "new_password": "password1"});
    let body = assert_error(
        app.change_password_with(&ada, weak).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(body["fields"]["new_password"]
        .as_str()
        .unwrap()
        .contains("common"));
    assert_eq!(
        app.me(&ada.access).await.status(),
        StatusCode::OK,
        "nothing changed"
    );
    assert_eq!(
        app.count("SELECT length(password_hash)::bigint FROM users"),
        hash_before
    );
    assert_eq!(
        app.login(&ada.email, PASSWORD).await.status(),
        StatusCode::OK
    );

    let good = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    assert_eq!(
        app.change_password_with(&ada, good).await.status(),
        StatusCode::NO_CONTENT
    );
    for token in [&ada.access, &other_access] {
        app.assert_token_dead(token).await;
    }
    assert_eq!(
        app.login(&ada.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&ada.email, "a brand new passphrase")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'password_changed'"),
        1
    );
}

#[tokio::test]
async fn a_logout_through_one_instance_is_seen_by_another_at_once() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    let ada = a.signup_and_login(Role::User).await;
    assert_eq!(b.me(&ada.access).await.status(), StatusCode::OK);
    assert_eq!(a.logout(&ada).await.status(), StatusCode::NO_CONTENT);
    b.assert_token_dead(&ada.access).await;
    assert_error(
        refresh(&b, &ada.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn dead_sessions_are_pruned() {
    let app = spawn_app().await;
    let live = app.signup_and_login(Role::User).await;
    app.signup_and_login(Role::User).await;
    app.signup_and_login(Role::User).await;
    app.sql(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = (SELECT max(id) FROM users);
         UPDATE sessions SET revoked_at = now() - interval '2 days' WHERE user_id = (SELECT max(id) - 1 FROM users) AND user_id <> {}",
        live.id
    ));
    let pruned = taskgate::db::sessions::prune(&mut app.db().connect(), 1000).unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 1);
    assert_eq!(app.me(&live.access).await.status(), StatusCode::OK);
}

/// `/users/me/sessions` pages like every list, and refuses what it does not know.
#[tokio::test]
async fn the_session_list_is_paged_and_refuses_unknown_parameters() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for _ in 0..2 {
        pair(app.login(&ada.email, PASSWORD).await).await;
    }
    let resp = app
        .get_with("/users/me/sessions?limit=2", &ada.access)
        .await;
    assert_eq!(resp.headers()["x-total-count"], "3");
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["current"], true, "oldest first: the first login's");
    let rest: Vec<Value> = app
        .get_with("/users/me/sessions?limit=2&offset=2", &ada.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    for bad in ["?foo=1", "?limit=0", "?offset=-1"] {
        let resp = app
            .get_with(&format!("/users/me/sessions{bad}"), &ada.access)
            .await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    }
}

/// `auth.max_sessions_per_user`: a login past it ends the user's oldest
/// session, and racing logins on two instances never leave more.
#[tokio::test]
async fn a_login_past_the_session_limit_ends_the_oldest_session() {
    // Racing logins from clients of their own (each its own hashing line).
    let app = spawn_app_with(|s| {
        s.auth.max_sessions_per_user = NonZero::new(3).unwrap();
        s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let second = spawn_on(app.settings.clone()).await;
    let ada = app.signup_and_login(Role::User).await;
    let mut tokens = vec![ada.access.clone()];
    for _ in 0..3 {
        tokens.push(pair(app.login(&ada.email, PASSWORD).await).await.0);
    }
    app.assert_token_dead(&tokens[0]).await;
    for token in &tokens[1..] {
        assert_eq!(app.me(token).await.status(), StatusCode::OK);
    }
    let live = format!(
        "SELECT count(*) FROM sessions WHERE user_id = {} AND revoked_at IS NULL",
        ada.id
    );
    assert_eq!(app.count(&live), 3);

    // Four at once: within the lockout's five attempts in flight.
    let answers = at_once_on_two(&app, &second, 4, |i, base| {
        app.client
            .post(format!("{base}/token"))
            .header("x-forwarded-for", format!("10.0.0.{i}"))
            .form(&[("username", ada.email.as_str()), ("password", PASSWORD)])
    })
    .await;
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(app.count(&live), 3);
}

/// An admin sees a user's sessions and ends one: its tokens are refused on
/// the other instance at once, the others still work, and it is audited.
#[tokio::test]
async fn an_admin_lists_a_users_sessions_and_ends_one_on_every_instance() {
    let app = spawn_app().await;
    let second = spawn_on(app.settings.clone()).await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let (phone, _) = pair(app.login(&ada.email, PASSWORD).await).await;
    let path = format!("/admin/users/{}/sessions", ada.id);
    let resp = app.get_with(&path, &admin.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-total-count"], "2");
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert!(
        listed.iter().all(|s| s.get("current").is_none()),
        "{listed:?}"
    );
    let phone_sid = decode_jwt_parts(&phone).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(listed[1]["id"], phone_sid.as_str());
    let limited = app
        .get_with(&format!("{path}?limit=1"), &admin.access)
        .await;
    assert_eq!(limited.json::<Vec<Value>>().await.unwrap().len(), 1);

    let resp = app
        .send_as(&admin, Method::DELETE, &format!("{path}/{phone_sid}"), None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    second.assert_token_dead(&phone).await;
    assert_eq!(second.me(&ada.access).await.status(), StatusCode::OK);
    let audited = format!(
        "SELECT count(*) FROM audit_events WHERE kind = 'session_revoked' \
         AND actor_id = {} AND subject_id = {} AND detail->>'session_id' = '{phone_sid}'",
        admin.id, ada.id
    );
    assert_eq!(app.count(&audited), 1);

    // Another user's session, an ended one, a malformed id, an unknown user: 404.
    let ada_sid = decode_jwt_parts(&ada.access).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = app.signup_and_login(Role::User).await;
    for path in [
        format!("/admin/users/{}/sessions/{ada_sid}", bob.id),
        format!("{path}/{phone_sid}"),
        format!("{path}/not-a-uuid"),
    ] {
        let resp = app.send_as(&admin, Method::DELETE, &path, None).await;
        assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    let resp = app
        .get_with("/admin/users/999999/sessions", &admin.access)
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}
