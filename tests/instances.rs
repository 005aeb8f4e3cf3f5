//! Several instances on one PostgreSQL database, as a site that outgrows
//! one machine runs them (docs/INSTANCES.md): two `unchained serve`
//! processes with the same `SECRET_KEY`, `DATABASE_URL`, `MEDIA_ROOT` and
//! e-mail settings, behind one nginx that sends requests to them in turn
//! (round robin), with the proxy settings the README names for running
//! behind a proxy. Driven through nginx as a browser drives the site, each
//! step naming the instance that answered it (nginx's `$upstream_addr` in
//! a response header of the test's nginx configuration):
//!
//! - consecutive requests alternate between the instances;
//! - a CSRF token from a page instance A served is accepted by B;
//! - the session made by a login on one instance is honoured by the other,
//!   and a logout on one ends it on both;
//! - an avatar uploaded through one instance is served under /media/ by
//!   the other;
//! - failed logins answered by both count together, against the client's
//!   address that nginx forwards (X-Forwarded-For from a trusted proxy);
//! - letters queued by requests each instance answered, and letters queued
//!   while both workers wake at once, are each sent exactly once;
//! - with one instance stopped (SIGTERM), the other serves every request
//!   and the session lives on;
//! - every request id nginx gave is in the access log of the instance that
//!   answered it, and only there.
//!
//! PostgreSQL only: skipped, saying so, when `UNCHAINED_TEST_POSTGRES` is
//! not set. Needs nginx (`/usr/sbin/nginx`; `scripts/test.sh` installs it)
//! and fails without it, as the mail tests fail without their SMTP server.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::multipart;

use common::app::{csrf_token, png, Browser, Resp, GOOD_PASSWORD, PNG_1X1};
use common::{free_port, text, TestDb};

const NGINX: &str = "/usr/sbin/nginx";
const NAMES: [&str; 2] = ["A", "B"];
const EMAIL: &str = "ivan@example.com";
/// The address the browser connects from (loopback, but not nginx's).
const CLIENT_IP: &str = "127.0.0.7";
/// Letters put into the outbox at once, for both workers to race for.
const RACED_LETTERS: i64 = 40;

/// The processes this test started, each killed by its pid (and reaped)
/// when the test ends, however it ends.
#[derive(Default)]
struct Children(Vec<(String, Option<Child>)>);

impl Children {
    fn add(&mut self, name: &str, child: Child) -> usize {
        self.0.push((name.to_string(), Some(child)));
        self.0.len() - 1
    }

    fn get(&mut self, index: usize) -> &mut Child {
        self.0[index].1.as_mut().expect("a running child")
    }

