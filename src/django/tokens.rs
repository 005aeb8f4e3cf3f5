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
    /// `last_login` in UTC.
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
    (local_now - epoch).num_seconds()
}

fn int_to_base36(mut n: i64) -> String {
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

/// Django's `base36_to_int`: at most 13 digits.
fn base36_to_int(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 13 {
        return None;
    }
    i64::from_str_radix(text, 36).ok()
}

fn token_with_timestamp(user: &TokenUser, timestamp: i64, secret: &str) -> String {
    let login_timestamp = user
        .last_login
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    let value = format!(
        "{}{}{login_timestamp}{timestamp}{}",
        user.pk, user.password, user.email
    );
    let digest = salted_hmac_hex(KEY_SALT, value, secret, Algorithm::Sha256);
    // Every second character, as Django shortens it.
    let hash: String = digest.chars().step_by(2).collect();
    format!("{}-{hash}", int_to_base36(timestamp))
}

/// `make_token(user)` at `local_now`.
pub fn make_token(user: &TokenUser, local_now: NaiveDateTime, secret: &str) -> String {
    token_with_timestamp(user, num_seconds(local_now), secret)
}

/// `check_token(user, token)` at `local_now`: made for this user as they are
/// now, with the key or a fallback, no more than `timeout_seconds` ago.
pub fn check_token<S: AsRef<str>>(
    user: &TokenUser,
    token: &str,
    local_now: NaiveDateTime,
    secret: &str,
    fallbacks: &[S],
    timeout_seconds: i64,
) -> bool {
    let Some((ts_b36, _)) = token.split_once('-') else {
        return false;
    };
    let Some(timestamp) = base36_to_int(ts_b36) else {
        return false;
    };
    let signed = std::iter::once(secret)
        .chain(fallbacks.iter().map(AsRef::as_ref))
        .any(|key| constant_time_compare(token_with_timestamp(user, timestamp, key), token));
    signed && num_seconds(local_now) - timestamp <= timeout_seconds
}

/// `urlsafe_base64_encode(force_bytes(pk))`.
pub fn uidb64(pk: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pk.to_string())
}

/// The primary key of a `uidb64`, if it is one.
pub fn pk_of_uidb64(uidb64: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(uidb64.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
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
        assert_eq!(base36_to_int(ts), Some(num_seconds(now)));
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
}
