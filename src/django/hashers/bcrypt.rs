//! `BCryptSHA256PasswordHasher` and its `BCryptPasswordHasher` subclass:
//! the algorithm name, `$`, and what Python's `bcrypt.hashpw` returns.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{py_int, HasherParams, PasswordHasher};
use crate::django::crypto::constant_time_compare;

/// bcrypt's own base64 (`./A-Za-z0-9`), unpadded.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// The subclass differs only in not pre-hashing the password (`digest =
/// None`), so its passwords are truncated at 72 bytes.
#[derive(Debug)]
pub(super) enum BCryptHasher {
    Sha256,
    Plain,
}

impl PasswordHasher for BCryptHasher {
    fn class_name(&self) -> &'static str {
        match self {
            BCryptHasher::Sha256 => "BCryptSHA256PasswordHasher",
            BCryptHasher::Plain => "BCryptPasswordHasher",
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            BCryptHasher::Sha256 => "bcrypt_sha256",
            BCryptHasher::Plain => "bcrypt",
        }
    }

    /// `bcrypt.gensalt(rounds)`: `$2b$NN$` and 16 random bytes.
    fn salt(&self, params: &HasherParams) -> String {
        let mut raw = [0u8; 16];
        OsRng.fill_bytes(&mut raw);
        format!("$2b${:02}${}", params.bcrypt_rounds, BCRYPT_B64.encode(raw))
    }

    /// Python's `bcrypt.hashpw` reads the version, cost and first 22 salt
    /// characters of the setting string and formats the result in that
    /// version.
    fn encode(&self, password: &str, setting: &str, _params: &HasherParams) -> Option<String> {
        let mut parts = setting.splitn(4, '$');
        let (empty, version, cost, rest) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if !empty.is_empty() || rest.len() < 22 || !rest.is_char_boundary(22) {
            return None;
        }
        let version = match version {
            "2a" => bcrypt::Version::TwoA,
            "2b" => bcrypt::Version::TwoB,
            "2x" => bcrypt::Version::TwoX,
            "2y" => bcrypt::Version::TwoY,
            _ => return None,
        };
        let cost: u32 = cost.parse().ok()?;
        let salt: [u8; 16] = BCRYPT_B64.decode(&rest[..22]).ok()?.try_into().ok()?;
        let secret = match self {
            // `binascii.hexlify(sha256(password).digest())`, so long
            // passwords are not truncated at 72 bytes.
            BCryptHasher::Sha256 => hex::encode(Sha256::digest(password.as_bytes())).into_bytes(),
            BCryptHasher::Plain => password.as_bytes().to_vec(),
        };
        let parts = bcrypt::hash_with_salt(&secret, cost, salt).ok()?;
        Some(format!(
            "{}${}",
            self.algorithm(),
            parts.format_for_version(version)
        ))
    }

    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool> {
        let (_, data) = encoded.split_once('$')?;
        let again = self.encode(password, data, params)?;
        Some(constant_time_compare(encoded, again))
    }

    fn must_update(&self, encoded: &str, params: &HasherParams) -> Option<bool> {
        Some(decode_work_factor(encoded)? != i64::from(params.bcrypt_rounds))
    }

    /// The missing doublings: `2 ** (rounds - stored rounds) - 1` more
    /// bcrypts of the stored salt.
    fn harden_runtime(&self, password: &str, encoded: &str, params: &HasherParams) {
        let Some((_, data)) = encoded.split_once('$') else {
            return;
        };
        let Some(rounds) = decode_work_factor(encoded) else {
            return;
        };
        let salt: String = data.chars().take(29).collect();
        let missing = i64::from(params.bcrypt_rounds) - rounds;
        if missing > 0 {
            let times = (1u64 << missing.min(40)) - 1;
            for _ in 0..times {
                std::hint::black_box(self.encode(password, &salt, params));
            }
        }
    }
}

/// `int(work_factor)` from `algorithm, empty, algostr, work_factor, data =
/// encoded.split("$", 4)`.
fn decode_work_factor(encoded: &str) -> Option<i64> {
    let mut parts = encoded.splitn(5, '$');
    let (_, _, _, work_factor, _) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    py_int(work_factor)
}
