//! Fuzz targets for every parser a request's bytes reach before a handler:
//! session data, `signing.loads`, CSRF tokens and the Origin/Referer
//! checks, stored password hashes, the Host header, the Cookie header and
//! form bodies. Each input is random bytes or a mutation of a valid input
//! made with the project's own code (a real signed session, a masked
//! token, a hash of each hasher, a whole multipart body), re-signed where
//! a signature guards the layer under it, so that cases reach deep into
//! each parser. No input may panic, and none may take long.
//!
//! `FUZZ_CASES` sets the inputs per target (default 20,000; the recorded
//! runs use 1,000,000), `FUZZ_SEED` replays a run (each target prints its
//! seed). See each target's line with `-- --nocapture`.

mod common;

use std::fmt::Debug;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use rand::Rng;
use serde_json::{json, Map, Value};

use common::fuzz::{count_from_env, seed_from_env, Fuzzer, EDGE_NUMBERS};
use common::SECRET_KEY;
use unchained::config::UploadLimits;
use unchained::django::csrf::{self, OriginChecker};
use unchained::django::hashers::{self, HasherParams, Hashers};
use unchained::django::signing::{self, Signer};
use unchained::django::{host, python_json, sessions, zlib};
use unchained::web::error::AppError;
use unchained::web::form_data::FormData;

/// The form body parser as the CSRF middleware calls it. The body arrives
/// in pieces of 1 to 17 bytes (so boundaries fall across pieces); files go
/// to memory when the body's length is even, else to temporary files (a
/// Content-Length past FILE_UPLOAD_MAX_MEMORY_SIZE does that, or none).
async fn parse_form(content_type: Option<&[u8]>, body: &[u8]) -> Result<FormData, AppError> {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if body.len() % 2 == 0 {
        headers.insert(header::CONTENT_LENGTH, body.len().into());
    }
    let piece = 1 + body.len() % 17;
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(piece)
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(pieces));
    FormData::read(&headers, body, &UploadLimits::default()).await
}

const DEFAULT_CASES: usize = 20_000;
/// One input taking longer than this is a finding (a hang in the making).
const SLOW_INPUT: Duration = Duration::from_secs(2);
/// A key of `SECRET_KEY_FALLBACKS`: values it signed must still load.
const FALLBACK_KEY: &str = "an-old-secret-key-still-accepted-for-a-while-0123456789";

/// Generates and checks `FUZZ_CASES` inputs. A panic is reported with the
/// input that caused it; the slowest input must stay under [`SLOW_INPUT`].
fn run_target<I: Debug>(
    name: &str,
    mut generate: impl FnMut(&mut Fuzzer) -> I,
    mut check: impl FnMut(&I),
) {
    let cases = count_from_env("FUZZ_CASES", DEFAULT_CASES);
    let seed = seed_from_env("FUZZ_SEED");
    println!("{name}: FUZZ_SEED={seed}");
    let mut fuzzer = Fuzzer::new(seed);
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, String::new());
    for case in 0..cases {
        let input = generate(&mut fuzzer);
        let began = Instant::now();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            eprintln!("{name}: input {case} of FUZZ_SEED={seed} panicked: {input:?}");
            resume_unwind(panic);
        }
        let took = began.elapsed();
        if took > slowest.0 {
            slowest = (took, format!("{input:?}"));
        }
    }
    println!(
        "{name}: {cases} inputs, no panic, {:.1} s (slowest input {:.1} ms)",
        started.elapsed().as_secs_f64(),
        slowest.0.as_secs_f64() * 1000.0
    );
    assert!(
        slowest.0 < SLOW_INPUT,
        "{name}: one input took {:?}: {}",
        slowest.0,
        slowest.1
    );
}

// ---------------------------------------------------------------------------
// Signed values and sessions

const JSON_TOKENS: &[&str] = &[
    "{", "}", "[", "]", ",", ":", "\"", "\\u", "\\ud800", "\\udc00", "\\", "null", "true", "1e999",
    "-", "0.", "1E+2",
];
const SIGNED_TOKENS: &[&str] = &[":", ".", "-", "_", "=", "/", "+", "==", "0", "z", "Z"];

