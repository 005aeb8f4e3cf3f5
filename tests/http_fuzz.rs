//! An HTTP fuzzer over every route, on each back end: requests written
//! byte by byte over raw TCP (so malformed request lines, bad header bytes,
//! wrong Content-Length and broken chunked bodies are possible), most of
//! them well-formed enough to reach the handlers: a valid Host, the CSRF
//! cookie and a token of it, often a logged-in user's session, and the
//! fields each form expects, filled with edge values. No answer may be a
//! 5xx other than 503 (each is printed with its request), and the server
//! must still serve the login page at the end.
//!
//! `HTTP_FUZZ_REQUESTS` sets the requests per back end (default 2,000; the
//! recorded runs use 20,000), `HTTP_FUZZ_SEED` replays a run (request `i`
//! is made from the seed and `i` alone). Status counts print with
//! `-- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Map};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::app::{on_each_backend, App, GOOD_PASSWORD, PNG_1X1};
use common::fuzz::{count_from_env, seed_from_env, Fuzzer, EDGE_NUMBERS, TRICKY_CHARS};
use unchained::db::time::DjangoDateTime;
use unchained::db::users::NewUser;
use unchained::django::{csrf, sessions};

const DEFAULT_REQUESTS: usize = 2_000;
/// Requests in flight at once (the `worker` calls joined in the test).
const WORKERS: usize = 6;
/// How long an answer may take before the request's write side is closed
/// (a server waiting for more body then sees its end), and how long after
/// that before it counts as held.
const ANSWER_WAIT: Duration = Duration::from_secs(3);
const AFTER_CLOSE_WAIT: Duration = Duration::from_secs(3);
/// The largest body sent (an upload well under the 10 MB limit).
const MAX_BODY: usize = 1 << 20;

/// What the fuzzer knows of the site it attacks.
struct Site<'a> {
    app: &'a App,
    authority: String,
    /// A user with products of their own, and a superuser (a moderator).
    owner: i64,
    admin: i64,
    owner_email: String,
    products: Vec<i64>,
    category: i64,
    /// The confirmation token of an inactive user.
    token: String,
}

impl<'a> Site<'a> {
    async fn prepare(app: &'a App) -> Site<'a> {
        let owner_email = "owner@example.com".to_string();
        let owner = app.create_user(&owner_email, GOOD_PASSWORD, true).await;
        let hash = app.make_password(GOOD_PASSWORD).await;
        let admin = app
            .insert(&NewUser {
                email: "admin@example.com",
                password_hash: &hash,
                is_active: true,
                is_staff: true,
                is_superuser: true,
                token: None,
            })
            .await;
        let token = format!("{:032x}", rand::thread_rng().gen::<u128>());
        app.insert_user("inactive@example.com", &hash, false, Some(&token))
            .await;
        let category = app
            .count("INSERT INTO catalog_category (name, description) VALUES ('Книги', '') RETURNING id")
            .await;
        // Published and not, of either user and of nobody.
        let mut products = Vec::new();
        for (i, owner_id) in [Some(owner), Some(owner), Some(admin), None]
            .into_iter()
            .enumerate()
        {
            let sql = "INSERT INTO catalog_product (name, description, image, price, created_at, \
                       updated_at, is_moderated, category_id, owner_id) \
                       VALUES ($1, 'Описание', NULL, 10.50, $2, $3, $4, $5, $6) RETURNING id";
            let now = DjangoDateTime::now();
            let id = unchained::on_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(
                &(&app.db).sql(sql)
            )
            .bind(format!("Товар {i}"))
            .bind(now)
            .bind(now)
            .bind(i % 2 == 0)
            .bind(category)
            .bind(owner_id)
            .fetch_one(pool)
            .await)
            .unwrap();
            products.push(id);
        }
        Site {
            app,
            authority: app.base.trim_start_matches("http://").to_string(),
            owner,
            admin,
            owner_email,
            products,
            category,
            token,
        }
    }

    /// A session row logging this user in, as Django's `login` leaves it
    /// (the hash made from the password column as it is now).
    async fn logged_in_session(&self, user_id: i64) -> String {
        let user = unchained::db::users::by_id(&self.app.db, user_id)
            .await
            .unwrap()
            .expect("the fuzzer's users are never deleted");
        let mut data = Map::new();
        data.insert(sessions::SESSION_KEY.into(), json!(user_id.to_string()));
        data.insert(
            sessions::BACKEND_SESSION_KEY.into(),
            json!(sessions::MODEL_BACKEND),
        );
        data.insert(
            sessions::HASH_SESSION_KEY.into(),
            json!(sessions::session_auth_hash(
                &user.password,
                common::SECRET_KEY
            )),
        );
        self.app.store_session(&data).await
    }
}

