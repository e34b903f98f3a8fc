//! Fair, bounded hashing: each client's logins wait in a line of their own,
//! the lines served in turn; a place is given only while its expected wait
//! fits `auth.hash_wait_ms`, the rest answered at once (429 to a client past
//! its own line, 503 when every line is full). Distinct clients are stood in
//! for by `X-Forwarded-For` behind a trusted proxy on 127.0.0.1.
use std::io::Write;
use std::num::NonZero;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use taskgate::config::Settings;
use tokio::task::JoinHandle;

use crate::helpers::{assert_error, spawn_app_with, TestApp, PASSWORD};

/// One hash at a time at a real cost, so that hashes overlap (cost 13:
/// about 0.4 s, clearly longer than a refusal takes), waiting at most
/// `wait_ms` for a place.
async fn one_thread_app(wait_ms: u64) -> TestApp {
    spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.bcrypt_cost = 13;
        s.auth.hash_concurrency = NonZero::new(1);
        s.auth.hash_wait_ms = NonZero::new(wait_ms).unwrap();
    })
    .await
}

/// One hash at a time, and room for every login that waits.
async fn bounded_app() -> TestApp {
    one_thread_app(30_000).await
}

/// A refusal comes at once: the service's 50 ms pause, and a debug build
/// beside other tests, but never a hash's wait.
const REFUSED_AT_ONCE: Duration = Duration::from_millis(200);

/// 127.0.0.1 is a trusted proxy: `X-Forwarded-For` names the client.
fn behind_a_proxy(s: &mut Settings) {
    s.server.trusted_proxies = taskgate::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
}

/// A login as client `ip`: its status, how long it took and its `Retry-After`.
type Answer = (StatusCode, Duration, Option<u64>);

fn spawn_login(app: &TestApp, ip: &str, email: &str, password: &str) -> JoinHandle<Answer> {
    let request = app
        .client
        .post(format!("{}/token", app.address))
        .header("x-forwarded-for", ip)
        .form(&[("username", email), ("password", password)]);
    tokio::spawn(async move {
        let started = Instant::now();
        let resp = request.send().await.unwrap();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        (resp.status(), started.elapsed(), retry)
    })
}

/// `n` logins of unknown emails from `n` distinct clients, sent at once.
fn spawn_unknown_logins(app: &TestApp, n: usize) -> Vec<JoinHandle<Answer>> {
    (0..n)
        .map(|i| {
            let ip = format!("203.0.113.{}", i + 1);
            spawn_login(app, &ip, &format!("nobody{i}@example.com"), PASSWORD)
        })
        .collect()
}

