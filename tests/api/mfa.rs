//! The TOTP second factor: enrolment, login with a code or a recovery code,
//! replay, the lockout, removal, the admin's reset and the role policy. Codes
//! are computed here from the secret the service hands out.
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use totp_rs::{Builder, Secret};

use taskgate::domain::Role;

use crate::helpers::{
    assert_error, at_once_on_two, spawn_app, spawn_app_with, spawn_on, TestApp, TestUser,
};

/// The code an authenticator app shows `offset` seconds from now.
fn code(secret: &str, offset: i64) -> String {
    let bytes = Secret::try_from_base32(secret)
        .expect("base32 secret")
        .as_ref()
        .to_vec();
    let totp = Builder::new()
        .with_secret(bytes)
        .build()
        .expect("RFC 6238 parameters");
    let now = chrono::Utc::now().timestamp() + offset;
    totp.generate(now as u64).to_string()
}

/// Enrols `who` and confirms with the current code: the secret and the
/// recovery codes.
async fn enable(app: &TestApp, who: &TestUser) -> (String, Vec<String>) {
    let body = json!({ "current_password": who.password });
    let resp = app
        .send_as(who, Method::POST, "/users/me/mfa/totp", Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let enrolment: Value = resp.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let body = json!({ "code": code(&secret, 0) });
    let resp = app
        .send_as(who, Method::POST, "/users/me/mfa/totp/confirm", Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let codes: Vec<String> =
        serde_json::from_value(resp.json::<Value>().await.unwrap()["recovery_codes"].clone())
            .unwrap();
    (secret, codes)
}

async fn login_with(app: &TestApp, who: &TestUser, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut fields = vec![
        ("username", who.email.as_str()),
        ("password", who.password.as_str()),
    ];
    fields.extend_from_slice(extra);
    app.post_form("/token", &fields).await
}

fn sessions_of(app: &TestApp, who: &TestUser) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM sessions WHERE user_id = {} AND revoked_at IS NULL",
        who.id
    ))
}

fn events(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE kind = '{kind}'"
    ))
}

