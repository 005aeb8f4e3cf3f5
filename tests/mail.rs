//! E-mail against a real SMTP server on loopback (aiosmtpd, with TLS and a
//! login required; `compat-tests/tools/smtp_server.py`): `sendtestemail`
//! over implicit TLS and STARTTLS, failures that keep the letter in the
//! outbox, the worker that retries it (and gives up a letter whose address
//! can never be sent), two workers sharing one outbox, and
//! the console and file back ends. On SQLite, and on PostgreSQL when
//! `UNCHAINED_TEST_POSTGRES` is set.

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::smtp::{
    ca, trust_test_ca_in_this_process, Mode, SmtpServer, SMTP_PASSWORD as PASSWORD,
    SMTP_USER as USER,
};
use common::{backends, free_port, text, TestDb};
use unchained::db::outbox::{self, OutboxRow};
use unchained::db::time::DjangoDateTime;
use unchained::db::Db;
use unchained::mail::Email;

const FROM: &str = "Каталог <shop@example.com>";
const TEST_BODY: &str = "If you're reading this, it was successful.";

/// The SMTP settings for a server on `port`; `trust` points SSL_CERT_FILE at
/// the test CA.
fn smtp_env(port: u16, mode: Mode, password: &str, trust: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        (
            "EMAIL_BACKEND",
            "django.core.mail.backends.smtp.EmailBackend",
        ),
        ("EMAIL_HOST", "127.0.0.1"),
        ("EMAIL_HOST_USER", USER),
        ("EMAIL_HOST_PASSWORD", password),
        ("DEFAULT_FROM_EMAIL", FROM),
        (
            "EMAIL_USE_SSL",
            if mode == Mode::Ssl { "True" } else { "False" },
        ),
        (
            "EMAIL_USE_TLS",
            if mode == Mode::StartTls {
                "True"
            } else {
                "False"
            },
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("EMAIL_PORT".into(), port.to_string()));
    if trust {
        env.push(("SSL_CERT_FILE".into(), ca().cert.display().to_string()));
    }
    env
}

fn run_with(t: &TestDb, args: &[&str], env: &[(String, String)]) -> Output {
    t.command(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run unchained")
}

async fn migrated(backend: &str) -> (TestDb, Db) {
    let t = TestDb::new(backend).await;
    let out = t.run(&["migrate"]);
    assert!(out.status.success(), "{backend}: {}", text(&out));
    let db = t.db().await;
    (t, db)
}

/// An SMTP server in this mode on a free port (its received letters kept in
/// the folder `name` beside the database), and that port.
fn smtp_server(t: &TestDb, mode: Mode, name: &str) -> (u16, SmtpServer) {
    let port = free_port();
    (port, SmtpServer::start(mode, port, &t.path(name)))
}

/// Settings for Django's console back end.
fn console_env() -> Vec<(String, String)> {
    vec![("EMAIL_BACKEND".to_string(), "console".to_string())]
}

/// `check` succeeds and says nothing of the outbox.
fn assert_check_ignores_outbox(t: &TestDb, what: &str) {
    let check = t.run(&["check"]);
    assert!(check.status.success(), "{what}: {}", text(&check));
    assert!(
        !text(&check).contains("unchained_outbox"),
        "{what}: {}",
        text(&check)
    );
}

/// `migrate` says it created the outbox table.
fn assert_migrate_creates_outbox(out: &Output, what: &str) {
    assert!(
        text(out).contains("Created table unchained_outbox"),
        "{what}: {}",
        text(out)
    );
}

async fn row(db: &Db, id: i64) -> OutboxRow {
    outbox::by_id(db, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("outbox row {id} is missing"))
}

fn assert_test_letter(message: &serde_json::Value, to: &str) {
    assert_eq!(message["mail_from"], "shop@example.com", "{message}");
    assert_eq!(message["rcpt_tos"], serde_json::json!([to]), "{message}");
    assert_eq!(message["login"], USER, "{message}");
    assert_eq!(message["from"], FROM, "{message}");
    assert_eq!(message["to"], to, "{message}");
    let subject = message["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("Test email from ") && subject.ends_with("+00:00"),
        "{subject}"
    );
    assert_eq!(message["content_type"], "text/plain");
    assert_eq!(message["charset"], "utf-8");
    assert_eq!(message["body"].as_str().unwrap().trim_end(), TEST_BODY);
    assert!(message["message_id"].as_str().unwrap().contains('@'));
    assert_ne!(message["date"], "None");
}

#[tokio::test]
async fn sendtestemail_delivers_over_implicit_tls_and_starttls() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        for (n, mode) in [Mode::Ssl, Mode::StartTls].into_iter().enumerate() {
            let (port, server) = smtp_server(&t, mode, &format!("smtp-{n}"));
            let to = format!("ivan.{n}@example.com");
            let out = run_with(
                &t,
                &["sendtestemail", &to],
                &smtp_env(port, mode, PASSWORD, true),
            );
            assert!(out.status.success(), "{backend} {mode:?}: {}", text(&out));
            let id = n as i64 + 1;
            assert!(
                text(&out).contains(&format!("Sent test email {id} to {to}.")),
                "{backend} {mode:?}: {}",
                text(&out)
            );
            let messages = server.messages();
            assert_eq!(messages.len(), 1, "{backend} {mode:?}: {messages:?}");
            assert_test_letter(&messages[0], &to);
            let sent = row(&db, id).await;
            assert!(sent.sent_at.is_some(), "{backend} {mode:?}: {sent:?}");
            assert_eq!(sent.attempts, 0);
            assert_eq!(sent.last_error, None);
            assert_eq!(sent.recipient, to);
        }
        // Several addresses: one letter each.
        let (port, server) = smtp_server(&t, Mode::Ssl, "smtp-many");
        let out = run_with(
            &t,
            &["sendtestemail", "a@example.com", "b@example.com"],
            &smtp_env(port, Mode::Ssl, PASSWORD, true),
        );
        assert!(out.status.success(), "{backend}: {}", text(&out));
        let messages = server.messages();
        assert_eq!(messages.len(), 2, "{backend}: {messages:?}");
        assert_test_letter(&messages[0], "a@example.com");
        assert_test_letter(&messages[1], "b@example.com");
        db.close().await;
    }
}

