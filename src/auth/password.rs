//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and one bounded admission rule so that a burst of logins is
//! answered at once instead of queueing without end.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::config::AuthSettings;
use crate::domain::password::MAX_BYTES;
use crate::domain::Password;
use crate::error::{ApiError, Message};
use crate::threads::{self, Job};

/// Hashes and verifies passwords under one admission rule: at most
/// `concurrency` hashes at once (each on a thread of its own, so bcrypt never
/// occupies the blocking pool that runs Diesel), at most `queue` waiting for
/// a turn, none waiting longer than `wait`. What does not fit is refused at
/// once with 503 and `Retry-After`. A waiting request whose client has gone is
/// dropped by actix, and its wait with it: it never hashes.
///
/// The hashing threads keep the service's own priority: the bound, one core
/// fewer than the machine has, is what leaves a core to other requests, and
/// CPU shares between services are the operator's (compose `cpus:`, systemd
/// `CPUWeight=`). A lower priority gave fewer logins in a storm for no better
/// `/users/me` tail (docs/performance.md).
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    turns: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Requests in flight on the routes that hash (see `admit`), and their
    /// limit: as many as may hash or wait, `concurrency + queue`.
    admitted: Arc<AtomicUsize>,
    in_flight_limit: usize,
    queue: usize,
    wait: Duration,
    jobs: mpsc::SyncSender<Job>,
    hashes: Arc<AtomicU64>,
    /// Verified against when the email is unknown, so that both failures cost the same.
    dummy_hash: Arc<str>,
}

/// Told to a client refused a turn: about one hash's time, rounded up.
const RETRY_AFTER_SECONDS: u64 = 1;
/// How long a refusal for a full queue waits before it is sent (see `refuse`).
const REFUSAL_PAUSE: Duration = Duration::from_millis(25);

impl PasswordHasher {
    /// Starts the hashing threads and computes the dummy hash (a blocking
    /// bcrypt run at start-up).
    pub fn new(auth: &AuthSettings) -> Result<Self, bcrypt::BcryptError> {
        let concurrency = auth.hash_concurrency();
        // A job is sent only with a turn, so no more than `concurrency` ever wait.
        let jobs = threads::start("bcrypt", concurrency, concurrency);
        Ok(PasswordHasher {
            cost: auth.bcrypt_cost,
            turns: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(AtomicUsize::new(0)),
            admitted: Arc::new(AtomicUsize::new(0)),
            in_flight_limit: concurrency + auth.hash_queue,
            queue: auth.hash_queue,
            wait: Duration::from_millis(auth.hash_wait_ms),
            jobs,
            hashes: Arc::new(AtomicU64::new(0)),
            dummy_hash: hash_blocking(&Password::dummy(), auth.bcrypt_cost)?.into(),
        })
    }

    /// Hashes run through the gate so far (for tests and metrics).
    pub fn hashes_run(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// A place among the requests in flight on the routes that hash (as many
    /// as may hash or wait: `concurrency + queue`), or `None` when there is
    /// none. Taken in one atomic step before any other work of such a
    /// request, so a refusal costs no database round trip however many
    /// arrive at once; `turn` still decides who hashes when.
    pub fn admit(&self) -> Option<Admission> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.in_flight_limit).then_some(n + 1)
            })
            .ok()?;
        Some(Admission(Arc::clone(&self.admitted)))
    }

    /// The 503 a login gets when there is no room to hash, after a short
    /// pause: clients that ignore `Retry-After` and ask again at once (a
    /// login storm) then cost a few refusals per connection per second, not
    /// thousands, and leave the CPU to everyone else. Still well under the
    /// time of one hash, so a refused client learns it at once.
    pub async fn refuse(&self) -> ApiError {
        tokio::time::sleep(REFUSAL_PAUSE).await;
        overloaded()
    }

    /// A turn to hash: at once if one is free, else after a wait in the
    /// bounded queue; 503 when the queue is full or the wait too long. Take
    /// it before any other work of a login, so that a refused login costs
    /// nothing else.
    pub async fn turn(&self) -> Result<Turn, ApiError> {
        let permit = match Arc::clone(&self.turns).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // One atomic step takes a place in the queue, or finds none free.
                let place = self
                    .waiting
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < self.queue).then_some(n + 1)
                    });
                if place.is_err() {
                    // No pause here: this request was admitted and has already
                    // cost its round trips; waiting only delays its answer.
                    return Err(overloaded());
                }
                let _place = QueuePlace(&self.waiting);
                tokio::time::timeout(self.wait, Arc::clone(&self.turns).acquire_owned())
                    .await
                    .map_err(|_| overloaded())?
                    .map_err(|_| ApiError::internal(Message("the hashing gate is closed".into())))?
            }
        };
        Ok(Turn {
            _permit: permit,
            hasher: self.clone(),
        })
    }

    /// Hashes a new password in a turn of its own.
    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        Ok(self.turn().await?.hash(password).await?.1)
    }
}

/// The right to run hashes, one after another, while it is held; each hash
/// hands it back with its result (a login may verify, then hash anew).
pub struct Turn {
    /// Given back to the gate when the turn drops.
    _permit: OwnedSemaphorePermit,
    hasher: PasswordHasher,
}

