//! What a client connection may hold of the server (row 4 of the
//! reliability issue): a slowly sent head and a silent connection are
//! closed after `HTTP_HEADER_TIMEOUT`, an idle keep-alive connection after
//! `HTTP_KEEPALIVE`, connections past `HTTP_MAX_CONNECTIONS` wait for a
//! slot, and SIGTERM ends the process within `GRACEFUL_TIMEOUT` whatever
//! the clients do.

mod common;

use std::time::{Duration, Instant};

use common::app::{spawn_app_with, Mail};
use common::{backends, free_port, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &[(&str, &str)] = &[
    ("HTTP_HEADER_TIMEOUT", "1"),
    ("HTTP_KEEPALIVE", "3"),
    ("HTTP_MAX_CONNECTIONS", "50"),
    ("GRACEFUL_TIMEOUT", "2"),
];

fn address(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// How long until the server closes `stream` (reading and discarding what
/// it sends), or `None` if it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = wait.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one whole answer of a keep-alive connection (its head, then
/// `Content-Length` bytes) and returns its status.
async fn read_answer(stream: &mut TcpStream) -> u16 {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(n > 0, "the connection closed before its answer");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received);
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..head_end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if received.len() >= head_end + 4 + length {
            return text.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
    }
}

const LOGIN_PAGE: &[u8] = b"GET /users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn slow_heads_silent_and_idle_connections_are_closed() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, LIMITS).await;
        let to = address(&app.base);

        // Slowloris: a head trickling in, a byte every 200 ms, never ends.
        let mut slow = TcpStream::connect(&to).await.unwrap();
        let trickle = async {
            for byte in
                b"GET /users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa"
            {
                if slow.write_all(&[*byte]).await.is_err() {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("{backend}: a head sent over 14 s was not cut off");
        };
        let started = Instant::now();
        let cut = trickle.await.duration_since(started);
        assert!(
            cut < Duration::from_secs(4),
            "{backend}: slow head cut after {cut:?}"
        );

        // A connection that sends nothing.
        let mut silent = TcpStream::connect(&to).await.unwrap();
        let closed = closed_within(&mut silent, Duration::from_secs(5)).await;
        assert!(
            closed.is_some_and(|d| d >= Duration::from_millis(900)),
            "{backend}: a silent connection closed after {closed:?} (header timeout 1 s)"
        );

        // Keep-alive: answered twice, then idle: kept longer than the
        // header timeout, closed after the keep-alive time.
        let mut idle = TcpStream::connect(&to).await.unwrap();
        for _ in 0..2 {
            idle.write_all(LOGIN_PAGE).await.unwrap();
            assert_eq!(read_answer(&mut idle).await, 200, "{backend}");
        }
        let closed = closed_within(&mut idle, Duration::from_secs(8)).await;
        assert!(
            closed.is_some_and(|d| d >= Duration::from_secs(2) && d < Duration::from_secs(5)),
            "{backend}: an idle keep-alive connection closed after {closed:?} (keep-alive 3 s)"
        );

        // A request still answers, on a fresh connection.
        let mut fresh = TcpStream::connect(&to).await.unwrap();
        fresh.write_all(LOGIN_PAGE).await.unwrap();
        assert_eq!(read_answer(&mut fresh).await, 200, "{backend}");
        app.stop().await;
    }
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_slot() {
    let app = spawn_app_with("sqlite", Mail::File, LIMITS).await;
    let to = address(&app.base);
    // 200 silent connections against a cap of 50: the kernel completes
    // every handshake, the server takes 50 at a time.
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(&to).await.unwrap());
    }
    // A real request waits behind them until the silent ones are cut
    // (at least 1 s per 50 from when each was taken), then is answered.
    let mut client = TcpStream::connect(&to).await.unwrap();
    client.write_all(LOGIN_PAGE).await.unwrap();
    assert_eq!(read_answer(&mut client).await, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "answered after {waited:?}: the cap of 50 did not hold back the 201st connection"
    );
    let mut all_closed = 0;
    for mut stream in silent {
        if closed_within(&mut stream, Duration::from_secs(10))
            .await
            .is_some()
        {
            all_closed += 1;
        }
    }
    assert_eq!(all_closed, 200, "silent connections closed");
    app.stop().await;
}

