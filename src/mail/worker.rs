//! The outbox worker: sends due letters in id order, marks them sent, and
//! retries failures with exponential back-off; a letter whose address can
//! never be sent is marked failed and not retried.
//!
//! Each letter is claimed before it is sent (a lease on `next_attempt_at`,
//! see [`outbox::claim`]) and no transaction is held across the network, so
//! any number of servers on one database share the work without sending a
//! letter twice. A worker wakes when told a letter was committed
//! ([`MailerHandle::notify`]), when the next retry falls due, and at least
//! every [`POLL_INTERVAL`], so letters enqueued by another process go too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{EmailSettings, EMAIL_RETRY_CAP};
use crate::db::outbox::{self, OutboxRow};
use crate::db::time::DjangoDateTime;
use crate::db::Db;
use crate::mail::{MailError, Mailer};

/// How often the worker looks at the outbox when nobody wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How long a claimed letter belongs to the worker sending it. Far longer
/// than one SMTP conversation (each step gives up after 30 s), so another
/// worker takes it over only when this one died mid-send.
pub const CLAIM_LEASE: Duration = Duration::from_secs(600);

/// How long [`MailerHandle::shutdown`] lets a letter in flight finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

const BATCH: i64 = 20;

/// The wait after the `attempts`-th failure of a letter: `base`, doubling
/// with each further failure, never more than an hour.
pub fn retry_delay(base: Duration, attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 31) as u32;
    base.checked_mul(1u32 << doublings)
        .unwrap_or(EMAIL_RETRY_CAP)
        .min(EMAIL_RETRY_CAP)
}

fn later(time: DjangoDateTime, by: Duration) -> DjangoDateTime {
    let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    DjangoDateTime(time.0.checked_add_signed(by).unwrap_or(time.0))
}

/// What became of one attempt at a letter.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub recipient: String,
    /// `Err` holds the error, as stored in `last_error`.
    pub result: Result<(), String>,
    /// Failed attempts so far, this one included.
    pub attempts: i32,
    /// When it is tried again, after a failure; `None` after a failure
    /// means never: the address can never be sent, and the letter is
    /// marked failed ([`outbox::AfterFailure::GiveUpAt`]).
    pub retry_at: Option<DjangoDateTime>,
}

/// Claims one letter and sends it: marks it sent, or records the failure and
/// schedules the retry, or, when its address can never be sent, marks it
/// failed for good. `None` when the letter is not (or no longer) due: sent
/// or given up already, waiting for its retry, or claimed by another worker.
pub async fn deliver(
    db: &Db,
    mailer: &Mailer,
    row: &OutboxRow,
    retry_base: Duration,
) -> Result<Option<Delivery>, sqlx::Error> {
    let now = DjangoDateTime::now();
    if !outbox::claim(
        db,
        mailer.outbox_backend(),
        row.id,
        now,
        later(now, CLAIM_LEASE),
    )
    .await?
    {
        return Ok(None);
    }
    let sent = mailer.send(&row.email()).await;
    let permanent = sent.as_ref().is_err_and(MailError::is_permanent);
    let result = sent.map_err(|e| e.to_string());
    let mut delivery = Delivery {
        id: row.id,
        recipient: row.recipient.clone(),
        result,
        attempts: row.attempts,
        retry_at: None,
    };
    match &delivery.result {
        Ok(()) => {
            outbox::mark_sent(db, row.id, DjangoDateTime::now()).await?;
            tracing::info!("e-mail {} sent to {}", row.id, row.recipient);
        }
        Err(error) if permanent => {
            delivery.attempts += 1;
            outbox::mark_failed(
                db,
                row.id,
                error,
                outbox::AfterFailure::GiveUpAt(DjangoDateTime::now()),
            )
            .await?;
            tracing::error!(
                "e-mail {} to {:?} can never be sent, marked failed: {error}",
                row.id,
                row.recipient
            );
        }
        Err(error) => {
            delivery.attempts += 1;
            let delay = retry_delay(retry_base, delivery.attempts);
            let retry_at = later(DjangoDateTime::now(), delay);
            outbox::mark_failed(db, row.id, error, outbox::AfterFailure::RetryAt(retry_at)).await?;
            delivery.retry_at = Some(retry_at);
            tracing::warn!(
                "e-mail {} to {} not sent (attempt {}), retrying in {}s: {error}",
                row.id,
                row.recipient,
                delivery.attempts,
                delay.as_secs()
            );
        }
    }
    Ok(Some(delivery))
}

/// One pass over the outbox: every due letter, in id order.
pub async fn deliver_due(
    db: &Db,
    mailer: &Mailer,
    retry_base: Duration,
) -> Result<Vec<Delivery>, sqlx::Error> {
    pass(db, mailer, retry_base, &MailCounters::default(), || false).await
}