/// Any JSON value Django could have signed: nested, with edge numbers and
/// text of every kind.
fn json_value(f: &mut Fuzzer, depth: u32) -> Value {
    match f.below(if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(f.chance(0.5)),
        2 => json!(f.rng().gen::<i64>()),
        3 => f
            .pick(&[
                json!(0),
                json!(-1),
                json!(i64::MIN),
                json!(i64::MAX),
                json!(u64::MAX),
            ])
            .clone(),
        4 => {
            let edge = [
                0.0,
                -0.0,
                0.1,
                1e16,
                1.5e-7,
                f64::MAX,
                f64::MIN_POSITIVE,
                5e-324,
            ];
            let x = if f.chance(0.5) {
                *f.pick(&edge)
            } else {
                f.rng().gen::<f64>() * 10f64.powi(f.rng().gen_range(-300..300))
            };
            json!(x)
        }
        5 => Value::String(f.text(40)),
        6 => Value::Array((0..f.below(4)).map(|_| json_value(f, depth - 1)).collect()),
        _ => Value::Object(
            (0..f.below(4))
                .map(|_| (f.text(10), json_value(f, depth - 1)))
                .collect(),
        ),
    }
}

/// What a logged-in session holds, plus random keys; now and then a long
/// repetitive value, so the payload is compressed.
fn session_map(f: &mut Fuzzer) -> Map<String, Value> {
    let mut map = Map::new();
    if f.chance(0.7) {
        map.insert(
            sessions::SESSION_KEY.into(),
            json!(f.rng().gen::<u32>().to_string()),
        );
        map.insert(
            sessions::BACKEND_SESSION_KEY.into(),
            json!(sessions::MODEL_BACKEND),
        );
        map.insert(
            sessions::HASH_SESSION_KEY.into(),
            json!(sessions::session_auth_hash(&f.text(20), SECRET_KEY)),
        );
    }
    for _ in 0..f.below(3) {
        let value = json_value(f, 2);
        map.insert(f.text(12), value);
    }
    if f.chance(0.3) {
        map.insert("notes".into(), json!("повтор ".repeat(1 + f.below(100))));
    }
    map
}

/// A payload as `sign_object` writes it for these JSON bytes, each layer
/// (the JSON text, the zlib stream, the base64 text) possibly mutated.
fn mutated_payload(f: &mut Fuzzer, json_text: &[u8]) -> String {
    let json_bytes = if f.chance(0.4) {
        f.mutate(json_text, JSON_TOKENS)
    } else {
        json_text.to_vec()
    };
    let compressed = f.chance(0.5);
    let mut data = if compressed {
        zlib::compress(&json_bytes)
    } else {
        json_bytes
    };
    if compressed && f.chance(0.3) {
        data = f.mutate(&data, &[]);
    }
    let mut text = format!(
        "{}{}",
        if compressed { "." } else { "" },
        signing::b64_encode(&data)
    );
    if f.chance(0.2) {
        text = f.mutate_text(&text, SIGNED_TOKENS);
    }
    text
}

/// A base62 timestamp: now, an edge value, or a mutated one.
fn timestamp_text(f: &mut Fuzzer, now: i64) -> String {
    match f.below(4) {
        0 => signing::b62_encode(*f.pick(&[0, -1, i64::MIN, i64::MAX, now + 86_400 * 365])),
        1 => f.mutate_text(&signing::b62_encode(now), SIGNED_TOKENS),
        _ => signing::b62_encode(now),
    }
}

/// `payload:timestamp` signed with a real key, so the signature check
/// passes and the fuzzed layers under it are parsed.
fn sign_parts(key: &str, salt: &str, payload: &str, timestamp: &str) -> String {
    Signer::new(key, Some(salt)).sign(&format!("{payload}:{timestamp}"))
}

#[derive(Debug)]
struct SessionInput {
    session_data: String,
    /// What decoding must give (for a valid, unmutated value).
    expected: Option<Map<String, Value>>,
}

