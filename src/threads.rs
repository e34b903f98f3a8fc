//! A fixed set of named threads fed from one queue: blocking work (Diesel,
//! bcrypt) kept off the async workers, with as many running at once as there
//! are threads, and each job taken by whichever thread frees first.
use std::sync::{mpsc, Arc, Mutex};

/// Work for one of the threads.
pub type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` threads named `{name}-{i}`; jobs sent on the returned
/// sender run in the order sent, and at most `bound` wait (`try_send` says
/// when the queue is full, so the caller can answer instead of waiting).
/// The threads end once every sender is gone.
pub fn start(name: &str, count: usize, bound: usize) -> mpsc::SyncSender<Job> {
    let (jobs, queue) = mpsc::sync_channel::<Job>(bound);
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..count {
        let queue = Arc::clone(&queue);
        let started = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                // A panicking job fails its own caller (its answer channel
                // drops), not the thread: the queue keeps all its threads.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            });
        if let Err(e) = started {
            log::error!("could not start thread {name}-{i}: {e}");
        }
    }
    jobs
}
