//! Logins for scripts/bench:
//! `login_storm URL BODY CONNECTIONS SECONDS CLIENTS [PACE_MS]` keeps
//! CONNECTIONS connections posting the form BODY to URL for SECONDS, each
//! sending its next login as soon as the last is answered (like wrk, ignoring
//! `Retry-After`), or every PACE_MS when given. CLIENTS says who they are, by
//! `X-Forwarded-For` (the server trusts 127.0.0.1 as its proxy): an address
//! (every connection that one client, like an office behind NAT),
//! `per-connection` (a client each) or `per-request` (a new client every
//! request). Prints `ok=N busy=N limited=N other=N ok_p99_ms=N
//! refusal_max_ms=N no_retry_after=N`: the admitted logins (200), the
//! refusals for capacity (503) and per client (429), anything else, the
//! admitted logins' p99, the slowest refusal and the refusals without
//! `Retry-After`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Tally {
    ok: Vec<Duration>,
    busy: u64,
    limited: u64,
    other: u64,
    refusal_max: Duration,
    no_retry_after: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, body, connections, seconds, clients, pace) = match args.as_slice() {
        [_, url, body, connections, seconds, clients] => {
            (url, body, connections, seconds, clients, None)
        }
        [_, url, body, connections, seconds, clients, pace] => (
            url,
            body,
            connections,
            seconds,
            clients,
            Some(Duration::from_millis(
                pace.parse().expect("PACE_MS is a number"),
            )),
        ),
        _ => {
            eprintln!("usage: login_storm URL BODY CONNECTIONS SECONDS CLIENTS [PACE_MS]");
            std::process::exit(2);
        }
    };
    let connections: usize = connections.parse().expect("CONNECTIONS is a number");
    let end = Instant::now() + Duration::from_secs(seconds.parse().expect("SECONDS is a number"));
    let counter = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let (url, body, clients) = (url.clone(), body.clone(), clients.clone());
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                // One client each: one keep-alive connection, as a wrk connection.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut tally = Tally::default();
                while Instant::now() < end {
                    let started = Instant::now();
                    let address = match clients.as_str() {
                        "per-connection" => address(connection as u64),
                        "per-request" => address(counter.fetch_add(1, Ordering::Relaxed)),
                        one => one.to_owned(),
                    };
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-forwarded-for", address)
                        .body(body.clone())
                        .send()
                        .await;
                    let took = started.elapsed();
                    match sent {
                        Ok(resp) if resp.status() == 200 => tally.ok.push(took),
                        Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => {
                            if resp.status() == 503 {
                                tally.busy += 1;
                            } else {
                                tally.limited += 1;
                            }
                            tally.refusal_max = tally.refusal_max.max(took);
                            if !resp.headers().contains_key("retry-after") {
                                tally.no_retry_after += 1;
                            }
                        }
                        _ => tally.other += 1,
                    }
                    if let Some(pace) = pace {
                        tokio::time::sleep_until((started + pace).into()).await;
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await.expect("client task");
        all.ok.extend(t.ok);
        all.busy += t.busy;
        all.limited += t.limited;
        all.other += t.other;
        all.refusal_max = all.refusal_max.max(t.refusal_max);
        all.no_retry_after += t.no_retry_after;
    }
    all.ok.sort();
    let p99 = all
        .ok
        .get((all.ok.len() * 99).div_ceil(100).saturating_sub(1))
        .map_or(0, |d| d.as_millis());
    println!(
        "ok={} busy={} limited={} other={} ok_p99_ms={p99} refusal_max_ms={} no_retry_after={}",
        all.ok.len(),
        all.busy,
        all.limited,
        all.other,
        all.refusal_max.as_millis(),
        all.no_retry_after
    );
}

/// The `n`-th client address: 10.x.y.z, one per n.
fn address(n: u64) -> String {
    let n = n % (1 << 24);
    format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)
}
