//! Brute force: the per-account lockout (in the database) and the per-IP limit.
use reqwest::StatusCode;
use std::num::NonZero;

use taskgate::domain::Role;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, spawn_on, PASSWORD};

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password_on_every_instance() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    a.signup("ada@example.com", PASSWORD).await;
    for _ in 0..5 {
        assert_error(
            a.login("ada@example.com", "wrong password!").await,
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        )
        .await;
    }
    for app in [&a, &b] {
        let resp = app.login("ada@example.com", PASSWORD).await;
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((890..=900).contains(&retry), "Retry-After {retry}");
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    assert_eq!(a.count("SELECT count(*) FROM sessions"), 0);
    assert_eq!(
        a.count("SELECT count(*) FROM audit_events WHERE kind = 'login_locked'"),
        1,
        "one event per lock"
    );
    // Other accounts are not affected.
    b.signup("bob@example.com", PASSWORD).await;
    assert_eq!(
        b.login("bob@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );

    // When the window has passed, the right password works again.
    a.sql("UPDATE users SET locked_until = now() - interval '1 second'");
    assert_eq!(
        b.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn forty_racing_attempts_on_a_locked_account_on_two_instances_add_one_event() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    a.signup("ada@example.com", PASSWORD).await;
    for _ in 0..5 {
        a.login("ada@example.com", "wrong password!").await;
    }
    let attempts = (0..40).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move { app.login("ada@example.com", PASSWORD).await.status() }
    });
    let answers = futures_util::future::join_all(attempts).await;
    assert!(
        answers.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{answers:?}"
    );
    assert_eq!(
        a.count("SELECT count(*) FROM audit_events WHERE kind = 'login_locked'"),
        1
    );
    // The next lock is reported again, once.
    a.sql("UPDATE users SET locked_until = now() - interval '1 second'");
    for _ in 0..5 {
        b.login("ada@example.com", "wrong password!").await;
    }
    for app in [&a, &b, &a] {
        assert_eq!(
            app.login("ada@example.com", PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        a.count("SELECT count(*) FROM audit_events WHERE kind = 'login_locked'"),
        2
    );
}

#[tokio::test]
async fn a_success_resets_the_count_of_consecutive_failures() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    for round in 0..2 {
        for _ in 0..4 {
            assert_eq!(
                app.login("ada@example.com", "wrong password!")
                    .await
                    .status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            app.login("ada@example.com", PASSWORD).await.status(),
            StatusCode::OK,
            "round {round}"
        );
    }
    assert_eq!(app.count("SELECT failed_logins::bigint FROM users"), 0);
}

#[tokio::test]
async fn failures_outside_the_window_do_not_add_up() {
    let app = spawn_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    for _ in 0..4 {
        app.login("ada@example.com", "wrong password!").await;
    }
    app.sql("UPDATE users SET failed_window_start = now() - interval '901 seconds'");
    app.login("ada@example.com", "wrong password!").await;
    assert_eq!(app.count("SELECT failed_logins::bigint FROM users"), 1);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let app = spawn_app_with(|s| s.auth.max_failed_logins = NonZero::new(100).unwrap()).await;
    app.signup("ada@example.com", PASSWORD).await;
    let attempts = (0..10).map(|_| app.login("ada@example.com", "wrong password!"));
    futures_util::future::join_all(attempts).await;
    assert_eq!(app.count("SELECT failed_logins::bigint FROM users"), 10);
}

#[tokio::test]
async fn auth_endpoints_are_throttled_per_client_ip() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(3).unwrap()).await;
    for _ in 0..3 {
        assert_eq!(
            app.login("nobody@example.com", PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for resp in [
        app.login("nobody@example.com", PASSWORD).await,
        app.signup("new@example.com", PASSWORD).await,
        app.post_json("/refresh", &serde_json::json!({"refresh_token": "x"}))
            .await,
    ] {
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=20).contains(&retry), "Retry-After {retry}");
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users"),
        0,
        "the throttled signup wrote nothing"
    );
    // Other routes are not throttled.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

fn statuses(resps: Vec<reqwest::Response>) -> Vec<StatusCode> {
    resps.iter().map(|r| r.status()).collect()
}

#[tokio::test]
async fn concurrent_guesses_on_two_instances_verify_at_most_the_limit() {
    let a = spawn_app().await;
    let b = spawn_on(a.settings.clone()).await;
    a.signup("ada@example.com", PASSWORD).await;
    let hashes_before = a.hasher.hashes_run() + b.hasher.hashes_run();
    let guesses = (0..50).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            app.login("ada@example.com", &format!("wrong password {i}"))
                .await
        }
    });
    let answers = statuses(futures_util::future::join_all(guesses).await);
    let failed = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(failed <= 5, "{failed} guesses verified: {answers:?}");
    assert_eq!(failed + locked, 50, "{answers:?}");
    // The right password on either instance is refused while the lock lasts.
    for app in [&a, &b] {
        let resp = app.login("ada@example.com", PASSWORD).await;
        assert!(resp.headers().contains_key("retry-after"));
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    assert!(
        a.count("SELECT count(*) FROM audit_events WHERE kind = 'login_failed'") <= 5,
        "at most the limit of failures was verified and recorded"
    );
    let hashed = a.hasher.hashes_run() + b.hasher.hashes_run() - hashes_before;
    assert!(hashed <= 5, "{hashed} hashes for 5 allowed attempts");
    assert_eq!(a.count("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn wrong_current_passwords_count_against_the_account_and_lock_its_logins() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let guesses: Vec<String> = (0..20).map(|i| format!("guess number {i}")).collect();
    let attempts = guesses
        .iter()
        .map(|guess| app.change_password(&ada, guess, "a brand new passphrase"));
    let answers = statuses(futures_util::future::join_all(attempts).await);
    let wrong = answers
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let locked = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(wrong <= 5, "{wrong} guesses checked: {answers:?}");
    assert_eq!(wrong + locked, 20, "{answers:?}");
    // The account's logins are locked too, even with the right password.
    let resp = app.login(&ada.email, PASSWORD).await;
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // And the right current password is refused while locked: nothing changed.
    let resp = app
        .change_password(&ada, PASSWORD, "a brand new passphrase")
        .await;
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'password_changed'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'login_locked'"),
        1,
        "one event per lock"
    );
}

#[tokio::test]
async fn the_right_current_password_clears_the_count_of_wrong_ones() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    for _ in 0..4 {
        let resp = app
            .change_password(&ada, "not my password", "a brand new passphrase")
            .await;
        let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "validation_error").await;
        assert_eq!(body["fields"]["current_password"], "incorrect password");
    }
    let resp = app
        .change_password(&ada, PASSWORD, "a brand new passphrase")
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT failed_logins::bigint FROM users"), 0);
}