async fn pass(
    db: &Db,
    mailer: &Mailer,
    retry_base: Duration,
    counters: &MailCounters,
    stopping: impl Fn() -> bool,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let mut deliveries = Vec::new();
    loop {
        let rows = outbox::due(db, mailer.outbox_backend(), DjangoDateTime::now(), BATCH).await?;
        let mut progressed = false;
        for row in &rows {
            if stopping() {
                return Ok(deliveries);
            }
            if let Some(delivery) = deliver(db, mailer, row, retry_base).await? {
                counters.count(&delivery);
                deliveries.push(delivery);
            }
            // Sent, failed (so no longer due) or claimed elsewhere: either
            // way the next query moves past it.
            progressed = true;
        }
        if (rows.len() as i64) < BATCH || !progressed {
            return Ok(deliveries);
        }
    }
}

/// Letters this worker sent and attempts that failed since it started
/// (the metrics read them).
#[derive(Debug, Default)]
pub struct MailCounters {
    sent: AtomicU64,
    failed: AtomicU64,
}

impl MailCounters {
    fn count(&self, delivery: &Delivery) {
        let counter = match delivery.result {
            Ok(()) => &self.sent,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Letters sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Attempts that failed (a letter retried three times counts three).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

struct Shared {
    wake: Notify,
    counters: MailCounters,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The running worker. Cheap to clone: every clone wakes the same worker.
#[derive(Clone)]
pub struct MailerHandle {
    shared: Arc<Shared>,
}

impl MailerHandle {
    /// Wakes the worker: call it right after committing a transaction that
    /// enqueued a letter. A wake-up while it is busy is kept, not lost.
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// Whether the worker's task still runs (it ends only on
    /// [`MailerHandle::shutdown`], or if it panicked).
    pub fn is_running(&self) -> bool {
        self.shared
            .task
            .lock()
            .expect("worker task lock")
            .as_ref()
            .is_some_and(|task| !task.is_finished())
    }

    /// What the worker sent and failed to send so far.
    pub fn counters(&self) -> &MailCounters {
        &self.shared.counters
    }

    /// Stops the worker: a letter being sent is finished (up to
    /// [`SHUTDOWN_GRACE`]; past that the task is aborted and the letter's
    /// claim lapses, so it is retried later), then the loop exits.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let task = self.shared.task.lock().expect("worker task lock").take();
        if let Some(mut task) = task {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                tracing::warn!(
                    "the mail worker did not stop in time; abandoning the letter in flight"
                );
                task.abort();
            }
        }
    }
}

/// Starts the worker on the current tokio runtime. `serve` keeps the handle,
/// calls [`MailerHandle::notify`] after each commit that enqueued mail and
/// [`MailerHandle::shutdown`] on the way out.
pub fn spawn_worker(db: Db, settings: EmailSettings) -> MailerHandle {
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        wake: Notify::new(),
        counters: MailCounters::default(),
        stop,
        task: Mutex::new(None),
    });
    let task = tokio::spawn(run(db, settings, shared.clone(), stopped));
    *shared.task.lock().expect("worker task lock") = Some(task);
    MailerHandle { shared }
}

async fn run(
    db: Db,
    settings: EmailSettings,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mailer = match Mailer::new(&settings) {
        Ok(mailer) => Some(mailer),
        Err(e) => {
            tracing::error!("the mail worker cannot send, letters stay in the outbox: {e}");
            None
        }
    };
    loop {
        if *stopped.borrow() {
            break;
        }
        let mut wait = POLL_INTERVAL;
        if let Some(mailer) = &mailer {
            let stop_flag = stopped.clone();
            match pass(
                &db,
                mailer,
                settings.retry_base,
                &shared.counters,
                move || *stop_flag.borrow(),
            )
            .await
            {
                Ok(_) => {
                    if let Ok(Some(next)) = outbox::next_due_at(&db, mailer.outbox_backend()).await
                    {
                        let until = (next.0 - DjangoDateTime::now().0)
                            .to_std()
                            .unwrap_or(Duration::ZERO);
                        wait = until.clamp(Duration::from_millis(100), POLL_INTERVAL);
                    }
                }
                Err(e) => tracing::warn!("the mail worker cannot read the outbox: {e}"),
            }
        }
        if *stopped.borrow() {
            break;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => {}
        }
    }
    if let Some(mailer) = &mailer {
        mailer.close().await;
    }
    tracing::debug!("the mail worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_the_base_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=9).map(|n| retry_delay(base, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(base, 0), base);
        assert_eq!(retry_delay(base, i32::MAX), EMAIL_RETRY_CAP);
        assert_eq!(
            retry_delay(Duration::from_secs(1), 3),
            Duration::from_secs(4)
        );
        assert_eq!(retry_delay(EMAIL_RETRY_CAP, 2), EMAIL_RETRY_CAP);
    }

    #[test]
    fn later_adds_and_saturates() {
        let now = DjangoDateTime::now();
        assert_eq!(
            (later(now, Duration::from_secs(90)).0 - now.0).num_seconds(),
            90
        );
        assert!(later(now, Duration::MAX) >= now);
    }
}
