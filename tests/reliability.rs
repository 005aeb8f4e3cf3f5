//! The site under load, under SIGKILL and through an SMTP outage, each run
//! against the real `unchained serve` binary (a process of its own, as
//! deployed) on SQLite, and on PostgreSQL when `UNCHAINED_TEST_POSTGRES` is
//! set. Each test prints its figures and asserts:
//!
//! - load: logged-in users browsing the list and products, creating and
//!   editing products (with the versions formset), logging out and in,
//!   registering, anonymous visitors; no answer of 500 or more but the
//!   hashing pool's 503 (counted apart), and every product whose create or
//!   edit was acknowledged stored exactly as acknowledged;
//! - SIGKILL: product saves with their versions hammered while the server is
//!   killed and restarted; no product half saved, at most one current
//!   version each, every acknowledged save there;
//! - SMTP outage: letters queued by two servers on one database while the
//!   (real, TLS) SMTP server is down are each delivered exactly once after it
//!   comes back, through two outages.
//!
//! Short by default (the test command runs them). Scaled by environment
//! variables; the full run whose figures RELIABILITY.md records:
//!
//! ```sh
//! RELIABILITY_CLIENTS=200 RELIABILITY_SECONDS=90 RELIABILITY_KILLS=10 RELIABILITY_LETTERS=200 \
//!   cargo test --release --test reliability -- --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::multipart;

use common::app::{csrf_token, no_file, Browser, GOOD_PASSWORD};
use common::smtp::{ca, Mode, SmtpServer, SMTP_PASSWORD, SMTP_USER};
use common::{backends, free_port, TestDb, SECRET_KEY};
use unchained::db::time::DjangoDateTime;
use unchained::db::users::NewUser;
use unchained::db::Db;
use unchained::django::sessions;
use unchained::web::error::RETRY_AFTER_SECONDS;

/// How big a run is: `RELIABILITY_CLIENTS` load clients for
/// `RELIABILITY_SECONDS`, `RELIABILITY_KILLS` SIGKILLs, `RELIABILITY_LETTERS`
/// letters through the SMTP outages.
struct Scale {
    clients: usize,
    seconds: u64,
    kills: usize,
    letters: usize,
}

impl Scale {
    fn from_env() -> Scale {
        fn var(name: &str, default: usize) -> usize {
            match std::env::var(name) {
                Ok(value) => value
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
                Err(_) => default,
            }
        }
        Scale {
            clients: var("RELIABILITY_CLIENTS", 40).max(1),
            seconds: var("RELIABILITY_SECONDS", 8) as u64,
            kills: var("RELIABILITY_KILLS", 3),
            letters: var("RELIABILITY_LETTERS", 24).max(4),
        }
    }
}

/// The tests take the machine in turn: run at once on two cores, each would
/// measure the others.
async fn machine() -> tokio::sync::MutexGuard<'static, ()> {
    static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    MACHINE.lock().await
}

// ---------------------------------------------------------------------------
// The server process

/// `unchained serve` on a loopback port, its output appended to a log file.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    /// Time from spawn to the first page answered.
    started_in: Duration,
}

