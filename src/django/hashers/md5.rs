//! `MD5PasswordHasher` (`md5$salt$hex`) and Django 4.2/5.0's
//! `UnsaltedMD5PasswordHasher` (a bare hex digest, or `md5$$hex`).

use md5::{Digest, Md5};

use super::{
    check_encode_args, salted_hex_digest, salted_hex_must_update, split3, HasherParams,
    PasswordHasher,
};
use crate::django::crypto::constant_time_compare;

#[derive(Debug)]
pub(super) struct Md5Hasher;

impl PasswordHasher for Md5Hasher {
    fn class_name(&self) -> &'static str {
        "MD5PasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "md5"
    }

    fn encode(&self, password: &str, salt: &str, _params: &HasherParams) -> Option<String> {
        check_encode_args(salt)?;
        Some(salted_hex_digest::<Md5>(self.algorithm(), password, salt))
    }

    fn verify(&self, password: &str, encoded: &str, _params: &HasherParams) -> Option<bool> {
        let (_, salt, _) = split3(encoded)?;
        let again = salted_hex_digest::<Md5>(self.algorithm(), password, salt);
        Some(constant_time_compare(encoded, again))
    }

    fn must_update(&self, encoded: &str, _params: &HasherParams) -> Option<bool> {
        salted_hex_must_update(encoded)
    }
}

#[derive(Debug)]
pub(super) struct UnsaltedMd5Hasher;

impl PasswordHasher for UnsaltedMd5Hasher {
    fn class_name(&self) -> &'static str {
        "UnsaltedMD5PasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "unsalted_md5"
    }

    /// No salt: `encode` refuses one.
    fn salt(&self, _params: &HasherParams) -> String {
        String::new()
    }

    /// "salt must be empty."
    fn encode(&self, password: &str, salt: &str, _params: &HasherParams) -> Option<String> {
        salt.is_empty()
            .then(|| hex::encode(Md5::digest(password.as_bytes())))
    }

    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool> {
        let bare = match encoded.strip_prefix("md5$$") {
            Some(rest) if encoded.chars().count() == 37 => rest,
            _ => encoded,
        };
        let again = self.encode(password, "", params)?;
        Some(constant_time_compare(bare, again))
    }
}