    /// Stops one as a service manager does (SIGTERM) and waits, bounded,
    /// for it to exit 0.
    async fn terminate(&mut self, index: usize, what: &str) {
        let mut child = self.0[index].1.take().expect("a running child");
        assert_eq!(
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) },
            0,
            "SIGTERM to {what}"
        );
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{what} after SIGTERM: {status}");
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not exit within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// nginx's configuration: in the foreground, one process (so one
/// round-robin rotation, and no worker left behind when the test kills it
/// by its pid), everything it writes inside `dir`.
fn nginx_conf(dir: &Path, listen: u16, upstreams: [u16; 2]) -> String {
    let d = dir.display();
    // As root nginx would serve as `nobody`, who may not write the temp
    // folders inside this private directory.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root root;\n"
    } else {
        ""
    };
    format!(
        "{user}daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format upstreams '$request_id $upstream_addr $status \"$request\"';
    access_log {d}/access.log upstreams;
    upstream unchained {{
        server 127.0.0.1:{a};
        server 127.0.0.1:{b};
    }}
    server {{
        listen 127.0.0.1:{listen};
        client_max_body_size 10m;
        location / {{
            proxy_pass http://unchained;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-ID $request_id;
            # The test's witness of who answered; not needed in production.
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
",
        a = upstreams[0],
        b = upstreams[1],
    )
}

/// The site through nginx, and what each answer says of its instance.
struct Site {
    ports: [u16; 2],
    logs: [PathBuf; 2],
    /// The instance that answered the last request.
    last: Mutex<Option<usize>>,
    /// Every answer: nginx's request id, the instance, the step.
    answered: Mutex<Vec<(String, usize, String)>>,
}

impl Site {
    /// Which instance answered (the last address nginx tried), recorded
    /// with the request id.
    fn who(&self, r: &Resp, what: &str) -> usize {
        self.who_by(&r.headers, what)
    }

    fn who_by(&self, headers: &reqwest::header::HeaderMap, what: &str) -> usize {
        let upstream = headers
            .get("x-upstream")
            .unwrap_or_else(|| panic!("{what}: no X-Upstream from nginx: {headers:?}"))
            .to_str()
            .unwrap()
            .to_string();
        let answered = upstream.rsplit(", ").next().unwrap();
        let port: u16 = answered.rsplit(':').next().unwrap().parse().unwrap();
        let instance = self
            .ports
            .iter()
            .position(|&p| p == port)
            .unwrap_or_else(|| panic!("{what}: unknown upstream {upstream}"));
        let id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{what}: no X-Request-ID"))
            .to_str()
            .unwrap()
            .to_string();
        *self.last.lock().unwrap() = Some(instance);
        self.answered
            .lock()
            .unwrap()
            .push((id, instance, what.to_string()));
        instance
    }

    async fn get(&self, browser: &Browser, path: &str) -> (Resp, usize) {
        let r = browser.get(path).await;
        let who = self.who(&r, &format!("GET {path}"));
        (r, who)
    }

    /// A file, read as bytes: its status, its bytes, who sent it.
    async fn get_file(&self, browser: &Browser, path: &str) -> (u16, Vec<u8>, usize) {
        let response = browser.client.get(browser.url(path)).send().await.unwrap();
        let who = self.who_by(response.headers(), &format!("GET {path}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec(), who)
    }

    /// Makes the next request go to `instance`: nginx's rotation
    /// alternates (shown by the first step), so when the last answer came
    /// from it, one page in between moves the turn on (and when the last
    /// is not known, after requests at once, a page shows it).
    async fn aim(&self, browser: &Browser, instance: usize) {
        for _ in 0..3 {
            let last = *self.last.lock().unwrap();
            if last.is_some_and(|last| last != instance) {
                return;
            }
            let (r, who) = self.get(browser, "/contacts/").await;
            r.assert_page(200, "a page in between");
            if let Some(last) = last {
                assert_ne!(who, last, "nginx did not alternate");
            }
        }
        unreachable!("two answers in turn name both instances");
    }

    /// Opens a form's page on `page_at`, then posts the form with the
    /// page's token; the post must be answered by the other instance.
    async fn form(
        &self,
        browser: &Browser,
        page_at: usize,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Resp {
        self.aim(browser, page_at).await;
        let (page, who) = self.get(browser, path).await;
        page.assert_page(200, path);
        assert_eq!(who, page_at, "GET {path}");
        let token = csrf_token(&page.body).unwrap_or_else(|| panic!("no token on {path}"));
        let mut all = vec![("csrfmiddlewaretoken", token.as_str())];
        all.extend_from_slice(fields);
        let r = browser.post(path, &all).await;
        let posted = self.who(&r, &format!("POST {path}"));
        assert_eq!(
            posted,
            1 - page_at,
            "POST {path}: the token of instance {}'s page was to go to the other",
            NAMES[page_at]
        );
        r
    }

    fn log(&self, instance: usize) -> String {
        std::fs::read_to_string(&self.logs[instance]).unwrap_or_default()
    }
}

/// Starts `serve` on this port, its output into `log`; waits (bounded)
/// until it answers.
async fn serve(
    t: &TestDb,
    children: &mut Children,
    name: &str,
    port: u16,
    settings: &[(&str, String)],
    log: &Path,
) -> usize {
    let out = File::create(log).unwrap();
    let child = t
        .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn unchained serve");
    let index = children.add(name, child);
    let url = format!("http://127.0.0.1:{port}/users/login/");
    common::wait_until_up(children.get(index), &url, &|| {
        format!(
            "instance {name}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
    .await;
    index
}

/// Files in a folder (the letters of the `file` e-mail back end).
fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

async fn wait_for_files(dir: &Path, n: usize, within: Duration, what: &str) {
    let started = Instant::now();
    while files_in(dir) < n {
        assert!(
            started.elapsed() < within,
            "{what}: {} of {n} letters written within {within:?}",
            files_in(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn strings(db: &unchained::db::Db, sql: &str) -> Vec<String> {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, String>(&(db).sql(sql))
        .fetch_all(pool)
        .await)
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(db: &unchained::db::Db, sql: &str) -> i64 {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(&(db).sql(sql))
        .fetch_one(pool)
        .await)
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The outbox ids an instance's log says it sent (`e-mail N sent to …`).
fn sent_ids(log: &str) -> Vec<i64> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find("e-mail ")? + "e-mail ".len()..];
            let (id, rest) = rest.split_once(' ')?;
            rest.starts_with("sent to ").then(|| id.parse().ok())?
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_share_sessions_csrf_uploads_and_the_outbox() {
    if std::env::var("UNCHAINED_TEST_POSTGRES").map_or(true, |v| v.is_empty()) {
        eprintln!(
            "UNCHAINED_TEST_POSTGRES is not set: the several-instances test (PostgreSQL only) NOT run (scripts/test.sh sets it)"
        );
        return;
    }
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} is missing: the several-instances test runs them behind nginx \
         (scripts/test.sh installs it with apt-get)"
    );
    let started = Instant::now();
    let t = TestDb::new("postgres").await;
    let migrated = t.run(&["migrate"]);
    assert!(migrated.status.success(), "migrate: {}", text(&migrated));

    // Two instances with the same settings but their port.
    let mail_dir = t.path("sent-mail");
    let media = t.path("media");
    let settings: Vec<(&str, String)> = vec![
        ("EMAIL_BACKEND", "file".into()),
        ("EMAIL_FILE_PATH", mail_dir.display().to_string()),
        ("DEFAULT_FROM_EMAIL", "shop@example.com".into()),
        // nginx is the peer of every request: its X-Forwarded-For and
        // X-Request-ID are believed.
        ("AXES_IPWARE_PROXY_TRUSTED_IPS", "127.0.0.1".into()),
        (
            "SECURE_PROXY_SSL_HEADER",
            "HTTP_X_FORWARDED_PROTO,https".into(),
        ),
        ("AXES_FAILURE_LIMIT", "3".into()),
        ("GRACEFUL_TIMEOUT", "5".into()),
    ];
    let ports = [free_port(), free_port()];
    assert_ne!(ports[0], ports[1]);
    let logs = [t.path("serve-a.log"), t.path("serve-b.log")];
    let mut children = Children::default();
    let mut instances = Vec::new();
    for i in 0..2 {
        instances.push(serve(&t, &mut children, NAMES[i], ports[i], &settings, &logs[i]).await);
    }

    // nginx in front, round robin.
    let nginx_dir = t.path("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let listen = free_port();
    let conf = nginx_dir.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(&nginx_dir, listen, ports)).unwrap();
    let nginx_out = File::create(nginx_dir.join("stderr.log")).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(&nginx_dir)
        .arg("-e")
        .arg(nginx_dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(nginx_out.try_clone().unwrap())
        .stderr(nginx_out)
        .spawn()
        .expect("start nginx");
    let nginx = children.add("nginx", child);
    let base = format!("http://127.0.0.1:{listen}");
    let nginx_log = || {
        format!(
            "{}{}",
            std::fs::read_to_string(nginx_dir.join("stderr.log")).unwrap_or_default(),
            std::fs::read_to_string(nginx_dir.join("error.log")).unwrap_or_default()
        )
    };
    common::wait_until_up(
        children.get(nginx),
        &format!("{base}/contacts/"),
        &nginx_log,
    )
    .await;

    let site = Site {
        ports,
        logs: logs.clone(),
        last: Mutex::new(None),
        answered: Mutex::new(Vec::new()),
    };
    let from_client = |address: &str| {
        let address: std::net::IpAddr = address.parse().unwrap();
        Browser::with_client(&base, |builder| builder.local_address(address))
    };
    let browser = from_client(CLIENT_IP);

    // 1. Consecutive requests alternate between the two.
    let mut turns = Vec::new();
    for _ in 0..6 {
        let (r, who) = site.get(&browser, "/contacts/").await;
        r.assert_page(200, "the contacts page");
        turns.push(who);
    }
    assert!(
        turns.windows(2).all(|w| w[0] != w[1]),
        "nginx did not alternate: {turns:?}"
    );

    // 2. Register: the form from A, posted to B (its CSRF cookie and token
    // made by A). The letter is queued by B.
    let r = site
        .form(
            &browser,
            0,
            "/users/register/",
            &[
                ("email", EMAIL),
                ("password1", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
            ],
        )
        .await;
    r.assert_redirect("/users/login/", "register");
    let db = t.db().await;
    wait_for_files(&mail_dir, 1, Duration::from_secs(30), "the confirmation").await;
    let bodies = strings(&db, "SELECT body FROM unchained_outbox ORDER BY id").await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    // The link names the host the browser used (nginx's Host passed on).
    let link_start = format!("{base}/users/email-confirm/");
    let link = bodies[0]
        .split_whitespace()
        .find(|w| w.starts_with(&link_start))
        .unwrap_or_else(|| panic!("no link to {link_start} in {}", bodies[0]));
    let path = link.strip_prefix(&base).unwrap();
    let (r, _) = site.get(&browser, path).await;
    r.assert_redirect("/users/login/", "the confirmation link");

    // 3. Log in on one instance; the session is honoured by both.
    let r = site
        .form(
            &browser,
            1,
            "/users/login/",
            &[("username", EMAIL), ("password", GOOD_PASSWORD)],
        )
        .await;
    r.assert_redirect("/", "login");
    let logged_in_by = 0;
    let session = browser.cookie("sessionid").expect("a session cookie");
    let mut honoured = [false; 2];
    for _ in 0..2 {
        let (r, who) = site.get(&browser, "/users/profile/").await;
        r.assert_page(200, "profile")
            .assert_contains(EMAIL, "profile");
        honoured[who] = true;
    }
    assert_eq!(
        honoured,
        [true, true],
        "the session instance {} made, on both",
        NAMES[logged_in_by]
    );

    // 4. An avatar posted through A, served by B (and by A).
    site.aim(&browser, 1).await;
    let (page, who) = site.get(&browser, "/users/profile/").await;
    assert_eq!(who, 1);
    let token = csrf_token(&page.body).unwrap();
    let r = browser
        .post_multipart(
            "/users/profile/",
            multipart::Form::new()
                .text("csrfmiddlewaretoken", token)
                .text("first_name", "Иван")
                .part("avatar", png("me.png")),
        )
        .await;
    r.assert_redirect("/users/profile/", "the avatar");
    assert_eq!(site.who(&r, "POST avatar"), 0, "the upload went to A");
    assert_eq!(
        std::fs::read(media.join("users/avatars/me.png")).unwrap(),
        PNG_1X1,
        "the stored avatar"
    );
    let mut served = [false; 2];
    for _ in 0..2 {
        let (status, bytes, who) = site.get_file(&browser, "/media/users/avatars/me.png").await;
        assert_eq!(status, 200, "the avatar from {}", NAMES[who]);
        assert_eq!(bytes, PNG_1X1, "the avatar from {}", NAMES[who]);
        served[who] = true;
    }
    assert_eq!(served, [true, true], "the avatar served by both");
    let (r, _) = site.get(&browser, "/users/profile/").await;
    r.assert_contains("src=\"/media/users/avatars/me.png\"", "profile");

    // 5. Failed logins answered by A and by B lock one key: the client's
    // address from nginx's X-Forwarded-For, with AXES_FAILURE_LIMIT=3.
    let attacker = "nobody@example.com";
    let wrong = [("username", attacker), ("password", "wrong-password-1")];
    let mut failed_at = Vec::new();
    let guesser = from_client(CLIENT_IP);
    for (attempt, expected) in [(1, 200), (2, 200), (3, 429), (4, 429)] {
        let page_at = if attempt % 2 == 1 { 1 } else { 0 };
        let r = site.form(&guesser, page_at, "/users/login/", &wrong).await;
        assert_eq!(r.status, expected, "wrong password {attempt}: {}", r.body);
        failed_at.push(NAMES[1 - page_at]);
    }
    let listed = t
        .command(&["lockouts", "list"])
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let listed_text = String::from_utf8_lossy(&listed.stdout).to_string();
    let key = format!("username={attacker} ip_address={CLIENT_IP}\t");
    assert!(
        listed_text
            .lines()
            .any(|l| l.starts_with(&key) && l.contains("locked until")),
        "one locked key for the client's address, whichever instance answered ({failed_at:?}): {}",
        text(&listed)
    );
    // The user's own key is untouched: still logs in.
    let (r, _) = site.get(&browser, "/users/profile/").await;
    r.assert_page(200, "still logged in");

    // 6. The outbox: a registration answered by each instance while both
    // workers race for letters queued at once.
    let backend = format!("file:{}", mail_dir.display());
    common::exec(
        &db,
        &format!(
            "INSERT INTO unchained_outbox (recipient, subject, body, created_at, attempts, \
             next_attempt_at, sent_at, last_error, backend) \
             SELECT 'raced' || n || '@example.com', 'Raced', 'Letter ' || n, now(), 0, now(), \
             NULL, NULL, 'held' FROM generate_series(1, {RACED_LETTERS}) AS n"
        ),
    )
    .await;
    let newcomers = [from_client("127.0.0.8"), from_client("127.0.0.9")];
    let mut tokens = Vec::new();
    for (i, newcomer) in newcomers.iter().enumerate() {
        site.aim(newcomer, i).await;
        let (page, who) = site.get(newcomer, "/users/register/").await;
        assert_eq!(who, i);
        tokens.push(csrf_token(&page.body).unwrap());
    }
    // Released to this back end, then both registrations at once: each
    // instance wakes its worker as it commits, both find every letter due.
    common::exec(
        &db,
        &format!(
            "UPDATE unchained_outbox SET backend = '{}' WHERE backend = 'held'",
            backend.replace('\'', "''")
        ),
    )
    .await;
    let register = |i: usize, email: &'static str| {
        let fields = [
            ("csrfmiddlewaretoken", tokens[i].clone()),
            ("email", email.to_string()),
            ("password1", GOOD_PASSWORD.to_string()),
            ("password2", GOOD_PASSWORD.to_string()),
        ];
        let newcomer = &newcomers[i];
        async move { newcomer.post("/users/register/", &fields).await }
    };
    let (first, second) = tokio::join!(
        register(0, "petr@example.com"),
        register(1, "anna@example.com")
    );
    let answers = [first, second];
    let mut registered_by = Vec::new();
    for r in &answers {
        r.assert_redirect("/users/login/", "a registration at once");
        registered_by.push(site.who(r, "POST /users/register/ at once"));
    }
    registered_by.sort();
    assert_eq!(registered_by, [0, 1], "one registration on each instance");
    // Which of the two came last is not known.
    *site.last.lock().unwrap() = None;
    let letters = 1 + 2 + RACED_LETTERS as usize;
    wait_for_files(&mail_dir, letters, Duration::from_secs(60), "every letter").await;
    // A letter sent twice would be written now: more than one poll later.
    tokio::time::sleep(unchained::mail::worker::POLL_INTERVAL + Duration::from_secs(1)).await;
    assert_eq!(files_in(&mail_dir), letters, "letters written");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM unchained_outbox WHERE sent_at IS NULL"
        )
        .await,
        0
    );

    // 7. A logout on one instance ends the session on both. A second
    // session of the same user is not touched.
    let other = from_client(CLIENT_IP);
    let r = site
        .form(
            &other,
            0,
            "/users/login/",
            &[("username", EMAIL), ("password", GOOD_PASSWORD)],
        )
        .await;
    r.assert_redirect("/", "a second login");
    site.aim(&browser, 1).await;
    let (page, who) = site.get(&browser, "/users/profile/").await;
    assert_eq!(who, 1);
    let token = csrf_token(&page.body).unwrap();
    let r = browser
        .post("/users/logout/", &[("csrfmiddlewaretoken", token.as_str())])
        .await;
    assert_eq!(r.status, 302, "logout: {r:?}");
    let logged_out_by = site.who(&r, "POST /users/logout/");
    assert_eq!(logged_out_by, 0, "the logout went to A");
    let replay = from_client(CLIENT_IP);
    replay.set_cookie("sessionid", &session);
    let mut refused = [false; 2];
    for _ in 0..2 {
        let (r, who) = site.get(&replay, "/users/profile/").await;
        r.assert_redirect("/users/login/?next=/users/profile/", "the old session");
        refused[who] = true;
    }
    assert_eq!(
        refused,
        [true, true],
        "the session logged out on {}, refused by both",
        NAMES[logged_out_by]
    );

    // 8. Instance A stops (SIGTERM): B answers everything, the second
    // session lives on.
    children.terminate(instances[0], "instance A").await;
    for i in 0..4 {
        let r = other.get("/users/profile/").await;
        let who = site.who(&r, "profile with A stopped");
        r.assert_page(200, &format!("profile {i} with A stopped"))
            .assert_contains(EMAIL, "the second session");
        assert_eq!(who, 1, "request {i} with A stopped");
    }
    children.terminate(instances[1], "instance B").await;
    children.terminate(nginx, "nginx").await;

    // Who sent which letter: each exactly once, between them.
    let sent: [Vec<i64>; 2] = [sent_ids(&site.log(0)), sent_ids(&site.log(1))];
    let mut times: HashMap<i64, usize> = HashMap::new();
    for id in sent.iter().flatten() {
        *times.entry(*id).or_default() += 1;
    }
    assert_eq!(times.len(), letters, "letters the logs name as sent");
    assert!(
        times.values().all(|&n| n == 1),
        "a letter sent twice: {times:?}"
    );

    // Every request id nginx made is in the access log of the instance
    // that answered, and not in the other's.
    let answered = site.answered.lock().unwrap().clone();
    let lines: [Vec<String>; 2] = [0, 1].map(|i| {
        site.log(i)
            .lines()
            .filter(|l| l.contains("unchained::access"))
            .map(str::to_string)
            .collect()
    });
    for (id, instance, what) in &answered {
        let needle = format!("request{{id={id}}}");
        for i in 0..2 {
            let found = lines[i].iter().any(|l| l.contains(&needle));
            assert_eq!(
                found,
                i == *instance,
                "{what}: request {id} (answered by {} per nginx) in {}'s access log: {found}",
                NAMES[*instance],
                NAMES[i]
            );
        }
    }
    db.close().await;
    println!(
        "two instances behind nginx: {} answers checked ({} by A, {} by B); letters sent by A {}, by B {}; \
         wrong logins answered by {failed_at:?}; {:.1} s",
        answered.len(),
        answered.iter().filter(|a| a.1 == 0).count(),
        answered.iter().filter(|a| a.1 == 1).count(),
        sent[0].len(),
        sent[1].len(),
        started.elapsed().as_secs_f64()
    );
}