// ---------------------------------------------------------------------------
// Making a request

/// Methods of a well-formed request: forms are posted most; other
/// methods now and then.
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "GET", "POST", "POST", "POST", "POST", "POST", "HEAD", "OTHER",
];
const OTHER_METHODS: &[&str] = &["PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"];
/// Methods hyper or the router should refuse.
const BAD_METHODS: &[&str] = &["CONNECT", "get", "FOO", "G\0T", "", "GET GET"];

/// The routes, `{pk}` and `{token}` to fill in.
const ROUTES: &[&str] = &[
    "/",
    "/products/{pk}/",
    "/products/create/",
    "/products/{pk}/update/",
    "/products/{pk}/delete/",
    "/contacts/",
    "/users/register/",
    "/users/email-confirm/{token}/",
    "/users/login/",
    "/users/logout/",
    "/users/password-reset/",
    "/users/profile/",
    "/static/css/site.css",
    "/static/js/formset.js",
    "/static/{token}",
    "/media/{token}.png",
    "/media/../Cargo.toml",
    "/no-such-page/",
];

const PATH_TOKENS: &[&str] = &[
    "%00", "%2e%2e", "..", "/..", "/./", "//", "%2F", "%", "%zz", "%C3%A9", "%ff", "?", "#", ";",
    "\\", "~", "*", "@", ":",
];

/// What a well-formed request target has percent-encoded: all but the
/// characters RFC 3986 allows unencoded, and `%` itself (so that encoded
/// sequences, even broken ones, pass through).
const URI_UNSAFE: &percent_encoding::AsciiSet = &unchained::web::urls::PATH_ARG
    .remove(b'/')
    .remove(b'?')
    .remove(b'%');

/// A product key: a real one, one made later, or not a key at all.
fn pk(f: &mut Fuzzer, site: &Site) -> String {
    match f.below(4) {
        0 => f.pick(&site.products).to_string(),
        1 => (1 + f.below(40)).to_string(),
        2 => f.pick(EDGE_NUMBERS).to_string(),
        _ => f.text(12),
    }
}

/// A request target for this route: filled in, then perhaps encoded,
/// mutated, lengthened or given a query (more often when `malformed`).
fn target(f: &mut Fuzzer, site: &Site, route: &str, malformed: bool) -> Vec<u8> {
    let odds = if malformed { 0.3 } else { 0.05 };
    let token = match f.below(3) {
        0 => site.token.clone(),
        1 => f.text(40),
        _ => format!("{:032x}", f.rng().gen::<u128>()),
    };
    let mut path = route
        .replace("{pk}", &pk(f, site))
        .replace("{token}", &token);
    if f.chance(odds) {
        // Percent-encode some characters, as a client may.
        path = path
            .chars()
            .map(|c| {
                if c != '/' && f.chance(0.3) {
                    let mut buf = [0; 4];
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| format!("%{b:02X}"))
                        .collect()
                } else {
                    c.to_string()
                }
            })
            .collect();
    }
    let mut bytes = path.into_bytes();
    if f.chance(odds) {
        bytes = f.mutate(&bytes, PATH_TOKENS);
    }
    if f.chance(odds / 10.0) {
        let segment = f.pick(&["a/", "%00", "../", "Я"]).repeat(1 + f.below(3000));
        bytes.extend_from_slice(segment.as_bytes());
    }
    if f.chance(0.3) {
        let query = match f.below(4) {
            0 => format!("page={}", f.pick(EDGE_NUMBERS)),
            1 => "page=last".to_string(),
            2 => format!(
                "next={}",
                f.pick(&[
                    "/",
                    "//evil.example/",
                    "/products/1/",
                    "http://evil.example"
                ])
            ),
            _ => f.text(30),
        };
        bytes.push(b'?');
        bytes.extend_from_slice(query.as_bytes());
    }
    bytes
}

