//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and the fair, bounded gate every hash goes through (see `gate`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::gate::{Gate, Place};
use crate::config::AuthSettings;
use crate::domain::password::MAX_BYTES;
use crate::domain::{ClientKey, Password};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Hashes and verifies passwords on `auth.hash_concurrency` threads of their
/// own (bcrypt never occupies the threads that run Diesel), each client's
/// requests in a line of their own, the lines served in turn; a place in
/// line is given only while its expected wait fits `auth.hash_wait_ms`. A
/// waiting request whose client has gone is dropped by actix, and its place
/// with it: it never hashes.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    gate: Gate,
    /// Verified against when the email is unknown, so that both failures cost the same.
    dummy_hash: Arc<str>,
    metrics: Option<Metrics>,
}

/// How long a refusal before the body waits before it is sent (see
/// `refuse`): half the 100 ms a refused client may wait for its answer.
const REFUSAL_PAUSE: Duration = Duration::from_millis(50);

impl PasswordHasher {
    /// Starts the hashing threads and computes the dummy hash (a blocking
    /// bcrypt run at start-up, which is also the first estimate of a hash's time).
    pub fn new(auth: &AuthSettings) -> Result<Self, bcrypt::BcryptError> {
        let started = Instant::now();
        let dummy_hash = hash_blocking(&Password::dummy(), auth.bcrypt_cost)?;
        let gate = Gate::start(
            "bcrypt",
            auth.hash_concurrency(),
            Duration::from_millis(auth.hash_wait_ms.get()),
            started.elapsed(),
        );
        Ok(PasswordHasher {
            cost: auth.bcrypt_cost,
            gate,
            dummy_hash: dummy_hash.into(),
            metrics: None,
        })
    }

    /// Counts the gate's admissions in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Hashes running, and places given that wait for their turn.
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }

    /// Hashes run so far (for tests and metrics).
    pub fn hashes_run(&self) -> u64 {
        self.gate.hashes_run()
    }

    /// Whether `key` would get a place in line now, reserving nothing (see `Gate::check`).
    pub fn check(&self, key: &ClientKey) -> Result<(), ApiError> {
        let checked = self.gate.check(key);
        if checked.is_err() {
            self.count_admission(&checked);
        }
        checked
    }

    /// A place asked of the gate, in the metrics: admitted, or refused for
    /// this client's line (429) or for every line (503).
    fn count_admission<T>(&self, result: &Result<T, ApiError>) {
        if let Some(metrics) = &self.metrics {
            metrics.hash_admission(match result {
                Ok(_) => "admitted",
                Err(ApiError::RateLimited { .. }) => "client_busy",
                Err(_) => "overloaded",
            });
        }
    }

    /// Answers a refusal from `check` after a short pause: clients that
    /// ignore `Retry-After` and ask again at once (a login storm) then cost a
    /// few refusals per connection per second, not thousands, and leave the
    /// CPU to everyone else. Still well under the time of one hash.
    pub async fn refuse(&self, refusal: ApiError) -> ApiError {
        tokio::time::sleep(REFUSAL_PAUSE).await;
        refusal
    }

    /// A place in `key`'s line, taken once the request is whole and allowed;
    /// refused at once (429 or 503, with `Retry-After`) when it would wait too long.
    pub fn place(&self, key: ClientKey) -> Result<Place, ApiError> {
        let place = self.gate.place(key);
        self.count_admission(&place);
        place
    }

    /// Hashes a new password in a place of its own.
    pub async fn hash_for(&self, key: ClientKey, password: &Password) -> Result<String, ApiError> {
        let place = self.place(key)?;
        self.hash(&place, password).await
    }

    /// Hashes a new password in `place`'s turn.
    pub async fn hash(&self, place: &Place, password: &Password) -> Result<String, ApiError> {
        let (password, cost) = (password.clone(), self.cost);
        place
            .run(move || hash_blocking(&password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks `candidate` against `hash` in `place`'s turn, or against the
    /// dummy hash when there is no user (then the answer is always false). A
    /// candidate over 72 bytes never matches (bcrypt would compare only its
    /// first 72), but is checked all the same so that it takes the same time.
    pub async fn verify(
        &self,
        place: &Place,
        candidate: &SecretString,
        hash: Option<&str>,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let candidate = candidate.expose_secret().as_bytes();
        let too_long = candidate.len() > MAX_BYTES;
        // The copy the hashing thread reads is wiped when it is dropped.
        let candidate = SecretSlice::from(candidate[..candidate.len().min(MAX_BYTES)].to_vec());
        let matched = place
            .run(move || bcrypt::verify(candidate.expose_secret(), &hash))
            .await?
            .map_err(ApiError::internal)?;
        Ok(known && !too_long && matched)
    }
}

/// Hashes on the calling thread: for start-up and the command line.
/// A new password from a request's `new_password` field: the signup rules,
/// or a 422 naming that field.
pub fn new_password(raw: SecretString) -> Result<Password, ApiError> {
    Password::parse(raw).map_err(|e| ApiError::field("new_password", e))
}

pub fn hash_blocking(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` holds at most 72 bytes, so bcrypt sees all of it. (bcrypt's
    // `non_truncating_hash` would refuse exactly 72: it counts a NUL terminator.)
    bcrypt::hash(password.expose(), cost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

    fn settings(concurrency: usize, wait_ms: u64) -> AuthSettings {
        AuthSettings {
            bcrypt_cost: 4,
            max_failed_logins: NonZeroU32::new(5).unwrap(),
            lockout_seconds: NonZeroU64::new(900).unwrap(),
            max_sessions_per_user: NonZeroU32::new(50).unwrap(),
            hash_concurrency: NonZeroUsize::new(concurrency),
            hash_wait_ms: NonZeroU64::new(wait_ms).unwrap(),
            mfa_required_roles: Vec::new(),
        }
    }

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap(), 64)
    }

    #[tokio::test]
    async fn hashes_and_verifies_through_the_hashing_threads() {
        let hasher = PasswordHasher::new(&settings(1, 1000)).unwrap();
        let password = Password::dummy();
        let hash = hasher.hash_for(key("192.0.2.1"), &password).await.unwrap();
        let place = hasher.place(key("192.0.2.1")).unwrap();
        assert!(hasher
            .verify(&place, &password.expose().into(), Some(&hash))
            .await
            .unwrap());
        // One place runs several hashes in a row.
        assert!(!hasher
            .verify(&place, &"wrong".into(), Some(&hash))
            .await
            .unwrap());
        assert!(
            !hasher
                .verify(&place, &password.expose().into(), None)
                .await
                .unwrap(),
            "no user never matches"
        );
        let rehashed = hasher.hash(&place, &password).await.unwrap();
        assert!(rehashed.starts_with("$2"));
        assert_eq!(hasher.hashes_run(), 5);
    }
}
