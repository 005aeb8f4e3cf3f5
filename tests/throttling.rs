//! Throttling, driven as a browser (and an attacker) would: failed logins
//! lock the account for the client address that made them (django-axes'
//! settings), until the cool-off or `unchained lockouts lift`; password
//! resets are limited per address and per client; the client address is the
//! socket's peer unless a trusted proxy forwarded it; and with
//! `PASSWORD_RESET_CONFIRM` a reset mails a one-time link first. Each test
//! runs on SQLite, and on PostgreSQL when `UNCHAINED_TEST_POSTGRES` is set.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::app::{spawn_app_with, App, Browser, Mail, Resp, GOOD_PASSWORD};
use common::{backends, text};
use unchained::db::throttle::LoginFailures;
use unchained::db::time::DjangoDateTime;

const EMAIL: &str = "ivan@example.com";
const WRONG: &str = "Wrong-Horse-13";
const LOGIN_ERROR: &str = "Пожалуйста, введите правильные почта и пароль";
const LOCKED: &str = "Слишком много неудачных попыток входа. Вход закрыт до ";
const RESETS_LIMITED: &str = "Слишком много запросов на восстановление пароля";
const LINK_INVALID: &str = "Ссылка недействительна";

/// A browser whose requests come from this loopback address, with these
/// headers.
fn browser_from(app: &App, address: &str, headers: &[(&'static str, &str)]) -> Browser {
    let address: IpAddr = address.parse().unwrap();
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    Browser::with_client(&app.base, |builder| {
        builder.local_address(address).default_headers(map)
    })
}

async fn login(browser: &Browser, email: &str, password: &str) -> Resp {
    browser
        .submit(
            "/users/login/",
            &[("username", email), ("password", password)],
        )
        .await
}

/// A wrong password answered with the form's error, as before any limit.
async fn assert_refused(browser: &Browser, password: &str, what: &str) {
    login(browser, EMAIL, password)
        .await
        .assert_page(200, what)
        .assert_contains(LOGIN_ERROR, what);
}

/// The 429 page of a locked login: says until when, with `Retry-After`.
fn assert_locked(r: &Resp, what: &str) {
    r.assert_page(429, what)
        .assert_contains("<h1>Слишком много попыток</h1>", what)
        .assert_contains(LOCKED, what)
        .assert_lacks(LOGIN_ERROR, what);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{what}: Retry-After {retry}");
}

async fn failures(app: &App) -> Vec<LoginFailures> {
    let long_ago = DjangoDateTime(chrono::Utc::now() - chrono::Duration::days(365));
    unchained::db::throttle::current_failures(&app.db, long_ago)
        .await
        .unwrap()
}

/// Every stored failure as `key failures`.
async fn failure_keys(app: &App) -> Vec<String> {
    failures(app)
        .await
        .iter()
        .map(|f| format!("{} {}", f.key, f.failures))
        .collect()
}

async fn password_hash(app: &App) -> String {
    app.user(EMAIL).await.unwrap().password
}

async fn letters(app: &App) -> Vec<String> {
    app.strings("SELECT body FROM unchained_outbox ORDER BY id")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_lock_the_pair_until_the_cooloff() {
    let settings = [("AXES_FAILURE_LIMIT", "3"), ("AXES_COOLOFF_TIME", "0.5")];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        // No proxy is trusted: the header is the client's word, not believed.
        let attacker = browser_from(&app, "127.0.0.1", &[("x-forwarded-for", "198.51.100.1")]);
        for i in 1..3 {
            assert_refused(&attacker, WRONG, &format!("{backend}: wrong password {i}")).await;
        }
        // The failure that reaches the limit is answered with the lockout.
        let started = DjangoDateTime::now();
        let r = login(&attacker, EMAIL, WRONG).await;
        assert_locked(&r, &format!("{backend}: third wrong password"));
        // Until when, in TIME_ZONE (Moscow, UTC+3), half an hour on (to
        // the minute of the request's start or end).
        let shown = |at: DjangoDateTime| {
            (at.0 + chrono::Duration::minutes(30))
                .with_timezone(&chrono_tz::Europe::Moscow)
                .format("%d.%m.%Y %H:%M")
                .to_string()
        };
        let (early, late) = (shown(started), shown(DjangoDateTime::now()));
        assert!(
            r.body.contains(&format!("{LOCKED}{early}"))
                || r.body.contains(&format!("{LOCKED}{late}")),
            "{backend}: not until {early} or {late}: {}",
            r.body
        );
        r.assert_contains("(MSK)", backend);
        assert_eq!(
            failure_keys(&app).await,
            ["username=ivan@example.com ip_address=127.0.0.1 3"],
            "{backend}"
        );

        // Now the right password is refused too, and costs no hash: the
        // stored hash is made to take many seconds to check.
        let slow_hash = "pbkdf2_sha256$90000000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let real_hash = password_hash(&app).await;
        set_password_hash(&app, slow_hash).await;
        let asked = Instant::now();
        let r = login(&attacker, EMAIL, GOOD_PASSWORD).await;
        assert_locked(&r, &format!("{backend}: right password while locked"));
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{backend}: a locked login took {:?}: was it hashed?",
            asked.elapsed()
        );
        assert_eq!(attacker.cookie("sessionid"), None, "{backend}: a session");
        set_password_hash(&app, &real_hash).await;

        // The lock is the pair's: from another address the account logs in.
        let owner = browser_from(&app, "127.0.0.2", &[]);
        login(&owner, EMAIL, GOOD_PASSWORD)
            .await
            .assert_redirect("/", &format!("{backend}: another address"));
        assert_locked(
            &login(&attacker, EMAIL, GOOD_PASSWORD).await,
            &format!("{backend}: still locked"),
        );

        // The cool-off over (the failures moved half an hour back), the
        // old failures no longer count: a wrong password is one failure.
        age_failures(&app, Duration::from_secs(1801)).await;
        assert_refused(&attacker, WRONG, &format!("{backend}: after the cool-off")).await;
        assert_eq!(
            failure_keys(&app).await,
            ["username=ivan@example.com ip_address=127.0.0.1 1"],
            "{backend}"
        );
        login(&attacker, EMAIL, GOOD_PASSWORD)
            .await
            .assert_redirect("/", &format!("{backend}: after the cool-off"));
        app.stop().await;
    }
}

async fn set_password_hash(app: &App, hash: &str) {
    unchained::on_pool!(&app.db, |pool| sqlx::query(
        &(&app.db).sql("UPDATE users_user SET password = $1 WHERE email = $2")
    )
    .bind(hash)
    .bind(EMAIL)
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap();
}

/// Moves every failure this much into the past.
async fn age_failures(app: &App, by: Duration) {
    for f in failures(app).await {
        let at = |t: DjangoDateTime| DjangoDateTime(t.0 - chrono::Duration::from_std(by).unwrap());
        unchained::on_pool!(&app.db, |pool| sqlx::query(&(&app.db).sql(
            "UPDATE unchained_login_failure SET first_failure_at = $1, last_failure_at = $2 \
             WHERE username = $3 AND ip_address = $4"
        ))
        .bind(at(f.first_failure_at))
        .bind(at(f.last_failure_at))
        .bind(&f.key.username)
        .bind(&f.key.ip_address)
        .execute(pool)
        .await
        .map(|_| ()))
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_cooloff_unlocks_by_itself() {
    // 0.0006 hours: 2.16 seconds.
    let settings = [("AXES_FAILURE_LIMIT", "1"), ("AXES_COOLOFF_TIME", "0.0006")];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        let browser = app.browser();
        assert_locked(
            &login(&browser, EMAIL, WRONG).await,
            &format!("{backend}: limit 1"),
        );
        // (The failure was stored before that answer.)
        let locked_at = Instant::now();
        // At once, the right password is refused (nothing is hashed, so
        // this is well within the cool-off)...
        assert_locked(
            &login(&browser, EMAIL, GOOD_PASSWORD).await,
            &format!("{backend}: within the cool-off"),
        );
        assert!(
            locked_at.elapsed() < Duration::from_secs(2),
            "{backend}: too slow to tell"
        );
        // ...and after it, it logs in.
        tokio::time::sleep(Duration::from_millis(2300).saturating_sub(locked_at.elapsed())).await;
        login(&browser, EMAIL, GOOD_PASSWORD)
            .await
            .assert_redirect("/", &format!("{backend}: after the cool-off"));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_forgets_the_failures_unless_told_not_to() {
    for (reset_on_success, locked_after) in [("True", false), ("False", true)] {
        let settings = [
            ("AXES_FAILURE_LIMIT", "3"),
            ("AXES_RESET_ON_SUCCESS", reset_on_success),
        ];
        for backend in backends() {
            let what = format!("{backend}, AXES_RESET_ON_SUCCESS={reset_on_success}");
            let app = spawn_app_with(backend, Mail::File, &settings).await;
            app.create_user(EMAIL, GOOD_PASSWORD, true).await;
            let browser = app.browser();
            assert_refused(&browser, WRONG, &what).await;
            assert_refused(&browser, WRONG, &what).await;
            login(&browser, EMAIL, GOOD_PASSWORD)
                .await
                .assert_redirect("/", &what);
            let third = login(&app.browser(), EMAIL, WRONG).await;
            if locked_after {
                assert_locked(&third, &what);
            } else {
                third
                    .assert_page(200, &what)
                    .assert_contains(LOGIN_ERROR, &what);
                assert_eq!(
                    failure_keys(&app).await,
                    ["username=ivan@example.com ip_address=127.0.0.1 1"],
                    "{what}"
                );
            }
            app.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockouts_are_listed_and_lifted_by_the_command() {
    let settings = [("AXES_FAILURE_LIMIT", "2")];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        app.create_user("olga@example.com", GOOD_PASSWORD, true)
            .await;
        let browser = app.browser();
        assert_refused(&browser, WRONG, backend).await;
        assert_locked(&login(&browser, EMAIL, WRONG).await, backend);
        login(&browser, "olga@example.com", WRONG)
            .await
            .assert_page(200, backend);

        let run = |args: &[&str]| {
            app.t
                .command(args)
                .env("AXES_FAILURE_LIMIT", "2")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let listed = run(&["lockouts", "list"]);
        assert!(listed.status.success(), "{backend}: {}", text(&listed));
        let lines: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{backend}: {lines:?}");
        let ivan = lines
            .iter()
            .find(|l| l.starts_with("username=ivan@example.com ip_address=127.0.0.1\t"))
            .unwrap_or_else(|| panic!("{backend}: {lines:?}"));
        assert!(
            ivan.contains("failures 2\tlocked until 20") && ivan.ends_with(" MSK"),
            "{backend}: {ivan}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("username=olga@example.com")
                    && l.ends_with("failures 1\tnot locked")),
            "{backend}: {lines:?}"
        );

        // Lift needs to be told what.
        let bare = run(&["lockouts", "lift"]);
        assert!(!bare.status.success(), "{backend}: {}", text(&bare));
        let help = run(&["lockouts", "lift", "--help"]);
        assert!(
            text(&help).contains("--username"),
            "{backend}: {}",
            text(&help)
        );
        // Another address lifts nothing; the username (any case) lifts ivan's.
        let none = run(&["lockouts", "lift", "--username", EMAIL, "--ip", "127.0.0.9"]);
        assert!(
            text(&none).contains("Lifted 0 lock key(s)."),
            "{backend}: {}",
            text(&none)
        );
        assert_locked(&login(&browser, EMAIL, GOOD_PASSWORD).await, backend);
        let lifted = run(&["lockouts", "lift", "--username", "IVAN@example.com"]);
        assert!(
            text(&lifted).contains("Lifted 1 lock key(s)."),
            "{backend}: {}",
            text(&lifted)
        );
        login(&browser, EMAIL, GOOD_PASSWORD)
            .await
            .assert_redirect("/", &format!("{backend}: lifted"));
        // --all forgets the rest.
        assert_eq!(failures(&app).await.len(), 1, "{backend}");
        let all = run(&["lockouts", "lift", "--all"]);
        assert!(
            text(&all).contains("Lifted 1 lock key(s)."),
            "{backend}: {}",
            text(&all)
        );
        assert!(failures(&app).await.is_empty(), "{backend}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_address_counts_only_from_a_trusted_proxy() {
    let settings = [
        ("AXES_FAILURE_LIMIT", "2"),
        ("AXES_IPWARE_PROXY_TRUSTED_IPS", "127.0.0.1"),
    ];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        // Behind the trusted proxy: the client it forwards is the key.
        let proxied = |client: &str| {
            let chain = format!("192.0.2.99, {client}");
            browser_from(&app, "127.0.0.1", &[("x-forwarded-for", &chain)])
        };
        let attacker = proxied("203.0.113.5");
        assert_refused(&attacker, WRONG, backend).await;
        assert_locked(&login(&attacker, EMAIL, WRONG).await, backend);
        assert_eq!(
            failure_keys(&app).await,
            ["username=ivan@example.com ip_address=203.0.113.5 2"],
            "{backend}"
        );
        // Another client behind the same proxy logs in.
        login(&proxied("203.0.113.6"), EMAIL, GOOD_PASSWORD)
            .await
            .assert_redirect("/", &format!("{backend}: another client behind the proxy"));
        // A peer that is not the proxy cannot choose its address: the
        // header is ignored, its own address is counted.
        let direct = browser_from(&app, "127.0.0.2", &[("x-forwarded-for", "203.0.113.6")]);
        assert_refused(&direct, WRONG, backend).await;
        let mut keys = failure_keys(&app).await;
        keys.sort();
        assert_eq!(
            keys,
            [
                "username=ivan@example.com ip_address=127.0.0.2 1",
                "username=ivan@example.com ip_address=203.0.113.5 2"
            ],
            "{backend}"
        );
        app.stop().await;
    }
}

/// Asks for a password reset of `email` from `browser`.
async fn reset(browser: &Browser, email: &str) -> Resp {
    browser
        .submit("/users/password-reset/", &[("email", email)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_limited_per_address_and_per_client() {
    let settings = [("PASSWORD_RESET_MAX_PER_CLIENT", "5")];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        let browser = app.browser();
        for i in 1..=3 {
            let before = password_hash(&app).await;
            reset(&browser, EMAIL)
                .await
                .assert_redirect("/users/login/", &format!("{backend}: reset {i}"));
            assert_ne!(password_hash(&app).await, before, "{backend}: reset {i}");
        }
        assert_eq!(letters(&app).await.len(), 3, "{backend}");
        // The fourth within the hour (in another case too): 429, no letter,
        // no new password.
        let before = password_hash(&app).await;
        let r = reset(&browser, "IVAN@Example.com").await;
        r.assert_page(429, backend)
            .assert_contains(RESETS_LIMITED, backend)
            .assert_contains("(MSK)", backend);
        assert!(r.headers.contains_key("retry-after"), "{backend}");
        assert_eq!(password_hash(&app).await, before, "{backend}: changed");
        assert_eq!(letters(&app).await.len(), 3, "{backend}: a fourth letter");
        // From another client too: the limit is the address's.
        reset(&browser_from(&app, "127.0.0.2", &[]), EMAIL)
            .await
            .assert_page(429, &format!("{backend}: another client"));

        // Addresses without an account count alike (the answer tells
        // nothing), and this client has sent 5 counted requests now.
        reset(&browser, "nobody@example.com")
            .await
            .assert_redirect("/users/login/", backend);
        reset(&browser, "nobody2@example.com")
            .await
            .assert_redirect("/users/login/", backend);
        reset(&browser, "nobody3@example.com")
            .await
            .assert_page(429, &format!("{backend}: sixth from one client"));
        reset(&browser_from(&app, "127.0.0.3", &[]), "nobody3@example.com")
            .await
            .assert_redirect("/users/login/", &format!("{backend}: another client"));
        assert_eq!(letters(&app).await.len(), 3, "{backend}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_sent_at_once_pass_the_limit_no_more_than_it_allows() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        let mut prepared = Vec::new();
        for i in 0..12 {
            // Distinct clients: only the address's limit (3) applies.
            let browser = browser_from(&app, &format!("127.0.1.{}", i + 1), &[]);
            let token = browser.token("/users/password-reset/").await;
            prepared.push((browser, token));
        }
        let mut resets = tokio::task::JoinSet::new();
        for (browser, token) in prepared {
            resets.spawn(async move {
                let form = [("csrfmiddlewaretoken", token.as_str()), ("email", EMAIL)];
                browser.post("/users/password-reset/", &form).await.status
            });
        }
        let mut statuses = resets.join_all().await;
        statuses.sort();
        assert_eq!(
            statuses,
            [[302; 3].as_slice(), &[429; 9]].concat(),
            "{backend}"
        );
        // Of resets that read the same password before either set a new
        // one, one mails (the others would mail a password already gone).
        let sent = letters(&app).await.len();
        assert!((1..=3).contains(&sent), "{backend}: {sent} letters");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_reset_mails_a_link_that_works_once() {
    let settings = [("PASSWORD_RESET_CONFIRM", "True")];
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &settings).await;
        app.create_user(EMAIL, GOOD_PASSWORD, true).await;
        let original = password_hash(&app).await;
        let browser = app.browser();
        browser
            .get("/users/password-reset/")
            .await
            .assert_contains("ссылку для получения нового пароля", backend);
        reset(&browser, EMAIL)
            .await
            .assert_redirect("/users/login/", backend);
        // A link, and the password as it was.
        assert_eq!(password_hash(&app).await, original, "{backend}");
        let sent = letters(&app).await;
        assert_eq!(sent.len(), 1, "{backend}");
        let link = sent[0]
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("{backend}: no link in {:?}", sent[0]));
        let path = &link[link.find("/users/").unwrap()..];
        assert!(
            path.starts_with("/users/password-reset/MQ/"),
            "{backend}: {path}"
        );

        // Opening the link (as a mail scanner does, twice) changes nothing.
        for _ in 0..2 {
            browser
                .get(path)
                .await
                .assert_page(200, backend)
                .assert_contains("<form method=\"post\"", backend)
                .assert_lacks(LINK_INVALID, backend);
        }
        assert_eq!(
            password_hash(&app).await,
            original,
            "{backend}: GET changed it"
        );
        assert_eq!(letters(&app).await.len(), 1, "{backend}");

        // The button mails the new password, which logs in.
        browser
            .submit(path, &[])
            .await
            .assert_redirect("/users/login/", backend);
        assert_ne!(password_hash(&app).await, original, "{backend}");
        let sent = letters(&app).await;
        assert_eq!(sent.len(), 2, "{backend}");
        let new_password = sent[1].trim_end().rsplit(' ').next().unwrap().to_string();
        login(&app.browser(), EMAIL, &new_password)
            .await
            .assert_redirect("/", backend);

        // Used: the link is refused, opened or pressed, and nothing changes.
        let after = password_hash(&app).await;
        browser
            .get(path)
            .await
            .assert_page(404, backend)
            .assert_contains(LINK_INVALID, backend);
        let token = browser.token("/users/password-reset/").await;
        browser
            .post(path, &[("csrfmiddlewaretoken", token.as_str())])
            .await
            .assert_page(404, backend)
            .assert_contains(LINK_INVALID, backend);
        // Nor does a link made up or cut short.
        for bad in [
            "/users/password-reset/MQ/abc-123/",
            "/users/password-reset/!!/x/",
            &path[..path.len() - 3],
        ] {
            let r = browser.get(bad).await;
            assert!(r.status == 404, "{backend}: {bad}: {}", r.status);
        }
        assert_eq!(password_hash(&app).await, after, "{backend}");
        assert_eq!(letters(&app).await.len(), 2, "{backend}");
        app.stop().await;
    }
}
