//! `Argon2PasswordHasher`: `argon2` and the PHC string argon2-cffi makes
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, unpadded standard base64).

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};

use super::{py_int, salt_too_short, HasherParams, PasswordHasher};
use crate::django::crypto::constant_time_compare;

#[derive(Debug)]
pub(super) struct Argon2Hasher;

impl PasswordHasher for Argon2Hasher {
    fn class_name(&self) -> &'static str {
        "Argon2PasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "argon2"
    }

    /// `"argon2" + argon2.low_level.hash_secret(...)` with argon2id, version
    /// 0x13 and a 32-byte hash.
    fn encode(&self, password: &str, salt: &str, params: &HasherParams) -> Option<String> {
        let p = Argon2Params {
            variant: argon2::Algorithm::Argon2id,
            version: argon2::Version::V0x13,
            memory_cost: params.argon2_memory_cost,
            time_cost: params.argon2_time_cost,
            parallelism: params.argon2_parallelism,
        };
        let hash = p.hash(password.as_bytes(), salt.as_bytes(), 32)?;
        Some(format!(
            "argon2$argon2id$v={}$m={},t={},p={}${}${}",
            p.version as u32,
            p.memory_cost,
            p.time_cost,
            p.parallelism,
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(hash)
        ))
    }

    /// `argon2.PasswordHasher().verify("$" + rest, password)`, which hands
    /// the string to the reference C library.
    ///
    /// `None` (Django raises) when the type prefix is not one argon2-cffi
    /// knows; any other malformation is a plain mismatch, as the C library
    /// reports a decoding failure and Django catches it.
    fn verify(&self, password: &str, encoded: &str, _params: &HasherParams) -> Option<bool> {
        let rest = encoded.strip_prefix("argon2$")?;
        let header: String = format!("${rest}").chars().take(9).collect();
        if !matches!(header.as_str(), "$argon2id" | "$argon2i$" | "$argon2d$") {
            return None;
        }
        Some(verify_phc(rest, password).unwrap_or(false))
    }

    /// Django compares `argon2.extract_parameters` with its own
    /// `Parameters` (salt length excepted) and checks the salt's entropy.
    fn must_update(&self, encoded: &str, params: &HasherParams) -> Option<bool> {
        let e = Extracted::of(encoded)?;
        Some(
            e.variant != "argon2id"
                || e.version != 19
                || e.hash_len != 32
                || e.time_cost != u64::from(params.argon2_time_cost)
                || e.memory_cost != u64::from(params.argon2_memory_cost)
                || e.parallelism != u64::from(params.argon2_parallelism)
                || salt_too_short(e.salt_chars?),
        )
    }
}

struct Argon2Params {
    variant: argon2::Algorithm,
    version: argon2::Version,
    memory_cost: u32,
    time_cost: u32,
    parallelism: u32,
}

impl Argon2Params {
    fn hash(&self, password: &[u8], salt: &[u8], hash_len: usize) -> Option<Vec<u8>> {
        let p = argon2::Params::new(
            self.memory_cost,
            self.time_cost,
            self.parallelism,
            Some(hash_len),
        )
        .ok()?;
        let hasher = argon2::Argon2::new(self.variant, self.version, p);
        let mut out = vec![0u8; hash_len];
        hasher.hash_password_into(password, salt, &mut out).ok()?;
        Some(out)
    }
}

/// The C library's decoding of `$type[$v=N]$m=M,t=T,p=P$salt$hash`, a
/// missing version meaning 0x10, then the hash compared.
fn verify_phc(rest: &str, password: &str) -> Option<bool> {
    let fields: Vec<&str> = rest.split('$').collect();
    let (variant, version, costs, salt, hash) = match fields.as_slice() {
        [t, v, c, s, h] => (*t, Some(*v), *c, *s, *h),
        [t, c, s, h] => (*t, None, *c, *s, *h),
        _ => return None,
    };
    let variant = match variant {
        "argon2id" => argon2::Algorithm::Argon2id,
        "argon2i" => argon2::Algorithm::Argon2i,
        "argon2d" => argon2::Algorithm::Argon2d,
        _ => return None,
    };
    let version = match version {
        None => argon2::Version::V0x10,
        Some(v) => match v.strip_prefix("v=")?.parse::<u32>().ok()? {
            0x10 => argon2::Version::V0x10,
            0x13 => argon2::Version::V0x13,
            _ => return None,
        },
    };
    let mut costs = costs.split(',');
    let memory_cost = costs.next()?.strip_prefix("m=")?.parse().ok()?;
    let time_cost = costs.next()?.strip_prefix("t=")?.parse().ok()?;
    let parallelism = costs.next()?.strip_prefix("p=")?.parse().ok()?;
    if costs.next().is_some() {
        return None;
    }
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let expected = STANDARD_NO_PAD.decode(hash).ok()?;
    if salt.len() < 8 {
        return None;
    }
    let params = Argon2Params {
        variant,
        version,
        memory_cost,
        time_cost,
        parallelism,
    };
    let actual = params.hash(password.as_bytes(), &salt, expected.len())?;
    Some(constant_time_compare(actual, expected))
}

/// What `argon2.extract_parameters` and Django's `decode` read for
/// `must_update`.
struct Extracted {
    variant: String,
    version: u64,
    hash_len: usize,
    time_cost: u64,
    memory_cost: u64,
    parallelism: u64,
    /// `len(base64.b64decode(salt).decode("latin1"))`; `None` if Django's
    /// decode would raise.
    salt_chars: Option<usize>,
}

impl Extracted {
    fn of(encoded: &str) -> Option<Extracted> {
        let rest = encoded.strip_prefix("argon2")?;
        let mut parts: Vec<&str> = rest.split('$').collect();
        // argon2 1.2 hashes have no version field; argon2-cffi reads them as
        // v=18.
        if parts.len() == 5 {
            parts.insert(2, "v=18");
        }
        if parts.len() != 6 || !parts[0].is_empty() {
            return None;
        }
        if !matches!(parts[1], "argon2id" | "argon2i" | "argon2d") {
            return None;
        }
        let mut values = BTreeMap::new();
        for kv in std::iter::once(parts[2]).chain(parts[3].split(',')) {
            let mut halves = kv.split('=');
            let (k, v) = (halves.next()?, halves.next()?);
            if halves.next().is_some() {
                return None;
            }
            values.insert(k, u64::try_from(py_int(v)?).ok()?);
        }
        if values.keys().copied().collect::<Vec<_>>() != ["m", "p", "t", "v"] {
            return None;
        }
        let decoded_len = |l: usize| l / 4 * 3 + [0, 0, 1, 2][l % 4];
        let salt_b64 = parts[4];
        let padded = format!("{}{}", salt_b64, "=".repeat((4 - salt_b64.len() % 4) % 4));
        Some(Extracted {
            variant: parts[1].to_string(),
            version: values["v"],
            hash_len: decoded_len(parts[5].len()),
            time_cost: values["t"],
            memory_cost: values["m"],
            parallelism: values["p"],
            salt_chars: lenient_b64_decode(&padded).map(|b| b.len()),
        })
    }
}

/// `base64.b64decode` without validation: characters outside the alphabet are
/// skipped, as binascii does.
fn lenient_b64_decode(s: &str) -> Option<Vec<u8>> {
    let kept: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(kept).ok()
}