#[tokio::test]
async fn sigterm_ends_the_process_within_the_grace_period() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let port = free_port();
        let mut command = t.command(&["serve", "--bind", &format!("127.0.0.1:{port}")]);
        for (name, value) in LIMITS {
            command.env(name, value);
        }
        // A head that never ends would be cut by the header timeout: make
        // it long, so only the grace period can end this wait.
        command.env("HTTP_HEADER_TIMEOUT", "600");
        let log = t.path("serve.log");
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let to = format!("127.0.0.1:{port}");
        common::wait_until_up(&mut child, &format!("http://{to}/users/login/"), &|| {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .await;
        // Held open: a half-sent head, and a body that stopped coming.
        let mut half_head = TcpStream::connect(&to).await.unwrap();
        half_head
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let mut half_body = TcpStream::connect(&to).await.unwrap();
        half_body
            .write_all(
                b"POST /users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill takes plain integers; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = started.elapsed();
        assert!(
            status.is_some_and(|s| s.success()),
            "{backend}: SIGTERM with requests held open: {status:?} after {took:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{backend}: exit took {took:?} (grace 2 s)"
        );
        // The held connections were closed, not left hanging.
        for stream in [&mut half_head, &mut half_body] {
            assert!(closed_within(stream, Duration::from_secs(2))
                .await
                .is_some());
        }
    }
}

/// A body that stops arriving is answered 408 after 30 s of silence (the
/// CSRF check passed, so the body is being kept); the connection is not
/// held beyond that.
#[tokio::test]
async fn a_stalled_body_gets_a_408_page() {
    let app = spawn_app_with("sqlite", Mail::File, LIMITS).await;
    let browser = app.browser();
    let token = browser.token("/users/login/").await;
    let cookie = browser.cookie("csrftoken").expect("the CSRF cookie");
    let mut stream = TcpStream::connect(address(&app.base)).await.unwrap();
    let head = format!(
        "POST /users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: csrftoken={cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n\
         csrfmiddlewaretoken={token}&username=a"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(45), stream.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer within 45 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        waited >= Duration::from_secs(29) && waited < Duration::from_secs(40),
        "answered after {waited:?}"
    );
    app.stop().await;
}

/// SIGTERM with requests under way: the listener closes at once (a new
/// connection is refused), while logins being hashed and a login whose body
/// is still arriving are answered in full; then the process exits 0, and an
/// SQLite database has its write-ahead log folded back into the file.
#[tokio::test]
async fn sigterm_finishes_the_requests_in_flight() {
    const EMAIL: &str = "shopper@example.com";
    const PASSWORD: &str = "correct horse battery";
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success(), "{backend}: migrate");
        let created = t
            .command(&["createsuperuser", "--noinput", "--email", EMAIL])
            .env("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(created.status.success(), "{backend}: createsuperuser");
        let port = free_port();
        let mut child = t
            .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("GRACEFUL_TIMEOUT", "20")
            .env("HASHING_THREADS", "1")
            // However slow the machine, a queued login waits its turn.
            .env("HASHING_WAIT_SECONDS", "60")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(t.path("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let to = format!("127.0.0.1:{port}");
        common::wait_until_up(&mut child, &format!("{base}/users/login/"), &|| {
            std::fs::read_to_string(t.path("serve.log")).unwrap_or_default()
        })
        .await;

        // Six logins (one hashing thread: they queue, about 0.1 s each),
        // each from a browser that has its form token already.
        let mut browsers = Vec::new();
        for _ in 0..6 {
            let browser = common::app::Browser::new(&base);
            let token = browser.token("/users/login/").await;
            browsers.push((browser, token));
        }
        // And one whose body stops half-way until after the signal.
        let (csrf_cookie, raw_token) = {
            let browser = common::app::Browser::new(&base);
            let token = browser.token("/users/login/").await;
            (browser.cookie("csrftoken").expect("a CSRF cookie"), token)
        };
        let body = format!(
            "csrfmiddlewaretoken={raw_token}&username=shopper%40example.com&password=correct+horse+battery"
        );
        let mut slow = TcpStream::connect(&to).await.unwrap();
        slow.write_all(
            format!(
                "POST /users/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: csrftoken={csrf_cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                &body[..20]
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let logins: Vec<_> = browsers
            .into_iter()
            .map(|(browser, token)| {
                tokio::spawn(async move {
                    browser
                        .post(
                            "/users/login/",
                            &[
                                ("csrfmiddlewaretoken", token.as_str()),
                                ("username", EMAIL),
                                ("password", PASSWORD),
                            ],
                        )
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let signalled = Instant::now();
        // SAFETY: kill takes plain integers; the pid is our own child's.
        assert_eq!(
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        // The listener is closed at once: no new connection is taken.
        let mut refused = false;
        for _ in 0..40 {
            if TcpStream::connect(&to).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            refused,
            "{backend}: new connections are still taken after SIGTERM"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{backend}: the process ended with requests under way"
        );
        // The rest of the half-sent body, well after the signal.
        tokio::time::sleep(Duration::from_millis(500)).await;
        slow.write_all(body[20..].as_bytes()).await.unwrap();
        assert_eq!(
            read_answer(&mut slow).await,
            302,
            "{backend}: the slow login"
        );
        for login in logins {
            let r = login.await.unwrap();
            assert_eq!(
                (r.status, r.location.as_deref()),
                (302, Some("/")),
                "{backend}: a login in flight: {}",
                r.body
            );
        }
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(20),
                "{backend}: still running 20 s after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{backend}: exit status {status:?}");
        if backend == "sqlite" {
            let wal = t.dir.path().join("db.sqlite3-wal");
            assert!(
                std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
                "{backend}: the WAL was not folded back at exit"
            );
        }
        // Every login in flight left its session.
        let db = t.db().await;
        let sessions = unchained::on_pool!(&db, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM django_session"
        )
        .fetch_one(pool)
        .await)
        .unwrap();
        db.close().await;
        assert_eq!(sessions, 7, "{backend}: sessions after the logins");
    }
}
