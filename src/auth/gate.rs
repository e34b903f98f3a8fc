//! Fair, time-bounded admission to the hashing threads: one line per client
//! key, the threads serving the lines in turn, and a place in line given only
//! while its expected wait fits `auth.hash_wait_ms`.
//!
//! Round-robin across clients is what keeps one client from crowding out the
//! rest: a storm from one address fills that address's line, and every other
//! client still waits at most one of its turns per round. A client alone (or
//! an office behind one address) is served by every thread.
//!
//! Turns are numbered by round (start-time fair queueing): a client's next
//! job is due one round after its last one started, and a client that
//! arrives is due in the round being served. So a newcomer goes before a
//! storming client's next job, which has already had this round's turn,
//! instead of behind it; among newcomers, first come first served.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::domain::ClientKey;
use crate::error::ApiError;

/// A job for a hashing thread (it counts and times itself, unless its
/// request has gone and it does nothing).
type Job = Box<dyn FnOnce(&Shared) + Send>;

/// The time slice the hashing threads ask the scheduler for: the shortest
/// Linux gives (a custom slice of the EEVDF scheduler, Linux 6.12 and
/// later; older kernels ignore it). A hash then gives up its core in turns
/// this short, so a request thread that wakes during a login storm runs
/// within about this long, while hashing keeps the service's own priority
/// and with it every idle cycle and its fair share of busy ones
/// (docs/performance.md has the measurements).
pub const HASHING_SLICE: Duration = Duration::from_micros(100);

/// How many times `auth.hash_wait_ms` a place may wait before it is given
/// up with 503 (see `Gate::place`).
const STALLED: u32 = 10;

/// The handle the service keeps; the threads stop when the last clone drops.
#[derive(Clone)]
pub struct Gate(Arc<Handle>);

struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.lines).closed = true;
        self.0.work.notify_all();
    }
}

struct Shared {
    lines: Mutex<Lines>,
    /// Signalled when a job is queued (or the gate closes).
    work: Condvar,
    concurrency: usize,
    /// The longest expected wait a place is given with.
    wait: Duration,
    /// Wall time of one hash, a moving average (µs): under CPU contention it
    /// grows, and the waiting room shrinks with it.
    hash_micros: AtomicU64,
    hashes: AtomicU64,
}

#[derive(Default)]
struct Lines {
    clients: HashMap<ClientKey, Line>,
    /// Clients with a queued job, by the round their next job is due in and
    /// then by arrival; a client is in it exactly while its line holds a
    /// queued job.
    rotation: BTreeMap<(u64, u64), ClientKey>,
    /// The round of the job started last: a client arriving now is due in it.
    round: u64,
    /// Arrival order within a round.
    arrivals: u64,
    /// Second hashes of a place already served (a password change verifies,
    /// then hashes): they go first, the place has had its turn.
    follow_ups: VecDeque<Job>,
    running: usize,
    closed: bool,
}

impl Lines {
    /// Puts `key` in the rotation for `round`, after every client already
    /// due in it.
    fn enter_rotation(&mut self, key: ClientKey, round: u64) {
        self.arrivals += 1;
        self.rotation.insert((round, self.arrivals), key);
    }

    /// A client with nothing waiting, queued or running has no line: the
    /// map holds only the clients being served (a running job keeps its
    /// line, and with it the round its client's next job is due in).
    fn forget_if_idle(&mut self, key: &ClientKey) {
        if self
            .clients
            .get(key)
            .is_some_and(|line| line.waiting == 0 && line.queued.is_empty() && line.running == 0)
        {
            self.clients.remove(key);
        }
    }
}

#[derive(Default)]
struct Line {
    /// Places given and not yet started: counted for every expected wait.
    waiting: usize,
    queued: VecDeque<Queued>,
    /// Its jobs taken by a thread and not yet finished.
    running: usize,
    /// The earliest round this client's next job may be due in: one after
    /// its last job's.
    next_round: u64,
}

struct Queued {
    ticket: Arc<Ticket>,
    job: Job,
}

/// Whether a place still counts among its client's waiting ones. Flipped,
/// under the lines' lock, by whichever comes first: its job starting, or the
/// place being dropped.
struct Ticket(AtomicBool);