impl Server {
    async fn start(t: &TestDb, port: u16, env: &[(String, String)], log: &Path) -> Server {
        let out = File::options().create(true).append(true).open(log).unwrap();
        let spawned = Instant::now();
        let child = t
            .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn unchained serve");
        let mut server = Server {
            child,
            port,
            log: log.to_path_buf(),
            started_in: Duration::ZERO,
        };
        let url = format!("{}/users/login/", server.base());
        let log = server.log.clone();
        common::wait_until_up(&mut server.child, &url, &|| {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .await;
        server.started_in = spawned.elapsed();
        server
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The most memory the process has held resident (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the graceful shutdown it starts (bounded).
    async fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid; it touches no memory.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let asked = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if asked.elapsed() > Duration::from_secs(40) {
                self.kill();
                panic!("the server did not stop within 40 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A migrated database with its server-side settings.
async fn migrated(backend: &str) -> (TestDb, Db) {
    let t = TestDb::new(backend).await;
    let out = t.run(&["migrate"]);
    assert!(out.status.success(), "{backend}: {}", common::text(&out));
    let db = t.db().await;
    (t, db)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Rows made before a run

/// Users `{prefix}{n}@example.com` with `GOOD_PASSWORD`, each with a session
/// already logged in (as on a site that has been up for a while), hashed
/// once here so seeding costs no time. Returns (user id, session key).
async fn users_logged_in(db: &Db, prefix: &str, count: usize) -> Vec<(i64, String)> {
    let hash = tokio::task::spawn_blocking(|| {
        unchained::django::hashers::Hashers::default().make_password(GOOD_PASSWORD)
    })
    .await
    .unwrap();
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let email = format!("{prefix}{n}@example.com");
        let user = NewUser {
            email: &email,
            password_hash: &hash,
            is_active: true,
            is_staff: false,
            is_superuser: false,
            token: None,
        };
        ids.push(unchained::db::users::insert(&mut tx, &user).await.unwrap());
    }
    tx.commit().await.unwrap();
    let expire = DjangoDateTime(chrono::Utc::now() + chrono::Duration::days(14));
    let mut logged_in = Vec::new();
    for id in ids {
        let mut data = serde_json::Map::new();
        data.insert(sessions::SESSION_KEY.into(), id.to_string().into());
        data.insert(
            sessions::BACKEND_SESSION_KEY.into(),
            sessions::MODEL_BACKEND.into(),
        );
        data.insert(
            sessions::HASH_SESSION_KEY.into(),
            sessions::session_auth_hash(&hash, SECRET_KEY).into(),
        );
        let key = sessions::new_session_key();
        let encoded = sessions::encode(&data, SECRET_KEY);
        assert!(unchained::db::sessions::insert(db, &key, &encoded, expire)
            .await
            .unwrap());
        logged_in.push((id, key));
    }
    logged_in
}

/// A product of `owner`, published or not, with these versions (the one at
/// `current` marked current), as Django stores them.
async fn insert_product(
    db: &Db,
    name: &str,
    owner: i64,
    published: bool,
    versions: &[&str],
    current: usize,
) -> i64 {
    let sql =
        "INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
               is_moderated, category_id, owner_id) \
               VALUES ($1, 'Описание', NULL, 100.00, $2, $3, $4, NULL, $5) RETURNING id";
    let now = DjangoDateTime::now();
    let id = unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(&(db).sql(sql))
        .bind(name)
        .bind(now)
        .bind(now)
        .bind(published)
        .bind(owner)
        .fetch_one(pool)
        .await)
    .unwrap();
    for (n, version) in versions.iter().enumerate() {
        let sql =
            "INSERT INTO catalog_version (version_name, version_number, is_current, product_id) \
                   VALUES ($1, $2, $3, $4)";
        unchained::on_pool!(db, |pool| sqlx::query(&(db).sql(sql))
            .bind(*version)
            .bind(n as i64 + 1)
            .bind(n == current)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ()))
        .unwrap();
    }
    id
}

async fn categories(db: &Db, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for n in 0..count {
        let sql =
            "INSERT INTO catalog_category (name, description) VALUES ($1, 'Описание') RETURNING id";
        let id = unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(&(db).sql(sql))
            .bind(format!("Категория {n}"))
            .fetch_one(pool)
            .await)
        .unwrap();
        ids.push(id);
    }
    ids
}

// ---------------------------------------------------------------------------
// Reading what is stored

/// A product as the checks compare it: fields, price in cents, and its
/// versions `(number, name, current)` in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    name: String,
    description: String,
    category: Option<i64>,
    cents: i64,
    owner: Option<i64>,
    versions: Vec<(i64, String, bool)>,
}

/// Every product whose name starts with `prefix`, by name.
async fn stored_products(db: &Db, prefix: &str) -> HashMap<String, Stored> {
    let pattern = format!("{prefix}%");
    let products: Vec<(i64, String, Option<String>, Option<i64>, i64, Option<i64>)> =
        unchained::on_pool!(db, |pool| sqlx::query_as(&(db).sql(&format!(
            "SELECT id, name, description, category_id, {}, owner_id \
             FROM catalog_product WHERE name LIKE $1",
            db.backend().bigint("ROUND(price * 100)")
        )))
        .bind(&pattern)
        .fetch_all(pool)
        .await)
        .unwrap();
    let sql = format!(
        "SELECT product_id, {}, version_name, is_current FROM catalog_version ORDER BY id",
        db.backend().bigint("version_number")
    );
    let versions: Vec<(i64, i64, String, bool)> =
        unchained::on_pool!(db, |pool| sqlx::query_as(&sql).fetch_all(pool).await).unwrap();
    let mut by_product: HashMap<i64, Vec<(i64, String, bool)>> = HashMap::new();
    for (product, number, name, current) in versions {
        by_product
            .entry(product)
            .or_default()
            .push((number, name, current));
    }
    products
        .into_iter()
        .map(|(id, name, description, category, cents, owner)| {
            let stored = Stored {
                name: name.clone(),
                description: description.unwrap_or_default(),
                category,
                cents,
                owner,
                versions: by_product.remove(&id).unwrap_or_default(),
            };
            (name, stored)
        })
        .collect()
}

/// Products with more than one current version (none may have).
async fn products_with_two_current_versions(db: &Db) -> i64 {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM (SELECT product_id FROM catalog_version WHERE is_current \
         GROUP BY product_id HAVING COUNT(*) > 1) AS twice"
    )
    .fetch_one(pool)
    .await)
    .unwrap()
}

async fn product_id(db: &Db, name: &str) -> i64 {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(
        &(db).sql("SELECT id FROM catalog_product WHERE name = $1")
    )
    .bind(name)
    .fetch_one(pool)
    .await)
    .unwrap_or_else(|e| panic!("product {name:?} acknowledged but not found: {e}"))
}

// ---------------------------------------------------------------------------
// Requests, timed and counted

/// An answer, read whole.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn fetch(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await?;
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    /// How long each answer took: pages and plain form posts, then the
    /// requests that hash a password (they may wait for the pool).
    latencies: Vec<Duration>,
    hashing_latencies: Vec<Duration>,
    /// 503s of logins and registrations: the hashing pool was full.
    hashing_503: u64,
    /// 500 or more, but for the hashing pool's 503s.
    server_errors: Vec<String>,
    /// Answers other than what the request should get.
    unexpected: Vec<String>,
    /// No answer at all (connection refused or cut).
    transport_errors: u64,
}

impl Tally {
    /// Sends a request and counts its answer. `hashes` marks the requests
    /// that wait for the hashing pool (a 503 is their overload answer);
    /// `expected` the statuses the request should get.
    async fn send(
        &mut self,
        what: &str,
        request: reqwest::RequestBuilder,
        expected: &[u16],
        hashes: bool,
    ) -> Option<Answer> {
        let sent = Instant::now();
        let answer = match fetch(request).await {
            Ok(answer) => answer,
            Err(_) => {
                self.transport_errors += 1;
                return None;
            }
        };
        if hashes {
            self.hashing_latencies.push(sent.elapsed());
        } else {
            self.latencies.push(sent.elapsed());
        }
        *self.statuses.entry(answer.status).or_default() += 1;
        let describe = || {
            let start: String = answer.body.chars().take(300).collect();
            format!("{what}: {} {start}", answer.status)
        };
        if hashes && answer.status == 503 {
            self.hashing_503 += 1;
        } else if answer.status >= 500 {
            self.server_errors.push(describe());
        } else if !expected.contains(&answer.status) {
            self.unexpected.push(describe());
        }
        Some(answer)
    }

