//! Account recovery over HTTP and real SMTP: the reset link arrives and works
//! once; expired, spent and outlived tokens are one refusal; answers do not
//! tell which emails exist; the outbox loses nothing and sends nothing twice.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use taskgate::config::{AppEnv, Settings};
use taskgate::domain::Role;

use crate::helpers::{
    assert_error, serve, signal, spawn_app_with, spawn_on, test_settings, TestApp, TestUser,
    PASSWORD,
};
use crate::smtp::{recipient, reset_token, SmtpServer};

const NEW_PASSWORD: &str = "a brand new passphrase 31";
pub(crate) const DELIVERY: Duration = Duration::from_secs(15);

fn mail_to(settings: &mut Settings, smtp: &SmtpServer) {
    settings.mail.smtp_url = Some(secrecy::SecretString::from(smtp.url()));
    settings.mail.link_base_url = "https://tasks.example.com/password/reset".into();
}

impl TestApp {
    /// `POST /password/forgot`.
    pub(crate) async fn forgot(&self, email: &str) -> reqwest::Response {
        self.post_json("/password/forgot", &json!({ "email": email }))
            .await
    }

    /// `POST /password/reset`.
    async fn reset(&self, token: &str, new_password: &str) -> reqwest::Response {
        self.post_json(
            "/password/reset",
            &json!({ "token": token, "new_password": new_password }),
        )
        .await
    }

    fn audit_count(&self, kind: &str, subject: i64) -> i64 {
        self.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = '{kind}' AND subject_id = {subject}"
        ))
    }
}

pub(crate) async fn accepted(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    resp.json().await.expect("a JSON body")
}

