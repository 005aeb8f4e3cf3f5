//! What `serve` logs, read from the real binary's stderr: one access line
//! per request with the request id the response names, in plain or JSON
//! lines, never a query string, a cookie, a password or the key; the id a
//! trusted proxy sends is kept, anyone else's is replaced.

mod common;

use std::path::Path;

use common::app::{Browser, GOOD_PASSWORD};
use common::{backends, TestDb, SECRET_KEY};
use serde_json::Value;

/// `serve` with these settings, its stderr into `log`, answering.
async fn serve(t: &TestDb, log: &Path, settings: &[(&str, &str)]) -> (common::Server, Browser) {
    let (child, port) = common::serve(t, settings, log).await;
    (child, Browser::new(&format!("http://127.0.0.1:{port}")))
}

/// SIGTERM, as a service manager stops it: the lines still queued for
/// the log's writer thread are written before the process ends.
fn stop(mut child: common::Server, log: &Path) -> String {
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "serve after SIGTERM: {status:?}");
    std::fs::read_to_string(log).unwrap()
}

fn request_id(r: &common::app::Resp) -> String {
    r.headers
        .get("x-request-id")
        .expect("an X-Request-ID")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn json_access_lines_with_the_request_id_and_no_secrets() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let created = t
            .command(&["createsuperuser", "--noinput", "--email", "log@example.com"])
            .env("DJANGO_SUPERUSER_PASSWORD", GOOD_PASSWORD)
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        let log = t.path("serve.log");
        let (child, browser) = serve(
            &t,
            &log,
            &[
                ("LOG_FORMAT", "json"),
                // The tests' own address is the proxy here.
                ("AXES_IPWARE_PROXY_TRUSTED_IPS", "127.0.0.1"),
            ],
        )
        .await;
        // A trusted proxy's id is the request's id.
        let r = browser
            .send(
                browser
                    .client
                    .get(browser.url("/users/login/?next=/products/%3Ftoken%3Dsecret-in-next"))
                    .header("X-Request-ID", "proxy-7f3a"),
            )
            .await;
        assert_eq!(request_id(&r), "proxy-7f3a", "{backend}");
        browser
            .submit(
                "/users/login/",
                &[("username", "log@example.com"), ("password", GOOD_PASSWORD)],
            )
            .await
            .assert_redirect("/", backend);
        let session = browser.cookie("sessionid").expect("a session");
        let r = browser.get("/users/profile/?token=s3cr3t-query").await;
        r.assert_page(200, backend);
        let profile_id = request_id(&r);
        // Ids are the request's own: two requests, two ids.
        let again = request_id(&browser.get("/users/profile/").await);
        assert_ne!(profile_id, again, "{backend}");
        let written = stop(child, &log);

        let lines: Vec<Value> = written
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{backend}: not JSON ({e}): {l}"))
            })
            .collect();
        let access: Vec<&Value> = lines
            .iter()
            .filter(|l| l["target"] == "unchained::access")
            .collect();
        assert!(access.len() >= 5, "{backend}: {written}");
        let user_id = lines
            .iter()
            .find_map(|l| {
                (l["span"]["id"] == profile_id.as_str()).then(|| l["fields"]["user"].clone())
            })
            .unwrap_or_else(|| panic!("{backend}: no line of {profile_id}:\n{written}"));
        assert!(
            user_id.as_i64().is_some_and(|id| id > 0),
            "{backend}: {user_id}"
        );
        let line = access
            .iter()
            .find(|l| l["span"]["id"] == profile_id.as_str())
            .unwrap();
        let fields = &line["fields"];
        assert_eq!(fields["method"], "GET", "{line}");
        assert_eq!(fields["path"], "/users/profile/", "{line}");
        assert_eq!(fields["status"], 200, "{line}");
        assert!(fields["bytes"].as_u64().is_some_and(|b| b > 500), "{line}");
        assert!(
            fields["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
            "{line}"
        );
        assert!(
            access.iter().any(|l| l["span"]["id"] == "proxy-7f3a"),
            "{backend}: the proxy's id in its access line:\n{written}"
        );
        for secret in [
            "s3cr3t-query",
            "secret-in-next",
            GOOD_PASSWORD,
            session.as_str(),
            SECRET_KEY,
        ] {
            assert!(
                !written.contains(secret),
                "{backend}: {secret:?} in the log:\n{written}"
            );
        }
    }
}

#[tokio::test]
async fn plain_lines_untrusted_ids_and_the_switch() {
    let t = TestDb::new("sqlite").await;
    let log = t.path("serve.log");
    let (child, browser) = serve(&t, &log, &[]).await;
    let r = browser
        .send(
            browser
                .client
                .get(browser.url("/contacts/"))
                .header("X-Request-ID", "forged-by-a-client"),
        )
        .await;
    let id = request_id(&r);
    assert_ne!(
        id, "forged-by-a-client",
        "only a trusted proxy names requests"
    );
    assert_eq!(id.len(), 32);
    let written = stop(child, &log);
    let line = written
        .lines()
        .find(|l| l.contains("unchained::access") && l.contains(&id))
        .unwrap_or_else(|| panic!("an access line for {id}:\n{written}"));
    assert!(line.contains(&format!("request{{id={id}}}")), "{line}");
    assert!(line.contains("GET /contacts/ 200"), "{line}");
    assert!(
        !written.contains('\u{1b}'),
        "colour codes in a file:\n{written}"
    );
    assert!(!written.contains("forged-by-a-client"), "{written}");

    let (child, browser) = serve(&t, &log, &[("ACCESS_LOG", "False")]).await;
    browser.get("/contacts/").await.assert_page(200, "contacts");
    let written = stop(child, &log);
    assert!(!written.contains("unchained::access"), "{written}");
}