#[tokio::test]
async fn a_wrong_password_keeps_the_letter_in_the_outbox() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let (port, server) = smtp_server(&t, Mode::StartTls, "smtp");
        let out = run_with(
            &t,
            &["sendtestemail", "ivan@example.com"],
            &smtp_env(port, Mode::StartTls, "wrong password", true),
        );
        assert_eq!(out.status.code(), Some(1), "{backend}: {}", text(&out));
        assert!(
            text(&out).contains("Could not send test email 1 to ivan@example.com"),
            "{backend}: {}",
            text(&out)
        );
        assert!(server.messages().is_empty());
        let kept = row(&db, 1).await;
        assert_eq!(kept.sent_at, None, "{backend}");
        assert_eq!(kept.attempts, 1, "{backend}");
        let error = kept.last_error.clone().expect("last_error is set");
        assert!(error.contains("535"), "{backend}: {error}");
        // Retried after EMAIL_RETRY_SECONDS (30 s by default), not at once.
        let wait = (kept.next_attempt_at.0 - DjangoDateTime::now().0).num_seconds();
        assert!((20..=30).contains(&wait), "{backend}: retry in {wait}s");
        db.close().await;
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        for (n, mode) in [Mode::Ssl, Mode::StartTls].into_iter().enumerate() {
            let (port, server) = smtp_server(&t, mode, &format!("smtp-{n}"));
            // No SSL_CERT_FILE: only the system's roots, which do not know the test CA.
            let out = run_with(
                &t,
                &["sendtestemail", "ivan@example.com"],
                &smtp_env(port, mode, PASSWORD, false),
            );
            assert_eq!(
                out.status.code(),
                Some(1),
                "{backend} {mode:?}: {}",
                text(&out)
            );
            assert!(server.messages().is_empty(), "{backend} {mode:?}");
            let kept = row(&db, n as i64 + 1).await;
            assert_eq!(kept.sent_at, None);
            assert_eq!(kept.attempts, 1);
            let error = kept.last_error.unwrap().to_lowercase();
            assert!(
                error.contains("certificate") || error.contains("issuer"),
                "{backend} {mode:?}: {error}"
            );
        }
        db.close().await;
    }
}