#[tokio::test]
async fn enrol_confirm_then_logins_need_a_code_accepted_once() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let me: Value = app.me(&ada.access).await.json().await.unwrap();
    assert_eq!(me["mfa_enabled"], false);

    // A wrong password is refused and counted like one on a password change.
    let wrong = json!({ "current_password": "not the password" });
    let resp = app
        .send_as(&ada, Method::POST, "/users/me/mfa/totp", Some(wrong))
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["current_password"].is_string(), "{body}");
    assert_eq!(
        app.count(&format!(
            "SELECT failed_logins::bigint FROM users WHERE id = {}",
            ada.id
        )),
        1
    );

    // Asking again replaces a pending secret: the first one's codes confirm nothing.
    let ask = || json!({ "current_password": ada.password });
    let first: Value = app
        .send_as(&ada, Method::POST, "/users/me/mfa/totp", Some(ask()))
        .await
        .json()
        .await
        .unwrap();
    let resp = app
        .send_as(&ada, Method::POST, "/users/me/mfa/totp", Some(ask()))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "a secret is never cached"
    );
    let second: Value = resp.json().await.unwrap();
    let secret = second["secret"].as_str().unwrap().to_owned();
    assert_ne!(first["secret"], second["secret"]);
    let uri = second["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/taskgate:")
            && uri.contains(&format!("secret={secret}"))
            && uri.contains("issuer=taskgate"),
        "{uri}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT failed_logins::bigint FROM users WHERE id = {}",
            ada.id
        )),
        0,
        "the right password ends the run of failures"
    );
    let stale = json!({ "code": code(first["secret"].as_str().unwrap(), 0) });
    let resp = app
        .send_as(
            &ada,
            Method::POST,
            "/users/me/mfa/totp/confirm",
            Some(stale),
        )
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["code"].is_string(), "{body}");
    let me: Value = app.me(&ada.access).await.json().await.unwrap();
    assert_eq!(me["mfa_enabled"], false, "pending until confirmed");
    // Until confirmed, logins need no code.
    assert_eq!(login_with(&app, &ada, &[]).await.status(), StatusCode::OK);

    let confirm = json!({ "code": code(&secret, 0) });
    let resp = app
        .send_as(
            &ada,
            Method::POST,
            "/users/me/mfa/totp/confirm",
            Some(confirm.clone()),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let codes: Vec<String> =
        serde_json::from_value(resp.json::<Value>().await.unwrap()["recovery_codes"].clone())
            .unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        10
    );
    let me: Value = app.me(&ada.access).await.json().await.unwrap();
    assert_eq!(me["mfa_enabled"], true);
    assert_eq!(events(&app, "mfa_enabled"), 1);
    // Stored as digests, never as typed.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = {}",
            ada.id
        )),
        10
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mfa_recovery_codes \
             WHERE code_hash = sha256(convert_to('{}', 'UTF8'))",
            codes[0].replace('-', "")
        )),
        1,
        "SHA-256 of the code's letters"
    );
    // Enabled: enrolling or confirming again is a conflict.
    let resp = app
        .send_as(&ada, Method::POST, "/users/me/mfa/totp", Some(ask()))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;
    let resp = app
        .send_as(
            &ada,
            Method::POST,
            "/users/me/mfa/totp/confirm",
            Some(confirm.clone()),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;

    // The right password alone: 403 mfa_required, no tokens, no session.
    let before = sessions_of(&app, &ada);
    let resp = login_with(&app, &ada, &[]).await;
    let body = assert_error(resp, StatusCode::FORBIDDEN, "mfa_required").await;
    assert!(body.get("access_token").is_none());
    assert_eq!(sessions_of(&app, &ada), before);

    // A wrong code: 401 invalid_grant, audited.
    let resp = login_with(&app, &ada, &[("otp", "000000")]).await;
    let resp = if resp.status() == StatusCode::OK {
        // 000000 was the right code by chance (one in a million): try another.
        login_with(&app, &ada, &[("otp", "111111")]).await
    } else {
        resp
    };
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert_eq!(events(&app, "mfa_failed"), 1);
    // The confirming code's step is used: its code does not log in.
    let confirming = confirm["code"].as_str().unwrap().to_owned();
    let resp = login_with(&app, &ada, &[("otp", &confirming)]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;

    // The next step's code (one step of drift) logs in once, and only once.
    let next = code(&secret, 30);
    let resp = login_with(&app, &ada, &[("otp", &next)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let pair: Value = resp.json().await.unwrap();
    assert!(pair["access_token"].is_string());
    let resp = login_with(&app, &ada, &[("otp", &next)]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // An older code after a newer one is refused too.
    let resp = login_with(&app, &ada, &[("otp", &code(&secret, -30))]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // Two steps ahead is beyond the drift allowed.
    let resp = login_with(&app, &ada, &[("otp", &code(&secret, 90))]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE kind = 'login_succeeded' \
             AND detail->>'second_factor' = 'totp'"
        ),
        1
    );

    // No secret or code in any audit detail, and none in the tokens.
    let details = app.count(&format!(
        "SELECT count(*) FROM audit_events WHERE detail::text LIKE '%{secret}%' \
         OR detail::text LIKE '%{next}%' OR detail::text LIKE '%{}%'",
        codes[0]
    ));
    assert_eq!(details, 0);
    let (_, claims) = crate::helpers::decode_jwt_parts(pair["access_token"].as_str().unwrap());
    assert!(!claims.to_string().contains(&secret));
}

#[tokio::test]
async fn a_recovery_code_logs_in_once_in_place_of_a_code() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (secret, codes) = enable(&app, &ada).await;

    // Typed as people type it: upper case, spaces for dashes.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let resp = login_with(&app, &ada, &[("recovery_code", &typed)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(events(&app, "mfa_recovery_code_used"), 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = {}",
            ada.id
        )),
        9
    );
    let resp = login_with(&app, &ada, &[("recovery_code", &codes[3])]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    let resp = login_with(&app, &ada, &[("recovery_code", "not-a-code")]).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // Both at once is a malformed request, not a guess.
    let resp = login_with(
        &app,
        &ada,
        &[("otp", &code(&secret, 30)), ("recovery_code", &codes[4])],
    )
    .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["otp"].is_string() && body["fields"]["recovery_code"].is_string());
    assert_eq!(events(&app, "mfa_failed"), 2);
}