impl Turn {
    /// Runs `work` on a hashing thread without blocking the caller's. The
    /// turn travels with the job, so it stays taken until the hash is done
    /// even if the request is dropped meanwhile.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(Turn, T), ApiError> {
        let (done, result) = oneshot::channel();
        let jobs = self.hasher.jobs.clone();
        let job: Job = Box::new(move || {
            // The request may have been dropped on the way to this thread.
            if done.is_closed() {
                return;
            }
            self.hasher.hashes.fetch_add(1, Ordering::Relaxed);
            let output = work();
            let _ = done.send((self, output));
        });
        jobs.try_send(job).map_err(|e| {
            ApiError::internal(Message(match e {
                mpsc::TrySendError::Full(_) => "more bcrypt jobs than turns".into(),
                mpsc::TrySendError::Disconnected(_) => "the bcrypt threads are gone".into(),
            }))
        })?;
        result
            .await
            .map_err(|_| ApiError::internal(Message("a bcrypt job was dropped".into())))
    }

    pub async fn hash(self, password: &Password) -> Result<(Turn, String), ApiError> {
        let (password, cost) = (password.clone(), self.hasher.cost);
        let (turn, hashed) = self.run(move || hash_blocking(&password, cost)).await?;
        Ok((turn, hashed.map_err(ApiError::internal)?))
    }

    /// Checks `candidate` against `hash`, or against the dummy hash when there
    /// is no user (then the answer is always false). A candidate over 72
    /// bytes never matches (bcrypt would compare only its first 72), but is
    /// checked all the same so that it takes the same time.
    pub async fn verify(
        self,
        candidate: &str,
        hash: Option<&str>,
    ) -> Result<(Turn, bool), ApiError> {
        let known = hash.is_some();
        let hash = hash
            .map(str::to_owned)
            .unwrap_or_else(|| self.hasher.dummy_hash.to_string());
        let too_long = candidate.len() > MAX_BYTES;
        let candidate = candidate.as_bytes()[..candidate.len().min(MAX_BYTES)].to_vec();
        let (turn, matched) = self.run(move || bcrypt::verify(candidate, &hash)).await?;
        Ok((
            turn,
            known && !too_long && matched.map_err(ApiError::internal)?,
        ))
    }
}

/// The 503 of a login that found no room to hash.
fn overloaded() -> ApiError {
    ApiError::Overloaded {
        retry_after_seconds: RETRY_AFTER_SECONDS,
        detail: "Too many logins at once; try again in a moment",
    }
}

/// A request's place among those in flight on the routes that hash, given
/// back when the request ends in any way.
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in the hashing queue, given back when the wait ends in any way
/// (a turn, a timeout, or the request being dropped).
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Hashes on the calling thread: for start-up and the command line.
pub fn hash_blocking(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` holds at most 72 bytes, so bcrypt sees all of it. (bcrypt's
    // `non_truncating_hash` would refuse exactly 72: it counts a NUL terminator.)
    bcrypt::hash(password.expose(), cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(concurrency: usize, queue: usize, wait_ms: u64) -> AuthSettings {
        AuthSettings {
            bcrypt_cost: 4,
            max_failed_logins: 5,
            lockout_seconds: 900,
            hash_concurrency: Some(concurrency),
            hash_queue: queue,
            hash_wait_ms: wait_ms,
        }
    }

    async fn verify(
        hasher: &PasswordHasher,
        candidate: &str,
        hash: Option<&str>,
    ) -> Result<bool, ApiError> {
        Ok(hasher.turn().await?.verify(candidate, hash).await?.1)
    }

    #[tokio::test]
    async fn hashes_and_verifies_through_the_hashing_threads() {
        let hasher = PasswordHasher::new(&settings(1, 2, 1000)).unwrap();
        let password = Password::dummy();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(verify(&hasher, password.expose(), Some(&hash))
            .await
            .unwrap());
        assert!(!verify(&hasher, "wrong", Some(&hash)).await.unwrap());
        assert!(
            !verify(&hasher, password.expose(), None).await.unwrap(),
            "no user never matches"
        );
        // One turn runs several hashes in a row.
        let turn = hasher.turn().await.unwrap();
        let (turn, ok) = turn.verify(password.expose(), Some(&hash)).await.unwrap();
        assert!(ok);
        let (_turn, rehashed) = turn.hash(&password).await.unwrap();
        assert!(rehashed.starts_with("$2"));
        assert_eq!(hasher.hashes_run(), 6);
    }

    #[tokio::test]
    async fn beyond_the_turns_and_the_queue_a_hash_is_refused_at_once() {
        let hasher = PasswordHasher::new(&settings(1, 1, 60_000)).unwrap();
        let held = hasher.turn().await.unwrap();
        let queued = {
            let hasher = hasher.clone();
            tokio::spawn(async move { verify(&hasher, "x", None).await })
        };
        while hasher.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = verify(&hasher, "x", None).await;
        assert!(
            matches!(refused, Err(ApiError::Overloaded { .. })),
            "{refused:?}"
        );
        drop(held);
        assert!(!queued.await.unwrap().unwrap(), "the queued one ran");
        assert_eq!(
            hasher.waiting.load(Ordering::Acquire),
            0,
            "its place was given back"
        );
        assert_eq!(hasher.hashes_run(), 1);
    }

    #[tokio::test]
    async fn a_wait_longer_than_the_limit_is_refused() {
        let hasher = PasswordHasher::new(&settings(1, 4, 50)).unwrap();
        let _held = hasher.turn().await.unwrap();
        let refused = verify(&hasher, "x", None).await;
        assert!(
            matches!(refused, Err(ApiError::Overloaded { .. })),
            "{refused:?}"
        );
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
        assert_eq!(hasher.hashes_run(), 0);
    }
}
