//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and a pool of its own so that a burst of logins cannot starve
//! cheap requests.
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::password::MAX_BYTES;
use crate::domain::Password;
use crate::error::{ApiError, Message};

/// Runs on a hashing thread and returns what delivers its result.
type Job = Box<dyn FnOnce() -> Delivery + Send>;
/// Hands a finished hash to the request waiting for it.
type Delivery = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on a fixed set of threads, one per core:
/// bcrypt never occupies the blocking pool that runs Diesel, at most one hash
/// per core runs at a time (the rest queue), and the threads run at idle
/// priority, so that under a login storm the scheduler still serves cheap
/// requests first and logins take the CPU that is left.
///
/// An idle-priority thread can be preempted at any instruction and then wait
/// a long time for a core, so it must never hold a lock that a request's
/// thread needs: a worker blocked on such a lock would stall every request it
/// serves (priority inversion). So jobs and results pass through two
/// normal-priority threads: a dispatcher takes jobs from the workers and
/// queues them for the hashing threads, and a deliverer wakes the waiting
/// requests. Workers share channels only with those two.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    jobs: mpsc::Sender<Job>,
    /// Verified against when the email is unknown, so that both failures cost the same.
    dummy_hash: Arc<str>,
}

/// nice(2) value of the hashing threads where `SCHED_IDLE` is refused.
const FALLBACK_NICE: libc::c_int = 19;

fn spawn(name: String, body: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.clone()).spawn(body) {
        log::error!("could not start thread {name}: {e}");
    }
}

impl PasswordHasher {
    /// Starts the hashing threads and computes the dummy hash (a blocking
    /// bcrypt run at start-up).
    pub fn new(cost: u32) -> Result<Self, bcrypt::BcryptError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (jobs, submitted) = mpsc::channel::<Job>();
        let (queue_tx, queue) = mpsc::channel::<Job>();
        let (done, finished) = mpsc::channel::<Delivery>();
        // Each loop ends when its senders are gone: the app stopped.
        spawn("bcrypt-dispatch".into(), move || {
            for job in submitted {
                if queue_tx.send(job).is_err() {
                    return;
                }
            }
        });
        spawn("bcrypt-deliver".into(), move || {
            for deliver in finished {
                deliver();
            }
        });
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let (queue, done) = (Arc::clone(&queue), done.clone());
            spawn(format!("bcrypt-{i}"), move || {
                lower_priority();
                loop {
                    // Only hashing threads take this lock, to take the next job.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    if done.send(job()).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(PasswordHasher {
            cost,
            jobs,
            dummy_hash: hash_blocking(&Password::dummy(), cost)?.into(),
        })
    }

    /// Runs `work` on a hashing thread and waits for it without blocking the caller's.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let output = work();
            Box::new(move || {
                let _ = done.send(output);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::internal(Message("the bcrypt threads are gone".into())))?;
        result
            .await
            .map_err(|_| ApiError::internal(Message("a bcrypt job was dropped".into())))
    }

    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let (password, cost) = (password.clone(), self.cost);
        self.run(move || hash_blocking(&password, cost))
            .await?
            .map_err(ApiError::internal)
    }

    /// Checks `candidate` against `hash`, or against the dummy hash when there
    /// is no user (then the answer is always false). A candidate over 72
    /// bytes never matches (bcrypt would compare only its first 72), but is
    /// checked all the same so that it takes the same time.
    pub async fn verify(&self, candidate: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let too_long = candidate.len() > MAX_BYTES;
        let candidate = candidate.as_bytes()[..candidate.len().min(MAX_BYTES)].to_vec();
        let matched = self
            .run(move || bcrypt::verify(candidate, &hash))
            .await?
            .map_err(ApiError::internal)?;
        Ok(known && !too_long && matched)
    }
}

/// Lowers the calling thread's scheduling priority to `SCHED_IDLE`: it runs
/// only on a core that no normal thread wants, and any normal thread that
/// wakes takes the core at once. (nice 10 was measured first: the scheduler
/// let a hash finish its slice while requests waited, p99 63-305 ms during a
/// login storm against 13-14 ms with `SCHED_IDLE`.) The cost: while cheap
/// requests keep every core busy, logins wait. If the policy is refused,
/// nice 19 is the fallback. Both are per thread on Linux (pid 0 = caller).
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain integers and a pointer to a local that outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return;
    }
    let idle_refused = std::io::Error::last_os_error();
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, FALLBACK_NICE) } != 0 {
        log::debug!(
            "bcrypt thread keeps normal priority: SCHED_IDLE: {idle_refused}; nice: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Hashes on the calling thread: for start-up and the command line.
pub fn hash_blocking(password: &Password, cost: u32) -> Result<String, bcrypt::BcryptError> {
    // `Password` holds at most 72 bytes, so bcrypt sees all of it. (bcrypt's
    // `non_truncating_hash` would refuse exactly 72: it counts a NUL terminator.)
    bcrypt::hash(password.expose(), cost)
}
