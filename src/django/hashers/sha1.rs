//! Django 4.2/5.0's `SHA1PasswordHasher` (`sha1$salt$hex`) and
//! `UnsaltedSHA1PasswordHasher` (`sha1$$hex`).

use sha1::{Digest, Sha1};

use super::{
    check_encode_args, salted_hex_digest, salted_hex_must_update, split3, HasherParams,
    PasswordHasher,
};
use crate::django::crypto::constant_time_compare;

#[derive(Debug)]
pub(super) struct Sha1Hasher;

impl PasswordHasher for Sha1Hasher {
    fn class_name(&self) -> &'static str {
        "SHA1PasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "sha1"
    }

    fn encode(&self, password: &str, salt: &str, _params: &HasherParams) -> Option<String> {
        check_encode_args(salt)?;
        Some(salted_hex_digest::<Sha1>(self.algorithm(), password, salt))
    }

    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool> {
        let (_, salt, _) = split3(encoded)?;
        // `encode` raises on an empty salt.
        let again = self.encode(password, salt, params)?;
        Some(constant_time_compare(encoded, again))
    }

    fn must_update(&self, encoded: &str, _params: &HasherParams) -> Option<bool> {
        salted_hex_must_update(encoded)
    }
}

#[derive(Debug)]
pub(super) struct UnsaltedSha1Hasher;

impl PasswordHasher for UnsaltedSha1Hasher {
    fn class_name(&self) -> &'static str {
        "UnsaltedSHA1PasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "unsalted_sha1"
    }

    /// No salt: `encode` refuses one.
    fn salt(&self, _params: &HasherParams) -> String {
        String::new()
    }

    /// "salt must be empty."
    fn encode(&self, password: &str, salt: &str, _params: &HasherParams) -> Option<String> {
        salt.is_empty()
            .then(|| format!("sha1$${}", hex::encode(Sha1::digest(password.as_bytes()))))
    }

    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool> {
        let again = self.encode(password, "", params)?;
        Some(constant_time_compare(encoded, again))
    }
}
