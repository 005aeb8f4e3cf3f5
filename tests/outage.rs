//! The database going away and coming back under a running `unchained
//! serve`: while PostgreSQL cannot be reached, a page that needs it answers
//! a 503 page with `Retry-After` within about two seconds (never a hang,
//! never a 500), readiness says the database does not answer, and pages
//! work again soon after it returns, without a restart. The outage is a loopback proxy cut in front of the shared test
//! server (tests/common/proxy.rs). PostgreSQL only: an SQLite database is a
//! file of the server's own, with nothing between them to fail.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{free_port, TestDb};

/// A session key no row has: reading it needs the database, and without a
/// row the visitor is anonymous.
const UNKNOWN_SESSION: &str = "sessionid=0123456789abcdefghijklmnopqrstuv";

async fn get_login_page(client: &reqwest::Client, port: u16) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("http://127.0.0.1:{port}/users/login/"))
        .header("cookie", UNKNOWN_SESSION)
        .send()
        .await
}

/// A health answer's status and text.
async fn probe(client: &reqwest::Client, port: u16, path: &str) -> (u16, String) {
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_503_while_the_database_is_down_and_recover() {
    let base = std::env::var("UNCHAINED_TEST_POSTGRES").unwrap_or_default();
    if base.is_empty() {
        eprintln!("UNCHAINED_TEST_POSTGRES is not set: the outage test NOT run");
        return;
    }
    let t = TestDb::new("postgres").await;
    assert!(t.run(&["migrate"]).status.success());
    let target: SocketAddr = base
        .rsplit_once('@')
        .and_then(|(_, address)| address.parse().ok())
        .expect("UNCHAINED_TEST_POSTGRES ends in @host:port");
    let proxy = Proxy::start(target).await;
    let proxied = t.url.replacen(
        &format!("@{target}/"),
        &format!("@127.0.0.1:{}/", proxy.port),
        1,
    );
    let port = free_port();
    let mut server = common::Server(
        t.command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &proxied)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut up = false;
    for _ in 0..300 {
        if matches!(get_login_page(&client, port).await, Ok(r) if r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server never answered");

    // Refused connections, then a network that answers nothing at all.
    for (outage, start_outage) in [("cut", Proxy::cut as fn(&Proxy)), ("stall", Proxy::stall)] {
        start_outage(&proxy);
        let started = Instant::now();
        let mut answers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let client = client.clone();
            answers.spawn(async move {
                let sent = Instant::now();
                let response = get_login_page(&client, port).await.expect("an answer");
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                (status, retry_after, body, sent.elapsed())
            });
        }
        for (status, retry_after, body, took) in answers.join_all().await {
            assert_eq!(status, 503, "{outage}: {body}");
            assert_eq!(retry_after.as_deref(), Some("5"), "{outage}");
            assert!(body.contains("503"), "{outage}: {body}");
            assert!(
                took < Duration::from_secs(4),
                "{outage}: a 503 took {took:?}"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{outage}");
        // Readiness says which part failed; liveness does not ask the
        // database.
        let ready = probe(&client, port, "/-/ready").await;
        assert_eq!(ready.0, 503, "{outage}: {}", ready.1);
        assert!(
            ready.1.starts_with("database: ") && !ready.1.starts_with("database: ok"),
            "{outage}: {}",
            ready.1
        );
        assert_eq!(
            probe(&client, port, "/-/live").await,
            (200, "ok\n".to_string()),
            "{outage}"
        );

        proxy.restore();
        let restored = Instant::now();
        let mut back = None;
        while restored.elapsed() < Duration::from_secs(10) {
            if matches!(get_login_page(&client, port).await, Ok(r) if r.status() == 200) {
                back = Some(restored.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let back = back.unwrap_or_else(|| panic!("{outage}: pages did not come back within 10 s"));
        assert_eq!(
            probe(&client, port, "/-/ready").await.0,
            200,
            "{outage}: ready again"
        );
        assert!(
            back < Duration::from_secs(5),
            "{outage}: pages came back after {back:?}"
        );
    }
    let still_running = server.try_wait().unwrap().is_none();
    let _ = server.kill();
    let _ = server.wait();
    assert!(still_running, "the server stopped during the outages");
}