#[test]
fn session_decode() {
    let now = signing::now_seconds() as i64;
    run_target(
        "session decode",
        |f| {
            let map = session_map(f);
            let key = if f.chance(0.2) {
                FALLBACK_KEY
            } else {
                SECRET_KEY
            };
            let valid = sessions::encode_at(&map, key, now);
            let (session_data, expected) = match f.below(6) {
                0 => (String::from_utf8_lossy(&f.bytes(300)).into_owned(), None),
                1 => (f.mutate_text(&valid, SIGNED_TOKENS), None),
                2 => (valid, Some(map)),
                _ => {
                    let json_text = python_json::dumps(&Value::Object(map));
                    let payload = mutated_payload(f, json_text.as_bytes());
                    let timestamp = timestamp_text(f, now);
                    let signed = sign_parts(key, sessions::SESSION_SALT, &payload, &timestamp);
                    (signed, None)
                }
            };
            SessionInput {
                session_data,
                expected,
            }
        },
        |input| {
            let decoded = sessions::decode(&input.session_data, SECRET_KEY, &[FALLBACK_KEY]);
            if let Some(expected) = &input.expected {
                assert_eq!(
                    decoded.as_ref(),
                    Some(expected),
                    "a valid session must decode"
                );
            }
        },
    );
}

#[derive(Debug)]
struct SignedInput {
    signed: String,
    salt: String,
    /// A separator for a plain `Signer` over the same text.
    sep: String,
    max_age: Option<f64>,
    now: f64,
    expected: Option<Value>,
}

#[test]
fn signing_loads() {
    let now = signing::now_seconds() as i64;
    run_target(
        "signing.loads",
        |f| {
            let value = json_value(f, 3);
            let salt = if f.chance(0.5) {
                signing::DEFAULT_DUMPS_SALT.to_string()
            } else {
                f.text(20)
            };
            let key = if f.chance(0.2) {
                FALLBACK_KEY
            } else {
                SECRET_KEY
            };
            let valid = signing::dumps_at(&value, key, &salt, f.chance(0.5), now);
            let (signed, expected) = match f.below(6) {
                0 => (String::from_utf8_lossy(&f.bytes(300)).into_owned(), None),
                1 => (f.mutate_text(&valid, SIGNED_TOKENS), None),
                2 => (valid, Some(value)),
                _ => {
                    let payload = mutated_payload(f, python_json::dumps(&value).as_bytes());
                    let timestamp = timestamp_text(f, now);
                    (sign_parts(key, &salt, &payload, &timestamp), None)
                }
            };
            let max_age = match f.below(6) {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(*f.pick(&[0.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e300])),
                _ => Some(f.rng().gen_range(0.0..1e7)),
            };
            let mut now = now as f64 + f.rng().gen_range(0.0..10.0);
            if f.chance(0.1) {
                now = *f.pick(&[f64::NAN, 0.0, -1e300, 1e300, f64::INFINITY]);
            }
            let (max_age, expected) = match expected {
                // A valid value loads when no age limit applies.
                Some(value) => (None, Some(value)),
                None => (max_age, None),
            };
            let sep = match f.below(3) {
                0 => ":".to_string(),
                1 => f.text(3),
                _ => f.pick(&["/", "~", ":", ".", "\n", "$", "::"]).to_string(),
            };
            SignedInput {
                signed,
                salt,
                sep,
                max_age,
                now,
                expected,
            }
        },
        |input| {
            let loaded = signing::loads_at(
                &input.signed,
                SECRET_KEY,
                &[FALLBACK_KEY],
                &input.salt,
                input.max_age,
                input.now,
            );
            if let Some(expected) = &input.expected {
                assert_eq!(loaded.as_ref(), Ok(expected), "a valid value must load");
            }
            if let Ok(signer) = Signer::new(SECRET_KEY, Some(&input.salt)).with_sep(&input.sep) {
                let _ = signer.unsign_object(&input.signed);
            }
            if let Some(timestamp) = input.signed.rsplit(':').nth(1) {
                let _ = signing::b62_decode(timestamp);
            }
            let _ = signing::b64_decode(&input.signed);
        },
    );
}

#[derive(Debug)]
struct JsonInput {
    data: Vec<u8>,
    expected: Option<Value>,
}

/// The JSON codec of signed values on its own: Python's writer read back
/// by the Latin-1 reader, and mutated text.
#[test]
fn python_json_round_trip() {
    run_target(
        "python json",
        |f| {
            let value = json_value(f, 4);
            let text = python_json::dumps(&value);
            if f.chance(0.5) {
                JsonInput {
                    data: text.into_bytes(),
                    expected: Some(value),
                }
            } else {
                JsonInput {
                    data: f.mutate(text.as_bytes(), JSON_TOKENS),
                    expected: None,
                }
            }
        },
        |input| {
            let loaded = python_json::loads_latin1(&input.data);
            if let Some(expected) = &input.expected {
                assert_eq!(loaded.ok().as_ref(), Some(expected));
            }
        },
    );
}