fn settings_for(t: &TestDb, extra: &[(String, String)]) -> unchained::config::Settings {
    let env: unchained::config::Env = t
        .settings_env()
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
    unchained::config::Settings::from_env(&env).unwrap()
}

async fn wait_until_sent(db: &Db, ids: &[i64], within: Duration) {
    let start = Instant::now();
    loop {
        let mut pending = Vec::new();
        for id in ids {
            if row(db, *id).await.sent_at.is_none() {
                pending.push(*id);
            }
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < within,
            "letters {pending:?} still unsent after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_delivers_once_the_server_is_back_exactly_once() {
    trust_test_ca_in_this_process();
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let port = free_port();
        let mut env = smtp_env(port, Mode::StartTls, PASSWORD, true);
        env.push(("EMAIL_RETRY_SECONDS".into(), "1".into()));

        // Nobody listens: the letter fails and stays.
        let out = run_with(&t, &["sendtestemail", "ivan@example.com"], &env);
        assert_eq!(out.status.code(), Some(1), "{backend}: {}", text(&out));
        let kept = row(&db, 1).await;
        assert_eq!((kept.attempts, kept.sent_at), (1, None), "{backend}");
        assert!(kept.last_error.is_some());

        // A letter enqueued by the site, in Russian.
        let subject = "Подтверждение регистрации на сайте «Каталог» — осталось перейти по ссылке";
        let body = "Здравствуйте!\nЧтобы подтвердить адрес, перейдите по ссылке:\nhttp://127.0.0.1:8000/users/email-confirm/токен/\n";
        let mut tx = db.begin().await.unwrap();
        let russian = outbox::enqueue(
            &mut tx,
            &Email::new("petr@example.com", subject, body).unwrap(),
            &settings_for(&t, &env).email.outbox_backend(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let server = SmtpServer::start(Mode::StartTls, port, &t.path("smtp"));
        let worker = unchained::mail::spawn_worker(db.clone(), settings_for(&t, &env).email);
        worker.notify();
        wait_until_sent(&db, &[1, russian], Duration::from_secs(30)).await;

        // Woken again and again, it sends nothing more.
        for _ in 0..5 {
            worker.notify();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let messages = server.messages();
        assert_eq!(messages.len(), 2, "{backend}: {messages:?}");
        // The Russian letter went first: the other waited for its retry.
        let by_recipient = |to: &str| {
            messages
                .iter()
                .find(|m| m["to"] == to)
                .unwrap_or_else(|| panic!("{backend}: nothing to {to}: {messages:?}"))
        };
        assert_test_letter(by_recipient("ivan@example.com"), "ivan@example.com");
        let russian_message = by_recipient("petr@example.com");
        assert_eq!(russian_message["subject"], subject, "{backend}");
        assert_eq!(russian_message["from"], FROM, "{backend}");
        assert_eq!(russian_message["body"], body, "{backend}");
        assert_eq!(russian_message["transfer_encoding"], "8bit");
        let first = row(&db, 1).await;
        assert_eq!(first.attempts, 1, "the one failure is still counted");
        assert_eq!(first.last_error, None);
        assert_eq!(row(&db, russian).await.attempts, 0);

        let stopping = Instant::now();
        worker.shutdown().await;
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "{backend}: slow shutdown"
        );
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_send_a_letter_twice() {
    trust_test_ca_in_this_process();
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let (port, server) = smtp_server(&t, Mode::Ssl, "smtp");
        let env = smtp_env(port, Mode::Ssl, PASSWORD, true);
        const LETTERS: usize = 30;
        let mut ids = Vec::new();
        let backend_id = settings_for(&t, &env).email.outbox_backend();
        let mut tx = db.begin().await.unwrap();
        for n in 0..LETTERS {
            let letter = Email::new(
                format!("user{n}@example.com"),
                format!("Письмо №{n}"),
                "Текст",
            )
            .unwrap();
            ids.push(
                outbox::enqueue(&mut tx, &letter, &backend_id)
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();

        // Two servers: two pools, two workers, one outbox.
        let other_db = t.db().await;
        let settings = settings_for(&t, &env);
        let first = unchained::mail::spawn_worker(db.clone(), settings.email.clone());
        let second = unchained::mail::spawn_worker(other_db.clone(), settings.email);
        first.notify();
        second.notify();
        wait_until_sent(&db, &ids, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let messages = server.messages();
        let mut subjects: Vec<String> = messages
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(subjects.len(), LETTERS, "{backend}: {subjects:?}");
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), LETTERS, "{backend}: a letter went twice");
        first.shutdown().await;
        second.shutdown().await;
        other_db.close().await;
        db.close().await;
    }
}

#[tokio::test]
async fn the_console_back_end_prints_djangos_format() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let env = console_env();
        let out = run_with(&t, &["sendtestemail", "ivan@example.com"], &env);
        assert!(out.status.success(), "{backend}: {}", text(&out));
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        for expected in [
            "From: webmaster@localhost",
            "To: ivan@example.com",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 7bit",
            TEST_BODY,
        ] {
            assert!(
                lines.contains(&expected),
                "{backend}: no {expected:?} in {stdout}"
            );
        }
        assert!(lines
            .iter()
            .any(|l| l.starts_with("Subject: Test email from ")));
        assert!(lines.iter().any(|l| l.starts_with("Date: ")));
        assert!(lines.iter().any(|l| l.starts_with("Message-ID: <")));
        let separator = lines
            .iter()
            .position(|l| *l == "-".repeat(79))
            .expect("79 dashes");
        assert_eq!(lines[separator - 1], TEST_BODY, "{backend}: {stdout}");
        assert!(!stdout.contains('\r'));
        assert!(row(&db, 1).await.sent_at.is_some());
        db.close().await;
    }
}

#[tokio::test]
async fn the_file_back_end_writes_one_file_per_letter() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let folder = t.path("mail").join("outgoing");
        let env = vec![
            ("EMAIL_BACKEND".to_string(), "file".to_string()),
            ("EMAIL_FILE_PATH".to_string(), folder.display().to_string()),
        ];
        let out = run_with(&t, &["sendtestemail", "ivan@example.com"], &env);
        assert!(out.status.success(), "{backend}: {}", text(&out));
        let files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{backend}: {files:?}");
        let name = files[0].file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(".log") && name.as_bytes()[8] == b'-' && name.as_bytes()[15] == b'-',
            "{name}"
        );
        let content = std::fs::read_to_string(&files[0]).unwrap();
        assert!(content.contains("\nTo: ivan@example.com\n"), "{content}");
        assert!(
            content.ends_with(&format!("\n\n{TEST_BODY}\n{}\n", "-".repeat(79))),
            "{content}"
        );
        assert!(row(&db, 1).await.sent_at.is_some());
        db.close().await;
    }
}

