//! Property tests: arbitrary input to the token verifier, the parsers of
//! domain types, and every endpoint that reads a body never panics and is
//! always answered with a 4xx.
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;

use taskgate::auth::jwt::{Keys, TokenType};
use taskgate::domain::task::parse_due_date;
use taskgate::domain::{Email, FullName, Password, TaskTitle};

use taskgate::domain::Role;

use crate::helpers::{spawn_app, test_settings};

fn keys() -> Keys {
    Keys::new(&test_settings("postgres://unused/none").jwt).expect("test keys")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_string_is_refused_as_a_token_without_panicking(token in any::<String>()) {
        let keys = keys();
        prop_assert!(keys.decode(&token, TokenType::Access).is_err());
        prop_assert!(keys.decode(&token, TokenType::Refresh).is_err());
    }

    #[test]
    fn jwt_shaped_garbage_is_refused(h in "[A-Za-z0-9_-]{0,60}", p in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,60}") {
        let token = format!("{h}.{p}.{s}");
        prop_assert!(keys().decode(&token, TokenType::Access).is_err());
    }

    #[test]
    fn domain_parsers_take_any_string(s in any::<String>()) {
        let _ = Email::parse(&s);
        let _ = Email::normalise(&s);
        let _ = Password::parse(s.clone().into());
        let _ = TaskTitle::parse(&s);
        let _ = FullName::parse(Some(s.clone()));
        let _ = parse_due_date(Some(&s));
    }
}

/// Draws `n` values from `strategy` (generation only: each failure is printed as is).
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::new(Config::default());
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("value").current())
        .collect()
}

#[tokio::test]
async fn arbitrary_bodies_and_tokens_always_get_a_4xx() {
    let app = spawn_app().await;
    let user = app.signup_and_login(Role::Admin).await;
    let bytes = proptest::collection::vec(any::<u8>(), 0..600);
    // Near-misses reach deeper than random bytes: JSON-ish and form-ish text.
    let jsonish = "\\{(\"(title|email|password|completed|due_date|refresh_token|role|q)\": ?(\"[^\"]{0,30}\"|[0-9.e+-]{1,12}|true|null|\\[\\]|\\{\\}),? ?){0,4}\\}?";
    let formish =
        "((username|password|grant_type|refresh_token|scope)=[%A-Za-z0-9@.+&=_-]{0,30}&?){0,4}";
    let mut bodies = draw(bytes, 150);
    bodies.extend(draw(jsonish, 150).into_iter().map(String::into_bytes));
    bodies.extend(draw(formish, 100).into_iter().map(String::into_bytes));

    let targets = [
        (Method::POST, "/users/signup", "application/json"),
        (Method::POST, "/token", "application/x-www-form-urlencoded"),
        (Method::POST, "/token", "multipart/form-data; boundary=xyz"),
        (Method::POST, "/refresh", "application/json"),
        (Method::POST, "/tasks", "application/json"),
        (Method::PATCH, "/tasks/1", "application/json"),
        (Method::POST, "/admin/users", "application/json"),
        (Method::PATCH, "/users/me", "application/json"),
    ];
    for body in &bodies {
        for (method, path, content_type) in &targets {
            let resp = app
                .request(method.clone(), path)
                .header("content-type", *content_type)
                .bearer_auth(&user.access)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status();
            // A body that happens to be valid may succeed; nothing may fail on our side.
            assert!(
                status.is_client_error() || status.is_success(),
                "{method} {path} answered {status} to {:?}",
                String::from_utf8_lossy(body)
            );
            if status.is_client_error() {
                let json: serde_json::Value = resp.json().await.expect("a JSON error body");
                assert!(json["error"].is_string());
            }
        }
    }
    for token in draw("[ -~]{0,300}", 200) {
        let Ok(resp) = app
            .request(Method::GET, "/users/me")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
        else {
            continue; // a header reqwest itself will not send
        };
        assert_eq!(resp.status(), 401, "token {token:?}");
    }
}
