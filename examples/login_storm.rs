//! A login storm for scripts/bench: `login_storm URL BODY CONNECTIONS SECONDS`
//! keeps CONNECTIONS clients posting the form BODY to URL (each sends its next
//! login as soon as the last is answered, like wrk, ignoring Retry-After) and
//! prints `ok=N busy=N other=N ok_p99_ms=N`: the admitted logins (200), the
//! refusals for capacity (503), anything else, and the admitted logins' p99.
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, body, connections, seconds] = args.as_slice() else {
        eprintln!("usage: login_storm URL BODY CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("CONNECTIONS is a number");
    let end = Instant::now() + Duration::from_secs(seconds.parse().expect("SECONDS is a number"));
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            tokio::spawn(async move {
                // One client each: one keep-alive connection, as a wrk connection.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let (mut ok, mut busy, mut other) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < end {
                    let started = Instant::now();
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent.map(|r| r.status().as_u16()) {
                        Ok(200) => ok.push(started.elapsed()),
                        Ok(503) => busy += 1,
                        _ => other += 1,
                    }
                }
                (ok, busy, other)
            })
        })
        .collect();
    let (mut ok, mut busy, mut other) = (Vec::new(), 0, 0);
    for client in clients {
        let (o, b, x) = client.await.expect("client task");
        ok.extend(o);
        busy += b;
        other += x;
    }
    ok.sort();
    let p99 = ok
        .get((ok.len() * 99).div_ceil(100).saturating_sub(1))
        .map_or(0, |d| d.as_millis());
    println!("ok={} busy={busy} other={other} ok_p99_ms={p99}", ok.len());
}
