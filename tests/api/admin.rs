//! The admin API: users, the last-admin rule, everyone's tasks, the audit log, the dashboard.
use reqwest::StatusCode;
use serde_json::{json, Value};

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app, PASSWORD};

#[tokio::test]
async fn the_admin_welcome_names_the_admin() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let body: Value = app
        .get_with("/admin", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"message": format!("Welcome admin {}", admin.email)})
    );
}

#[tokio::test]
async fn the_dashboard_counts_users_tasks_and_live_sessions() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    app.signup_and_login(Role::Manager).await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        bob.id
    ));
    app.sql(&format!(
        "INSERT INTO tasks (owner_id, title, completed) VALUES ({0}, 'a', true), ({0}, 'b', false), ({0}, 'c', false)",
        ada.id
    ));
    app.sql(&format!(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = {}",
        ada.id
    ));
    let body: Value = app
        .get_with("/admin/dashboard", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({
            "users": {"total": 4, "by_role": {"user": 2, "manager": 1, "admin": 1}, "disabled": 1},
            "tasks": {"total": 3, "completed": 1},
            "sessions": {"active": 3}
        })
    );
}

#[tokio::test]
async fn admins_list_users_by_role_and_search_with_paging() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    for email in [
        "ann@acme.example",
        "ben@acme.example",
        "cat@other.example",
        "100%_real@other.example",
    ] {
        app.signup(email, PASSWORD).await;
    }
    let ben = app.count("SELECT id FROM users WHERE email = 'ben@acme.example'");
    app.set_role(ben, Role::Manager);

    let resp = app.get_with("/admin/users?q=ACME", &admin.access).await;
    assert_eq!(resp.headers()["x-total-count"], "2");
    let found: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|u| u.get("password_hash").is_none()));

    let managers: Vec<Value> = app
        .get_with("/admin/users?role=manager", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0]["email"], "ben@acme.example");
    // LIKE wildcards in the search term match only themselves.
    let literal: Vec<Value> = app
        .get_with("/admin/users?q=%25_", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(literal.len(), 1);

    let resp = app
        .get_with("/admin/users?limit=2&offset=1", &admin.access)
        .await;
    assert_eq!(resp.headers()["x-total-count"], "5");
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0]["id"].as_i64() < page[1]["id"].as_i64());
    for (query, rows) in [("limit=4&offset=1", 4), ("offset=4", 1), ("offset=9", 0)] {
        let resp = app
            .get_with(&format!("/admin/users?{query}"), &admin.access)
            .await;
        assert_eq!(resp.headers()["x-total-count"], "5", "{query}");
        assert_eq!(
            resp.json::<Vec<Value>>().await.unwrap().len(),
            rows,
            "{query}"
        );
    }

    for query in ["role=root", "limit=500", "offset=-3", "sort=email"] {
        let resp = app
            .get_with(&format!("/admin/users?{query}"), &admin.access)
            .await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    }
}