#[tokio::test]
async fn the_password_change_route_is_throttled_per_client() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = NonZero::new(3).unwrap()).await;
    // Signup and login take two of the three.
    let ada = app.signup_and_login(Role::User).await;
    let change = || app.change_password(&ada, "not my password", "a brand new passphrase");
    assert_eq!(change().await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = change().await;
    assert!(resp.headers().contains_key("retry-after"));
    let body = assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(
        body["detail"].as_str().unwrap().contains("address"),
        "{body}"
    );
}

/// A password change checks the new password's rules first (a broken one
/// costs no hash and no attempt), and a successful change ends the account's
/// run of failures.
#[tokio::test]
async fn a_password_change_costs_no_attempt_for_a_bad_new_password_and_clears_failures() {
    let app = spawn_app().await;
    let ada = app.signup_and_login(Role::User).await;
    let failed = format!(
        "SELECT failed_logins::bigint FROM users WHERE id = {}",
        ada.id
    );
    let weak = serde_json::json!({"current_password": "not it", "new_password": "password1"});
    let body = assert_error(
        app.change_password_with(&ada, weak).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    )
    .await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    assert_eq!(app.count(&failed), 0, "no attempt taken");

    let wrong =
        serde_json::json!({"current_password": "not it", "new_password": "a brand new passphrase"});
    for _ in 0..2 {
        app.change_password_with(&ada, wrong.clone()).await;
    }
    assert_eq!(app.count(&failed), 2);
    let good =
        serde_json::json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    assert_eq!(
        app.change_password_with(&ada, good).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.count(&failed),
        0,
        "the change ended the run of failures"
    );
}