// ---------------------------------------------------------------------------
// CSRF

#[derive(Debug)]
struct CsrfInput {
    cookie: Option<String>,
    post: Option<String>,
    header: Option<String>,
    /// The cookie's secret and a token of it, both unmutated: must pass.
    expect_pass: bool,
}

/// A token as a client might send it: masked from this secret, the bare
/// secret, mutated, random, empty or absent.
fn request_token(f: &mut Fuzzer, secret: &str) -> (Option<String>, bool) {
    match f.below(7) {
        0 => (None, false),
        1 => (Some(String::new()), false),
        2 => (Some(secret.to_string()), true),
        3 => (
            Some(f.mutate_text(&csrf::mask_cipher_secret(secret), &[])),
            false,
        ),
        4 => (Some(f.text(70)), false),
        _ => (Some(csrf::mask_cipher_secret(secret)), true),
    }
}

#[test]
fn csrf_tokens() {
    run_target(
        "csrf tokens",
        |f| {
            let secret = csrf::new_secret();
            let (cookie, cookie_valid) = match f.below(6) {
                0 => (None, false),
                1 => (Some(f.mutate_text(&secret, &[])), false),
                2 => (Some(f.text(70)), false),
                // Django < 4.0 kept a masked token in the cookie.
                3 => (Some(csrf::mask_cipher_secret(&secret)), true),
                _ => (Some(secret.clone()), true),
            };
            let (post, post_valid) = request_token(f, &secret);
            let (header, header_valid) = request_token(f, &secret);
            // The POST field wins when it is not empty.
            let token_valid = match post.as_deref() {
                Some(p) if !p.is_empty() => post_valid,
                _ => header.is_some() && header_valid,
            };
            CsrfInput {
                cookie,
                post,
                header,
                expect_pass: cookie_valid && token_valid,
            }
        },
        |input| {
            let outcome = csrf::check_token(
                input.cookie.as_deref(),
                input.post.as_deref(),
                input.header.as_deref(),
            );
            if input.expect_pass {
                assert_eq!(outcome, Ok(()));
            }
            if let Some(cookie) = &input.cookie {
                if let Ok(found) = csrf::secret_from_cookie(cookie) {
                    let _ = csrf::check_request_token(
                        &found.secret,
                        input.post.as_deref(),
                        input.header.as_deref(),
                        "X-Csrftoken",
                    );
                }
            }
            for token in [&input.post, &input.header, &input.cookie]
                .into_iter()
                .flatten()
            {
                // Unmasking is defined for well-formed 64-character tokens;
                // masking the secret again with the same mask gives the token.
                if csrf::check_token_format(token).is_ok() && token.len() == csrf::CSRF_TOKEN_LENGTH
                {
                    let secret = csrf::unmask_cipher_token(token);
                    let mask = &token[..csrf::CSRF_SECRET_LENGTH];
                    assert_eq!(&csrf::mask_cipher_secret_with(&secret, mask), token);
                    assert!(csrf::does_token_match(token, &secret));
                }
            }
        },
    );
}

const URLS: &[&str] = &[
    "https://shop.example",
    "http://127.0.0.1:8000",
    "https://*.example.com",
    "https://a.example.com/path?q=1#f",
    "http://[::1]:8000/",
    "http://[v1.fe]/",
    "https://user:pass@host:443/",
    "//no-scheme.example/",
    "https:",
    "null",
    "",
];
const URL_TOKENS: &[&str] = &[
    "://", "//", "[", "]", ":", "@", "%", "*", ".", "?", "#", "\t", "\n", "[::1]", "[v.]", "http",
    "https",
];

#[derive(Debug)]
struct OriginInput {
    trusted_origins: Vec<String>,
    cookie_domain: Option<String>,
    origin: Option<String>,
    referer: Option<String>,
    is_secure: bool,
    good_host: Option<String>,
    server_port: String,
}

fn url(f: &mut Fuzzer) -> String {
    let base = f.pick(URLS).to_string();
    if f.chance(0.6) {
        f.mutate_text(&base, URL_TOKENS)
    } else {
        base
    }
}

