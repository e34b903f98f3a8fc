//! Brute force: the per-account lockout (in the database) and the per-IP limit.
use reqwest::StatusCode;

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
        2
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
    let app = spawn_app_with(|s| s.auth.max_failed_logins = 100).await;
    app.signup("ada@example.com", PASSWORD).await;
    let attempts = (0..10).map(|_| app.login("ada@example.com", "wrong password!"));
    futures_util::future::join_all(attempts).await;
    assert_eq!(app.count("SELECT failed_logins::bigint FROM users"), 10);
}

#[tokio::test]
async fn auth_endpoints_are_throttled_per_client_ip() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = 3).await;
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