#[tokio::test]
async fn wrong_codes_count_in_the_lockout() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let (secret, _) = enable(&app, &ada).await;
    let wrong = if code(&secret, 30) == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        let resp = login_with(&app, &ada, &[("otp", wrong)]).await;
        if resp.status() == StatusCode::OK {
            panic!("a wrong code logged in");
        }
        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    }
    // Locked: even the right password with the right code waits.
    let resp = login_with(&app, &ada, &[("otp", &code(&secret, 30))]).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(events(&app, "mfa_failed"), 5);

    // The right password without a code clears nothing either: a code
    // cannot be guessed faster than a password by alternating.
    let bob = app.signup_and_login(Role::User).await;
    let (bob_secret, _) = enable(&app, &bob).await;
    for _ in 0..5 {
        let resp = login_with(&app, &bob, &[]).await;
        assert_error(resp, StatusCode::FORBIDDEN, "mfa_required").await;
    }
    let resp = login_with(&app, &bob, &[("otp", &code(&bob_secret, 30))]).await;
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn one_code_raced_on_two_instances_opens_one_session() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    let ada = a.signup_and_login(Role::User).await;
    let (secret, codes) = enable(&a, &ada).await;
    let before = sessions_of(&a, &ada);

    for extra in [
        ("otp", code(&secret, 30)),
        ("recovery_code", codes[0].clone()),
    ] {
        // Each race starts with no failures counted (a refused one stays counted).
        a.sql("UPDATE users SET failed_logins = 0, failed_window_start = NULL");
        let answers = at_once_on_two(&a, &b, 4, |_, base| {
            a.client.post(format!("{base}/token")).form(&[
                ("username", ada.email.as_str()),
                ("password", ada.password.as_str()),
                (extra.0, extra.1.as_str()),
            ])
        })
        .await;
        let statuses: Vec<_> = answers.iter().map(|r| r.status()).collect();
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!((ok, refused), (1, 3), "{}: {statuses:?}", extra.0);
    }
    assert_eq!(sessions_of(&a, &ada), before + 2);
}