#[test]
fn csrf_origin_and_referer() {
    run_target(
        "csrf origin/referer",
        |f| OriginInput {
            trusted_origins: (0..f.below(4)).map(|_| url(f)).collect(),
            cookie_domain: f.chance(0.2).then(|| url(f)),
            origin: f.chance(0.6).then(|| url(f)),
            referer: f.chance(0.6).then(|| url(f)),
            is_secure: f.chance(0.5),
            good_host: f.chance(0.8).then(|| {
                f.pick(&["127.0.0.1:8000", "shop.example", "[::1]"])
                    .to_string()
            }),
            server_port: f.pick(&["80", "443", "8000", ""]).to_string(),
        },
        |input| {
            let checker =
                OriginChecker::new(&input.trusted_origins, input.cookie_domain.as_deref());
            let _ = checker.check_request_source(
                input.origin.as_deref(),
                input.referer.as_deref(),
                input.is_secure,
                input.good_host.as_deref(),
                &input.server_port,
            );
            if let Some(host) = &input.good_host {
                // The site's own origin is always accepted.
                let scheme = if input.is_secure { "https" } else { "http" };
                assert!(checker.origin_verified(
                    &format!("{scheme}://{host}"),
                    input.is_secure,
                    Some(host)
                ));
            }
        },
    );
}

// ---------------------------------------------------------------------------
// Password hashes

/// Every hasher Django 5.2 has, by dotted name.
const HASHER_NAMES: &[&str] = &[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
];

/// Low work factors, as Django's own tests use, so that hashing is cheap.
fn cheap_params() -> HasherParams {
    HasherParams {
        pbkdf2_iterations: 100,
        argon2_time_cost: 1,
        argon2_memory_cost: 8,
        argon2_parallelism: 1,
        bcrypt_rounds: 4,
        scrypt_work_factor: 16,
        scrypt_block_size: 1,
        scrypt_parallelism: 1,
    }
}

/// One configuration per hasher, that hasher first (preferred), all of
/// them known.
fn hasher_configurations() -> Vec<Hashers> {
    (0..HASHER_NAMES.len())
        .map(|first| {
            let mut names = HASHER_NAMES.to_vec();
            names.swap(0, first);
            Hashers::from_names(&names)
                .unwrap()
                .with_params(cheap_params())
        })
        .collect()
}

/// The digits of a field as one number (saturating): never less than
/// what any of the parsers reads from it.
fn digits_value(field: &str) -> u128 {
    field
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u128, |n, d| {
            n.saturating_mul(10).saturating_add(u128::from(d - b'0'))
        })
}

/// Whether checking this stored hash is cheap enough to fuzz. The work
/// factors of a stored hash are its own, and the code (like Django)
/// honours them whatever they are: a hash with 10^9 PBKDF2 iterations
/// takes minutes (see the report of this fuzzing work), so the fuzzer
/// verifies only hashes whose factors are small, and only parses the rest.
fn work_is_small(encoded: &str) -> bool {
    let fields: Vec<&str> = encoded.split('$').collect();
    let field = |i: usize| fields.get(i).map_or(0, |f| digits_value(f));
    match fields[0] {
        "pbkdf2_sha256" | "pbkdf2_sha1" => field(1) <= 1000,
        // `bcrypt$$2b$NN$…`: the cost is the fourth field.
        "bcrypt" | "bcrypt_sha256" => field(3) <= 5,
        "scrypt" => field(1).saturating_mul(field(3)).saturating_mul(field(4)) <= 4096,
        "argon2" => {
            let costs = encoded
                .split(['$', ','])
                .filter(|piece| ["m=", "t=", "p="].iter().any(|k| piece.starts_with(k)));
            costs.fold(1u128, |product, piece| {
                product.saturating_mul(digits_value(piece).max(1))
            }) <= 1024
        }
        _ => true,
    }
}

/// A bcrypt setting (`$2b$NN$` and a salt) whose cost is cheap.
fn bcrypt_setting_is_cheap(setting: &str) -> bool {
    setting
        .split('$')
        .nth(2)
        .is_none_or(|cost| digits_value(cost) <= 5)
}

const HASH_TOKENS: &[&str] = &[
    "$",
    "!",
    "=",
    ",",
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "argon2",
    "$argon2id",
    "$argon2i",
    "v=19",
    "m=",
    "t=",
    "p=",
    "bcrypt",
    "bcrypt_sha256",
    "$2b$",
    "$2a$",
    "$2y$",
    "scrypt",
    "md5",
    "md5$$",
    "sha1$$",
];
const ALGORITHMS: &[&str] = &[
    "pbkdf2_sha256",
    "pbkdf2_sha1",
    "argon2",
    "bcrypt",
    "bcrypt_sha256",
    "scrypt",
    "md5",
    "unsalted_md5",
    "sha1",
    "crypt",
    "",
];

