//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and a bound on concurrent hashes.
use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

use crate::domain::password::MAX_BYTES;
use crate::domain::Password;
use crate::error::ApiError;

/// Hashes and verifies passwords off the async workers, at most one per core
/// at a time, so a burst of logins queues instead of taking every thread.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that both failures cost the same.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Computes the dummy hash once (a blocking bcrypt run at start-up).
    pub fn new(cost: u32) -> Result<Self, bcrypt::BcryptError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(PasswordHasher {
            cost,
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: hash_blocking(&Password::dummy(), cost)?.into(),
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let (password, cost) = (password.clone(), self.cost);
        web::block(move || hash_blocking(&password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks `candidate` against `hash`, or against the dummy hash when there
    /// is no user (then the answer is always false). A candidate over 72
    /// bytes never matches (bcrypt would compare only its first 72), but is
    /// checked all the same so that it takes the same time.
    pub async fn verify(&self, candidate: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let known = hash.is_some();
        let hash = hash
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let too_long = candidate.len() > MAX_BYTES;
        let candidate = candidate.as_bytes()[..candidate.len().min(MAX_BYTES)].to_vec();
        let matched = web::block(move || bcrypt::verify(candidate, &hash))
            .await?
            .map_err(ApiError::internal)?;
        Ok(known && !too_long && matched)
    }
}

/// Hashes on the calling thread: for start-up and the command line.
pub fn hash_blocking(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` holds at most 72 bytes, so bcrypt sees all of it. (bcrypt's
    // `non_truncating_hash` would refuse exactly 72: it counts a NUL terminator.)
    bcrypt::hash(password.expose(), cost)
}