#[tokio::test]
async fn removing_the_second_factor_takes_the_password_and_a_code() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let nothing = json!({ "current_password": ada.password, "code": "123456" });
    let resp = app
        .send_as(&ada, Method::DELETE, "/users/me/mfa", Some(nothing))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;

    let (secret, codes) = enable(&app, &ada).await;
    let bad_password = json!({ "current_password": "not it", "code": code(&secret, 30) });
    let resp = app
        .send_as(&ada, Method::DELETE, "/users/me/mfa", Some(bad_password))
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["current_password"].is_string());
    let bad_code = json!({ "current_password": ada.password, "code": "not-a-code" });
    let resp = app
        .send_as(&ada, Method::DELETE, "/users/me/mfa", Some(bad_code))
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["code"].is_string());
    assert_eq!(events(&app, "mfa_failed"), 1);
    assert_eq!(
        app.me(&ada.access).await.json::<Value>().await.unwrap()["mfa_enabled"],
        true
    );

    // A recovery code does it too.
    let body = json!({ "current_password": ada.password, "code": codes[9] });
    let resp = app
        .send_as(&ada, Method::DELETE, "/users/me/mfa", Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(&ada.access).await.json::<Value>().await.unwrap()["mfa_enabled"],
        false
    );
    assert_eq!(events(&app, "mfa_disabled"), 1);
    assert_eq!(app.count("SELECT count(*) FROM mfa_recovery_codes"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE totp_secret IS NOT NULL"),
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT failed_logins::bigint FROM users WHERE id = {}",
            ada.id
        )),
        0
    );
    // The password alone logs in again; a code sent anyway is ignored.
    let resp = login_with(&app, &ada, &[("otp", "123456")]).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Enabled again, the app's code removes it too (and is then used).
    let (secret, _) = enable(&app, &ada).await;
    let body = json!({ "current_password": ada.password, "code": code(&secret, 30) });
    let resp = app
        .send_as(&ada, Method::DELETE, "/users/me/mfa", Some(body))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(events(&app, "mfa_disabled"), 2);
    assert_eq!(login_with(&app, &ada, &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor_and_ends_the_users_sessions() {
    let app = spawn_app().await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    enable(&app, &ada).await;

    let path = format!("/admin/users/{}/mfa", ada.id);
    let resp = app.send_as(&ada, Method::DELETE, &path, None).await;
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app
        .send_as(&admin, Method::DELETE, "/admin/users/999999/mfa", None)
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    let resp = app.send_as(&admin, Method::DELETE, &path, None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&ada.access).await;
    assert_eq!(sessions_of(&app, &ada), 0);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'mfa_reset' \
             AND actor_id = {} AND subject_id = {} AND (detail->>'was_enabled')::boolean",
            admin.id, ada.id
        )),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM mfa_recovery_codes"), 0);
    let resp = login_with(&app, &ada, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.unwrap();
    let me: Value = app
        .me(token["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], false);
    // The admin list shows each user's state.
    let list: Value = app
        .get_with("/admin/users?limit=100", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["mfa_enabled"] == false));
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_reaches_only_its_enrolment_until_then() {
    let app = spawn_app_with(|s| s.auth.mfa_required_roles = vec![Role::Admin]).await;
    let admin = app.signup_and_login(Role::Admin).await;
    let user = app.signup_and_login(Role::User).await;

    for (method, path) in [
        (Method::GET, "/admin"),
        (Method::GET, "/admin/users"),
        (Method::GET, "/reports"),
        (Method::GET, "/tasks"),
        (Method::GET, "/users/me/sessions"),
    ] {
        let resp = app.send_as(&admin, method.clone(), path, None).await;
        assert_error(resp, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    }
    let resp = app
        .change_password(&admin, &admin.password, "another good passphrase")
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    // Who they are, and the way to enrol, stay open.
    for path in ["/users/me", "/me"] {
        assert_eq!(
            app.get_with(path, &admin.access).await.status(),
            StatusCode::OK
        );
    }
    let resp = app
        .send_as(
            &admin,
            Method::PATCH,
            "/users/me",
            Some(json!({ "full_name": "Ada" })),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Roles outside the list are not affected.
    assert_eq!(
        app.get_with("/tasks", &user.access).await.status(),
        StatusCode::OK
    );

    enable(&app, &admin).await;
    assert_eq!(
        app.get_with("/admin", &admin.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with("/tasks", &admin.access).await.status(),
        StatusCode::OK
    );
    // Logout was open all along.
    let other = app.signup_and_login(Role::Admin).await;
    assert_eq!(app.logout(&other).await.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&other.access).await;
}

#[tokio::test]
async fn racing_confirmations_on_two_instances_enable_once() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    let ada = a.signup_and_login(Role::User).await;
    let body = json!({ "current_password": ada.password });
    let enrolment: Value = a
        .send_as(&ada, Method::POST, "/users/me/mfa/totp", Some(body))
        .await
        .json()
        .await
        .unwrap();
    let confirm = json!({ "code": code(enrolment["secret"].as_str().unwrap(), 0) });
    let answers = at_once_on_two(&a, &b, 4, |_, base| {
        a.client
            .post(format!("{base}/users/me/mfa/totp/confirm"))
            .bearer_auth(&ada.access)
            .json(&confirm)
    })
    .await;
    let statuses: Vec<_> = answers.iter().map(|r| r.status()).collect();
    let enabled = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((enabled, conflicts), (1, 3), "{statuses:?}");
    assert_eq!(events(&a, "mfa_enabled"), 1);
    assert_eq!(
        a.count(&format!(
            "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = {}",
            ada.id
        )),
        10,
        "one set of recovery codes: the one shown"
    );
}