#[tokio::test]
async fn letters_are_stored_only_when_the_transaction_commits() {
    for backend in backends() {
        let (_t, db) = migrated(backend).await;
        let letter = Email::new("ivan@example.com", "Тема", "Текст").unwrap();

        const SMTP: &str = "smtp://127.0.0.1:465";
        const CONSOLE: &str = "console";
        let mut tx = db.begin().await.unwrap();
        outbox::enqueue(&mut tx, &letter, SMTP).await.unwrap();
        drop(tx); // rolled back, as when the change that caused it fails
        let now = DjangoDateTime::now();
        assert!(
            outbox::due(&db, SMTP, now, 10).await.unwrap().is_empty(),
            "{backend}"
        );

        let mut tx = db.begin().await.unwrap();
        let id = outbox::enqueue(&mut tx, &letter, SMTP).await.unwrap();
        tx.commit().await.unwrap();
        let due = outbox::due(&db, SMTP, DjangoDateTime::now(), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{backend}");
        assert_eq!(due[0].email(), letter);
        assert_eq!((due[0].id, due[0].attempts, due[0].sent_at), (id, 0, None));
        assert_eq!(due[0].backend.as_deref(), Some(SMTP));

        // An instance with another back end (a console one for debugging,
        // on the same database) neither sees nor claims it.
        let now = DjangoDateTime::now();
        let lease = DjangoDateTime(now.0 + chrono::Duration::minutes(10));
        assert!(outbox::due(&db, CONSOLE, now, 10).await.unwrap().is_empty());
        assert_eq!(outbox::next_due_at(&db, CONSOLE).await.unwrap(), None);
        assert!(!outbox::claim(&db, CONSOLE, id, now, lease).await.unwrap());

        // One claim wins; the letter is not due while claimed.
        assert!(outbox::claim(&db, SMTP, id, now, lease).await.unwrap());
        assert!(!outbox::claim(&db, SMTP, id, now, lease).await.unwrap());
        assert!(outbox::due(&db, SMTP, now, 10).await.unwrap().is_empty());

        let retry = DjangoDateTime(now.0 + chrono::Duration::seconds(30));
        outbox::mark_failed(
            &db,
            id,
            "421 try later",
            outbox::AfterFailure::RetryAt(retry),
        )
        .await
        .unwrap();
        let failed = row(&db, id).await;
        assert_eq!(
            (failed.attempts, failed.last_error.as_deref()),
            (1, Some("421 try later"))
        );
        assert_eq!(outbox::next_due_at(&db, SMTP).await.unwrap(), Some(retry));
        assert_eq!(outbox::due(&db, SMTP, retry, 10).await.unwrap().len(), 1);

        outbox::mark_sent(&db, id, retry).await.unwrap();
        assert!(outbox::due(&db, SMTP, retry, 10).await.unwrap().is_empty());
        assert_eq!(outbox::next_due_at(&db, SMTP).await.unwrap(), None);
        assert_eq!(row(&db, id).await.sent_at, Some(retry));
        db.close().await;
    }
}

/// A letter to an address no back end can send to (one Django's
/// validator refuses, or one lettre refuses although Django takes it) is
/// marked failed at its first attempt and never tried again; the others go.
#[tokio::test]
async fn a_letter_that_can_never_be_sent_is_marked_failed_not_retried() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let folder = t.path("mail");
        let settings = unchained::config::EmailSettings {
            backend: unchained::config::EmailBackend::File(folder.clone()),
            host: "unused".into(),
            port: 25,
            host_user: String::new(),
            host_password: Default::default(),
            use_ssl: false,
            use_tls: false,
            default_from: "shop@example.com".into(),
            retry_base: Duration::from_secs(30),
        };
        let mailer = unchained::mail::Mailer::new(&settings).unwrap();
        // Django's EmailField takes a local part of 65 characters; lettre
        // (RFC 5321's limit) does not. lettre takes a domain without a dot;
        // Django does not.
        let long_local = format!("{}@example.com", "a".repeat(65));
        let recipients = ["ivan@example.com", long_local.as_str(), "ivan@example"];
        let mut tx = db.begin().await.unwrap();
        let mut ids = Vec::new();
        for to in recipients {
            let letter = Email {
                to: to.to_string(),
                subject: "Тема".into(),
                body: "Текст".into(),
            };
            ids.push(
                outbox::enqueue(&mut tx, &letter, &settings.outbox_backend())
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();

        let deliveries = unchained::mail::deliver_due(&db, &mailer, settings.retry_base)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 3, "{backend}: {deliveries:?}");
        assert!(deliveries[0].result.is_ok(), "{backend}: {deliveries:?}");
        for delivery in &deliveries[1..] {
            let error = delivery.result.as_ref().unwrap_err();
            assert!(
                error.contains("not an e-mail address"),
                "{backend}: {error}"
            );
            assert_eq!(delivery.retry_at, None, "{backend}: never retried");
            assert_eq!(delivery.attempts, 1, "{backend}");
        }
        assert!(row(&db, ids[0]).await.sent_at.is_some(), "{backend}");
        for &id in &ids[1..] {
            let failed = row(&db, id).await;
            assert_eq!(failed.sent_at, None, "{backend}: {failed:?}");
            assert!(failed.failed_at.is_some(), "{backend}: {failed:?}");
            assert_eq!(failed.attempts, 1, "{backend}: {failed:?}");
            assert!(
                failed
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("not an e-mail address")),
                "{backend}: {failed:?}"
            );
        }

        // Given up: not due at any time, not claimable, not waiting, and a
        // second pass sends nothing.
        let outbox_backend = settings.outbox_backend();
        let later = DjangoDateTime(DjangoDateTime::now().0 + chrono::Duration::days(365));
        let lease = DjangoDateTime(later.0 + chrono::Duration::minutes(10));
        assert!(outbox::due(&db, &outbox_backend, later, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            outbox::next_due_at(&db, &outbox_backend).await.unwrap(),
            None
        );
        assert!(!outbox::claim(&db, &outbox_backend, ids[1], later, lease)
            .await
            .unwrap());
        assert_eq!(
            outbox::waiting(&db, &outbox_backend).await.unwrap().0,
            0,
            "{backend}"
        );
        assert!(
            unchained::mail::deliver_due(&db, &mailer, settings.retry_base)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1, "{backend}");
        db.close().await;
    }
}

