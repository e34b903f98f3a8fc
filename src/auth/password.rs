//! bcrypt hashing and verification: the 72-byte rule, a dummy hash for equal
//! timing, and a pool of its own so that a burst of logins cannot starve
//! cheap requests.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::idle_cgroup::IdleCgroup;
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
///
/// And while other requests are being served, only one hash runs at a time.
/// Measured on the 2-core VM this was built on: a busy thread at the lowest
/// priority there is (`SCHED_IDLE` in a `cpu.idle` cgroup, a shell loop)
/// still doubled to tripled /users/me's p99, because an idle core answers a
/// wakeup far faster than a busy one (guest halt-polling versus an IPI);
/// with two such threads every core was busy. So under traffic one core stays
/// free of hashing, and logins get at most half of the other
/// (`BUSY_SHARE_PERCENT`): a login storm then costs cheap requests a core
/// that is busy half the time, not all of it. Logins alone use every core.
///
/// A thread's policy ranks it only within its group (session or service
/// cgroup); against PostgreSQL's group the hashing threads would take their
/// group's full share. So, where permitted, they also move into a cgroup
/// marked idle (`idle_cgroup`).
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    jobs: mpsc::Sender<Job>,
    traffic: Arc<Traffic>,
    /// Verified against when the email is unknown, so that both failures cost the same.
    dummy_hash: Arc<str>,
}

/// nice(2) value of the hashing threads where `SCHED_IDLE` is refused.
const FALLBACK_NICE: libc::c_int = 19;

/// When a request other than a login was last seen, in ms since `epoch`.
#[derive(Debug)]
struct Traffic {
    epoch: Instant,
    last_ms: AtomicU64,
}

/// How long after the last request hashing keeps to one thread.
const QUIET_MS: u64 = 100;
/// Share of one core that hashing may take while requests are being served:
/// after a hash under traffic, the next one waits until this share is kept.
/// Measured: a core busy half the time cost /users/me's p99 about half of what
/// a core busy all the time did.
const BUSY_SHARE_PERCENT: u64 = 50;
/// How often a hash held back by traffic checks whether it may start.
const RECHECK: Duration = Duration::from_millis(20);

impl Traffic {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn busy_at(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed)) < QUIET_MS
    }

    /// Whether a hash may start at `now_ms`: while the service is quiet, one
    /// per thread; under traffic, one at a time and not before its rest is over.
    fn may_start_at(&self, now_ms: u64, slots: &Slots, threads: usize) -> bool {
        if self.busy_at(now_ms) {
            slots.running == 0 && now_ms >= slots.rest_until_ms
        } else {
            slots.running < threads
        }
    }
}

/// When hashing may resume after a hash that ran from `started_ms` to
/// `ended_ms` under traffic: as long again as the share allows.
fn rest_until(started_ms: u64, ended_ms: u64) -> u64 {
    let ran = ended_ms.saturating_sub(started_ms);
    ended_ms.saturating_add(ran * (100 - BUSY_SHARE_PERCENT) / BUSY_SHARE_PERCENT)
}

#[derive(Debug, Default)]
struct Slots {
    running: usize,
    /// Under traffic no hash starts before this (ms since `Traffic::epoch`).
    rest_until_ms: u64,
}

/// Hashes running now; hashing threads wait on it for their turn.
#[derive(Debug, Default)]
struct Running {
    slots: Mutex<Slots>,
    freed: Condvar,
}

impl Running {
    /// Waits for a turn to hash; the turn ends when the returned guard drops,
    /// so a panicking hash cannot keep its slot.
    fn start<'a>(&'a self, traffic: &'a Traffic, threads: usize) -> Turn<'a> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        while !traffic.may_start_at(traffic.now_ms(), &slots, threads) {
            // Neither traffic ending nor a rest ending is signalled, so the wait is bounded.
            slots = self
                .freed
                .wait_timeout(slots, RECHECK)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        slots.running += 1;
        Turn {
            running: self,
            traffic,
            started_ms: traffic.now_ms(),
        }
    }
}

struct Turn<'a> {
    running: &'a Running,
    traffic: &'a Traffic,
    started_ms: u64,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let now = self.traffic.now_ms();
        let mut slots = self
            .running
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slots.running -= 1;
        if self.traffic.busy_at(now) {
            slots.rest_until_ms = slots.rest_until_ms.max(rest_until(self.started_ms, now));
        }
        drop(slots);
        self.running.freed.notify_one();
    }
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.clone()).spawn(body) {
        log::error!("could not start thread {name}: {e}");
    }
}