#[tokio::test]
async fn admins_create_users_of_any_role_under_the_signup_rules() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let resp = app.admin_create_user(&admin, json!({"email": " Mgr@Example.com", "password": PASSWORD, "role": "manager", "full_name": "M"}))
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(
        (created["email"].as_str(), created["role"].as_str()),
        (Some("mgr@example.com"), Some("manager"))
    );
    assert_eq!(location, format!("/admin/users/{}", created["id"]));
    assert_eq!(
        app.login("mgr@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'user_created' AND actor_id = {} AND subject_id = {}",
            admin.id, created["id"]
        )),
        1
    );
    for (body, status) in [
        (
            json!({"email": "mgr@example.com", "password": PASSWORD}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"email": "x@example.com", "password": "password1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"email": "x@example.com", "password": "x".repeat(73)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "role": "root"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "disabled": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        assert_eq!(app.admin_create_user(&admin, body).await.status(), status);
    }
}

#[tokio::test]
async fn admins_read_and_change_users_and_disabling_revokes_sessions() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let path = format!("/admin/users/{}", ada.id);
    let user: Value = app
        .get_with(&path, &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], ada.email.as_str());
    assert_error(
        app.get_with("/admin/users/999999", &admin.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let changed: Value = app
        .admin_update_user(
            &admin,
            &path,
            json!({"full_name": "Ada L.", "role": "manager"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["full_name"].as_str(), changed["role"].as_str()),
        (Some("Ada L."), Some("manager"))
    );

    let resp = app
        .admin_update_user(&admin, &path, json!({"disabled": true}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    app.assert_token_dead(&ada.access).await;
    assert_error(
        app.login(&ada.email, PASSWORD).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {} AND revoked_at IS NULL",
            ada.id
        )),
        0
    );

    app.admin_update_user(&admin, &path, json!({"disabled": false}))
        .await;
    assert_eq!(
        app.login(&ada.email, PASSWORD).await.status(),
        StatusCode::OK
    );

    let detail = app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE kind = 'user_updated' AND actor_id = {} AND subject_id = {}
           AND detail->'role'->>'to' = 'manager' AND detail::text NOT LIKE '%password%'",
        admin.id, ada.id
    ));
    assert_eq!(detail, 1);
    for bad in [
        json!({"role": "root"}),
        json!({"email": "x@example.com"}),
        json!({"password_hash": "x"}),
    ] {
        let resp = app.admin_update_user(&admin, &path, bad).await;
        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    }
    let resp = app
        .admin_update_user(&admin, "/admin/users/999999", json!({"role": "user"}))
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn deleting_a_user_takes_their_tasks_and_sessions() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    app.sql(&format!(
        "INSERT INTO tasks (owner_id, title) VALUES ({0}, 'a'), ({0}, 'b')",
        ada.id
    ));
    let path = format!("/admin/users/{}", ada.id);
    assert_eq!(
        app.admin_delete_user(&admin, &path).await.status(),
        StatusCode::NO_CONTENT
    );
    app.assert_token_dead(&ada.access).await;
    for table in ["tasks", "sessions"] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM {table} WHERE {}",
                if table == "tasks" {
                    format!("owner_id = {}", ada.id)
                } else {
                    format!("user_id = {}", ada.id)
                }
            )),
            0
        );
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'user_deleted' AND subject_id = {} AND detail->>'email' = '{}'",
            ada.id, ada.email
        )),
        1
    );
    assert_error(
        app.admin_delete_user(&admin, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let path = format!("/admin/users/{}", admin.id);
    for body in [json!({"role": "manager"}), json!({"disabled": true})] {
        let resp = app.admin_update_user(&admin, &path, body).await;
        assert_error(resp, StatusCode::CONFLICT, "conflict").await;
    }
    assert_error(
        app.admin_delete_user(&admin, &path).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    // A disabled admin does not count as the active one that could take over.
    let spare = app.signup_and_login(Role::Admin).await;
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        spare.id
    ));
    let resp = app
        .admin_update_user(&admin, &path, json!({"role": "user"}))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;
    // Harmless changes to the last admin are fine.
    let resp = app
        .admin_update_user(&admin, &path, json!({"role": "admin", "full_name": "Root"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.enabled_with_role(Role::Admin), 1);
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let a = app.signup_and_login(Role::Admin).await;
        let b = app.signup_and_login(Role::Admin).await;
        let (path_a, path_b) = (
            format!("/admin/users/{}", a.id),
            format!("/admin/users/{}", b.id),
        );
        let (ra, rb) = tokio::join!(
            app.admin_update_user(&a, &path_b, json!({"role": "user"})),
            app.admin_update_user(&b, &path_a, json!({"role": "user"})),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        // One wins; the other is refused (403 if its demotion landed first, else 409).
        assert!(
            statuses == [200, 403] || statuses == [200, 409],
            "{statuses:?}"
        );
        assert_eq!(app.enabled_with_role(Role::Admin), 1);
        app.sql("DELETE FROM users");
    }
}

#[tokio::test]
async fn admins_revoke_a_users_sessions() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let path = format!("/admin/users/{}/revoke-sessions", ada.id);
    assert_eq!(
        app.admin_revoke_sessions(&admin, &path).await.status(),
        StatusCode::NO_CONTENT
    );
    app.assert_token_dead(&ada.access).await;
    assert_eq!(
        app.get_with("/admin", &admin.access).await.status(),
        StatusCode::OK,
        "the admin's own session lives"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'sessions_revoked'"),
        1
    );
    let resp = app
        .admin_revoke_sessions(&admin, "/admin/users/999999/revoke-sessions")
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn admins_see_everyones_tasks_filtered_by_owner() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let (ada, bob) = (
        app.signup_and_login(Role::User).await,
        app.signup_and_login(Role::User).await,
    );
    app.sql(&format!(
        "INSERT INTO tasks (owner_id, title) VALUES ({0}, 'a1'), ({0}, 'a2'), ({1}, 'b1')",
        ada.id, bob.id
    ));
    let resp = app.get_with("/admin/tasks", &admin.access).await;
    assert_eq!(resp.headers()["x-total-count"], "3");
    let resp = app
        .get_with(
            &format!("/admin/tasks?owner_id={}&limit=1", ada.id),
            &admin.access,
        )
        .await;
    assert_eq!(resp.headers()["x-total-count"], "2");
    let tasks: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["owner_id"], ada.id);
    let resp = app.get_with("/admin/tasks?limit=0", &admin.access).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
}

