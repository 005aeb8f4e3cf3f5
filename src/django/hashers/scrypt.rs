//! `ScryptPasswordHasher`:
//! `scrypt$work_factor$salt$block_size$parallelism$base64(hash)`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{check_encode_args, py_int, HasherParams, PasswordHasher};
use crate::django::crypto::constant_time_compare;

/// OpenSSL's default `maxmem` (Django passes `maxmem=0`): parameters needing
/// more memory than this make Python's `hashlib.scrypt` raise.
const MAX_MEM: u128 = 32 * 1024 * 1024;

#[derive(Debug)]
pub(super) struct ScryptHasher;

impl PasswordHasher for ScryptHasher {
    fn class_name(&self) -> &'static str {
        "ScryptPasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "scrypt"
    }

    fn encode(&self, password: &str, salt: &str, params: &HasherParams) -> Option<String> {
        check_encode_args(salt)?;
        Decoded {
            work_factor: params.scrypt_work_factor,
            salt,
            block_size: params.scrypt_block_size,
            parallelism: params.scrypt_parallelism,
        }
        .encode(password)
    }

    fn verify(&self, password: &str, encoded: &str, _params: &HasherParams) -> Option<bool> {
        let again = Decoded::of(encoded)?.encode(password)?;
        Some(constant_time_compare(encoded, again))
    }

    fn must_update(&self, encoded: &str, params: &HasherParams) -> Option<bool> {
        let d = Decoded::of(encoded)?;
        Some(
            d.work_factor != params.scrypt_work_factor
                || d.block_size != params.scrypt_block_size
                || d.parallelism != params.scrypt_parallelism,
        )
    }
}

/// The fields of a hash, which are also `encode`'s arguments.
struct Decoded<'a> {
    work_factor: u64,
    salt: &'a str,
    block_size: u32,
    parallelism: u32,
}

impl Decoded<'_> {
    fn of(encoded: &str) -> Option<Decoded<'_>> {
        let parts: Vec<&str> = encoded.splitn(7, '$').collect();
        if parts.len() != 6 {
            return None;
        }
        Some(Decoded {
            work_factor: u64::try_from(py_int(parts[1])?).ok()?,
            salt: parts[2],
            block_size: u32::try_from(py_int(parts[3])?).ok()?,
            parallelism: u32::try_from(py_int(parts[4])?).ok()?,
        })
    }

    /// `encode(password, salt, n, r, p)` once the arguments are checked;
    /// `None` where `hashlib.scrypt` raises (N not a power of two, too much
    /// memory).
    fn encode(&self, password: &str) -> Option<String> {
        let (n, r, p) = (self.work_factor, self.block_size, self.parallelism);
        if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
            return None;
        }
        let memory =
            u128::from(p) * 128 * u128::from(r) + 128 * u128::from(r) * (u128::from(n) + 2);
        if memory > MAX_MEM {
            return None;
        }
        let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 64).ok()?;
        let mut out = [0u8; 64];
        scrypt::scrypt(password.as_bytes(), self.salt.as_bytes(), &params, &mut out).ok()?;
        Some(format!(
            "scrypt${}${}${}${}${}",
            n,
            self.salt,
            r,
            p,
            STANDARD.encode(out)
        ))
    }
}
