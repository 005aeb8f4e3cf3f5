//! The session side of `django.contrib.sessions` (db backend) and
//! `django.contrib.auth`: how `session_data` is encoded in `django_session`,
//! how session keys look, which keys the auth framework keeps in a session,
//! and the session auth hash that logs a user out when the password changes.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::crypto::{
    constant_time_compare, get_random_string, salted_hmac_hex, Algorithm, LOWERCASE_AND_DIGITS,
};
use super::signing;

/// `SessionStore.key_salt` of `django.contrib.sessions.backends.db`.
pub const SESSION_SALT: &str = "django.contrib.sessions.SessionStore";

/// Keys the auth framework keeps in the session.
pub const SESSION_KEY: &str = "_auth_user_id";
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";
/// The only authentication backend of the original project.
pub const MODEL_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// The salt of the `signed_cookies` engine, whose cookie is the data.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// The session key that holds a custom expiry (`set_expiry`).
pub const SESSION_EXPIRY_KEY: &str = "_session_expiry";

/// Key salt of `AbstractBaseUser._get_session_auth_hash`.
pub const SESSION_AUTH_HASH_SALT: &str =
    "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash";

/// `SessionBase.encode(session_dict)`: `signing.dumps(..., salt=key_salt,
/// compress=True)` with the current time.
pub fn encode(session: &Map<String, Value>, secret_key: &str) -> String {
    encode_at(session, secret_key, signing::now_seconds() as i64)
}

/// [`encode`] at a given `int(time.time())`.
pub fn encode_at(session: &Map<String, Value>, secret_key: &str, timestamp: i64) -> String {
    let obj = Value::Object(session.clone());
    signing::dumps_at(&obj, secret_key, SESSION_SALT, true, timestamp)
}

