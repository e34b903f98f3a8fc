//! The `serve` process as operators see it: help, request logs without
//! secrets, a graceful stop on SIGTERM, and where its bcrypt threads run.
use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::time::Duration;

use crate::helpers::{serve, sigterm, test_settings, Served, TestDatabase, PASSWORD};

/// Stops a server with SIGTERM and returns everything it logged.
pub(crate) fn stop_and_read_log(served: &mut Served) -> String {
    sigterm(&served.child);
    let mut log = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    served.child.wait().unwrap();
    log
}

#[test]
fn help_says_what_each_command_does_and_which_variables_it_reads() {
    let out = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "create-user",
        "check-config",
        "DATABASE_URL",
        "APP_ENV",
        "APP__JWT__SECRET",
        "RUST_LOG",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_taskgate"))
        .args(["create-user", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("standard input") && help.contains("--role") && help.contains("DATABASE_URL"),
        "{help}"
    );
}

#[tokio::test]
async fn request_logs_carry_method_path_status_and_latency_but_never_secrets() {
    let db = TestDatabase::migrated();
    let mut served = serve(&db, &[("APP__AUTH__BCRYPT_COST", "4")]);
    let client = reqwest::Client::new();
    let base = &served.base;
    client
        .post(format!("{base}/users/signup"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let pair: serde_json::Value = client
        .post(format!("{base}/token"))
        .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = pair["access_token"].as_str().unwrap().to_owned();
    client
        .get(format!("{base}/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // A token in the query string must not reach the log either.
    client
        .get(format!("{base}/users/me?access_token={token}"))
        .send()
        .await
        .unwrap();
    let log = stop_and_read_log(&mut served);

    let line = log
        .lines()
        .find(|l| l.contains("\"GET /users/me\" method=GET route=/users/me status=200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("127.0.0.1") && line.contains(" duration_ms=") && line.contains(" user_id="),
        "{line}"
    );
    assert!(
        log.contains("\"POST /token\" method=POST route=/token status=200"),
        "{log}"
    );
    assert!(!log.contains(&token), "the token reached the log");
    assert!(
        !log.contains(&token[..40]),
        "part of the token reached the log"
    );
    assert!(!log.contains(PASSWORD), "the password reached the log");
    assert!(!log.to_lowercase().contains("authorization"), "{log}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let db = TestDatabase::migrated();
    // A slow bcrypt keeps the login in flight when the signal arrives.
    let mut served = serve(&db, &[("APP__AUTH__BCRYPT_COST", "13")]);
    let base = served.base.clone();
    let client = reqwest::Client::new();
    let signup = client
        .post(format!("{base}/users/signup"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);

    let mut stderr = BufReader::new(served.child.stderr.take().unwrap());
    let login = tokio::spawn(async move {
        client
            .post(format!("{base}/token"))
            .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    sigterm(&served.child);
    let status = login
        .await
        .unwrap()
        .expect("the in-flight login got an answer");
    assert_eq!(status, 200, "the in-flight request finished");
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    // And it logged the shutdown rather than dying.
    let mut log = String::new();
    while stderr.read_line(&mut log).unwrap_or(0) > 0 {}
    assert!(log.contains("SIGTERM") || log.contains("graceful"), "{log}");
    assert!(
        std::net::TcpStream::connect(served.base.trim_start_matches("http://")).is_err(),
        "still listening"
    );
}

/// `server.reuse_port`: two instances listen on one port (replicas on one
/// host's network); without it the second cannot bind.
#[tokio::test]
async fn with_reuse_port_two_instances_share_one_port() {
    let db = TestDatabase::migrated();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = test_settings(&db.url);
    settings.server.port = port;
    settings.server.reuse_port = true;
    let one = taskgate::startup::Application::build(settings.clone()).expect("the first binds");
    let two =
        taskgate::startup::Application::build(settings.clone()).expect("the second binds too");
    assert_eq!((one.port(), two.port()), (port, port));
    drop(two);
    settings.server.reuse_port = false;
    let error = taskgate::startup::Application::build(settings)
        .err()
        .expect("without reuse_port the port is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
}