#[tokio::test]
async fn migrate_creates_the_outbox_and_check_leaves_it_alone() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert_migrate_creates_outbox(&t.run(&["migrate"]), backend);
        assert_check_ignores_outbox(&t, backend);

        // A database Django migrated has no outbox: still safe to switch,
        // and migrate (or sendtestemail, or serve) adds it.
        let db = t.db().await;
        common::exec(&db, "DROP TABLE unchained_outbox").await;
        assert_check_ignores_outbox(&t, backend);
        let out = t.run(&["migrate"]);
        assert!(out.status.success(), "{backend}: {}", text(&out));
        assert_migrate_creates_outbox(&out, backend);
        let again = t.run(&["migrate"]);
        assert!(
            text(&again).contains("No migrations to apply."),
            "{backend}: {}",
            text(&again)
        );

        common::exec(&db, "DROP TABLE unchained_outbox").await;
        let env = console_env();
        let out = run_with(&t, &["sendtestemail", "ivan@example.com"], &env);
        assert!(out.status.success(), "{backend}: {}", text(&out));
        assert!(row(&db, 1).await.sent_at.is_some());
        db.close().await;
    }
}

#[tokio::test]
async fn sendtestemail_refuses_bad_input() {
    let t = TestDb::new("sqlite").await;
    let env = console_env();
    // An empty database is not made non-empty (serve would no longer migrate it).
    let out = run_with(&t, &["sendtestemail", "ivan@example.com"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unchained migrate"), "{}", text(&out));
    assert!(t.run(&["migrate"]).status.success());
    let out = run_with(
        &t,
        &["sendtestemail", "ivan@example.com", "not-an-address"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not-an-address"), "{}", text(&out));
    let db = t.db().await;
    assert!(
        outbox::by_id(&db, 1).await.unwrap().is_none(),
        "nothing is enqueued"
    );
    let out = run_with(&t, &["sendtestemail"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    db.close().await;
}

#[tokio::test]
async fn an_outbox_made_before_letters_named_their_back_end_gets_the_column() {
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        // The table as an older version made it, holding a letter.
        common::exec(&db, "ALTER TABLE unchained_outbox DROP COLUMN backend").await;
        common::exec(&db, "ALTER TABLE unchained_outbox DROP COLUMN failed_at").await;
        // MariaDB's datetime(6) holds the UTC time without its offset.
        let at = if backend == "mysql" {
            "2026-01-01 00:00:00"
        } else {
            "2026-01-01 00:00:00+00:00"
        };
        common::exec(
            &db,
            &format!(
                "INSERT INTO unchained_outbox (recipient, subject, body, created_at, attempts, \
                 next_attempt_at) VALUES ('ivan@example.com', 'old', 'old', '{at}', 0, '{at}')"
            ),
        )
        .await;
        let out = t.run(&["migrate"]);
        assert!(out.status.success(), "{backend}: {}", text(&out));
        for column in ["backend", "failed_at"] {
            assert!(
                text(&out).contains(&format!("Added column unchained_outbox.{column}")),
                "{backend}: {}",
                text(&out)
            );
        }
        assert!(
            unchained::db::schema::ensure_own_tables(&db)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: added twice"
        );
        // A letter queued before: any instance sends it, as before.
        let due = outbox::due(&db, "console", DjangoDateTime::now(), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{backend}");
        assert_eq!(
            (&due[0].backend, due[0].failed_at),
            (&None, None),
            "{backend}"
        );
        db.close().await;
    }
}