/// `SessionBase.decode(session_data)` with the secret key and its fallbacks,
/// no maximum age (the row's `expire_date` decides that). Anything that does
/// not verify or parse is `None`; Django treats it as an empty session.
/// A payload that is valid JSON but not an object is `None` too (Django
/// would keep the value and fail later).
pub fn decode<S: AsRef<str>>(
    session_data: &str,
    secret_key: &str,
    fallback_keys: &[S],
) -> Option<Map<String, Value>> {
    match signing::loads(session_data, secret_key, fallback_keys, SESSION_SALT, None) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The `signed_cookies` engine's `_get_session_key()`: the data itself,
/// signed and compressed, is the cookie's value.
pub fn encode_signed_cookie(session: &Map<String, Value>, secret_key: &str) -> String {
    encode_signed_cookie_at(session, secret_key, signing::now_seconds() as i64)
}

/// [`encode_signed_cookie`] at a given `int(time.time())`.
pub fn encode_signed_cookie_at(
    session: &Map<String, Value>,
    secret_key: &str,
    timestamp: i64,
) -> String {
    let obj = Value::Object(session.clone());
    signing::dumps_at(&obj, secret_key, SIGNED_COOKIES_SALT, true, timestamp)
}

/// The `signed_cookies` engine's `load()`: the cookie verified with the key
/// and its fallbacks, no older than `SESSION_COOKIE_AGE` (the engine
/// ignores a session's own expiry here, as Django's does). Anything else
/// is `None`, an empty session.
pub fn decode_signed_cookie<S: AsRef<str>>(
    cookie: &str,
    secret_key: &str,
    fallback_keys: &[S],
    cookie_age: i64,
) -> Option<Map<String, Value>> {
    decode_signed_cookie_at(
        cookie,
        secret_key,
        fallback_keys,
        cookie_age,
        signing::now_seconds(),
    )
}

/// [`decode_signed_cookie`] at a given `time.time()`.
pub fn decode_signed_cookie_at<S: AsRef<str>>(
    cookie: &str,
    secret_key: &str,
    fallback_keys: &[S],
    cookie_age: i64,
    now: f64,
) -> Option<Map<String, Value>> {
    match signing::loads_at(
        cookie,
        secret_key,
        fallback_keys,
        SIGNED_COOKIES_SALT,
        Some(cookie_age as f64),
        now,
    ) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A session's own expiry, `_session_expiry`, as `set_expiry` stores it:
/// seconds of inactivity (0: at browser close) or an ISO 8601 moment.
enum CustomExpiry {
    Seconds(f64),
    At(DateTime<Utc>),
}

/// `_session_expiry` read as Django's `get_expiry_*` read it; `None` where
/// they fall back to `SESSION_COOKIE_AGE` (absent, `null`, zero, empty) and
/// for a value Django could not use either (a string that is no ISO
/// moment, a list).
fn custom_expiry(session: &Map<String, Value>) -> Option<CustomExpiry> {
    match session.get(SESSION_EXPIRY_KEY)? {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s != 0.0 && s.is_finite())
            .map(CustomExpiry::Seconds),
        Value::String(text) if !text.is_empty() => parse_isoformat(text).map(CustomExpiry::At),
        _ => None,
    }
}

/// `datetime.fromisoformat` for what `datetime.isoformat()` writes (an
/// offset, or none: taken as UTC, the time zone sessions are saved in).
fn parse_isoformat(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%:z") {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// `get_expiry_age()`: the cookie's `Max-Age`, in whole seconds.
pub fn expiry_age(session: &Map<String, Value>, now: DateTime<Utc>, cookie_age: i64) -> i64 {
    match custom_expiry(session) {
        None => cookie_age,
        // `set_cookie` takes `int(max_age)`.
        Some(CustomExpiry::Seconds(seconds)) => seconds.trunc() as i64,
        // `delta.days * 86400 + delta.seconds`: whole seconds, rounded down.
        Some(CustomExpiry::At(at)) => (at - now)
            .num_microseconds()
            .map_or_else(|| (at - now).num_seconds(), |us| us.div_euclid(1_000_000)),
    }
}

/// `get_expiry_date()`: the row's `expire_date`.
pub fn expiry_date(
    session: &Map<String, Value>,
    now: DateTime<Utc>,
    cookie_age: i64,
) -> DateTime<Utc> {
    match custom_expiry(session) {
        None => now + Duration::seconds(cookie_age),
        Some(CustomExpiry::Seconds(seconds)) => {
            now + Duration::microseconds((seconds * 1e6).round() as i64)
        }
        Some(CustomExpiry::At(at)) => at,
    }
}

/// `get_expire_at_browser_close()`: `SESSION_EXPIRE_AT_BROWSER_CLOSE`
/// unless the session has an expiry of its own, and then only for 0.
pub fn expires_at_browser_close(session: &Map<String, Value>, setting: bool) -> bool {
    match session.get(SESSION_EXPIRY_KEY) {
        None | Some(Value::Null) => setting,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(_) => false,
    }
}

/// `_get_new_session_key()` without the existence check (the caller retries
/// on a collision): 32 characters from lowercase letters and digits.
pub fn new_session_key() -> String {
    get_random_string(32, LOWERCASE_AND_DIGITS)
}

/// `_validate_session_key`: keys shorter than 8 characters are ignored, as
/// if no cookie had been sent.
pub fn is_valid_session_key(key: &str) -> bool {
    key.chars().count() >= 8
}

/// `_get_user_session_key`: the logged-in user's primary key, which Django
/// stores as a string (`_auth_user_id`) and also accepts as a number.
pub fn user_id(session: &Map<String, Value>) -> Option<i64> {
    match session.get(SESSION_KEY)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// `user.get_session_auth_hash()` (or with a fallback key): the HMAC-SHA256
/// hex digest of the `password` column.
pub fn session_auth_hash(password_column: &str, secret: &str) -> String {
    salted_hmac_hex(
        SESSION_AUTH_HASH_SALT,
        password_column,
        secret,
        Algorithm::Sha256,
    )
}

/// How the hash stored in a session compares with the user's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionHashCheck {
    /// Made with the current `SECRET_KEY`: the session is good.
    Current,
    /// Made with one of `SECRET_KEY_FALLBACKS`: the session is good, but the
    /// caller must cycle the session key and store the current hash, as
    /// `django.contrib.auth.get_user` does.
    Fallback,
    /// Missing, empty or stale: the caller flushes the session and the
    /// request is anonymous.
    Invalid,
}

/// The session verification of `django.contrib.auth.get_user`.
pub fn verify_session_auth_hash<S: AsRef<str>>(
    stored_hash: Option<&str>,
    password_column: &str,
    secret_key: &str,
    fallback_keys: &[S],
) -> SessionHashCheck {
    let Some(stored) = stored_hash.filter(|h| !h.is_empty()) else {
        return SessionHashCheck::Invalid;
    };
    if constant_time_compare(stored, session_auth_hash(password_column, secret_key)) {
        return SessionHashCheck::Current;
    }
    let by_fallback = fallback_keys
        .iter()
        .any(|key| constant_time_compare(stored, session_auth_hash(password_column, key.as_ref())));
    if by_fallback {
        SessionHashCheck::Fallback
    } else {
        SessionHashCheck::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn encode_matches_django() {
        let cases = vectors::list("session_encode");
        assert!(cases.len() >= 4);
        let mut compressed = 0;
        for case in cases {
            let secret = vectors::str(case, "secret_key");
            let session = case["session"].as_object().unwrap();
            let django = vectors::str(case, "encoded");
            let ours = encode_at(session, secret, case["timestamp"].as_i64().unwrap());
            if django.starts_with('.') {
                compressed += 1;
            }
            assert_eq!(ours, django, "{case}");
            let none: [&str; 0] = [];
            assert_eq!(decode(django, secret, &none).as_ref(), Some(session));
            assert_eq!(decode(&ours, secret, &none).as_ref(), Some(session));
        }
        assert!(compressed >= 1);
    }

    #[test]
    fn decode_matches_django() {
        let cases = vectors::list("session_decode");
        assert!(cases.len() >= 4);
        for case in cases {
            let got = decode(
                vectors::str(case, "encoded"),
                vectors::str(case, "secret_key"),
                &vectors::strings(case, "fallback_keys"),
            );
            let want = case["session"].as_object().filter(|m| !m.is_empty());
            assert_eq!(got.as_ref(), want, "{case}");
        }
    }

    #[test]
    fn session_auth_hash_matches_django() {
        let cases = vectors::list("session_auth_hash");
        assert!(cases.len() >= 3);
        for case in cases {
            let got =
                session_auth_hash(vectors::str(case, "password"), vectors::str(case, "secret"));
            assert_eq!(got, vectors::str(case, "hash"), "{case}");
        }
    }

    #[test]
    fn session_hash_verification_matches_get_user() {
        let cases = vectors::list("session_hash_verify");
        assert!(cases.len() >= 4);
        for case in cases {
            let got = verify_session_auth_hash(
                case["stored"].as_str(),
                vectors::str(case, "password"),
                vectors::str(case, "secret_key"),
                &vectors::strings(case, "fallback_keys"),
            );
            let want = match vectors::str(case, "result") {
                "current" => SessionHashCheck::Current,
                "fallback" => SessionHashCheck::Fallback,
                "invalid" => SessionHashCheck::Invalid,
                other => panic!("bad vector {other}"),
            };
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn signed_cookies_match_django() {
        let cases = vectors::list("signed_cookie_encode");
        assert!(cases.len() >= 4);
        for case in cases {
            let session = case["session"].as_object().unwrap();
            let secret = vectors::str(case, "secret_key");
            let ours =
                encode_signed_cookie_at(session, secret, case["timestamp"].as_i64().unwrap());
            assert_eq!(ours, vectors::str(case, "cookie"), "{case}");
        }
        let cases = vectors::list("signed_cookie_load");
        assert!(cases.len() >= 8);
        for case in cases {
            let got = decode_signed_cookie_at(
                vectors::str(case, "cookie"),
                vectors::str(case, "secret_key"),
                &vectors::strings(case, "fallback_keys"),
                case["cookie_age"].as_i64().unwrap(),
                case["now"].as_f64().unwrap(),
            );
            let want = case["session"].as_object().filter(|m| !m.is_empty());
            assert_eq!(got.as_ref(), want, "{case}");
        }
    }

    #[test]
    fn custom_expiry_is_read_as_django_reads_it() {
        let iso = |text: &str| parse_isoformat(text).unwrap();
        let cases = vectors::list("session_expiry");
        assert!(cases.len() >= 20);
        for case in cases {
            let session = case["session"].as_object().unwrap();
            let now = iso(vectors::str(case, "now"));
            let age = case["cookie_age"].as_i64().unwrap();
            // `set_cookie` keeps `int(max_age)` of a float.
            let want_age = case["expiry_age"].as_f64().unwrap().trunc() as i64;
            assert_eq!(expiry_age(session, now, age), want_age, "{case}");
            assert_eq!(
                expiry_date(session, now, age),
                iso(vectors::str(case, "expiry_date")),
                "{case}"
            );
            assert_eq!(
                expires_at_browser_close(
                    session,
                    case["expire_at_browser_close_setting"].as_bool().unwrap()
                ),
                case["expire_at_browser_close"].as_bool().unwrap(),
                "{case}"
            );
        }
    }

    #[test]
    fn session_keys() {
        let k = new_session_key();
        assert_eq!(k.len(), 32);
        assert!(k.chars().all(|c| LOWERCASE_AND_DIGITS.contains(c)));
        assert!(is_valid_session_key(&k));
        assert!(!is_valid_session_key("short"));
    }
}