#[tokio::test]
async fn a_reset_link_arrives_by_smtp_and_resets_the_password_once() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let ada: TestUser = app.signup_and_login(Role::User).await;

    accepted(app.forgot(&ada.email.to_uppercase()).await).await;
    let messages = smtp.wait_for(1, DELIVERY).await;
    assert_eq!(recipient(&messages[0]), ada.email);
    assert!(messages[0].contains("https://tasks.example.com/password/reset?token"));
    let token = reset_token(&messages[0]);

    // Only the token's hash is stored, and the sent mail's body is erased.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM password_resets WHERE token_hash = sha256('{token}'::bytea)"
        )),
        1
    );
    assert_eq!(
        app.count_soon(
            "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND body IS NULL",
            1
        )
        .await,
        1
    );

    let resp = app.reset(&token, NEW_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.assert_token_dead(&ada.access).await;
    assert_eq!(
        app.login(&ada.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login(&ada.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Once only.
    assert_error(
        app.reset(&token, "yet another passphrase 77").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.audit_count("password_reset_requested", ada.id), 1);
    assert_eq!(app.audit_count("password_reset", ada.id), 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'password_reset_requested' AND actor_id IS NULL AND subject_id = {} AND detail::text NOT LIKE '%{token}%'",
            ada.id
        )),
        1
    );
}

#[tokio::test]
async fn expired_outlived_and_made_up_tokens_get_one_answer() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| {
        mail_to(s, &smtp);
        s.recovery.min_interval_seconds = 0;
    })
    .await;
    let ada = app.signup_and_login(Role::User).await;

    // Expired.
    accepted(app.forgot(&ada.email).await).await;
    let token = reset_token(&smtp.wait_for(1, DELIVERY).await[0]);
    app.sql("UPDATE password_resets SET expires_at = now() - interval '1 second'");
    let expired = assert_error(
        app.reset(&token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // Outlived by a password change through another route.
    accepted(app.forgot(&ada.email).await).await;
    let token = reset_token(&smtp.wait_for(2, DELIVERY).await[1]);
    let changed = app
        .change_password(&ada, PASSWORD, "changed the usual way 55")
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    let outlived = assert_error(
        app.reset(&token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // Made up, and not even a token.
    let hashes = app.hasher.hashes_run();
    let made_up = assert_error(
        app.reset(&"ab".repeat(32), NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.hasher.hashes_run(),
        hashes,
        "no bcrypt for a token that cannot work"
    );
    let garbage = assert_error(
        app.reset("x", NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(
        expired == outlived && outlived == made_up && made_up == garbage,
        "{expired} {outlived} {made_up} {garbage}"
    );

    // The new password follows the signup rules (and nothing is spent).
    accepted(app.forgot(&ada.email).await).await;
    let token = reset_token(&smtp.wait_for(3, DELIVERY).await[2]);
    let resp = app.reset(&token, "short").await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    assert_eq!(
        app.reset(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'password_reset'"),
        1
    );
}

#[tokio::test]
async fn unknown_and_known_emails_get_the_same_answer_and_one_mail_per_interval() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let ada = app.signup_and_login(Role::User).await;
    let bob = app.signup_and_login(Role::User).await;
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        bob.id
    ));

    let started = std::time::Instant::now();
    let known = accepted(app.forgot(&ada.email).await).await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "every answer takes the same floor"
    );
    for other in ["nobody@example.com", bob.email.as_str(), "not an email"] {
        let started = std::time::Instant::now();
        assert_eq!(accepted(app.forgot(other).await).await, known, "{other}");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{other} answered early"
        );
    }
    // Bounded input: longer than any address can be.
    let long = format!("{}@example.com", "a".repeat(250));
    let body = assert_error(
        app.forgot(&long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(body["fields"]["email"].is_string(), "{body}");
    // The bound counts characters, as the schema's maxLength does: 254 of
    // them in more bytes is an address no account has, answered as any other.
    let wide = format!("{}@example.com", "é".repeat(242));
    assert!(wide.chars().count() == 254 && wide.len() > 254);
    assert_eq!(accepted(app.forgot(&wide).await).await, known);
    // Many at once for the same account: one email (one conditional upsert decides).
    let requests: Vec<_> = (0..12).map(|_| app.forgot(&ada.email)).collect();
    for resp in futures_util::future::join_all(requests).await {
        assert_eq!(accepted(resp).await, known);
    }
    smtp.wait_for(1, DELIVERY).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "only ada's first request sends");
    assert_eq!(recipient(&messages[0]), ada.email);
    assert_eq!(app.count("SELECT count(*) FROM outbox"), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'password_reset_requested'"),
        1
    );
}

#[tokio::test]
async fn mail_waits_in_the_outbox_while_smtp_is_down_and_leaves_when_it_is_back() {
    let mut smtp = SmtpServer::start();
    smtp.stop();
    let app = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let ada = app.signup_and_login(Role::User).await;
    accepted(app.forgot(&ada.email).await).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts >= 1 AND last_error IS NOT NULL"),
        1
    );
    // What waits holds no token: the link gets one as it leaves.
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE body ~ '[0-9a-f]{64}'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE body LIKE '%?token=%'"),
        1
    );
    smtp.start_again();
    let messages = smtp.wait_for(1, DELIVERY).await;
    assert_eq!(recipient(&messages[0]), ada.email);
    assert_eq!(
        app.count_soon(
            "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND body IS NULL",
            1
        )
        .await,
        1
    );
    // The link that arrived works (the failed attempts' tokens died with them).
    let resp = app.reset(&reset_token(&messages[0]), NEW_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_reset_outlived_while_its_mail_waits_is_not_mailed() {
    let mut smtp = SmtpServer::start();
    smtp.stop();
    let app = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let ada = app.signup_and_login(Role::User).await;
    accepted(app.forgot(&ada.email).await).await;
    // Remembered after all: the password changes while the mail waits.
    let changed = app
        .change_password(&ada, PASSWORD, "changed the usual way 55")
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    smtp.start_again();
    app.count_soon("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL", 1)
        .await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL
             AND body IS NULL AND last_error LIKE '%no longer live%'"
        ),
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.messages().is_empty(), "a dead link is not mailed");
}

#[tokio::test]
async fn a_mail_committed_before_a_crash_is_delivered_once_after_the_restart() {
    let mut smtp = SmtpServer::start();
    smtp.stop();
    // This one has no mail sender (production without SMTP): only the served processes send.
    let app = spawn_app_with(|s| s.env = AppEnv::Production).await;
    let ada = app.signup_and_login(Role::User).await;
    let env = [
        ("APP__MAIL__SMTP_URL", smtp.url()),
        ("APP__AUTH__BCRYPT_COST", "4".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = serve(app.db(), &env);
    let resp = app
        .client
        .post(format!("{}/password/forgot", first.base))
        .json(&json!({ "email": ada.email }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Killed once its first attempt has failed and let go of the mail.
    app.count_soon(
        "SELECT count(*) FROM outbox WHERE attempts >= 1 AND claimed_until IS NULL",
        1,
    )
    .await;
    signal(&first.child, "-KILL");
    drop(first);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
        1
    );

    smtp.start_again();
    let _second = serve(app.db(), &env);
    smtp.wait_for(1, DELIVERY).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(smtp.messages().len(), 1, "exactly once");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn two_instances_deliver_every_mail_exactly_once() {
    let smtp = SmtpServer::start();
    let one = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let mut settings = test_settings(&one.db().url);
    mail_to(&mut settings, &smtp);
    let two = spawn_on(settings).await;
    let mut users = Vec::new();
    for _ in 0..16 {
        users.push(one.signup_and_login(Role::User).await);
    }
    let requests: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(n, u)| {
            if n % 2 == 0 {
                one.forgot(&u.email)
            } else {
                two.forgot(&u.email)
            }
        })
        .collect();
    for resp in futures_util::future::join_all(requests).await {
        accepted(resp).await;
    }
    smtp.wait_for(users.len(), DELIVERY).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut got: Vec<String> = smtp.messages().iter().map(|m| recipient(m)).collect();
    let mut wanted: Vec<String> = users.iter().map(|u| u.email.clone()).collect();
    got.sort();
    wanted.sort();
    assert_eq!(got, wanted, "each mail once");
}

#[tokio::test]
async fn without_smtp_production_has_no_recovery_routes_and_development_logs_the_mail() {
    let production = spawn_app_with(|s| s.env = AppEnv::Production).await;
    let body = assert_error(
        production.forgot("ada@example.com").await,
        StatusCode::NOT_FOUND,
        "recovery_disabled",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("mail relay"),
        "{body}"
    );
    // An admin's request to mail a reset link says the same.
    let admin = production.signup_and_login(Role::Admin).await;
    let path = format!("/admin/users/{}/password-reset", admin.id);
    assert_error(
        production.admin_send_password_reset(&admin, &path).await,
        StatusCode::NOT_FOUND,
        "recovery_disabled",
    )
    .await;
    assert_error(
        production.reset(&"ab".repeat(32), NEW_PASSWORD).await,
        StatusCode::NOT_FOUND,
        "recovery_disabled",
    )
    .await;

    let development = spawn_app_with(|_| {}).await;
    let ada = development.signup_and_login(Role::User).await;
    accepted(development.forgot(&ada.email).await).await;
    // Logged instead of sent: marked sent, and nothing is left to retry.
    assert_eq!(
        development
            .count_soon("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL", 1)
            .await,
        1,
        "the development mail was not logged"
    );
}

#[tokio::test]
async fn an_admin_sends_the_same_link_without_ever_seeing_it() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let admin = app.signup_and_login(Role::Admin).await;
    let ada = app.signup_and_login(Role::User).await;
    let path = format!("/admin/users/{}/password-reset", ada.id);

    let refused = app.admin_send_password_reset(&ada, &path).await;
    assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = app.admin_send_password_reset(&admin, &path).await;
    let body = accepted(resp).await;
    assert!(!body.to_string().contains("token"), "{body}");
    let token = reset_token(&smtp.wait_for(1, DELIVERY).await[0]);
    assert_eq!(
        app.reset(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_events WHERE kind = 'password_reset_requested' AND actor_id = {} AND subject_id = {}",
            admin.id, ada.id
        )),
        1
    );

    let missing = app
        .admin_send_password_reset(&admin, "/admin/users/999999/password-reset")
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        ada.id
    ));
    let disabled = app.admin_send_password_reset(&admin, &path).await;
    assert_error(disabled, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn the_reset_page_is_served_with_a_strict_policy_and_no_inline_script() {
    let app = spawn_app_with(|_| {}).await;
    let page = app
        .get(&format!("/password/reset?token={}", "ab".repeat(32)))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("abab"),
        "the token is the script's to read, never echoed"
    );
    // Every script comes from a file of ours; no inline handlers.
    for tag in html.split("<script").skip(1) {
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(tag.contains("src=\"reset.js\""), "<script{tag}>");
    }
    assert!(
        !html.to_lowercase().contains(" on"),
        "no inline event handlers"
    );
    for (path, kind) in [
        ("/password/reset.js", "text/javascript; charset=utf-8"),
        ("/password/reset.css", "text/css; charset=utf-8"),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["content-type"], kind);
        assert_eq!(
            resp.headers()["content-security-policy"],
            headers["content-security-policy"]
        );
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");

    // Off with recovery.
    let production = spawn_app_with(|s| s.env = AppEnv::Production).await;
    for path in [
        "/password/reset",
        "/password/reset.js",
        "/password/reset.css",
    ] {
        assert_error(
            production.get(path).await,
            StatusCode::NOT_FOUND,
            "recovery_disabled",
        )
        .await;
    }
}

#[tokio::test]
async fn across_two_instances_one_email_per_interval_and_a_token_spent_once() {
    let smtp = SmtpServer::start();
    let one = spawn_app_with(|s| mail_to(s, &smtp)).await;
    let mut settings = test_settings(&one.db().url);
    mail_to(&mut settings, &smtp);
    let two = spawn_on(settings).await;
    let ada = one.signup_and_login(Role::User).await;

    // Requests for one account, at once, on both instances: one email.
    let requests: Vec<_> = (0..12)
        .map(|n| {
            if n % 2 == 0 {
                one.forgot(&ada.email)
            } else {
                two.forgot(&ada.email)
            }
        })
        .collect();
    for resp in futures_util::future::join_all(requests).await {
        accepted(resp).await;
    }
    let token = reset_token(&smtp.wait_for(1, DELIVERY).await[0]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(smtp.messages().len(), 1);

    // The token spent at once on both instances: one succeeds, the other is refused.
    let spends: Vec<_> = (0..6)
        .map(|n| {
            let password = format!("{NEW_PASSWORD} {n}");
            let (app, token) = (if n % 2 == 0 { &one } else { &two }, &token);
            async move { app.reset(token, &password).await.status() }
        })
        .collect();
    let statuses = futures_util::future::join_all(spends).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::NO_CONTENT || *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    assert_eq!(
        one.count("SELECT count(*) FROM audit_events WHERE kind = 'password_reset'"),
        1
    );
}
