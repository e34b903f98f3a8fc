//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and a bound on concurrent hashes.
use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;

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
    /// is no user (then the answer is always false). A candidate over 72 bytes
    /// is a mismatch, checked at the same cost.
    pub async fn verify(&self, candidate: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let known = hash.is_some();
        let hash = hash
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let candidate = candidate.to_owned();
        let matched = web::block(
            move || match bcrypt::non_truncating_verify(&candidate, &hash) {
                Ok(ok) => Ok(ok),
                // Too long to be any stored password: still spend the same time.
                Err(bcrypt::BcryptError::Truncation(_)) => {
                    bcrypt::verify(&candidate.as_bytes()[..72], &hash).map(|_| false)
                }
                Err(e) => Err(e),
            },
        )
        .await?
        .map_err(ApiError::internal)?;
        Ok(known && matched)
    }
}

/// Hashes on the calling thread: for start-up and the command line.
pub fn hash_blocking(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::non_truncating_hash(password.expose(), cost)
}