/// A hash with one of its `$` fields (or one cost of an argon2 hash)
/// replaced, dropped, repeated or mutated.
fn mutate_hash_field(f: &mut Fuzzer, encoded: &str) -> String {
    let mut fields: Vec<String> = encoded.split('$').map(str::to_string).collect();
    let i = f.below(fields.len());
    match f.below(6) {
        0 => fields[i] = f.pick(EDGE_NUMBERS).to_string(),
        1 => fields[i] = f.pick(ALGORITHMS).to_string(),
        2 => {
            fields.remove(i);
        }
        3 => {
            let copy = fields[i].clone();
            fields.insert(i, copy);
        }
        4 if fields[i].contains(',') => {
            let mut costs: Vec<String> = fields[i].split(',').map(str::to_string).collect();
            let j = f.below(costs.len());
            let name = costs[j].split('=').next().unwrap_or("").to_string();
            costs[j] = format!("{name}={}", f.pick(EDGE_NUMBERS));
            fields[i] = costs.join(",");
        }
        _ => fields[i] = f.mutate_text(&fields[i], HASH_TOKENS),
    }
    fields.join("$")
}

#[derive(Debug)]
struct HashInput {
    /// Which configuration checks it (its preferred hasher).
    configuration: usize,
    password: String,
    encoded: String,
    /// A salt (for bcrypt a setting string) for `make_password`.
    salt: String,
    /// Made by that configuration from that password, unmutated.
    expect_valid: bool,
}