impl Ticket {
    fn stop_waiting(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

fn lock(lines: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    // A panic while holding the lock cannot leave the counts half-updated in
    // a way that matters more than stopping every login would.
    lines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gate {
    /// Starts `concurrency` threads named `{name}-{i}`. `one_hash` is the
    /// first estimate of a hash's time (measured at start-up).
    pub fn start(name: &str, concurrency: usize, wait: Duration, one_hash: Duration) -> Gate {
        let concurrency = concurrency.max(1);
        let shared = Arc::new(Shared {
            lines: Mutex::new(Lines::default()),
            work: Condvar::new(),
            concurrency,
            wait,
            hash_micros: AtomicU64::new(micros(one_hash)),
            hashes: AtomicU64::new(0),
        });
        for i in 0..concurrency {
            let shared = Arc::clone(&shared);
            let started = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || serve(&shared));
            if let Err(e) = started {
                log::error!("could not start thread {name}-{i}: {e}");
            }
        }
        Gate(Arc::new(Handle(shared)))
    }

    /// Hashes run so far (for tests and metrics).
    pub fn hashes_run(&self) -> u64 {
        self.0 .0.hashes.load(Ordering::Relaxed)
    }

    /// Hashes running, and places given that wait for their turn.
    pub fn in_flight(&self) -> usize {
        let lines = lock(&self.0 .0.lines);
        lines.running
            + lines.follow_ups.len()
            + lines.clients.values().map(|l| l.waiting).sum::<usize>()
    }

    /// Whether `key` would be given a place now, reserving nothing: lets a
    /// request that would be refused anyway be answered before its body is
    /// read or the database asked.
    pub fn check(&self, key: &ClientKey) -> Result<(), ApiError> {
        let shared = &self.0 .0;
        let lines = lock(&shared.lines);
        shared.judge(&lines, key)
    }

    /// A place in `key`'s line, or the refusal: 429 when it is this client's
    /// own line that is too long, 503 when every client's is.
    pub fn place(&self, key: ClientKey) -> Result<Place, ApiError> {
        let shared = &self.0 .0;
        let mut lines = lock(&shared.lines);
        shared.judge(&lines, &key)?;
        lines.clients.entry(key).or_default().waiting += 1;
        Ok(Place {
            shared: Arc::clone(shared),
            key,
            ticket: Arc::new(Ticket(AtomicBool::new(true))),
            // A safety net, not the bound. A place once given is served:
            // when the machine slows after it was given (other work arrives),
            // its wait outgrows the estimate, and being refused after
            // waiting is worse than being served late. Only a stalled gate
            // reaches this.
            deadline: Instant::now() + shared.wait * STALLED,
        })
    }
}

impl Shared {
    fn one_hash(&self) -> Duration {
        Duration::from_micros(self.hash_micros.load(Ordering::Relaxed))
    }

    /// The expected wait of `key`'s next place when it already has `own`
    /// waiting: served in turn, each other client's places ahead of it are
    /// at most `own + 1`; every running or earlier-served hash is ahead too.
    fn expected_wait(&self, lines: &Lines, key: &ClientKey, own: usize) -> Duration {
        let others: usize = lines
            .clients
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(_, line)| line.waiting.min(own + 1))
            .sum();
        let ahead = lines.running + lines.follow_ups.len() + others + own;
        let rounds = (ahead + 1).saturating_sub(self.concurrency);
        self.one_hash() * rounds as u32 / self.concurrency as u32
    }

    fn judge(&self, lines: &Lines, key: &ClientKey) -> Result<(), ApiError> {
        if lines.closed {
            return Err(ApiError::internal("the hashing gate is closed"));
        }
        let own = lines.clients.get(key).map_or(0, |line| line.waiting);
        let expected = self.expected_wait(lines, key, own);
        if expected <= self.wait {
            return Ok(());
        }
        let fresh = if own == 0 {
            expected
        } else {
            self.expected_wait(lines, key, 0)
        };
        if fresh <= self.wait {
            Err(ApiError::RateLimited {
                retry_after_seconds: seconds_over(expected, self.wait),
                detail: "Too many logins from this client at once; try again in a moment",
            })
        } else {
            Err(ApiError::Overloaded {
                retry_after_seconds: seconds_over(fresh, self.wait),
                detail: "Too many logins at once; try again in a moment",
            })
        }
    }

    /// The next job, and the client whose turn it is (none for a follow-up).
    fn next_job(lines: &mut Lines) -> Option<(Job, Option<ClientKey>)> {
        if let Some(job) = lines.follow_ups.pop_front() {
            return Some((job, None));
        }
        while let Some(((round, _), key)) = lines.rotation.pop_first() {
            let Some(line) = lines.clients.get_mut(&key) else {
                continue;
            };
            let Some(queued) = line.queued.pop_front() else {
                continue;
            };
            line.next_round = round + 1;
            line.running += 1;
            let more = !line.queued.is_empty();
            if queued.ticket.stop_waiting() {
                line.waiting -= 1;
            }
            lines.round = lines.round.max(round);
            if more {
                lines.enter_rotation(key, round + 1);
            }
            return Some((queued.job, Some(key)));
        }
        None
    }

    fn record(&self, took: Duration) {
        self.hashes.fetch_add(1, Ordering::Relaxed);
        let sample = micros(took);
        // Up fast, down slowly: when other work takes the CPU, hashes slow
        // at once and the places given must shrink at once, or those given
        // just before would wait past their bound; when it leaves, an
        // average over about eight hashes.
        let _ = self
            .hash_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if sample > old {
                    old / 2 + sample / 2
                } else {
                    old - old / 8 + sample / 8
                })
            });
    }
}