fn host_header(f: &mut Fuzzer, site: &Site, malformed: bool) -> Option<Vec<u8>> {
    let port = site.authority.rsplit(':').next().unwrap_or("80");
    // A well-formed request has a host of the site (or, rarely, none,
    // an empty one or another site's).
    let host = match f.below(if malformed { 12 } else { 30 }) {
        0 => return None,
        1 => format!("localhost:{port}"),
        2 => format!("[::1]:{port}"),
        3 => "evil.example".to_string(),
        4 => String::new(),
        5 if malformed => format!("{}:{port}", site.authority),
        6 if malformed => f.mutate_text(&site.authority, &["[", "]", ":", "."]),
        7 if malformed => f.text(30),
        _ => site.authority.clone(),
    };
    Some(host.into_bytes())
}

/// Who sends the request: cookies of a logged-in user or an anonymous
/// visitor, stale or forged ones, and the CSRF secret (which the form's
/// token is made from).
struct Visitor {
    cookie: Option<Vec<u8>>,
    secret: String,
}

async fn visitor(f: &mut Fuzzer, site: &Site<'_>) -> Visitor {
    let secret = csrf::new_secret();
    let session = match f.below(6) {
        0 | 1 => Some(site.logged_in_session(site.owner).await),
        2 => Some(site.logged_in_session(site.admin).await),
        3 => Some(format!("{:032x}", f.rng().gen::<u128>())),
        4 => Some(f.text(40)),
        _ => None,
    };
    let csrf_cookie = match f.below(8) {
        0 => None,
        1 => Some(csrf::mask_cipher_secret(&secret)),
        2 => Some(f.mutate_text(&secret, &[])),
        _ => Some(secret.clone()),
    };
    let mut pieces: Vec<String> = Vec::new();
    pieces.extend(session.map(|s| format!("sessionid={s}")));
    pieces.extend(csrf_cookie.map(|c| format!("csrftoken={c}")));
    let mut cookie = (!pieces.is_empty()).then(|| pieces.join("; ").into_bytes());
    if f.chance(0.1) {
        cookie = Some(f.mutate(cookie.as_deref().unwrap_or(b""), &[";", "=", "\"", "%"]));
    }
    Visitor { cookie, secret }
}

/// A field value: a plausible one, an edge value or random text.
fn value(f: &mut Fuzzer, plausible: &str) -> String {
    match f.below(8) {
        0 => f.pick(EDGE_NUMBERS).to_string(),
        1 => f.text(60),
        2 => f.pick(TRICKY_CHARS).repeat(1 + f.below(300)),
        3 => String::new(),
        _ => plausible.to_string(),
    }
}