#[test]
fn password_hashes() {
    let configurations = hasher_configurations();
    let mut pool_fuzzer = Fuzzer::new(0);
    // Valid hashes of every hasher, made by the project's own code.
    let pool: Vec<(usize, String, String)> = (0..configurations.len())
        .flat_map(|c| std::iter::repeat_n(c, 6))
        .map(|c| {
            let password = pool_fuzzer.text(30);
            let encoded = configurations[c].make_password(&password);
            (c, password, encoded)
        })
        .collect();
    run_target(
        "password hashes",
        |f| {
            let (configuration, password, valid) = f.pick(&pool).clone();
            let (encoded, expect_valid) = match f.below(8) {
                0 => (f.text(80), false),
                1 | 2 => (f.mutate_text(&valid, HASH_TOKENS), false),
                3 => (valid, true),
                _ => {
                    let mut encoded = mutate_hash_field(f, &valid);
                    if f.chance(0.3) {
                        encoded = mutate_hash_field(f, &encoded);
                    }
                    (encoded, false)
                }
            };
            let salt = match f.below(3) {
                0 => f.text(30),
                1 => f.mutate_text("$2b$04$abcdefghijklmnopqrstuv", HASH_TOKENS),
                _ => "ab".repeat(1 + f.below(12)),
            };
            HashInput {
                configuration,
                password: if expect_valid || f.chance(0.5) {
                    password
                } else {
                    f.text(30)
                },
                encoded,
                salt,
                expect_valid,
            }
        },
        |input| {
            let _ = hashers::algorithm_of(&input.encoded);
            let _ = hashers::is_password_usable(&input.encoded);
            // Each configuration parses the hashes of its preferred hasher
            // in `must_update`, without hashing.
            for hashers in &configurations {
                let _ = hashers.identify(&input.encoded);
                let _ = hashers.must_update(&input.encoded);
            }
            let hashers = &configurations[input.configuration];
            if work_is_small(&input.encoded) {
                let outcome = hashers.check_password(&input.password, &input.encoded);
                if input.expect_valid {
                    assert!(outcome.valid && !outcome.must_update, "{outcome:?}");
                }
            }
            if bcrypt_setting_is_cheap(&input.salt) {
                if let Some(made) = hashers.make_password_with_salt(&input.password, &input.salt) {
                    assert!(hashers.check_password(&input.password, &made).valid);
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------
// Host, cookies, forms

const HOSTS: &[&str] = &[
    "127.0.0.1:8000",
    "localhost",
    "[::1]:8000",
    "shop.example.",
    "a.b.example.com:443",
    "[v1.x]",
    "[::ffff:1.2.3.4]",
    "EXAMPLE.COM",
];
const HOST_PATTERNS: &[&str] = &[
    "*",
    ".example.com",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "shop.example",
    "",
    ".",
];

#[derive(Debug)]
struct HostInput {
    host: String,
    allowed_hosts: Vec<String>,
    debug: bool,
}

#[test]
fn host_validation() {
    run_target(
        "host validation",
        |f| {
            let host = match f.below(3) {
                0 => f.text(40),
                _ => {
                    let valid = *f.pick(HOSTS);
                    f.mutate_text(valid, &["[", "]", ":", ".", "-"])
                }
            };
            let allowed_hosts = (0..f.below(4))
                .map(|_| {
                    let pattern = f.pick(HOST_PATTERNS).to_string();
                    if f.chance(0.3) {
                        f.mutate_text(&pattern, &[".", "*"])
                    } else {
                        pattern
                    }
                })
                .collect();
            HostInput {
                host,
                allowed_hosts,
                debug: f.chance(0.3),
            }
        },
        |input| {
            let (domain, _port) = host::split_domain_port(&input.host);
            let allowed = host::allowed_host(&input.host, &input.allowed_hosts, input.debug);
            if let Some(host) = allowed {
                assert_eq!(host, input.host);
                assert!(!domain.is_empty());
            }
            if input.allowed_hosts.iter().any(|p| p == "*") {
                assert_eq!(allowed.is_some(), !domain.is_empty());
            }
        },
    );
}

/// The cookies of a `Cookie` header as tower-cookies 0.11 reads them (its
/// jar is built privately from the request): a header that is not UTF-8
/// holds none, and each `;`-separated piece is one percent-decoded cookie.
fn request_cookies(header: &HeaderValue) -> tower_cookies::cookie::CookieJar {
    let mut jar = tower_cookies::cookie::CookieJar::new();
    if let Ok(text) = std::str::from_utf8(header.as_bytes()) {
        for piece in text.split(';') {
            if let Ok(cookie) = tower_cookies::Cookie::parse_encoded(piece.to_owned()) {
                jar.add_original(cookie);
            }
        }
    }
    jar
}

#[derive(Debug)]
struct CookieInput {
    header: Vec<u8>,
    /// The session key and CSRF secret an unmutated header carries.
    expected: Option<(String, String)>,
}

#[test]
fn cookie_header() {
    run_target(
        "cookie header",
        |f| {
            let session_key = sessions::new_session_key();
            let secret = csrf::new_secret();
            let mut pieces = vec![
                format!("sessionid={session_key}"),
                format!("csrftoken={secret}"),
                "messages=\"W1siX19qc29uX21lc3NhZ2UiXV0:1t\"".to_string(),
                format!(
                    "theme={}",
                    percent_encoding::utf8_percent_encode(
                        &f.text(10),
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ),
            ];
            pieces.swap(f.below(4), f.below(4));
            let separator = if f.chance(0.5) { "; " } else { ";" };
            let valid = pieces.join(separator);
            match f.below(4) {
                0 => CookieInput {
                    header: f.bytes(200),
                    expected: None,
                },
                1 => CookieInput {
                    header: valid.into_bytes(),
                    expected: Some((session_key, secret)),
                },
                _ => CookieInput {
                    header: f.mutate(valid.as_bytes(), &[";", "=", "\"", "%", "%2", "%FF", " "]),
                    expected: None,
                },
            }
        },
        |input| {
            // Only what hyper would hand over as a header value arrives.
            let Ok(header) = HeaderValue::from_bytes(&input.header) else {
                return;
            };
            let jar = request_cookies(&header);
            let session_key = jar.get("sessionid").map(|c| c.value().to_string());
            let csrf_cookie = jar.get("csrftoken").map(|c| c.value().to_string());
            if let Some(key) = &session_key {
                let _ = sessions::is_valid_session_key(key);
            }
            if let Some(value) = &csrf_cookie {
                let _ = csrf::secret_from_cookie(value);
            }
            if let Some((key, secret)) = &input.expected {
                assert_eq!(session_key.as_ref(), Some(key));
                assert_eq!(csrf_cookie.as_ref(), Some(secret));
                assert!(csrf::secret_from_cookie(secret).is_ok());
            }
        },
    );
}

const FORM_TOKENS: &[&str] = &[
    "\r\n",
    "--",
    "\r\n\r\n",
    "Content-Disposition: form-data; name=\"",
    "\"; filename=\"",
    "Content-Type: ",
    "&",
    "=",
    "%",
    "%0",
    "%FF",
    "+",
    "\"",
];
const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=\"unterminated",
    "multipart/form-data; boundary=a b",
    "multipart/form-data; boundary=Я",
    "multipart/mixed; boundary=XX",
    "text/plain",
    "",
];

/// A multipart body as a browser writes it.
fn multipart_body(
    boundary: &str,
    fields: &[(String, String)],
    files: &[(String, String, Vec<u8>)],
) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, filename, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// A field name a browser sends unescaped in a multipart header.
fn field_name(f: &mut Fuzzer) -> String {
    let len = 1 + f.below(12);
    (0..len)
        .map(|_| *f.pick(b"abcdefghijklmnopqrstuvwxyz0123456789_-") as char)
        .collect()
}

#[derive(Debug)]
struct FormInput {
    content_type: Option<Vec<u8>>,
    body: Vec<u8>,
    /// An unmutated body: what each field and file must read back as.
    expected: Option<(Vec<(String, String)>, Vec<(String, String, Vec<u8>)>)>,
}

#[test]
fn form_bodies() {
    // Timers: a body read waits at most its stall limit; files: spooling.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    run_target(
        "form bodies",
        |f| {
            let mut fields: Vec<(String, String)> = (0..f.below(6))
                .map(|_| (field_name(f), f.text(40)))
                .collect();
            fields.push((
                csrf::CSRF_FORM_FIELD.into(),
                csrf::mask_cipher_secret(&csrf::new_secret()),
            ));
            let multipart = f.chance(0.5);
            let (content_type, body, files) = if multipart {
                let boundary = format!("----fuzzboundary{:016x}", f.rng().gen::<u64>());
                let files: Vec<(String, String, Vec<u8>)> = (0..f.below(3))
                    .map(|_| {
                        let filename = f
                            .pick(&["a.png", "", "фото.jpg", "..\\..\\x.gif"])
                            .to_string();
                        (field_name(f), filename, f.bytes(200))
                    })
                    .filter(|(_, filename, bytes)| !(filename.is_empty() && bytes.is_empty()))
                    .collect();
                let content_type = format!("multipart/form-data; boundary={boundary}");
                (
                    content_type,
                    multipart_body(&boundary, &fields, &files),
                    files,
                )
            } else {
                let body = serde_urlencoded::to_string(&fields).unwrap().into_bytes();
                let content_type = "application/x-www-form-urlencoded".to_string();
                (content_type, body, Vec::new())
            };
            match f.below(6) {
                0 => FormInput {
                    content_type: Some(content_type.into_bytes()),
                    body,
                    expected: Some((fields, files)),
                },
                1 => FormInput {
                    content_type: Some(f.pick(CONTENT_TYPES).as_bytes().to_vec()),
                    body: f.bytes(2000),
                    expected: None,
                },
                2 => FormInput {
                    content_type: Some(f.mutate(content_type.as_bytes(), &[";", "=", "\"", ","])),
                    body,
                    expected: None,
                },
                _ => FormInput {
                    content_type: Some(content_type.into_bytes()),
                    body: f.mutate(&body, FORM_TOKENS),
                    expected: None,
                },
            }
        },
        |input| {
            let parsed = runtime.block_on(parse_form(input.content_type.as_deref(), &input.body));
            if let Some((fields, files)) = &input.expected {
                let form = parsed.expect("a valid body parses");
                for (name, _) in fields {
                    let last = fields
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.as_str());
                    assert_eq!(form.get(name), last, "field {name}");
                }
                for (name, filename, bytes) in files {
                    let last = files.iter().rev().find(|(n, _, _)| n == name);
                    if last.map(|(_, fname, b)| (fname, b)) == Some((filename, bytes)) {
                        let file = form.file(name).expect("a sent file is there");
                        let mut content = Vec::new();
                        std::io::Read::read_to_end(&mut file.open().unwrap(), &mut content)
                            .unwrap();
                        assert_eq!((&file.filename, &content[..]), (filename, &bytes[..]));
                    }
                }
            }
        },
    );
}
