//! `django.contrib.auth.tokens.PasswordResetTokenGenerator` and the
//! `uidb64` of reset links: a token is good for one user until their
//! password or `last_login` changes (so a link works once) and for
//! `PASSWORD_RESET_TIMEOUT` seconds, under `SECRET_KEY` or a fallback.

use base64::Engine;
use chrono::NaiveDateTime;

use crate::django::crypto::{constant_time_compare, salted_hmac_hex, Algorithm};

const KEY_SALT: &str = "django.contrib.auth.tokens.PasswordResetTokenGenerator";

/// What a token depends on.
pub struct TokenUser<'a> {
    pub pk: i64,
    /// The stored password hash.
    pub password: &'a str,
    /// `last_login` as its wall time, the zone dropped (Django's
    /// `replace(tzinfo=None)`): in UTC, as rows are read under `USE_TZ`.
    pub last_login: Option<NaiveDateTime>,
    pub email: &'a str,
}

/// Django's `_num_seconds(datetime.now())`: whole seconds since 2001-01-01,
/// of the local time (in `TIME_ZONE`, as Django's process runs).
pub fn num_seconds(local_now: NaiveDateTime) -> i64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(2001, 1, 1)
        .expect("a valid date")
        .and_hms_opt(0, 0, 0)
        .expect("a valid time");
    let since = local_now - epoch;
    since
        .num_microseconds()
        .map_or_else(|| since.num_seconds(), python_whole_seconds)
}

/// `int(timedelta.total_seconds())` of a span of `micros` microseconds:
/// `total_seconds` is `micros / 10**6` rounded to the nearest float, and far
/// from 2001 (beyond about 570 years) that float can be the next whole second
/// (2600-01-01 00:00:00.999999 gives 18902592001); `int` then cuts towards 0.
fn python_whole_seconds(micros: i64) -> i64 {
    const MICROS: u64 = 1_000_000;
    let magnitude = micros.unsigned_abs();
    let (whole, part) = (magnitude / MICROS, magnitude % MICROS);
    // The float nearest `whole + part/10**6` is `whole + 1` when the gap
    // `1 - part/10**6` is under half the float spacing below `whole + 1`,
    // 2**(floor(log2(whole)) - 52). (An exact tie would need whole >= 2**47;
    // an i64 of microseconds stays under 2**44 seconds.)
    let rounds_up = whole > 0
        && part > 0
        && 53u32
            .checked_sub(whole.ilog2())
            .is_some_and(|shift| u128::from(MICROS - part) << shift < u128::from(MICROS));
    let seconds = i64::try_from(whole + u64::from(rounds_up)).unwrap_or(i64::MAX);
    if micros < 0 {
        -seconds
    } else {
        seconds
    }
}

/// Django's `int_to_base36` (which refuses negative numbers: those read as 0
/// here; a token is never made before 2001).
fn int_to_base36(mut n: i128) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".to_string();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Django's `base36_to_int`: at most 13 characters, then Python's `int(s, 36)`
/// (13 digits go past i64: `zzzzzzzzzzzzz` is about 1.7e20).
fn base36_to_int(text: &str) -> Option<i128> {
    if text.chars().count() > 13 {
        return None;
    }
    python_int(text, 36)
}

/// The first code point of each run of ten Unicode decimal digits (`Nd`, 0
/// to 9), all of which Python's `int()` reads (Unicode 14, Python 3.11; the
/// vectors hold the list Django's Python gave).
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// A digit as Python's `int(text, radix)` reads it: ASCII digits and letters,
/// or any Unicode decimal digit.
fn python_digit(c: char, radix: u32) -> Option<u32> {
    let value = if c.is_ascii() {
        c.to_digit(36)?
    } else {
        let code = u32::from(c);
        let run = DECIMAL_ZEROS
            .partition_point(|&zero| zero <= code)
            .checked_sub(1)?;
        let value = code - DECIMAL_ZEROS[run];
        (value < 10).then_some(value)?
    };
    (value < radix).then_some(value)
}