impl PasswordHasher {
    /// Starts the hashing threads (in an idle cgroup if `idle_cgroup` and the
    /// system permits it) and computes the dummy hash (a blocking bcrypt run
    /// at start-up).
    pub fn new(cost: u32, idle_cgroup: bool) -> Result<Self, bcrypt::BcryptError> {
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
        let traffic = Arc::new(Traffic {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let running = Arc::new(Running::default());
        let cgroup = if idle_cgroup {
            prepare_idle_cgroup().map(Arc::new)
        } else {
            None
        };
        for i in 0..threads {
            let (queue, done) = (Arc::clone(&queue), done.clone());
            let (traffic, running) = (Arc::clone(&traffic), Arc::clone(&running));
            let cgroup = cgroup.clone();
            spawn(format!("bcrypt-{i}"), move || {
                lower_priority();
                if let Some(Err(e)) = cgroup.map(|cgroup| cgroup.join()) {
                    log::info!("bcrypt thread stays in the service's cgroup: {e}");
                }
                loop {
                    // Only hashing threads take this lock, to take the next job.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let turn = running.start(&traffic, threads);
                    let delivery = job();
                    drop(turn);
                    if done.send(delivery).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(PasswordHasher {
            cost,
            jobs,
            traffic,
            dummy_hash: hash_blocking(&Password::dummy(), cost)?.into(),
        })
    }

    /// Records that a request other than a login is being served: for the
    /// next `QUIET_MS`, at most one hash runs at a time, on its share of a core.
    pub fn note_request(&self) {
        let now = self.traffic.now_ms();
        // Every authenticated request passes here, on every worker: write the
        // shared cache line once per millisecond, not once per request.
        if self.traffic.last_ms.load(Ordering::Relaxed) != now {
            self.traffic.last_ms.store(now, Ordering::Relaxed);
        }
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

/// The idle cgroup for the hashing threads, or why there is none.
fn prepare_idle_cgroup() -> Option<IdleCgroup> {
    match IdleCgroup::prepare() {
        Ok(cgroup) => {
            log::info!(
                "bcrypt threads run in idle cgroup {}",
                cgroup.dir().display()
            );
            Some(cgroup)
        }
        Err(e) => {
            log::info!("bcrypt threads stay in the service's cgroup: {e}");
            None
        }
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

    fn traffic_last_seen_at(ms: u64) -> Traffic {
        Traffic {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(ms),
        }
    }

    fn slots(running: usize, rest_until_ms: u64) -> Slots {
        Slots {
            running,
            rest_until_ms,
        }
    }

    #[test]
    fn under_traffic_one_hash_runs_and_once_quiet_all_threads_do() {
        let traffic = traffic_last_seen_at(1_000);
        assert!(traffic.may_start_at(1_000, &slots(0, 0), 4));
        assert!(!traffic.may_start_at(1_000, &slots(1, 0), 4));
        assert!(!traffic.may_start_at(1_000 + QUIET_MS - 1, &slots(1, 0), 4));
        assert!(traffic.may_start_at(1_000 + QUIET_MS, &slots(1, 0), 4));
        assert!(traffic.may_start_at(1_000 + QUIET_MS, &slots(3, 0), 4));
        assert!(!traffic.may_start_at(1_000 + QUIET_MS, &slots(4, 0), 4));
        // A clock read before the last request was noted is still traffic.
        assert!(!traffic.may_start_at(900, &slots(1, 0), 4));
    }

    #[test]
    fn under_traffic_hashing_rests_as_long_as_it_ran_and_quiet_ends_the_rest() {
        assert_eq!(
            BUSY_SHARE_PERCENT, 50,
            "the figures below assume half a core"
        );
        assert_eq!(rest_until(1_000, 1_200), 1_400);
        let traffic = traffic_last_seen_at(1_350);
        assert!(!traffic.may_start_at(1_399, &slots(0, 1_400), 2));
        assert!(traffic.may_start_at(1_400, &slots(0, 1_400), 2));
        let quiet = traffic_last_seen_at(1_000);
        assert!(quiet.may_start_at(1_300, &slots(0, 1_400), 2));
    }

    #[test]
    fn a_hash_waits_for_its_turn_and_starts_after_the_rest_that_follows_one() {
        let traffic = Arc::new(traffic_last_seen_at(u64::MAX / 2)); // busy for ages
        let running = Arc::new(Running::default());
        let first = running.start(&traffic, 2);
        let (started, second) = mpsc::channel();
        let waiter = {
            let (traffic, running) = (Arc::clone(&traffic), Arc::clone(&running));
            std::thread::spawn(move || {
                let _turn = running.start(&traffic, 2);
                started.send(()).unwrap();
            })
        };
        assert!(
            second.recv_timeout(RECHECK * 3).is_err(),
            "only one under traffic"
        );
        drop(first);
        // The first ran at least `RECHECK * 3`, so the second rests as long.
        assert!(
            second.recv_timeout(RECHECK).is_err(),
            "under traffic the next hash rests first"
        );
        second
            .recv_timeout(Duration::from_secs(5))
            .expect("starts once the first finishes and its rest is over");
        waiter.join().unwrap();
        assert_eq!(running.slots.lock().unwrap().running, 0, "every turn ended");
    }

    #[tokio::test]
    async fn hashes_and_verifies_through_the_hashing_threads() {
        let hasher = PasswordHasher::new(4, true).unwrap();
        hasher.note_request();
        let password = Password::dummy();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hasher.verify(password.expose(), Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong", Some(&hash)).await.unwrap());
        assert!(
            !hasher.verify(password.expose(), None).await.unwrap(),
            "no user never matches"
        );
    }
}