    fn merge(&mut self, other: Tally) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latencies.extend(other.latencies);
        self.hashing_latencies.extend(other.hashing_latencies);
        self.hashing_503 += other.hashing_503;
        self.server_errors.extend(other.server_errors);
        self.unexpected.extend(other.unexpected);
        self.transport_errors += other.transport_errors;
    }

    fn requests(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// `200: 41,210, 302: 12,000, 503: 3 (hashing)`.
    fn status_line(&self) -> String {
        self.statuses
            .iter()
            .map(|(status, n)| {
                let note = if *status == 503 {
                    format!(" ({} from the hashing pool)", self.hashing_503)
                } else {
                    String::new()
                };
                format!("{status}: {}{note}", thousands(*n))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `pages p50 …, p99 …, max …; logins and registrations p50 …`.
    fn latency_line(&mut self) -> String {
        fn quantiles(latencies: &mut [Duration]) -> String {
            latencies.sort();
            let at = |q: f64| -> String {
                let Some(last) = latencies.len().checked_sub(1) else {
                    return "-".into();
                };
                millis(latencies[(last as f64 * q).round() as usize])
            };
            format!("p50 {}, p99 {}, max {}", at(0.5), at(0.99), at(1.0))
        }
        format!(
            "pages {}; logins and registrations {}",
            quantiles(&mut self.latencies),
            quantiles(&mut self.hashing_latencies)
        )
    }

    /// Fails the test with the first few of each kind of bad answer.
    fn assert_clean(&self, what: &str) {
        let first = |list: &[String]| {
            list.iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        assert!(
            self.server_errors.is_empty(),
            "{what}: {} answers of 500 or more:\n  {}",
            self.server_errors.len(),
            first(&self.server_errors)
        );
        assert!(
            self.unexpected.is_empty(),
            "{what}: {} unexpected answers:\n  {}",
            self.unexpected.len(),
            first(&self.unexpected)
        );
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// 55095 → "55,095".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The value of the form input named `name`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..at + html[at..].find('>')?];
    let value = tag.split(" value=\"").nth(1)?;
    Some(value[..value.find('"')?].to_string())
}

/// The versions an update page shows: `(id, number, name)` of each row.
fn formset_rows(html: &str) -> Option<Vec<(String, String, String)>> {
    let initial: usize = input_value(html, "versions-INITIAL_FORMS")?.parse().ok()?;
    (0..initial)
        .map(|i| {
            let field = |name: &str| input_value(html, &format!("versions-{i}-{name}"));
            Some((
                field("id")?,
                field("version_number")?,
                field("version_name")?,
            ))
        })
        .collect()
}

/// What an owner's browser sends when saving a product: the fields, an
/// empty image input, and the versions formset (`keep` the rows shown,
/// each `(id, number, name)`, saved not current, or deleted; then the new
/// rows `(number, name, current)`).
fn product_form(
    token: &str,
    fields: &[(&str, String)],
    shown: &[(String, String, String)],
    delete_shown: bool,
    new_rows: &[(i64, String, bool)],
) -> multipart::Form {
    let mut form = multipart::Form::new()
        .text("csrfmiddlewaretoken", token.to_string())
        .part("image", no_file());
    for (name, value) in fields {
        form = form.text(name.to_string(), value.clone());
    }
    let total = shown.len() + new_rows.len();
    form = form
        .text("versions-TOTAL_FORMS", total.to_string())
        .text("versions-INITIAL_FORMS", shown.len().to_string())
        .text("versions-MIN_NUM_FORMS", "0")
        .text("versions-MAX_NUM_FORMS", "1000");
    for (i, (id, number, name)) in shown.iter().enumerate() {
        form = form
            .text(format!("versions-{i}-id"), id.clone())
            .text(format!("versions-{i}-version_number"), number.clone())
            .text(format!("versions-{i}-version_name"), name.clone());
        if delete_shown {
            form = form.text(format!("versions-{i}-DELETE"), "on");
        }
    }
    for (j, (number, name, current)) in new_rows.iter().enumerate() {
        let i = shown.len() + j;
        form = form
            .text(format!("versions-{i}-id"), "")
            .text(format!("versions-{i}-version_number"), number.to_string())
            .text(format!("versions-{i}-version_name"), name.clone());
        if *current {
            form = form.text(format!("versions-{i}-is_current"), "on");
        }
    }
    form
}

fn price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

// ---------------------------------------------------------------------------
// Load

/// What every load client shares.
struct LoadSite {
    base: String,
    db: Db,
    backend: &'static str,
    categories: Vec<i64>,
    /// Published products: what detail pages show.
    published: Vec<i64>,
    deadline: Instant,
}

/// What a client expects of one of its products.
struct Expected {
    id: i64,
    stored: Stored,
}

/// One load client's outcome.
#[derive(Default)]
struct LoadOutcome {
    tally: Tally,
    products: Vec<Expected>,
    edits: u64,
    registered: Vec<String>,
    logins: u64,
}

/// One logged-in user, acting until the deadline: the list (30 %), product
/// pages (20 %), creating (15 %) and editing (10 %) their own products, the
/// profile (8 %), anonymous visits (14 %), logging out and in (2 %),
/// registering someone new (1 %). No pause between requests. (Logins and
/// registrations are few, as on a real site: a hash is a tenth of a second
/// of a core, and the pool answers 503 past its queue.)
async fn load_client(
    site: Arc<LoadSite>,
    number: usize,
    user_id: i64,
    session: String,
) -> LoadOutcome {
    let mut out = LoadOutcome::default();
    let browser = Browser::new(&site.base);
    browser.set_cookie("sessionid", &session);
    let email = format!("load{number}@example.com");
    let mut logged_in = true;
    let mut made = 0;
    while Instant::now() < site.deadline {
        if !logged_in {
            // The login was turned away by the hashing pool: try again
            // after its Retry-After, as the 503 page asks.
            let retry_after = Duration::from_secs(RETRY_AFTER_SECONDS.parse().unwrap());
            let left = site.deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(retry_after.min(left)).await;
            if Instant::now() < site.deadline {
                logged_in = log_in(&browser, &email, &mut out).await;
            }
            continue;
        }
        let dice = rand::thread_rng().gen_range(0..100);
        let tally = &mut out.tally;
        match dice {
            0..30 => {
                let page = rand::thread_rng().gen_range(1..=3);
                tally
                    .send(
                        "list",
                        browser.client.get(browser.url(&format!("/?page={page}"))),
                        &[200],
                        false,
                    )
                    .await;
            }
            30..50 => {
                let own = out.products.len();
                let pick = rand::thread_rng().gen_range(0..site.published.len() + own);
                let id = match pick.checked_sub(site.published.len()) {
                    Some(i) => out.products[i].id,
                    None => site.published[pick],
                };
                tally
                    .send(
                        "detail",
                        browser.client.get(browser.url(&format!("/products/{id}/"))),
                        &[200],
                        false,
                    )
                    .await;
            }
            50..65 => {
                made += 1;
                let name = format!("load {} {number}-{made}", site.backend);
                if let Some(expected) = create_product(&site, &browser, tally, &name, user_id).await
                {
                    out.products.push(expected);
                }
            }
            65..75 if !out.products.is_empty() => {
                let i = rand::thread_rng().gen_range(0..out.products.len());
                if edit_product(&browser, tally, &mut out.products[i]).await {
                    out.edits += 1;
                }
            }
            65..83 => {
                tally
                    .send(
                        "profile",
                        browser.client.get(browser.url("/users/profile/")),
                        &[200],
                        false,
                    )
                    .await;
            }
            83..97 => anonymous_visit(&site.base, tally).await,
            97..99 => {
                log_out(&browser, tally).await;
                logged_in = log_in(&browser, &email, &mut out).await;
            }
            _ => {
                let who = format!(
                    "new-{}-{number}-{}@example.com",
                    site.backend,
                    out.registered.len()
                );
                if register(&site.base, &who, tally).await {
                    out.registered.push(who);
                }
            }
        }
    }
    out
}

/// A page's form token (GETs it, counted).
async fn token(browser: &Browser, tally: &mut Tally, what: &str, path: &str) -> Option<String> {
    let page = tally
        .send(what, browser.client.get(browser.url(path)), &[200], false)
        .await?;
    csrf_token(&page.body)
}

async fn create_product(
    site: &LoadSite,
    browser: &Browser,
    tally: &mut Tally,
    name: &str,
    owner: i64,
) -> Option<Expected> {
    let token = token(browser, tally, "create page", "/products/create/").await?;
    let category = site.categories[rand::thread_rng().gen_range(0..site.categories.len())];
    let cents = rand::thread_rng().gen_range(100..10_000_000);
    let description = format!("Новый товар «{name}»");
    let fields = [
        ("name", name.to_string()),
        ("description", description.clone()),
        ("category", category.to_string()),
        ("price", price(cents)),
    ];
    let form = product_form(&token, &fields, &[], false, &[]);
    let answer = tally
        .send(
            "create",
            browser
                .client
                .post(browser.url("/products/create/"))
                .multipart(form),
            &[302],
            false,
        )
        .await?;
    if (answer.status, answer.location.as_deref()) != (302, Some("/")) {
        return None;
    }
    Some(Expected {
        id: product_id(&site.db, name).await,
        stored: Stored {
            name: name.to_string(),
            description,
            category: Some(category),
            cents,
            owner: Some(owner),
            versions: Vec::new(),
        },
    })
}

/// The owner's form on one of their products: a new description and price,
/// the versions shown kept but no longer current, and a new current one.
/// True when acknowledged (then `product` holds what must be stored).
async fn edit_product(browser: &Browser, tally: &mut Tally, product: &mut Expected) -> bool {
    let path = format!("/products/{}/update/", product.id);
    let Some(page) = tally
        .send(
            "update page",
            browser.client.get(browser.url(&path)),
            &[200],
            false,
        )
        .await
    else {
        return false;
    };
    let (Some(token), Some(shown)) = (csrf_token(&page.body), formset_rows(&page.body)) else {
        tally
            .unexpected
            .push(format!("update page without its form: {}", page.body));
        return false;
    };
    let mut next = product.stored.clone();
    let number = next.versions.len() as i64 + 1;
    next.description = format!("Правка {number}");
    next.cents = rand::thread_rng().gen_range(100..10_000_000);
    for version in &mut next.versions {
        version.2 = false;
    }
    next.versions.push((number, format!("v{number}"), true));
    let fields = [
        ("name", next.name.clone()),
        ("description", next.description.clone()),
        (
            "category",
            next.category.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("price", price(next.cents)),
    ];
    let new_row = next
        .versions
        .last()
        .cloned()
        .into_iter()
        .collect::<Vec<_>>();
    let form = product_form(&token, &fields, &shown, false, &new_row);
    let Some(answer) = tally
        .send(
            "update",
            browser.client.post(browser.url(&path)).multipart(form),
            &[302],
            false,
        )
        .await
    else {
        return false;
    };
    if answer.status != 302 {
        return false;
    }
    product.stored = next;
    true
}

async fn log_out(browser: &Browser, tally: &mut Tally) {
    let Some(token) = token(browser, tally, "profile", "/users/profile/").await else {
        return;
    };
    let request = browser
        .client
        .post(browser.url("/users/logout/"))
        .form(&[("csrfmiddlewaretoken", token)]);
    tally.send("logout", request, &[302], false).await;
}

/// The login page, then the login. False when not logged in (the hashing
/// pool turned it away).
async fn log_in(browser: &Browser, email: &str, out: &mut LoadOutcome) -> bool {
    let tally = &mut out.tally;
    let Some(token) = token(browser, tally, "login page", "/users/login/").await else {
        return false;
    };
    let request = browser.client.post(browser.url("/users/login/")).form(&[
        ("csrfmiddlewaretoken", token.as_str()),
        ("username", email),
        ("password", GOOD_PASSWORD),
    ]);
    let answer = tally.send("login", request, &[302], true).await;
    let done = matches!(answer, Some(a) if a.status == 302);
    out.logins += u64::from(done);
    done
}

/// A new visitor registers. True when acknowledged.
async fn register(base: &str, email: &str, tally: &mut Tally) -> bool {
    let browser = Browser::new(base);
    let Some(token) = token(&browser, tally, "register page", "/users/register/").await else {
        return false;
    };
    let request = browser.client.post(browser.url("/users/register/")).form(&[
        ("csrfmiddlewaretoken", token.as_str()),
        ("email", email),
        ("password1", GOOD_PASSWORD),
        ("password2", GOOD_PASSWORD),
    ]);
    let answer = tally.send("register", request, &[302], true).await;
    matches!(answer, Some(a) if a.status == 302 && a.location.as_deref() == Some("/users/login/"))
}

/// A visitor without cookies opens one page.
async fn anonymous_visit(base: &str, tally: &mut Tally) {
    let browser = Browser::new(base);
    let (path, status) = [
        ("/users/login/", 200),
        ("/users/register/", 200),
        ("/contacts/", 200),
        ("/", 302),
    ][rand::thread_rng().gen_range(0..4)];
    tally
        .send(
            "anonymous",
            browser.client.get(browser.url(path)),
            &[status],
            false,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_gets_no_5xx_and_every_acknowledged_product_is_stored() {
    let _machine = machine().await;
    let scale = Scale::from_env();
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let users = users_logged_in(&db, "load", scale.clients).await;
        let shop = users_logged_in(&db, "shop", 1).await[0].0;
        let categories = categories(&db, 3).await;
        let mut published = Vec::new();
        for n in 0..100 {
            let name = format!("Витрина {n}");
            published.push(insert_product(&db, &name, shop, true, &["1.0", "2.0"], 1).await);
        }
        let mail = t.path("sent-mail").display().to_string();
        let settings = env(&[("EMAIL_BACKEND", "file"), ("EMAIL_FILE_PATH", &mail)]);
        let server = Server::start(&t, free_port(), &settings, &t.path("serve.log")).await;

        let started = Instant::now();
        let site = Arc::new(LoadSite {
            base: server.base(),
            db: db.clone(),
            backend,
            categories,
            published,
            deadline: started + Duration::from_secs(scale.seconds),
        });
        let mut clients = tokio::task::JoinSet::new();
        for (number, (id, session)) in users.into_iter().enumerate() {
            clients.spawn(load_client(site.clone(), number, id, session));
        }
        let mut tally = Tally::default();
        let mut expected = Vec::new();
        let (mut edits, mut registered, mut logins) = (0, Vec::new(), 0);
        for outcome in clients.join_all().await {
            tally.merge(outcome.tally);
            expected.extend(outcome.products);
            edits += outcome.edits;
            registered.extend(outcome.registered);
            logins += outcome.logins;
        }
        let elapsed = started.elapsed();
        let peak_rss = server.peak_rss_kib();
        let log = server.log_text();
        server.stop().await;

        let stored = stored_products(&db, &format!("load {backend} ")).await;
        let mut wrong = Vec::new();
        for product in &expected {
            match stored.get(&product.stored.name) {
                Some(row) if *row == product.stored => {}
                row => wrong.push(format!("expected {:?}, stored {row:?}", product.stored)),
            }
        }
        let two_current = products_with_two_current_versions(&db).await;
        let registered_stored = registered_users_with_one_letter(&db, &registered).await;

        let requests = tally.requests();
        println!(
            "load {backend}: {} clients, {:.1} s: {} requests ({:.0}/s); {}; {}; \
             products acknowledged {}, stored as acknowledged {} ({} edits with versions acknowledged; \
             {} load products in the database); logins {}; registrations acknowledged {}, \
             stored with their letter {}; no answer {}; server peak RSS {}",
            scale.clients,
            elapsed.as_secs_f64(),
            thousands(requests),
            requests as f64 / elapsed.as_secs_f64(),
            tally.status_line(),
            tally.latency_line(),
            thousands(expected.len() as u64),
            thousands((expected.len() - wrong.len()) as u64),
            thousands(edits),
            thousands(stored.len() as u64),
            thousands(logins),
            registered.len(),
            registered_stored,
            tally.transport_errors,
            mib(peak_rss),
        );
        tally.assert_clean(backend);
        assert_eq!(
            tally.transport_errors, 0,
            "{backend}: requests without an answer"
        );
        assert!(
            wrong.is_empty(),
            "{backend}: {} products not as acknowledged:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        assert_eq!(
            stored.len(),
            expected.len(),
            "{backend}: products stored that were never acknowledged"
        );
        assert_eq!(
            two_current, 0,
            "{backend}: products with two current versions"
        );
        assert_eq!(
            registered_stored,
            registered.len(),
            "{backend}: acknowledged registrations lost"
        );
        assert!(
            !log.contains(" ERROR "),
            "{backend}: the server logged errors:\n{log}"
        );
        assert!(
            !expected.is_empty() && edits > 0,
            "{backend}: the run made no products"
        );
        db.close().await;
    }
}

/// How many of these addresses have an (inactive) user and exactly one
/// letter in the outbox.
async fn registered_users_with_one_letter(db: &Db, emails: &[String]) -> usize {
    let users: HashSet<String> = unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, String>(
        "SELECT email FROM users_user WHERE NOT is_active"
    )
    .fetch_all(pool)
    .await)
    .unwrap()
    .into_iter()
    .collect();
    let mut letters: HashMap<String, usize> = HashMap::new();
    let recipients: Vec<String> = unchained::on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT recipient FROM unchained_outbox"
    )
    .fetch_all(pool)
    .await)
    .unwrap();
    for recipient in recipients {
        *letters.entry(recipient).or_default() += 1;
    }
    emails
        .iter()
        .filter(|email| users.contains(*email) && letters.get(*email) == Some(&1))
        .count()
}

// ---------------------------------------------------------------------------
// SIGKILL

/// What a save numbered `seq` stores: its description and price, and three
/// new versions (the second current) in place of the ones shown.
fn save_fields(seq: u64) -> (String, i64, Vec<(i64, String, bool)>) {
    let versions = (1..=3)
        .map(|n| (seq as i64 * 10 + n, format!("s{seq}-{n}"), n == 2))
        .collect();
    (format!("save {seq}"), seq as i64 * 100, versions)
}

/// One client of the SIGKILL test.
#[derive(Default)]
struct KillOutcome {
    /// The client's product.
    name: String,
    tally: Tally,
    /// The last save acknowledged (0: none), and those sent after it but
    /// cut by a kill before their answer (each may have landed or not).
    acknowledged: u64,
    cut: Vec<u64>,
    saves_acknowledged: u64,
    saves_cut: u64,
    created: Vec<String>,
    creates_cut: Vec<String>,
}

/// Saves its product again and again (one create in five), through kills:
/// without an answer it waits a moment and goes on. Counts its acknowledged
/// saves in `all_acknowledged` too, shared by every client.
async fn kill_client(
    base: String,
    name: String,
    product: i64,
    session: String,
    stop: Arc<AtomicBool>,
    all_acknowledged: Arc<AtomicU64>,
) -> KillOutcome {
    let mut out = KillOutcome {
        name: name.clone(),
        ..KillOutcome::default()
    };
    let browser = Browser::new(&base);
    browser.set_cookie("sessionid", &session);
    let path = format!("/products/{product}/update/");
    let mut seq = 0;
    for op in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let tally = &mut out.tally;
        let down = || tokio::time::sleep(Duration::from_millis(20));
        if op % 5 == 0 {
            let Some(token) = token(&browser, tally, "create page", "/products/create/").await
            else {
                down().await;
                continue;
            };
            let new = format!("{name} new {op}");
            let fields = [
                ("name", new.clone()),
                ("description", String::new()),
                ("category", String::new()),
                ("price", "1.00".to_string()),
            ];
            let form = product_form(&token, &fields, &[], false, &[]);
            let request = browser
                .client
                .post(browser.url("/products/create/"))
                .multipart(form);
            match tally.send("create", request, &[302], false).await {
                Some(answer) if answer.status == 302 => out.created.push(new),
                Some(_) => {}
                None => out.creates_cut.push(new),
            }
            continue;
        }
        let Some(page) = tally
            .send(
                "update page",
                browser.client.get(browser.url(&path)),
                &[200],
                false,
            )
            .await
        else {
            down().await;
            continue;
        };
        let (Some(token), Some(shown)) = (csrf_token(&page.body), formset_rows(&page.body)) else {
            tally
                .unexpected
                .push(format!("update page without its form: {}", page.body));
            continue;
        };
        seq += 1;
        let (description, cents, versions) = save_fields(seq);
        let fields = [
            ("name", name.clone()),
            ("description", description),
            ("category", String::new()),
            ("price", price(cents)),
        ];
        let form = product_form(&token, &fields, &shown, true, &versions);
        match tally
            .send(
                "save",
                browser.client.post(browser.url(&path)).multipart(form),
                &[302],
                false,
            )
            .await
        {
            Some(answer) if answer.status == 302 => {
                out.acknowledged = seq;
                out.cut.clear();
                out.saves_acknowledged += 1;
                all_acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Some(_) => {}
            None => {
                out.cut.push(seq);
                out.saves_cut += 1;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_save_leaves_no_partial_product_and_loses_no_acknowledged_save() {
    let _machine = machine().await;
    let scale = Scale::from_env();
    const CLIENTS: usize = 16;
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let users = users_logged_in(&db, "kill", CLIENTS).await;
        let prefix = format!("kill {backend} ");
        let mut products = Vec::new();
        for (n, (user, _)) in users.iter().enumerate() {
            let name = format!("{prefix}{n}");
            products
                .push(insert_product(&db, &name, *user, false, &["s0-1", "s0-2", "s0-3"], 1).await);
        }
        let seeded = stored_products(&db, &prefix).await;
        let port = free_port();
        let log = t.path("serve.log");
        let settings = env(&[("EMAIL_BACKEND", "console")]);
        let mut server = Server::start(&t, port, &settings, &log).await;

        let stop = Arc::new(AtomicBool::new(false));
        let all_acknowledged = Arc::new(AtomicU64::new(0));
        let mut clients = tokio::task::JoinSet::new();
        for (n, (_, session)) in users.into_iter().enumerate() {
            clients.spawn(kill_client(
                server.base(),
                format!("{prefix}{n}"),
                products[n],
                session,
                stop.clone(),
                all_acknowledged.clone(),
            ));
        }
        let started = Instant::now();
        let mut peak_rss = 0;
        let mut restarts = Vec::new();
        for _ in 0..scale.kills {
            let run = rand::thread_rng().gen_range(300..1500);
            tokio::time::sleep(Duration::from_millis(run)).await;
            peak_rss = peak_rss.max(server.peak_rss_kib());
            server.kill();
            server = Server::start(&t, port, &settings, &log).await;
            restarts.push(server.started_in);
        }
        let at_last_restart = all_acknowledged.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
        let outcomes = clients.join_all().await;
        let elapsed = started.elapsed();
        assert!(
            all_acknowledged.load(Ordering::SeqCst) > at_last_restart,
            "{backend}: no save acknowledged after the last restart"
        );
        peak_rss = peak_rss.max(server.peak_rss_kib());
        server.stop().await;

        let stored = stored_products(&db, &prefix).await;
        let mut tally = Tally::default();
        let (mut saves, mut cut, mut cut_landed) = (0, 0, 0);
        let (mut created, mut creates_cut) = (0, 0);
        let mut wrong = Vec::new();
        for outcome in outcomes {
            let name = &outcome.name;
            let row = &stored[name];
            // The stored state is one whole save: the last acknowledged, or
            // one sent after it whose answer a kill cut.
            let whole_save = |seq: u64| -> bool {
                if seq == 0 {
                    return *row == seeded[name];
                }
                let (description, cents, versions) = save_fields(seq);
                (&row.description, row.cents, &row.versions) == (&description, cents, &versions)
            };
            match outcome.cut.iter().copied().find(|seq| whole_save(*seq)) {
                Some(_) => cut_landed += 1,
                None if whole_save(outcome.acknowledged) => {}
                None => wrong.push(format!(
                    "{name}: acknowledged save {}, cut {:?}, stored {row:?}",
                    outcome.acknowledged, outcome.cut
                )),
            }
            for new in &outcome.created {
                if !stored.contains_key(new) {
                    wrong.push(format!("{new}: created (acknowledged) but not stored"));
                }
            }
            saves += outcome.saves_acknowledged;
            cut += outcome.saves_cut;
            created += outcome.created.len();
            creates_cut += outcome.creates_cut.len();
            tally.merge(outcome.tally);
        }
        let two_current = products_with_two_current_versions(&db).await;
        let slowest_restart = restarts.iter().max().copied().unwrap_or_default();
        println!(
            "sigkill {backend}: {} kills in {:.1} s, {CLIENTS} clients; saves acknowledged {} \
             (each 3 versions replacing 3), cut by a kill {cut}; products left at a \
             cut save, stored whole {cut_landed}; creates acknowledged {created}, cut {creates_cut}; \
             products half saved {}; with two current versions {two_current}; {}; \
             requests without an answer {}; slowest restart to first page {}; server peak RSS {}",
            scale.kills,
            elapsed.as_secs_f64(),
            thousands(saves),
            wrong.len(),
            tally.status_line(),
            tally.transport_errors,
            millis(slowest_restart),
            mib(peak_rss),
        );
        tally.assert_clean(backend);
        assert!(wrong.is_empty(), "{backend}:\n{}", wrong.join("\n"));
        assert_eq!(
            two_current, 0,
            "{backend}: products with two current versions"
        );
        assert!(saves > 0, "{backend}: no save acknowledged");
        db.close().await;
    }
}

// ---------------------------------------------------------------------------
// SMTP outage

/// Registers `count` new users `{tag}-{n}@example.com`, spread over the
/// servers, four at a time; a 503 from the hashing pool is tried again.
/// Returns the addresses, each acknowledged.
async fn register_many(
    servers: &[String],
    tag: &str,
    count: usize,
    tally: &mut Tally,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let (servers, tag) = (servers.to_vec(), tag.to_string());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut emails = Vec::new();
            for n in (lane..count).step_by(4) {
                let email = format!("{tag}-{n}@example.com");
                let base = &servers[n % servers.len()];
                let mut tries = 0;
                while !register(base, &email, &mut tally).await {
                    tries += 1;
                    assert!(tries < 40, "{email}: not registered after {tries} tries");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                emails.push(email);
            }
            (emails, tally)
        });
    }
    let mut emails = Vec::new();
    for (lane_emails, lane_tally) in tasks.join_all().await {
        emails.extend(lane_emails);
        tally.merge(lane_tally);
    }
    emails
}

/// One number from the outbox.
async fn outbox_count(db: &Db, sql: &str) -> i64 {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(&(db).sql(sql))
        .fetch_one(pool)
        .await)
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits (bounded) until the outbox answers `want` to `sql`; returns how long it took.
async fn wait_for_outbox(db: &Db, sql: &str, want: i64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let now = outbox_count(db, sql).await;
        if now == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{sql}: {now}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const UNSENT: &str = "SELECT COUNT(*) FROM unchained_outbox WHERE sent_at IS NULL";
const UNSENT_NEVER_TRIED: &str =
    "SELECT COUNT(*) FROM unchained_outbox WHERE sent_at IS NULL AND attempts = 0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_queued_while_smtp_is_down_are_delivered_exactly_once_by_two_servers() {
    let _machine = machine().await;
    let scale = Scale::from_env();
    for backend in backends() {
        let (t, db) = migrated(backend).await;
        let smtp_port = free_port().to_string();
        let ca_cert = ca().cert.display().to_string();
        let settings = env(&[
            ("EMAIL_BACKEND", "smtp"),
            ("EMAIL_HOST", "127.0.0.1"),
            ("EMAIL_PORT", &smtp_port),
            ("EMAIL_USE_SSL", "True"),
            ("EMAIL_HOST_USER", SMTP_USER),
            ("EMAIL_HOST_PASSWORD", SMTP_PASSWORD),
            ("EMAIL_RETRY_SECONDS", "1"),
            ("SSL_CERT_FILE", &ca_cert),
        ]);
        let servers = [
            Server::start(&t, free_port(), &settings, &t.path("serve-1.log")).await,
            Server::start(&t, free_port(), &settings, &t.path("serve-2.log")).await,
        ];
        let bases: Vec<String> = servers.iter().map(Server::base).collect();
        let mut tally = Tally::default();
        let started = Instant::now();
        let quarter = scale.letters / 4;
        let within = Duration::from_secs(120);

        // The first outage: half the letters queued, each tried and failed.
        let mut queued = register_many(&bases, "down-1", 2 * quarter, &mut tally).await;
        wait_for_outbox(&db, UNSENT_NEVER_TRIED, 0, within).await;
        let failed_first = outbox_count(
            &db,
            &format!(
                "SELECT {} FROM unchained_outbox",
                db.backend().bigint("COALESCE(SUM(attempts), 0)")
            ),
        )
        .await;
        let smtp_port: u16 = smtp_port.parse().unwrap();
        let first = SmtpServer::start(Mode::Ssl, smtp_port, &t.path("smtp-1"));
        // More while it comes back.
        queued.extend(register_many(&bases, "back-1", quarter, &mut tally).await);
        let delivered_first = wait_for_outbox(&db, UNSENT, 0, within).await;

        // The second outage: the server goes away between letters.
        drop(first);
        queued
            .extend(register_many(&bases, "down-2", scale.letters - 3 * quarter, &mut tally).await);
        wait_for_outbox(&db, UNSENT_NEVER_TRIED, 0, within).await;
        let second = SmtpServer::start(Mode::Ssl, smtp_port, &t.path("smtp-2"));
        let delivered_second = wait_for_outbox(&db, UNSENT, 0, within).await;
        // A letter sent twice would arrive now.
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(second);
        let elapsed = started.elapsed();

        let mut received: HashMap<String, usize> = HashMap::new();
        for folder in ["smtp-1", "smtp-2"] {
            for message in common::smtp::received(&t.path(folder)) {
                let to = message["to"].as_str().unwrap().to_string();
                *received.entry(to).or_default() += 1;
            }
        }
        let duplicates: usize = received.values().map(|n| n - 1).sum();
        let lost: Vec<&String> = queued
            .iter()
            .filter(|e| !received.contains_key(*e))
            .collect();
        let strangers = received.keys().filter(|to| !queued.contains(to)).count();
        let rows = outbox_count(&db, "SELECT COUNT(*) FROM unchained_outbox").await;
        let attempts = outbox_count(
            &db,
            &format!(
                "SELECT {} FROM unchained_outbox",
                db.backend().bigint("COALESCE(SUM(attempts), 0)")
            ),
        )
        .await;
        let sent_by: Vec<usize> = servers
            .iter()
            .map(|s| {
                s.log_text()
                    .lines()
                    .filter(|l| l.contains(" sent to "))
                    .count()
            })
            .collect();
        let peak_rss = servers.iter().map(Server::peak_rss_kib).max().unwrap_or(0);
        for server in servers {
            server.stop().await;
        }
        println!(
            "smtp {backend}: 2 servers, 2 outages, {:.1} s: letters queued {} ({} while down), \
             delivered {}, duplicates {duplicates}, lost {}, unknown {strangers}; failed attempts \
             {attempts} ({failed_first} in the first outage); sent by each server {sent_by:?}; \
             all delivered {} and {} after the SMTP server came back; registrations {}; \
             server peak RSS {}",
            elapsed.as_secs_f64(),
            queued.len(),
            2 * quarter + scale.letters - 3 * quarter,
            received.values().sum::<usize>(),
            lost.len(),
            millis(delivered_first),
            millis(delivered_second),
            tally.status_line(),
            mib(peak_rss),
        );
        tally.assert_clean(backend);
        assert_eq!(
            rows,
            queued.len() as i64,
            "{backend}: letters in the outbox"
        );
        assert!(lost.is_empty(), "{backend}: letters lost: {lost:?}");
        assert_eq!(duplicates, 0, "{backend}: letters sent twice: {received:?}");
        assert_eq!(
            strangers, 0,
            "{backend}: letters nobody queued: {received:?}"
        );
        assert!(
            failed_first >= 2 * quarter as i64,
            "{backend}: letters not tried during the outage"
        );
        db.close().await;
    }
}
