//! Password hashing off the request threads, on a bounded pool.
//!
//! One PBKDF2 hash at Django's 1,000,000 iterations is a tenth of a second
//! of one core. Run on tokio's blocking threads without a bound, a burst of
//! logins takes every core and every page slows down with it. Here at most
//! `HASHING_THREADS` hashes run at once (by default one fewer than the
//! cores, so pages always have one), at most `HASHING_QUEUE` more wait for
//! a thread, and none waits longer than `HASHING_WAIT_SECONDS`: past
//! either bound the caller is told the pool is busy at once, and the login
//! answers 503 with `Retry-After` instead of queueing without end.
//!
//! The threads are the pool's own, started once, and run at a lower
//! scheduling priority ([`HASHING_NICE`]): when pages and hashes want the
//! same core, the page goes first and the hash takes what is left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

pub use crate::config::HashingLimits;

/// The hashing pool is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password-hashing thread is busy and the queue is full")]
pub struct Busy;

impl From<Busy> for crate::web::error::AppError {
    fn from(busy: Busy) -> Self {
        crate::web::error::AppError::Unavailable(busy.to_string())
    }
}

/// The nice value of the hashing threads (0 is a normal thread's, 19 the
/// least). 5 weighs a hashing thread at a third of a page thread: a login
/// under full page load still finishes in a few times its hash time.
pub const HASHING_NICE: i32 = 5;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct HashingPool {
    limits: HashingLimits,
    /// Hashes running or waiting: `threads + queue` permits.
    admitted: Arc<Semaphore>,
    /// Hashes running: `threads` permits.
    running: Arc<Semaphore>,
    /// Hashes refused so far (queue full or wait too long).
    refused: Arc<AtomicU64>,
    /// To the pool's threads; never holds more than `threads` jobs, one per
    /// `running` permit.
    jobs: mpsc::Sender<Job>,
}

/// What the pool is doing now, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingUse {
    pub running: usize,
    pub queued: usize,
    /// Since start-up: hashes answered [`Busy`].
    pub refused: u64,
}

impl HashingPool {
    /// Starts the pool's threads; they end when the last clone is dropped.
    pub fn new(limits: HashingLimits) -> HashingPool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..limits.threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("hashing-{n}"))
                .spawn(move || {
                    lower_own_priority();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })
                .expect("start a password-hashing thread");
        }
        HashingPool {
            limits,
            admitted: Arc::new(Semaphore::new(limits.threads + limits.queue)),
            running: Arc::new(Semaphore::new(limits.threads)),
            refused: Arc::new(AtomicU64::new(0)),
            jobs,
        }
    }

    pub fn usage(&self) -> HashingUse {
        let running = self.limits.threads - self.running.available_permits();
        let admitted = self.limits.threads + self.limits.queue - self.admitted.available_permits();
        HashingUse {
            running,
            queued: admitted.saturating_sub(running),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn refuse(&self) -> Busy {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Busy
    }

    pub fn limits(&self) -> HashingLimits {
        self.limits
    }

    /// Runs `work` on a blocking thread once one of the pool's places is
    /// free, or answers [`Busy`] when the queue is full or the wait too
    /// long. The work itself is never cut short.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.refuse())?;
        let running = tokio::time::timeout(self.limits.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| self.refuse())?
            .expect("the pool's semaphores are never closed");
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The place is free before the caller hears the answer.
            drop(running);
            // The caller may have gone (its client hung up): nobody to tell.
            let _ = answer.send(outcome);
        });
        self.jobs
            .send(job)
            .expect("the hashing threads live as long as the pool");
        match answered
            .await
            .expect("a hashing job always answers, panic or not")
        {
            Ok(value) => Ok(value),
            // A panic in the hash is a bug: surface it where it happened.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Lowers the calling thread's scheduling priority to [`HASHING_NICE`]
/// (on Linux a nice value is per thread). Where that is refused, the thread
/// hashes at the normal priority.
fn lower_own_priority() {
    // SAFETY: plain system calls on the calling thread, no memory passed.
    let refused = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            HASHING_NICE,
        )
    };
    if refused != 0 {
        tracing::warn!(
            "password hashing runs at the normal priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_threads_at_once_and_refuses_past_the_queue() {
        let pool = HashingPool::new(HashingLimits {
            threads: 2,
            queue: 3,
            wait: Duration::from_secs(30),
        });
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let mut admitted = Vec::new();
        for _ in 0..5 {
            let (pool, running, most, released) = (
                pool.clone(),
                running.clone(),
                most.clone(),
                released.clone(),
            );
            admitted.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    released.lock().unwrap().recv().unwrap();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Five admitted (two running, three waiting): a sixth is refused at once.
        while running.load(Ordering::SeqCst) < 2 || pool.admitted.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            pool.usage(),
            HashingUse {
                running: 2,
                queued: 3,
                refused: 0
            }
        );
        assert_eq!(pool.run(|| ()).await, Err(Busy));
        assert_eq!(pool.usage().refused, 1);
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        for task in admitted {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // Room again once they are done.
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(
            pool.usage(),
            HashingUse {
                running: 0,
                queued: 0,
                refused: 1
            }
        );
    }

    #[tokio::test]
    async fn hashes_run_on_the_pools_threads_below_the_normal_priority() {
        let pool = HashingPool::new(HashingLimits {
            threads: 1,
            queue: 0,
            wait: Duration::from_secs(30),
        });
        let (name, nice) = pool
            .run(|| {
                // SAFETY: reads the calling thread's own priority.
                let nice =
                    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
                (std::thread::current().name().map(String::from), nice)
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("hashing-0"));
        assert_eq!(nice, HASHING_NICE);
        // SAFETY: as above, on this (test) thread.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        assert_ne!(own, HASHING_NICE, "only the hashing threads are lowered");
    }

    #[tokio::test]
    async fn a_panicking_hash_leaves_the_thread_working() {
        let pool = HashingPool::new(HashingLimits {
            threads: 1,
            queue: 0,
            wait: Duration::from_secs(30),
        });
        let panicked = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| panic!("a bug in a hasher")).await })
        };
        assert!(panicked.await.unwrap_err().is_panic());
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_longer_than_the_limit_is_refused() {
        let pool = HashingPool::new(HashingLimits {
            threads: 1,
            queue: 10,
            wait: Duration::from_millis(100),
        });
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || released.recv().unwrap()).await })
        };
        while pool.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert_eq!(pool.run(|| ()).await, Err(Busy));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(pool.usage().refused, 1);
        release.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(()));
    }
}