/// A hashing thread: the next job in turn, until the gate closes.
fn serve(shared: &Shared) {
    shorten_this_threads_slice(HASHING_SLICE);
    loop {
        let (job, client) = {
            let mut lines = lock(&shared.lines);
            loop {
                if lines.closed {
                    return;
                }
                if let Some(next) = Shared::next_job(&mut lines) {
                    lines.running += 1;
                    break next;
                }
                lines = shared
                    .work
                    .wait(lines)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        // A panicking job fails its own caller (its answer channel drops),
        // not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(shared)));
        let mut lines = lock(&shared.lines);
        lines.running -= 1;
        if let Some(key) = client {
            if let Some(line) = lines.clients.get_mut(&key) {
                line.running = line.running.saturating_sub(1);
            }
            lines.forget_if_idle(&key);
        }
    }
}

/// Asks for `slice` as the calling thread's time slice, keeping its policy
/// (only the normal one is changed) and nice value. On Linux these are per
/// thread, and pid 0 is this one.
fn shorten_this_threads_slice(slice: Duration) {
    // SAFETY: sched_getscheduler, getpriority and sched_setattr read and
    // change only the calling thread's scheduling; `attr` outlives the call
    // and its size is the one the kernel is told; errno is thread-local.
    let result = unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            return;
        }
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            -1
        } else {
            let attr = libc::sched_attr {
                size: std::mem::size_of::<libc::sched_attr>() as u32,
                sched_policy: libc::SCHED_OTHER as u32,
                sched_flags: 0,
                sched_nice: nice,
                sched_priority: 0,
                sched_runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
                sched_deadline: 0,
                sched_period: 0,
            };
            libc::syscall(
                libc::SYS_sched_setattr,
                0,
                &attr as *const libc::sched_attr,
                0u32,
            )
        }
    };
    if result != 0 {
        log::warn!(
            "could not shorten a hashing thread's time slice: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A place in a client's line. Its first job waits for the client's turn;
/// later ones run next (the place has had its turn). Dropping it gives the
/// place back, whatever state it is in.
pub struct Place {
    shared: Arc<Shared>,
    key: ClientKey,
    ticket: Arc<Ticket>,
    deadline: Instant,
}

impl Place {
    /// Runs `work` on a hashing thread when this place's turn comes. A
    /// request dropped meanwhile is dropped from the line too: its job finds
    /// nobody waiting and does nothing.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, mut result) = oneshot::channel();
        let job: Job = Box::new(move |shared: &Shared| {
            if done.is_closed() {
                return;
            }
            let started = Instant::now();
            let output = work();
            // Counted before the answer is sent, so a caller sees its own hash counted.
            shared.record(started.elapsed());
            let _ = done.send(output);
        });
        let first = {
            let mut lines = lock(&self.shared.lines);
            if lines.closed {
                return Err(ApiError::internal("the hashing gate is closed"));
            }
            let first = self.ticket.0.load(Ordering::Acquire);
            if first {
                let now = lines.round;
                let line = lines.clients.entry(self.key).or_default();
                let was_idle = line.queued.is_empty();
                line.queued.push_back(Queued {
                    ticket: Arc::clone(&self.ticket),
                    job,
                });
                if was_idle {
                    let due = now.max(line.next_round);
                    lines.enter_rotation(self.key, due);
                }
            } else {
                lines.follow_ups.push_back(job);
            }
            first
        };
        self.shared.work.notify_one();
        let answer = if first {
            match tokio::time::timeout_at(self.deadline.into(), &mut result).await {
                Ok(answer) => answer,
                // Started just in time: its hash is under way, wait for it.
                Err(_) if !self.ticket.0.load(Ordering::Acquire) => result.await,
                Err(_) => return Err(overloaded()),
            }
        } else {
            result.await
        };
        answer.map_err(|_| ApiError::internal("a hashing job was dropped"))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut lines = lock(&self.shared.lines);
        if !self.ticket.stop_waiting() {
            return;
        }
        if let Some(line) = lines.clients.get_mut(&self.key) {
            line.waiting -= 1;
        }
        lines.forget_if_idle(&self.key);
    }
}

/// The 503 of a place whose turn did not come (a stalled gate).
fn overloaded() -> ApiError {
    ApiError::Overloaded {
        retry_after_seconds: 1,
        detail: "Too many logins at once; try again in a moment",
    }
}

fn seconds_over(expected: Duration, bound: Duration) -> u64 {
    expected
        .saturating_sub(bound)
        .as_millis()
        .div_ceil(1000)
        .max(1) as u64
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap(), 64)
    }

    /// A gate of one thread whose jobs take about `hash` and that waits at most `wait`.
    fn gate(hash: Duration, wait: Duration) -> Gate {
        Gate::start("gate-test", 1, wait, hash)
    }

    /// Holds the only thread until the returned sender is dropped or sent to.
    async fn hold_the_thread(gate: &Gate) -> std::sync::mpsc::Sender<()> {
        hold_the_thread_as(gate, key("192.0.2.250")).await
    }

    /// The same, with a job of `client`'s: that client has had this round's turn.
    async fn hold_the_thread_as(gate: &Gate, client: ClientKey) -> std::sync::mpsc::Sender<()> {
        let place = gate.place(client).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        tokio::spawn(async move {
            let _ = place
                .run(move || {
                    let _ = started_tx.send(());
                    let _ = held.recv();
                })
                .await;
        });
        started.await.unwrap();
        release
    }

    fn queued(gate: &Gate) -> usize {
        let lines = gate.0 .0.lines.lock().unwrap();
        lines.clients.values().map(|l| l.queued.len()).sum()
    }

    fn status(refusal: ApiError) -> (&'static str, u64) {
        match refusal {
            ApiError::RateLimited {
                retry_after_seconds,
                ..
            } => ("429", retry_after_seconds),
            ApiError::Overloaded {
                retry_after_seconds,
                ..
            } => ("503", retry_after_seconds),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_client_past_its_own_line_gets_429_and_others_still_get_a_place() {
        // Each hash 100 ms, one thread, 350 ms of waiting: about four places ahead.
        let gate = gate(Duration::from_millis(100), Duration::from_millis(350));
        let release = hold_the_thread(&gate).await;
        let a = key("203.0.113.1");
        let mut places = Vec::new();
        let refusal = loop {
            match gate.place(a) {
                Ok(place) => places.push(place),
                Err(e) => break e,
            }
            assert!(places.len() < 10, "no bound on one client's line");
        };
        assert!(!places.is_empty());
        let (code, retry) = status(refusal);
        assert_eq!(code, "429", "the client's own line is what is long");
        assert!(retry >= 1);
        // The check says the same, reserving nothing.
        assert!(gate.check(&a).is_err());
        // Another client waits at most one of a's turns: it gets a place.
        gate.place(key("203.0.113.2"))
            .expect("a second client gets in beside a full line");
        // Places dropped are given back: a's line takes one again.
        places.pop();
        places.pop();
        gate.place(a).expect("a place given back is free again");
        drop(release);
    }

    #[tokio::test]
    async fn when_every_client_has_a_place_waiting_a_new_one_gets_503() {
        let gate = gate(Duration::from_millis(100), Duration::from_millis(350));
        let release = hold_the_thread(&gate).await;
        let mut places = Vec::new();
        let refusal = (1..=20)
            .find_map(|i| match gate.place(key(&format!("203.0.113.{i}"))) {
                Ok(place) => {
                    places.push(place);
                    None
                }
                Err(e) => Some(e),
            })
            .expect("the waiting room is bounded");
        assert_eq!(status(refusal).0, "503", "no client asked too much");
        assert!((2..=5).contains(&places.len()), "{} places", places.len());
        drop(release);
    }

    #[tokio::test]
    async fn lines_are_served_in_turn_across_clients() {
        let gate = gate(Duration::from_millis(1), Duration::from_secs(60));
        let release = hold_the_thread(&gate).await;
        // a queues three, then b and c one each.
        let (a, b, c) = ("203.0.113.1", "203.0.113.2", "203.0.113.3");
        let order = run_order(&gate, release, &[a, a, a, b, c]).await;
        assert_eq!(order, [a, b, c, a, a]);
    }

    /// Queues one job per entry of `who` (an IP each) in that order, while the
    /// thread is held, then releases it; returns the order they ran in.
    async fn run_order(
        gate: &Gate,
        release: std::sync::mpsc::Sender<()>,
        who: &[&'static str],
    ) -> Vec<&'static str> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut jobs = Vec::new();
        for &ip in who {
            let place = gate.place(key(ip)).unwrap();
            let order = Arc::clone(&order);
            jobs.push(tokio::spawn(async move {
                place
                    .run(move || order.lock().unwrap().push(ip))
                    .await
                    .unwrap()
            }));
            // Each queued before the next: the arrival order is fixed.
            while queued(gate) < jobs.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        for job in jobs {
            job.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        order
    }

    #[tokio::test]
    async fn a_newcomer_goes_before_a_client_that_has_had_this_rounds_turn() {
        let gate = gate(Duration::from_millis(1), Duration::from_secs(60));
        // The storming client's job is running: its next is due next round.
        let storm = "203.0.113.1";
        let release = hold_the_thread_as(&gate, key(storm)).await;
        let order = run_order(
            &gate,
            release,
            &[storm, storm, "203.0.113.2", "203.0.113.3"],
        )
        .await;
        assert_eq!(order, ["203.0.113.2", "203.0.113.3", storm, storm]);
    }

    #[tokio::test]
    async fn a_place_dropped_before_its_turn_never_runs() {
        let gate = gate(Duration::from_millis(1), Duration::from_secs(60));
        let release = hold_the_thread(&gate).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let place = gate.place(key("203.0.113.1")).unwrap();
        let counter = Arc::clone(&ran);
        let waiting = tokio::spawn(async move {
            let _ = place
                .run(move || counter.fetch_add(1, Ordering::SeqCst))
                .await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting.abort();
        let _ = waiting.await;
        release.send(()).unwrap();
        // A later job of the same client runs, after the dropped one is skipped.
        let place = gate.place(key("203.0.113.1")).unwrap();
        place.run(|| ()).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the dropped job ran");
        assert!(
            gate.0 .0.lines.lock().unwrap().clients.len() <= 1,
            "lines of gone clients are forgotten"
        );
    }

    #[tokio::test]
    async fn a_place_that_waits_past_its_estimate_is_still_served() {
        // The estimate says 1 ms and the bound is 50 ms, but the thread is busy for 300 ms.
        let gate = gate(Duration::from_millis(1), Duration::from_millis(50));
        let release = hold_the_thread(&gate).await;
        let place = gate.place(key("203.0.113.1")).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(release);
        });
        let started = Instant::now();
        place.run(|| ()).await.expect("served late, not refused");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_place_of_a_stalled_gate_is_given_up_with_503() {
        let gate = gate(Duration::from_millis(1), Duration::from_millis(50));
        let release = hold_the_thread(&gate).await;
        let place = gate.place(key("203.0.113.1")).unwrap();
        let started = Instant::now();
        let refused = place.run(|| ()).await.unwrap_err();
        assert_eq!(status(refused).0, "503");
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(450)..Duration::from_millis(1500)).contains(&waited),
            "{waited:?}: STALLED × the bound"
        );
        drop(release);
    }
}
