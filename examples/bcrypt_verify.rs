//! Times one bcrypt verify at a cost (for scripts/bench's login ceiling):
//! `cargo run --release --example bcrypt_verify -- 12` prints the median
//! milliseconds of 7 verifies.
use std::time::Instant;

fn main() {
    let cost: u32 = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(12);
    let hash = bcrypt::hash("benchmark password", cost).expect("hash");
    let mut ms: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            let ok = bcrypt::verify("benchmark password", &hash).expect("verify");
            assert!(ok);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    println!("{:.2}", ms[ms.len() / 2]);
}
