//! Bounded bodies: size (multipart counted byte for byte), parts, names, and time.
use std::io::{Read, Write};
use std::num::NonZero;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp, PASSWORD};

const BOUNDARY: &str = "XyZbOuNdArY";

/// A multipart body of `parts` (name, value) pairs.
fn multipart(parts: &[(String, String)]) -> Vec<u8> {
    let mut body = String::new();
    for (name, value) in parts {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body.into_bytes()
}

async fn post_multipart(app: &TestApp, body: Vec<u8>, chunked: bool) -> reqwest::Response {
    let request = app.request(Method::POST, "/token").header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    let request = if chunked {
        // No Content-Length: the server must count the bytes as they come.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
        request.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
    } else {
        request.body(body)
    };
    request.send().await.unwrap()
}

fn login_parts() -> Vec<(String, String)> {
    vec![
        ("username".into(), "nobody@example.com".into()),
        ("password".into(), PASSWORD.into()),
    ]
}

#[tokio::test]
async fn a_multipart_form_is_held_to_the_body_limit_byte_for_byte() {
    let app = spawn_app().await;
    // The control: a normal multipart login is read.
    let resp = post_multipart(&app, multipart(&login_parts()), true).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // 10 MB of empty parts, declared or streamed: 413, not read to the end.
    let empty: Vec<(String, String)> = (0..190_650).map(|_| ("x".into(), String::new())).collect();
    let ten_mb = multipart(&empty);
    assert!(ten_mb.len() > 10_000_000);
    for chunked in [false, true] {
        let resp = post_multipart(&app, ten_mb.clone(), chunked).await;
        assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    assert_eq!(app.hasher.hashes_run(), 1, "only the control was checked");
}

#[tokio::test]
async fn a_multipart_form_has_at_most_16_parts_with_short_names() {
    let app = spawn_app().await;
    let mut parts = login_parts();
    parts.extend((0..14).map(|i| (format!("extra{i}"), "v".to_owned())));
    let resp = post_multipart(&app, multipart(&parts), false).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    parts.push(("one_too_many".into(), "v".into()));
    let resp = post_multipart(&app, multipart(&parts), false).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let mut named = login_parts();
    named.push(("n".repeat(65), "v".into()));
    let resp = post_multipart(&app, multipart(&named), false).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

/// Sends the head of a request promising 100 bytes, then trickles a byte
/// every `every`; returns what the server answered, when its answer began,
/// and whether it then closed the connection.
fn trickle(
    address: &str,
    path: &str,
    content_type: &str,
    every: Duration,
) -> (String, Duration, bool) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(8) {
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                answered.get_or_insert_with(|| started.elapsed());
                answer.extend_from_slice(&buf[..n]);
            }
            Err(_) => {
                if answer.is_empty() && stream.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(every);
            }
        }
    }
    let answered = answered.unwrap_or_else(|| started.elapsed());
    (
        String::from_utf8_lossy(&answer).into_owned(),
        answered,
        closed,
    )
}

#[tokio::test]
async fn a_body_that_trickles_in_is_408_within_the_timeout_and_the_connection_closes() {
    let app = spawn_app_with(|s| s.server.body_timeout_seconds = NonZero::new(1).unwrap()).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    for (path, content_type) in [
        ("/users/signup", "application/json"),
        ("/token", "application/x-www-form-urlencoded"),
    ] {
        let address = address.clone();
        let (answer, took, closed) = tokio::task::spawn_blocking(move || {
            trickle(&address, path, content_type, Duration::from_millis(300))
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            took < Duration::from_secs(2),
            "{path}: answered after {took:?}"
        );
        assert!(closed, "{path}: the connection stays open");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"], "request_timeout", "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
    // A body that arrives in time is unaffected.
    assert_eq!(
        app.signup("ada@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
}