/// Python's `int(text, radix)`: space around it (what `char::is_whitespace`
/// takes, the set Python skips), a sign, digits with single `_` between them.
/// `None` where Python raises `ValueError`, and past `i128`.
fn python_int(text: &str, radix: u32) -> Option<i128> {
    let text = text.trim_matches(char::is_whitespace);
    let (negative, digits) = match text.chars().next()? {
        '-' => (true, &text[1..]),
        '+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = python_digit(c, radix)?;
        n = n
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(digit))?;
    }
    Some(if negative { -n } else { n })
}

/// `_make_hash_value`: the pk, password hash, `last_login` to the second,
/// the timestamp and the e-mail, run together.
fn hash_value(user: &TokenUser, timestamp: i128) -> String {
    let login_timestamp = user
        .last_login
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    format!(
        "{}{}{login_timestamp}{timestamp}{}",
        user.pk, user.password, user.email
    )
}

/// `_make_token_with_timestamp`.
fn token_with_timestamp(user: &TokenUser, timestamp: i128, secret: &str) -> String {
    let digest = salted_hmac_hex(
        KEY_SALT,
        hash_value(user, timestamp),
        secret,
        Algorithm::Sha256,
    );
    // Every second character, as Django shortens it.
    let hash: String = digest.chars().step_by(2).collect();
    format!("{}-{hash}", int_to_base36(timestamp))
}

/// `make_token(user)` at `local_now`.
pub fn make_token(user: &TokenUser, local_now: NaiveDateTime, secret: &str) -> String {
    token_with_timestamp(user, i128::from(num_seconds(local_now)), secret)
}

/// `check_token(user, token)` at `local_now`: made for this user as they are
/// now, with the key or a fallback, no more than `timeout_seconds` ago (or
/// at any time ahead: Django takes a timestamp from the future too).
pub fn check_token<S: AsRef<str>>(
    user: &TokenUser,
    token: &str,
    local_now: NaiveDateTime,
    secret: &str,
    fallbacks: &[S],
    timeout_seconds: i64,
) -> bool {
    // `ts_b36, _ = token.split("-")`: exactly one dash.
    let Some((ts_b36, rest)) = token.split_once('-') else {
        return false;
    };
    if rest.contains('-') {
        return false;
    }
    // (no dash in it, so never negative: Django's int_to_base36 would raise)
    let Some(timestamp) = base36_to_int(ts_b36) else {
        return false;
    };
    let signed = std::iter::once(secret)
        .chain(fallbacks.iter().map(AsRef::as_ref))
        .any(|key| constant_time_compare(token_with_timestamp(user, timestamp, key), token));
    signed && i128::from(num_seconds(local_now)) - timestamp <= i128::from(timeout_seconds)
}

/// `urlsafe_base64_encode(force_bytes(pk))`.
pub fn uidb64(pk: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pk.to_string())
}

/// Django's `urlsafe_base64_decode`: `len % 4` padding characters added (not
/// always the right number), then Python's lenient `urlsafe_b64decode`, which
/// skips what is not base64 (`+` and `/` count as `-` and `_`), stops at a
/// closing pad, and refuses only a cut-short last group.
fn urlsafe_base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u8> {
        match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'-' | b'+' => Some(62),
            b'_' | b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let padding = std::iter::repeat(&b'=').take(bytes.len() % 4);
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let (mut quad_pos, mut left, mut pads) = (0usize, 0u8, 0usize);
    for &b in bytes.iter().chain(padding) {
        if b == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let Some(v) = sextet(b) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => left = v,
            1 => {
                out.push(left << 2 | v >> 4);
                left = v & 0x0f;
            }
            2 => {
                out.push(left << 4 | v >> 2);
                left = v & 0x03;
            }
            _ => out.push(left << 6 | v),
        }
        quad_pos = (quad_pos + 1) % 4;
    }
    (quad_pos == 0).then_some(out)
}

