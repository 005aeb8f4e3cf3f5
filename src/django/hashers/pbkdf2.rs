//! `PBKDF2PasswordHasher` and its `PBKDF2SHA1PasswordHasher` subclass:
//! `algorithm$iterations$salt$base64(hash)`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::Sha1;

use super::{
    algorithm_of, check_encode_args, py_int, salt_too_short, HasherParams, PasswordHasher,
};
use crate::django::crypto::constant_time_compare;

/// The two classes differ only in the digest (and so the name).
#[derive(Debug)]
pub(super) enum Pbkdf2Hasher {
    Sha256,
    Sha1,
}

impl Pbkdf2Hasher {
    /// `encode(password, salt, iterations)` once the arguments are checked.
    fn hash(&self, password: &str, salt: &str, iterations: u32) -> String {
        let hash = match self {
            Pbkdf2Hasher::Sha1 => {
                let mut out = [0u8; 20];
                ::pbkdf2::pbkdf2_hmac::<Sha1>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    iterations,
                    &mut out,
                );
                STANDARD.encode(out)
            }
            Pbkdf2Hasher::Sha256 => STANDARD.encode(crate::django::pbkdf2::pbkdf2_hmac_sha256(
                password.as_bytes(),
                salt.as_bytes(),
                iterations,
            )),
        };
        format!("{}${}${}${}", self.algorithm(), iterations, salt, hash)
    }
}

impl PasswordHasher for Pbkdf2Hasher {
    fn class_name(&self) -> &'static str {
        match self {
            Pbkdf2Hasher::Sha256 => "PBKDF2PasswordHasher",
            Pbkdf2Hasher::Sha1 => "PBKDF2SHA1PasswordHasher",
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Pbkdf2Hasher::Sha256 => "pbkdf2_sha256",
            Pbkdf2Hasher::Sha1 => "pbkdf2_sha1",
        }
    }

    fn encode(&self, password: &str, salt: &str, params: &HasherParams) -> Option<String> {
        check_encode_args(salt)?;
        Some(self.hash(password, salt, params.pbkdf2_iterations))
    }

    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool> {
        let d = Decoded::of(encoded)?;
        // `iterations or self.iterations`: a stored 0 means the default.
        let iterations = if d.iterations == 0 {
            params.pbkdf2_iterations
        } else {
            d.iterations
        };
        let again = self.hash(password, d.salt, iterations);
        Some(constant_time_compare(encoded, again))
    }

    fn must_update(&self, encoded: &str, params: &HasherParams) -> Option<bool> {
        let d = Decoded::of(encoded)?;
        Some(d.iterations != params.pbkdf2_iterations || salt_too_short(d.salt.chars().count()))
    }

    /// The missing iterations.
    fn harden_runtime(&self, password: &str, encoded: &str, params: &HasherParams) {
        let Some(d) = Decoded::of(encoded) else {
            return;
        };
        let extra = i64::from(params.pbkdf2_iterations) - i64::from(d.iterations);
        if extra > 0 {
            std::hint::black_box(self.hash(password, d.salt, extra as u32));
        }
    }
}

struct Decoded<'a> {
    iterations: u32,
    salt: &'a str,
}

impl Decoded<'_> {
    /// `algorithm, iterations, salt, hash = encoded.split("$", 3)`.
    fn of(encoded: &str) -> Option<Decoded<'_>> {
        let mut parts = encoded.splitn(4, '$');
        let (_algorithm, iterations, salt, _hash) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        Some(Decoded {
            iterations: u32::try_from(py_int(iterations)?).ok()?,
            salt,
        })
    }
}

/// The iterations of a PBKDF2 hash (SHA-256 or SHA-1), `None` for any other.
pub fn pbkdf2_iterations_of(encoded: &str) -> Option<u32> {
    let algorithm = algorithm_of(encoded)?;
    if algorithm != Pbkdf2Hasher::Sha256.algorithm() && algorithm != Pbkdf2Hasher::Sha1.algorithm()
    {
        return None;
    }
    Decoded::of(encoded).map(|d| d.iterations)
}