async fn answers(logins: Vec<JoinHandle<Answer>>) -> Vec<Answer> {
    futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn logins_of_many_clients_beyond_the_expected_wait_are_503_at_once() {
    let app = one_thread_app(500).await;
    let (mut admitted, mut refused) = (0, 0);
    for (status, took, retry) in answers(spawn_unknown_logins(&app, 10)).await {
        match status {
            StatusCode::UNAUTHORIZED => admitted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(took < REFUSED_AT_ONCE, "a refusal took {took:?}");
                assert!(retry.is_some_and(|r| r >= 1), "Retry-After {retry:?}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    // One hashing, and as many waiting as about 500 ms of hashes at cost 12.
    assert!((1..=6).contains(&admitted), "{admitted} admitted");
    assert_eq!(admitted + refused, 10);
    assert_eq!(app.hasher.hashes_run(), admitted as u64);
    let refusal = app.login("late@example.com", PASSWORD).await;
    if refusal.status() == StatusCode::SERVICE_UNAVAILABLE {
        assert_error(refusal, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
}

#[tokio::test]
async fn a_client_past_its_own_line_gets_429_while_another_is_served_in_turn() {
    // Room for about 8 of the flood's hashes, so the other client's two
    // (the one running and its own) fit even while a loaded machine doubles
    // a hash's time.
    let app = one_thread_app(4000).await;
    let flood: Vec<_> = (0..12)
        .map(|i| {
            spawn_login(
                &app,
                "198.51.100.9",
                &format!("flood{i}@example.com"),
                PASSWORD,
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = spawn_login(&app, "203.0.113.7", "other@example.com", PASSWORD);
    let flood = answers(flood).await;
    let (other_status, other_took, _) = other.await.unwrap();
    assert_eq!(
        other_status,
        StatusCode::UNAUTHORIZED,
        "the other client got in"
    );
    let admitted: Vec<_> = flood
        .iter()
        .filter(|(s, ..)| *s == StatusCode::UNAUTHORIZED)
        .collect();
    let limited: Vec<_> = flood
        .iter()
        .filter(|(s, ..)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!admitted.is_empty() && !limited.is_empty(), "{flood:?}");
    assert_eq!(admitted.len() + limited.len(), 12, "{flood:?}");
    for (_, took, retry) in &limited {
        assert!(*took < REFUSED_AT_ONCE, "a refusal took {took:?}");
        assert!(retry.is_some_and(|r| r >= 1), "Retry-After {retry:?}");
    }
    // Served in turn: the other client waited for about one of the flood's
    // hashes, not for the flood's whole line.
    let flood_last = admitted.iter().map(|(_, took, _)| *took).max().unwrap();
    assert!(
        admitted.len() < 3 || other_took + Duration::from_millis(100) < flood_last,
        "the other client took {other_took:?}, the flood's last {flood_last:?}"
    );
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .header("x-forwarded-for", "198.51.100.9")
        .form(&[("username", "again@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    // The flood is over: its line is free again.
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Opens `n` connections as client `ip` that send a login's headers
/// announcing a 100-byte body and never send it; they stay open until the
/// returned sender drops.
fn hold_idle_sockets(app: &TestApp, ip: &str, n: usize) -> std::sync::mpsc::Sender<()> {
    let address = app.address.trim_start_matches("http://").to_owned();
    let ip = ip.to_owned();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let sockets: Vec<_> = (0..n)
            .map(|_| {
                let mut stream = std::net::TcpStream::connect(&address).unwrap();
                write!(
                    stream,
                    "POST /token HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {ip}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
                )
                .unwrap();
                stream
            })
            .collect();
        let _ = stopped.recv();
        drop(sockets);
    });
    stop
}

#[tokio::test]
async fn idle_sockets_of_one_client_hold_no_place_in_line() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.bcrypt_cost = 8;
        s.rate_limit.auth_per_minute = NonZero::new(30).unwrap();
    })
    .await;
    let users: Vec<String> = (0..12).map(|i| format!("user{i}@example.com")).collect();
    for email in &users {
        assert_eq!(
            app.signup(email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    let changer = app.signup_and_login(taskgate::domain::Role::User).await;
    let stop = hold_idle_sockets(&app, "198.51.100.66", 6);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 12 clients log in once a second each for four seconds.
    let mut logins = Vec::new();
    for _ in 0..4 {
        for (i, email) in users.iter().enumerate() {
            logins.push(spawn_login(
                &app,
                &format!("203.0.113.{}", i + 1),
                email,
                PASSWORD,
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let signup = app
        .client
        .post(format!("{}/users/signup", app.address))
        .header("x-forwarded-for", "203.0.113.100")
        .json(&json!({"email": "newcomer@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let changed = app
        .change_password(&changer, PASSWORD, "a brand new passphrase")
        .await;
    let answers = answers(logins).await;
    drop(stop);
    assert!(
        answers.iter().all(|(s, ..)| *s == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(signup.status(), StatusCode::CREATED);
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE ip LIKE '203.0.113.%'"),
        48
    );
}

/// Another client's login beside a flood: its status, and how many hashes
/// the service ran from its sending to its answer (its own included).
type Beside = (StatusCode, u64);

/// One client floods `/token` from 32 connections for `seconds`, ignoring
/// `Retry-After`, while 8 others each log in about once a second (the next
/// login when the last is answered, at most one a second, as a person
/// does); returns the others' answers.
async fn flood_beside_others(app: &TestApp, seconds: u64) -> Vec<Beside> {
    let flooder = "flooder@example.com";
    assert_eq!(
        app.signup(flooder, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let users: Vec<String> = (0..8).map(|i| format!("user{i}@example.com")).collect();
    for email in &users {
        assert_eq!(
            app.signup(email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let flood: Vec<_> = (0..32)
        .map(|_| {
            let request = app
                .client
                .post(format!("{}/token", app.address))
                .header("x-forwarded-for", "198.51.100.99")
                .form(&[("username", flooder), ("password", PASSWORD)]);
            tokio::spawn(async move {
                while Instant::now() < end {
                    let _ = request.try_clone().unwrap().send().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let others: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, email)| {
            let (app_client, url) = (app.client.clone(), format!("{}/token", app.address));
            let (ip, email) = (format!("203.0.113.{}", i + 1), email.clone());
            let hasher = app.hasher.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while Instant::now() + Duration::from_millis(500) < end {
                    let started = Instant::now();
                    let before = hasher.hashes_run();
                    let resp = app_client
                        .post(&url)
                        .header("x-forwarded-for", &ip)
                        .form(&[("username", email.as_str()), ("password", PASSWORD)])
                        .send()
                        .await
                        .unwrap();
                    answers.push((resp.status(), hasher.hashes_run() - before));
                    tokio::time::sleep_until((started + Duration::from_secs(1)).into()).await;
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for other in others {
        answers.extend(other.await.unwrap());
    }
    for f in flood {
        f.await.unwrap();
    }
    answers
}

/// Hashing threads of the flood tests.
const FLOOD_THREADS: usize = 2;

/// At least 90% of the others logged in, and 90% of them waited at most
/// about one round of the lines: the 9 clients' turns, plus what was already
/// running when each arrived and what finished around its own database
/// work. Counted in hashes, not seconds, so a machine slowed by the tests
/// beside this one does not move it; served first come first served, a
/// login would wait behind the flood's 32 places.
fn assert_served(answers: &[Beside]) {
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert!(
        ok * 10 >= answers.len() * 9,
        "{ok} of {} others logged in: {answers:?}",
        answers.len()
    );
    let mut waited: Vec<_> = answers.iter().map(|(_, hashes)| *hashes).collect();
    waited.sort();
    let p90 = waited[(waited.len() * 9).div_ceil(10) - 1];
    let one_round = 9 + 4 * FLOOD_THREADS as u64;
    assert!(
        p90 <= one_round,
        "p90 of hashes run while a login waited: {p90} (at most {one_round}): {waited:?}"
    );
}

/// A 32-connection flood beside 8 others, at cost 10, with the throttle at
/// `per_minute`: at least 90% of the others' logins are 200, and they wait
/// for their turn, not for the flood.
async fn others_are_served_beside_a_flood(per_minute: u32) {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.auth.bcrypt_cost = 10;
        s.auth.hash_concurrency = NonZero::new(FLOOD_THREADS);
        // Room for a round of 9 clients' hashes even while a loaded machine
        // makes each several times slower: what is asserted is the order
        // they are served in, not the machine's speed.
        s.auth.hash_wait_ms = NonZero::new(5000).unwrap();
        s.rate_limit.auth_per_minute = NonZero::new(per_minute).unwrap();
    })
    .await;
    assert_served(&flood_beside_others(&app, 5).await);
}

#[tokio::test]
async fn a_flood_from_one_client_leaves_the_others_logging_in_throttled() {
    others_are_served_beside_a_flood(30).await;
}

#[tokio::test]
async fn a_flood_from_one_client_leaves_the_others_logging_in_unthrottled() {
    others_are_served_beside_a_flood(1_000_000).await;
}

#[tokio::test]
async fn the_reset_page_is_served_while_every_line_is_full() {
    let app = one_thread_app(300).await;
    let held = spawn_unknown_logins(&app, 6);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = app.login("late@example.com", PASSWORD).await;
    assert_error(refused, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // The page hashes nothing: it never waits for a place.
    let page = app
        .get(&format!("/password/reset?token={}", "ab".repeat(32)))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    answers(held).await;
}

#[tokio::test]
async fn a_queued_login_whose_client_disconnects_never_hashes() {
    let app = bounded_app().await;
    app.signup("ada@example.com", PASSWORD).await;
    let before = app.hasher.hashes_run();
    // One login holds the only turn...
    let first = {
        let (client, url) = (app.client.clone(), format!("{}/token", app.address));
        tokio::spawn(async move {
            client
                .post(url)
                .form(&[("username", "ada@example.com"), ("password", PASSWORD)])
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    // ...a second waits for it, then its client goes away.
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let body = "username=ada%40example.com&password=whatever-it-is";
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(stream);
    })
    .await
    .unwrap();
    assert_eq!(first.await.unwrap().unwrap(), StatusCode::OK);
    // Time for the dropped one to have hashed, had it been kept.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.hasher.hashes_run() - before,
        1,
        "only the connected login hashed"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE kind = 'login_failed'"),
        0,
        "the dropped login was never checked"
    );
}

/// The hashing threads keep the service's own priority and policy, and ask
/// for a short time slice (on a kernel with custom slices, 6.12 and later).
#[tokio::test]
async fn hashing_threads_keep_the_services_priority_with_a_short_slice() {
    let _app = bounded_app().await;
    let own = nice_and_policy(
        &std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat is readable"),
    );
    let threads = hashing_threads();
    assert!(!threads.is_empty(), "no hashing thread found");
    let wrong: Vec<_> = threads
        .iter()
        .filter(|(_, nice, policy, _)| (nice, policy) != (&own.0, &own.1))
        .collect();
    assert!(
        wrong.is_empty(),
        "hashing threads not at the service's (nice, policy) {own:?}: {wrong:?}"
    );
    if kernel_has_custom_slices() {
        let slice = taskgate::auth::gate::HASHING_SLICE.as_nanos() as u64;
        let wrong: Vec<_> = threads.iter().filter(|t| t.3 != slice).collect();
        assert!(
            wrong.is_empty(),
            "hashing threads without a {slice} ns slice: {wrong:?}"
        );
    }
}

/// Linux 6.12 added custom time slices for normal threads.
fn kernel_has_custom_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (6, 12)
}

/// The time slice a thread asked for (`sched_runtime` from sched_getattr(2)).
fn slice_of(tid: i32) -> u64 {
    // SAFETY: sched_getattr writes at most `size` bytes into `attr`.
    unsafe {
        let mut attr: libc::sched_attr = std::mem::zeroed();
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        let done = libc::syscall(
            libc::SYS_sched_getattr,
            tid,
            &mut attr as *mut libc::sched_attr,
            size,
            0u32,
        );
        assert_eq!(
            done,
            0,
            "sched_getattr: {}",
            std::io::Error::last_os_error()
        );
        attr.sched_runtime
    }
}

/// (name, nice, policy, slice) of every hashing thread of this process.
fn hashing_threads() -> Vec<(String, String, String, u64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task is readable") {
        let Ok(task) = task else { continue };
        // A thread may end between the listing and the reads (an app stopping).
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        if !comm.starts_with("bcrypt-") {
            continue;
        }
        let (nice, policy) = nice_and_policy(&stat);
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        found.push((comm.trim().to_owned(), nice, policy, slice_of(tid)));
    }
    found
}

/// (nice, policy) from a `stat` line of proc(5): after the parenthesised
/// name come field 3 (state) onwards; nice is field 19, policy field 41.
fn nice_and_policy(stat: &str) -> (String, String) {
    let after_name = &stat[stat.rfind(')').expect("a stat line names its thread") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    (fields[19 - 3].to_owned(), fields[41 - 3].to_owned())
}