#[tokio::test]
async fn the_audit_log_lists_events_newest_first_by_kind() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    app.login("nobody@example.com", "wrong password!").await;
    let resp = app.get_with("/admin/audit", &admin.access).await;
    let total: i64 = resp.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let events: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(total, 3, "signup, login_succeeded, login_failed");
    for query in ["limit=2", "offset=3"] {
        let resp = app
            .get_with(&format!("/admin/audit?{query}"), &admin.access)
            .await;
        assert_eq!(resp.headers()["x-total-count"], "3", "{query}");
    }
    assert_eq!(events[0]["kind"], "login_failed");
    assert_eq!(events[0]["actor_id"], Value::Null);
    assert_eq!(events[0]["detail"]["email"], "nobody@example.com");
    let mut keys: Vec<&str> = events[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "actor_email",
            "actor_id",
            "at",
            "detail",
            "id",
            "ip",
            "kind",
            "request_id",
            "subject_email",
            "subject_id"
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first"
    );

    let signups: Vec<Value> = app
        .get_with("/admin/audit?kind=signup", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signups.len(), 1);
    assert_eq!(
        (
            signups[0]["actor_id"].as_i64(),
            signups[0]["subject_id"].as_i64()
        ),
        (Some(admin.id), Some(admin.id))
    );
    let resp = app
        .get_with("/admin/audit?kind=nonsense", &admin.access)
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE detail::text LIKE '%{PASSWORD}%'"
        )),
        0
    );
}

/// An admin gets a user back in without mail: the new password works, the
/// old one and every session do not, the lockout is lifted, and the audit
/// names the admin.
#[tokio::test]
async fn admins_set_a_users_password() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    for _ in 0..5 {
        app.login(&ada.email, "wrong password!").await;
    }
    let own = format!("/admin/users/{}/password", ada.id);
    let post = reqwest::Method::POST;
    let weak = json!({"new_password": "password1"});
    let weak = app.send_as(&admin, post.clone(), &own, Some(weak)).await;
    let body = assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    let good = json!({"new_password": "a brand new passphrase"});
    let unknown = "/admin/users/999999/password";
    let unknown = app
        .send_as(&admin, post.clone(), unknown, Some(good.clone()))
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;

    let resp = app.send_as(&admin, post, &own, Some(good)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&ada.access).await;
    assert_eq!(
        app.login(&ada.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&ada.email, "a brand new passphrase")
            .await
            .status(),
        StatusCode::OK,
        "the lockout was lifted"
    );
    let event = app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE kind = 'password_set' \
         AND actor_id = {} AND subject_id = {} AND (detail->>'sessions_revoked')::int >= 1",
        admin.id, ada.id
    ));
    assert_eq!(event, 1);
}

/// The audit log as an investigation tool: filters by actor, subject, address
/// and time, combinable with `kind`, and each event names its people by their
/// current email (null once they are deleted; the ids stay).
#[tokio::test]
async fn the_audit_log_filters_by_who_where_and_when_and_names_people() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let resp = app
        .admin_create_user(
            &admin,
            json!({"email": "bob@example.com", "password": "a brand new passphrase"}),
        )
        .await;
    let bob_id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let events = |query: String| {
        let (app, token) = (&app, admin.access.clone());
        async move {
            let resp = app.get_with(&format!("/admin/audit?{query}"), &token).await;
            assert_eq!(resp.status(), StatusCode::OK, "{query}");
            resp.json::<Vec<Value>>().await.unwrap()
        }
    };
    let by_admin = events(format!("actor_id={}", admin.id)).await;
    assert!(!by_admin.is_empty());
    assert!(
        by_admin.iter().all(|e| e["actor_id"] == admin.id),
        "{by_admin:?}"
    );
    assert!(by_admin
        .iter()
        .all(|e| e["actor_email"] == admin.email.as_str()));
    let to_bob = events(format!("subject_id={bob_id}&kind=user_created")).await;
    assert_eq!(to_bob.len(), 1, "{to_bob:?}");
    assert_eq!(to_bob[0]["subject_email"], "bob@example.com");
    assert_eq!(to_bob[0]["actor_email"], admin.email.as_str());
    assert!(!events("ip=127.0.0.1".into()).await.is_empty());
    assert!(events("ip=10.9.9.9".into()).await.is_empty());
    assert!(events("since=2999-01-01T00:00:00Z".into()).await.is_empty());
    assert!(events("until=2000-01-01T00:00:00Z".into()).await.is_empty());
    let window =
        events("since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B02:00".into()).await;
    assert!(window.len() >= 2);

    // Once Bob is gone his events keep his id, not his address.
    let resp = app
        .admin_delete_user(&admin, &format!("/admin/users/{bob_id}"))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let to_bob = events(format!("subject_id={bob_id}&kind=user_created")).await;
    assert_eq!(to_bob[0]["subject_id"], bob_id);
    assert!(to_bob[0]["subject_email"].is_null());

    let resp = app
        .get_with("/admin/audit?since=yesterday&until=soon", &admin.access)
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["since"].is_string() && body["fields"]["until"].is_string());
}