/// The fields the route's form reads, filled in.
fn form_fields(f: &mut Fuzzer, site: &Site, path: &str) -> Vec<(String, String)> {
    let email = if f.chance(0.3) {
        site.owner_email.clone()
    } else {
        format!("u{}@example.com", f.below(1000))
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut add = |f: &mut Fuzzer, name: &str, plausible: &str| {
        let v = value(f, plausible);
        fields.push((name.to_string(), v));
    };
    if path.starts_with("/users/login") {
        add(f, "username", &email);
        add(f, "password", GOOD_PASSWORD);
        add(f, "next", "/products/1/");
    } else if path.starts_with("/users/register") {
        add(f, "email", &email);
        add(f, "password1", GOOD_PASSWORD);
        add(f, "password2", GOOD_PASSWORD);
    } else if path.starts_with("/users/password-reset") {
        add(f, "email", &email);
    } else if path.starts_with("/users/profile") {
        for (name, plausible) in [
            ("first_name", "Иван"),
            ("last_name", "Петров"),
            ("phone", "+7 900 000-00-00"),
            ("country", "Россия"),
            ("avatar-clear", "on"),
        ] {
            add(f, name, plausible);
        }
    } else if path.starts_with("/contacts") {
        add(f, "name", "Иван");
        add(f, "phone", "+79000000000");
        add(f, "message", "Здравствуйте");
    } else if path.starts_with("/products") {
        let category = site.category.to_string();
        for (name, plausible) in [
            ("name", "Новый товар"),
            ("description", "Описание"),
            ("price", "199.99"),
            ("category", category.as_str()),
            ("is_moderated", "on"),
            ("image-clear", "on"),
            ("versions-TOTAL_FORMS", "1"),
            ("versions-INITIAL_FORMS", "0"),
            ("versions-MIN_NUM_FORMS", "0"),
            ("versions-MAX_NUM_FORMS", "1000"),
            ("versions-0-version_number", "1"),
            ("versions-0-version_name", "Первая"),
            ("versions-0-is_current", "on"),
            ("versions-0-id", ""),
            ("versions-0-DELETE", ""),
        ] {
            if f.chance(0.8) {
                add(f, name, plausible);
            }
        }
    }
    fields
}

const BOUNDARY: &str = "----fuzzformboundary7MA4YWxkTrZu0gW";

/// A form body (URL-encoded or multipart, maybe with a file) and its
/// content type.
fn form_body(
    f: &mut Fuzzer,
    fields: &[(String, String)],
    with_token: Option<String>,
) -> (Vec<u8>, String) {
    let mut fields = fields.to_vec();
    if let Some(token) = with_token {
        fields.insert(
            f.below(fields.len() + 1),
            (csrf::CSRF_FORM_FIELD.into(), token),
        );
    }
    if f.chance(0.6) {
        let body = serde_urlencoded::to_string(&fields).unwrap().into_bytes();
        return (body, "application/x-www-form-urlencoded".into());
    }
    let mut body = Vec::new();
    for (name, value) in &fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if f.chance(0.7) {
        let name = f.pick(&["image", "avatar", "file"]);
        let filename = f.pick(&["a.png", "a.jpg", "", "../../x.png", "фото.png", "a.svg"]);
        let contents = match f.below(3) {
            0 => PNG_1X1.to_vec(),
            1 => f.mutate(PNG_1X1, &[]),
            _ => f.bytes(2000),
        };
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&contents);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let content_type = match f.below(8) {
        0 => "multipart/form-data".to_string(),
        1 => "multipart/form-data; boundary=other".to_string(),
        2 => format!("multipart/form-data; boundary=\"{BOUNDARY}"),
        _ => format!("multipart/form-data; boundary={BOUNDARY}"),
    };
    (body, content_type)
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    ContentLength,
    /// A Content-Length larger than what is sent; the write side is closed.
    ShortBody,
    /// A Content-Length smaller than what is sent.
    LongBody,
    Chunked,
    /// Chunked with a bad size line or cut off; the write side is closed.
    BrokenChunked,
    /// A junk Content-Length value.
    JunkLength,
    None,
}

/// A whole request as bytes, and whether it was cut short on purpose.
/// One in four is malformed: any of its parts may be broken at once.
async fn request(f: &mut Fuzzer, site: &Site<'_>) -> (Vec<u8>, bool) {
    let malformed = f.chance(0.25);
    let method = match *f.pick(METHODS) {
        _ if malformed && f.chance(0.3) => *f.pick(BAD_METHODS),
        "OTHER" => *f.pick(OTHER_METHODS),
        method => method,
    };
    let route = *f.pick(ROUTES);
    let mut target = target(f, site, route, malformed);
    if !malformed {
        target = percent_encoding::percent_encode(&target, URI_UNSAFE)
            .to_string()
            .into_bytes();
    }
    let visitor = visitor(f, site).await;
    let version = if malformed && f.chance(0.3) {
        *f.pick(&["HTTP/2.0", "HTTX/1.1", "HTTP/1.1 x", ""])
    } else {
        *f.pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"])
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(host) = host_header(f, site, malformed) {
        headers.push(("Host".into(), host));
    }
    if let Some(cookie) = visitor.cookie {
        headers.push(("Cookie".into(), cookie));
    }
    let origin = format!("http://{}", site.authority);
    match f.below(6) {
        0 => headers.push(("Origin".into(), origin.clone().into_bytes())),
        1 => headers.push(("Origin".into(), b"http://evil.example".to_vec())),
        2 => headers.push(("Origin".into(), b"null".to_vec())),
        3 => headers.push((
            "Referer".into(),
            format!("{origin}/users/login/").into_bytes(),
        )),
        _ => {}
    }
    let token = match f.below(8) {
        0 => None,
        1 => Some(csrf::mask_cipher_secret(&csrf::new_secret())),
        2 => Some(f.mutate_text(&csrf::mask_cipher_secret(&visitor.secret), &[])),
        _ => Some(csrf::mask_cipher_secret(&visitor.secret)),
    };
    if f.chance(0.1) {
        headers.push((
            "X-CSRFToken".into(),
            token.clone().unwrap_or_default().into_bytes(),
        ));
    }
    let (body, content_type) = match f.below(10) {
        0 => (
            f.bytes(5000),
            f.pick(&[
                "application/octet-stream",
                "text/plain",
                "application/x-www-form-urlencoded",
            ])
            .to_string(),
        ),
        1 if f.chance(0.1) => {
            // A large upload or form.
            let len = f.rng().gen_range(MAX_BODY / 4..=MAX_BODY);
            (
                vec![b'a'; len],
                "application/x-www-form-urlencoded".to_string(),
            )
        }
        2 => (Vec::new(), String::new()),
        _ => {
            let fields = form_fields(f, site, route);
            form_body(f, &fields, token)
        }
    };
    if !content_type.is_empty() && f.chance(0.95) {
        headers.push(("Content-Type".into(), content_type.into_bytes()));
    }
    if f.chance(0.05) {
        headers.push(("Expect".into(), b"100-continue".to_vec()));
    }
    if malformed && f.chance(0.3) {
        // A header of any bytes, valid or not.
        headers.push((f.text(12), f.bytes(100)));
    }
    if f.chance(0.02) {
        headers.push(("X-Padding".into(), vec![b'x'; 1 + f.below(60_000)]));
    }
    if !malformed {
        // Only bytes hyper takes in a header value: the request is to
        // reach the site.
        for (_, value) in &mut headers {
            value.retain(|&b| b == b'\t' || (b >= b' ' && b != 0x7f));
        }
    }
    let framing = if malformed {
        *f.pick(&[
            Framing::ContentLength,
            Framing::ShortBody,
            Framing::LongBody,
            Framing::BrokenChunked,
            Framing::JunkLength,
            Framing::None,
        ])
    } else if version == "HTTP/1.1" {
        *f.pick(&[
            Framing::ContentLength,
            Framing::ContentLength,
            Framing::Chunked,
        ])
    } else {
        Framing::ContentLength
    };
    let mut head = Vec::new();
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(&target);
    head.push(b' ');
    head.extend_from_slice(version.as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    let mut payload = Vec::new();
    match framing {
        Framing::ContentLength => {
            head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            payload = body;
        }
        Framing::ShortBody => {
            let cut = f.below(body.len() + 1);
            head.extend_from_slice(
                format!("Content-Length: {}\r\n", body.len() + 1 + f.below(1000)).as_bytes(),
            );
            payload = body[..cut].to_vec();
        }
        Framing::LongBody => {
            head.extend_from_slice(
                format!("Content-Length: {}\r\n", f.below(body.len() + 1)).as_bytes(),
            );
            payload = body;
        }
        Framing::Chunked | Framing::BrokenChunked => {
            head.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            if f.chance(0.1) {
                head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            for chunk in body.chunks(1 + f.below(4096)) {
                payload.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                payload.extend_from_slice(chunk);
                payload.extend_from_slice(b"\r\n");
            }
            payload.extend_from_slice(b"0\r\n\r\n");
            if framing == Framing::BrokenChunked {
                payload = f.mutate(
                    &payload,
                    &[
                        "\r\n",
                        "ffffffffffffffff\r\n",
                        "-1\r\n",
                        "0;x=y\r\n",
                        "zz\r\n",
                    ],
                );
            }
        }
        Framing::JunkLength => {
            let junk = *f.pick(&["-1", "abc", "1e3", "18446744073709551616", "5, 6", "", " 7"]);
            head.extend_from_slice(format!("Content-Length: {junk}\r\n").as_bytes());
            payload = body;
        }
        Framing::None => payload = body,
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut bytes = head;
    bytes.extend_from_slice(&payload);
    let mut cut_short = matches!(framing, Framing::ShortBody | Framing::BrokenChunked);
    if malformed && f.chance(0.2) {
        // Anything at all, now and then cut off.
        bytes = f.mutate(&bytes, &["\r\n", "\n", " ", ":", "\0", "HTTP/1.1"]);
        cut_short = true;
    }
    (bytes, cut_short)
}

// ---------------------------------------------------------------------------
// Sending it

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Status(u16),
    /// The connection closed without a status line (a request hyper
    /// refused outright, or cut short by the fuzzer).
    Closed,
    /// No answer in time even after the write side was closed.
    Held,
}

/// The final status of a response head (after any `100 Continue`).
fn final_status(response: &[u8]) -> Option<u16> {
    let mut rest = response;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        if !(100..200).contains(&status) {
            // Complete once the head has ended.
            rest.windows(4).position(|w| w == b"\r\n\r\n")?;
            return Some(status);
        }
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        rest = &rest[head_end + 4..];
    }
}

async fn send(authority: &str, request: &[u8], cut_short: bool) -> Outcome {
    let Ok(mut stream) = TcpStream::connect(authority).await else {
        return Outcome::Closed;
    };
    // The server may answer (and close) before reading all of it.
    let _ = stream.write_all(request).await;
    if cut_short {
        let _ = stream.shutdown().await;
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    let mut deadline = Instant::now() + ANSWER_WAIT;
    let mut closed_write = cut_short;
    loop {
        if let Some(status) = final_status(&response) {
            return Outcome::Status(status);
        }
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Outcome::Closed,
            Ok(Ok(n)) => response.extend_from_slice(&buf[..n]),
            Err(_) if !closed_write => {
                // Perhaps the server waits for a body it was promised.
                let _ = stream.shutdown().await;
                closed_write = true;
                deadline = Instant::now() + AFTER_CLOSE_WAIT;
            }
            Err(_) => return Outcome::Held,
        }
    }
}

/// Request `index` of a run, made from the seed and the index alone.
fn fuzzer_for(seed: u64, index: usize) -> Fuzzer {
    Fuzzer::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<Outcome, usize>,
    /// Requests answered with a 5xx other than 503, or held, as text.
    failures: Vec<String>,
    held: Vec<String>,
}

fn shown(request: &[u8]) -> String {
    let shown = &request[..request.len().min(3000)];
    format!(
        "{} ({} bytes)",
        String::from_utf8_lossy(shown).escape_debug(),
        request.len()
    )
}

async fn worker(site: &Site<'_>, seed: u64, requests: usize, next: &AtomicUsize) -> Tally {
    let mut tally = Tally::default();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= requests {
            return tally;
        }
        let mut fuzzer = fuzzer_for(seed, index);
        let (bytes, cut_short) = request(&mut fuzzer, site).await;
        let outcome = send(&site.authority, &bytes, cut_short).await;
        match outcome {
            Outcome::Status(status) if status >= 500 && status != 503 => tally.failures.push(
                format!("request {index} answered {status}: {}", shown(&bytes)),
            ),
            Outcome::Held => tally
                .held
                .push(format!("request {index}: {}", shown(&bytes))),
            _ => {}
        }
        *tally.outcomes.entry(outcome).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fuzz_every_route() {
    let seed = seed_from_env("HTTP_FUZZ_SEED");
    let requests = count_from_env("HTTP_FUZZ_REQUESTS", DEFAULT_REQUESTS);
    println!("HTTP_FUZZ_SEED={seed}");
    on_each_backend(async |app: &App, backend| {
        let site = Site::prepare(app).await;
        let next = AtomicUsize::new(0);
        let started = Instant::now();
        let w = || worker(&site, seed, requests, &next);
        let tallies = tokio::join!(w(), w(), w(), w(), w(), w());
        let mut total = Tally::default();
        for tally in [
            tallies.0, tallies.1, tallies.2, tallies.3, tallies.4, tallies.5,
        ] {
            for (outcome, count) in tally.outcomes {
                *total.outcomes.entry(outcome).or_default() += count;
            }
            total.failures.extend(tally.failures);
            total.held.extend(tally.held);
        }
        let counts: Vec<String> = total
            .outcomes
            .iter()
            .map(|(outcome, count)| match outcome {
                Outcome::Status(status) => format!("{status}: {count}"),
                other => format!("{other:?}: {count}"),
            })
            .collect();
        println!(
            "{backend}: {requests} requests in {:.1} s ({WORKERS} at once): {}",
            started.elapsed().as_secs_f64(),
            counts.join(", ")
        );
        for held in &total.held {
            println!("{backend}: held: {held}");
        }
        for failure in &total.failures {
            eprintln!("{backend}: {failure}");
        }
        assert!(
            total.failures.is_empty(),
            "{backend}: {} answers of 5xx other than 503 (HTTP_FUZZ_SEED={seed})",
            total.failures.len()
        );
        assert!(!app.server.is_finished(), "{backend}: the server stopped");
        app.browser()
            .get("/users/login/")
            .await
            .assert_page(200, &format!("{backend}: the login page after fuzzing"));
    })
    .await;
}

/// Found by this fuzzer: a `sessionid` cookie with `%00` (a NUL once
/// decoded) was looked up in PostgreSQL, which refuses NUL in text: a 500.
#[tokio::test]
async fn a_session_cookie_with_nul_is_no_session() {
    on_each_backend(async |app: &App, backend| {
        let browser = app.browser();
        let request = browser
            .client
            .get(browser.url("/users/login/"))
            .header("cookie", "sessionid=abcdefgh%00ijklmnop");
        let response = browser.send(request).await;
        response.assert_page(200, &format!("{backend}: a session key with NUL"));
    })
    .await;
}