/// The primary key of a `uidb64`, as `PasswordResetConfirmView.get_user`
/// reads it: decoded, UTF-8, then `int()` (so ` 42`, `+42`, `4_2`, `٤٢` are
/// 42); `None` where Django finds no user for want of a number, or past i64.
pub fn pk_of_uidb64(uidb64: &str) -> Option<i64> {
    let bytes = urlsafe_base64_decode(uidb64)?;
    let text = String::from_utf8(bytes).ok()?;
    i64::try_from(python_int(&text, 10)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    const KEY: &str = "key";

    #[test]
    fn a_token_works_until_the_password_or_last_login_changes_or_it_expires() {
        let user = TokenUser {
            pk: 7,
            password: "pbkdf2_sha256$1$a$b",
            last_login: Some(at("2026-11-30 10:00:00")),
            email: "ivan@example.com",
        };
        let now = at("2026-12-01 08:00:00");
        let token = make_token(&user, now, KEY);
        let (ts, hash) = token.split_once('-').unwrap();
        assert_eq!(base36_to_int(ts), Some(i128::from(num_seconds(now))));
        assert_eq!(hash.len(), 32);
        let none: &[&str] = &[];
        assert!(check_token(&user, &token, now, KEY, none, 259_200));
        // Three days later it still works, a second more and it does not.
        let later = now + chrono::Duration::seconds(259_200);
        assert!(check_token(&user, &token, later, KEY, none, 259_200));
        let too_late = later + chrono::Duration::seconds(1);
        assert!(!check_token(&user, &token, too_late, KEY, none, 259_200));
        // A new password or a login since: used up.
        let new_password = TokenUser {
            password: "pbkdf2_sha256$1$a$c",
            ..user
        };
        assert!(!check_token(&new_password, &token, now, KEY, none, 259_200));
        let logged_in = TokenUser {
            last_login: Some(at("2026-12-01 07:59:00")),
            ..new_password
        };
        let token2 = make_token(&logged_in, now, KEY);
        assert!(check_token(&logged_in, &token2, now, KEY, none, 259_200));
        let other_user = TokenUser { pk: 8, ..logged_in };
        assert!(!check_token(&other_user, &token2, now, KEY, none, 259_200));
        // Signed with an old key: accepted while it is a fallback.
        assert!(!check_token(&logged_in, &token2, now, "new", none, 259_200));
        assert!(check_token(
            &logged_in,
            &token2,
            now,
            "new",
            &[KEY],
            259_200
        ));
        for bad in ["", "-", "abc", "zzzzzzzzzzzzzz-00", &token2[1..]] {
            assert!(
                !check_token(&logged_in, bad, now, KEY, none, 259_200),
                "{bad}"
            );
        }
    }

    #[test]
    fn base36_and_uidb64_as_django() {
        assert_eq!(int_to_base36(0), "0");
        assert_eq!(int_to_base36(35), "z");
        assert_eq!(int_to_base36(36), "10");
        assert_eq!(base36_to_int("10"), Some(36));
        assert_eq!(base36_to_int("Z"), Some(35));
        // urlsafe_base64_encode(b"1") is "MQ"; b"42" is "NDI".
        assert_eq!(uidb64(1), "MQ");
        assert_eq!(uidb64(42), "NDI");
        assert_eq!(pk_of_uidb64("NDI"), Some(42));
        assert_eq!(pk_of_uidb64("NDI="), Some(42));
        assert_eq!(pk_of_uidb64("!!"), None);
        assert_eq!(pk_of_uidb64("YWJj"), None); // "abc"
    }

    // ---- vectors a real Django 5.2 produced ---------------------------------

    use crate::django::vectors;
    use serde_json::Value;

    /// A datetime as Python's `isoformat` writes it, with the zone dropped
    /// (Django's `replace(tzinfo=None)`) when it has one.
    fn wall_time(text: &str) -> NaiveDateTime {
        chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%:z")
            .map(|t| t.naive_local())
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn vector_user(case: &Value) -> TokenUser<'_> {
        let user = &case["user"];
        TokenUser {
            pk: user["pk"].as_i64().expect("pk"),
            password: vectors::str(user, "password"),
            last_login: user["last_login"].as_str().map(wall_time),
            // (Django reads a None e-mail as "")
            email: user["email"].as_str().unwrap_or(""),
        }
    }

    fn big(case: &Value, field: &str) -> Option<i128> {
        case[field].as_str().map(|n| n.parse().expect("an integer"))
    }

    #[test]
    fn tokens_as_django_makes_them() {
        let cases = vectors::list("reset_token_make");
        assert!(cases.len() > 50);
        for case in cases {
            let user = vector_user(case);
            let timestamp = big(case, "timestamp").unwrap();
            assert_eq!(
                hash_value(&user, timestamp),
                vectors::str(case, "hash_value"),
                "{case}"
            );
            let token = token_with_timestamp(&user, timestamp, vectors::str(case, "secret"));
            assert_eq!(token, vectors::str(case, "token"), "{case}");
        }
    }

    #[test]
    fn num_seconds_as_django() {
        let cases = vectors::list("reset_token_num_seconds");
        assert!(!cases.is_empty());
        for case in cases {
            let at = wall_time(vectors::str(case, "datetime"));
            assert_eq!(Some(num_seconds(at)), case["seconds"].as_i64(), "{case}");
        }
    }

    #[test]
    fn check_token_as_django() {
        let cases = vectors::list("reset_token_check");
        assert!(cases.len() > 40);
        for case in cases {
            let got = check_token(
                &vector_user(case),
                vectors::str(case, "token"),
                wall_time(vectors::str(case, "now")),
                vectors::str(case, "secret_key"),
                &vectors::strings(case, "fallback_keys"),
                case["timeout"].as_i64().expect("timeout"),
            );
            assert_eq!(Some(got), case["result"].as_bool(), "{case}");
        }
    }

    #[test]
    fn base36_as_django() {
        for case in vectors::list("base36_encode") {
            let n = big(case, "n").unwrap();
            assert_eq!(int_to_base36(n), vectors::str(case, "s"), "{case}");
        }
        let cases = vectors::list("base36_decode");
        assert!(cases.len() > 20);
        for case in cases {
            assert_eq!(
                base36_to_int(vectors::str(case, "s")),
                big(case, "n"),
                "{case}"
            );
        }
    }

    #[test]
    fn uidb64_as_django() {
        for case in vectors::list("uidb64_encode") {
            let pk = case["pk"].as_i64().expect("pk");
            assert_eq!(uidb64(pk), vectors::str(case, "uidb64"), "{case}");
            assert_eq!(pk_of_uidb64(&uidb64(pk)), Some(pk), "{case}");
        }
        let cases = vectors::list("uidb64_decode");
        assert!(cases.len() > 30);
        for case in cases {
            let text = vectors::str(case, "uidb64");
            let decoded = urlsafe_base64_decode(text).map(hex::encode);
            assert_eq!(decoded.as_deref(), case["decoded_hex"].as_str(), "{case}");
            // Django's pk, where it is one a BigAutoField can hold.
            let want = big(case, "pk").and_then(|n| i64::try_from(n).ok());
            assert_eq!(pk_of_uidb64(text), want, "{case}");
        }
    }

    #[test]
    fn python_int_tables_as_django_python() {
        let zeros: Vec<u32> = vectors::list("python_int_digit_zeros")
            .iter()
            .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(zeros, DECIMAL_ZEROS);
        let spaces: Vec<u32> = vectors::list("python_int_spaces")
            .iter()
            .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
            .collect();
        let ours: Vec<u32> = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .map(u32::from)
            .collect();
        assert_eq!(spaces, ours);
        for zero in DECIMAL_ZEROS {
            for d in 0..10 {
                let c = char::from_u32(zero + d).unwrap();
                assert_eq!(python_digit(c, 10), Some(d));
            }
        }
    }
}
