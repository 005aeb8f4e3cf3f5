//! `django.utils.crypto`: the keyed-hash and randomness primitives every other
//! part of the compatibility core is built on.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Django's `RANDOM_STRING_CHARS`: the default alphabet of `get_random_string`
/// and of password salts.
pub const RANDOM_STRING_CHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `string.ascii_lowercase + string.digits`: session keys are drawn from this
/// so they survive case-insensitive storage.
pub const LOWERCASE_AND_DIGITS: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

/// `string.ascii_letters + string.digits`: the CSRF alphabet (note the order,
/// which matters for masking).
pub const ASCII_LETTERS_AND_DIGITS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The two digests Django's signing and session code ask `salted_hmac` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
}

impl Algorithm {
    /// Parses hashlib's names ("sha1", "sha256").
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
}

/// `salted_hmac(key_salt, value, secret, algorithm=...)`: the HMAC key is the
/// digest of `key_salt + secret` (always hashed, even when short, exactly as
/// Django does), and the result is the raw MAC.
pub fn salted_hmac(
    key_salt: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
    secret: impl AsRef<[u8]>,
    algorithm: Algorithm,
) -> Vec<u8> {
    let (key_salt, value, secret) = (key_salt.as_ref(), value.as_ref(), secret.as_ref());
    match keyed_mac(algorithm, key_salt, secret) {
        KeyedMac::Sha1(mut mac) => {
            mac.update(value);
            mac.finalize().into_bytes().to_vec()
        }
        KeyedMac::Sha256(mut mac) => {
            mac.update(value);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// An HMAC ready for its message: the key derived and both pads hashed.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
}

/// The last few keys a thread derived. Every request checks a session and a
/// CSRF or auth hash under the same few salts and one secret, and deriving a
/// key costs four hash blocks of the ten or so a check takes.
const KEY_CACHE: usize = 8;

thread_local! {
    static KEYS: std::cell::RefCell<Vec<(Algorithm, Vec<u8>, Vec<u8>, KeyedMac)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn keyed_mac(algorithm: Algorithm, key_salt: &[u8], secret: &[u8]) -> KeyedMac {
    let cached = KEYS.with_borrow(|keys| {
        keys.iter()
            .find(|(a, salt, s, _)| *a == algorithm && salt == key_salt && s == secret)
            .map(|(.., mac)| mac.clone())
    });
    if let Some(mac) = cached {
        return mac;
    }
    let mac = match algorithm {
        Algorithm::Sha1 => {
            let key = Sha1::new()
                .chain_update(key_salt)
                .chain_update(secret)
                .finalize();
            KeyedMac::Sha1(Hmac::new_from_slice(&key).expect("HMAC accepts any key length"))
        }
        Algorithm::Sha256 => {
            let key = Sha256::new()
                .chain_update(key_salt)
                .chain_update(secret)
                .finalize();
            KeyedMac::Sha256(Hmac::new_from_slice(&key).expect("HMAC accepts any key length"))
        }
    };
    KEYS.with_borrow_mut(|keys| {
        if keys.len() == KEY_CACHE {
            keys.remove(0);
        }
        keys.push((algorithm, key_salt.to_vec(), secret.to_vec(), mac.clone()));
    });
    mac
}

/// `salted_hmac(...).hexdigest()`.
pub fn salted_hmac_hex(
    key_salt: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
    secret: impl AsRef<[u8]>,
    algorithm: Algorithm,
) -> String {
    hex::encode(salted_hmac(key_salt, value, secret, algorithm))
}

/// `constant_time_compare`: equality of the UTF-8 bytes without an early exit
/// on the first differing byte (a length mismatch is not secret).
pub fn constant_time_compare(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (a.as_ref(), b.as_ref());
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `get_random_string(length, allowed_chars)`: each character drawn uniformly
/// from `allowed_chars` with a CSPRNG, as `secrets.choice`. `thread_rng` is
/// ChaCha seeded (and periodically reseeded) from the operating system: as
/// unpredictable as `OsRng` without a system call per character, which
/// every page's CSRF mask would otherwise pay.
pub fn get_random_string(length: usize, allowed_chars: &str) -> String {
    // Every alphabet Django and this site draw from is ASCII: a byte each.
    assert!(
        !allowed_chars.is_empty() && allowed_chars.is_ascii(),
        "get_random_string needs a non-empty ASCII alphabet"
    );
    let bytes = allowed_chars.as_bytes();
    let mut rng = rand::thread_rng();
    (0..length)
        .map(|_| bytes[rng.gen_range(0..bytes.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn salted_hmac_matches_django() {
        let cases = vectors::list("salted_hmac");
        assert!(cases.len() >= 4);
        // Twice over: the second round takes its keys from the thread's cache,
        // the first (with more cases than it holds) derives most of them.
        for _ in 0..2 {
            for case in cases {
                let algorithm = Algorithm::from_name(vectors::str(case, "algorithm")).unwrap();
                let got = salted_hmac_hex(
                    vectors::str(case, "key_salt"),
                    vectors::str(case, "value"),
                    vectors::str(case, "secret"),
                    algorithm,
                );
                assert_eq!(got, vectors::str(case, "hexdigest"), "{case}");
                let again = salted_hmac_hex(
                    vectors::str(case, "key_salt"),
                    vectors::str(case, "value"),
                    vectors::str(case, "secret"),
                    algorithm,
                );
                assert_eq!(again, got, "from the cache: {case}");
            }
        }
    }

    #[test]
    fn constant_time_compare_is_equality() {
        assert!(constant_time_compare("abc", "abc"));
        assert!(!constant_time_compare("abc", "abd"));
        assert!(!constant_time_compare("abc", "ab"));
        assert!(constant_time_compare("", ""));
        assert!(constant_time_compare("é", "é"));
    }

    #[test]
    fn random_strings_use_the_alphabet() {
        let s = get_random_string(200, "ab");
        assert_eq!(s.chars().count(), 200);
        assert!(s.contains('a') && s.contains('b'));
        assert!(s.chars().all(|c| c == 'a' || c == 'b'));
        let t = get_random_string(32, RANDOM_STRING_CHARS);
        assert_ne!(t, get_random_string(32, RANDOM_STRING_CHARS));
        assert_eq!(get_random_string(0, RANDOM_STRING_CHARS), "");
    }
}
