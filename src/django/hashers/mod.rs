//! `django.contrib.auth.hashers`: making and checking the values of the
//! `password` column exactly as Django 5.2 does, so that hashes written by
//! either side verify on the other and outdated ones are upgraded the same way.
//!
//! All of this is CPU-bound on purpose (a full PBKDF2 is about a million HMACs);
//! callers on an async runtime should use `spawn_blocking`.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use md5::Md5;
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::crypto::{constant_time_compare, get_random_string, RANDOM_STRING_CHARS};

/// Django 5.2's `global_settings.PASSWORD_HASHERS`.
pub const DEFAULT_PASSWORD_HASHERS: &[&str] = &[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
];

/// A hash starting with this never verifies (`set_unusable_password`).
pub const UNUSABLE_PASSWORD_PREFIX: &str = "!";
pub const UNUSABLE_PASSWORD_SUFFIX_LENGTH: usize = 40;

/// `BasePasswordHasher.salt_entropy`: salts with fewer bits are upgraded.
const SALT_ENTROPY_BITS: f64 = 128.0;

/// The hashers Django ships. `Sha1`, `UnsaltedSha1` and `UnsaltedMd5`
/// exist only up to Django 5.0, `Crypt` only in 4.2
/// ([`Release::ships`](super::releases::Release::ships)); hashes in those
/// forms are "unknown" to later releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasherKind {
    Pbkdf2Sha256,
    Pbkdf2Sha1,
    Argon2,
    BCryptSha256,
    BCrypt,
    Scrypt,
    Md5,
    /// `SHA1PasswordHasher`: `sha1$salt$hex`.
    Sha1,
    /// `UnsaltedSHA1PasswordHasher`: `sha1$$hex`.
    UnsaltedSha1,
    /// `UnsaltedMD5PasswordHasher`: a bare 32-character hex digest (or
    /// `md5$$hex`).
    UnsaltedMd5,
    /// `CryptPasswordHasher`: `crypt$$` and the system `crypt(3)` of the
    /// password. Recognised so a configuration naming it can be refused
    /// clearly; not implemented.
    Crypt,
}

impl HasherKind {
    /// The class's `algorithm`, which is also the prefix of its hashes.
    pub fn algorithm(self) -> &'static str {
        match self {
            HasherKind::Pbkdf2Sha256 => "pbkdf2_sha256",
            HasherKind::Pbkdf2Sha1 => "pbkdf2_sha1",
            HasherKind::Argon2 => "argon2",
            HasherKind::BCryptSha256 => "bcrypt_sha256",
            HasherKind::BCrypt => "bcrypt",
            HasherKind::Scrypt => "scrypt",
            HasherKind::Md5 => "md5",
            HasherKind::Sha1 => "sha1",
            HasherKind::UnsaltedSha1 => "unsalted_sha1",
            HasherKind::UnsaltedMd5 => "unsalted_md5",
            HasherKind::Crypt => "crypt",
        }
    }

    /// The class name in `django.contrib.auth.hashers`.
    pub fn class_name(self) -> &'static str {
        match self {
            HasherKind::Pbkdf2Sha256 => "PBKDF2PasswordHasher",
            HasherKind::Pbkdf2Sha1 => "PBKDF2SHA1PasswordHasher",
            HasherKind::Argon2 => "Argon2PasswordHasher",
            HasherKind::BCryptSha256 => "BCryptSHA256PasswordHasher",
            HasherKind::BCrypt => "BCryptPasswordHasher",
            HasherKind::Scrypt => "ScryptPasswordHasher",
            HasherKind::Md5 => "MD5PasswordHasher",
            HasherKind::Sha1 => "SHA1PasswordHasher",
            HasherKind::UnsaltedSha1 => "UnsaltedSHA1PasswordHasher",
            HasherKind::UnsaltedMd5 => "UnsaltedMD5PasswordHasher",
            HasherKind::Crypt => "CryptPasswordHasher",
        }
    }

    /// The dotted class path as it appears in `PASSWORD_HASHERS`.
    pub fn from_dotted_name(name: &str) -> Option<HasherKind> {
        let class = name.strip_prefix("django.contrib.auth.hashers.")?;
        Some(match class {
            "PBKDF2PasswordHasher" => HasherKind::Pbkdf2Sha256,
            "PBKDF2SHA1PasswordHasher" => HasherKind::Pbkdf2Sha1,
            "Argon2PasswordHasher" => HasherKind::Argon2,
            "BCryptSHA256PasswordHasher" => HasherKind::BCryptSha256,
            "BCryptPasswordHasher" => HasherKind::BCrypt,
            "ScryptPasswordHasher" => HasherKind::Scrypt,
            "MD5PasswordHasher" => HasherKind::Md5,
            "SHA1PasswordHasher" => HasherKind::Sha1,
            "UnsaltedSHA1PasswordHasher" => HasherKind::UnsaltedSha1,
            "UnsaltedMD5PasswordHasher" => HasherKind::UnsaltedMd5,
            "CryptPasswordHasher" => HasherKind::Crypt,
            _ => return None,
        })
    }
}

/// The work factors of Django's hasher classes. Django's values are the
/// default; a test suite may lower them (as Django's own tests do) to run fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasherParams {
    pub pbkdf2_iterations: u32,
    pub argon2_time_cost: u32,
    pub argon2_memory_cost: u32,
    pub argon2_parallelism: u32,
    pub bcrypt_rounds: u32,
    pub scrypt_work_factor: u64,
    pub scrypt_block_size: u32,
    pub scrypt_parallelism: u32,
}

impl Default for HasherParams {
    fn default() -> Self {
        HasherParams {
            pbkdf2_iterations: 1_000_000,
            argon2_time_cost: 2,
            argon2_memory_cost: 102_400,
            argon2_parallelism: 8,
            bcrypt_rounds: 12,
            scrypt_work_factor: 1 << 14,
            scrypt_block_size: 8,
            scrypt_parallelism: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HasherError {
    #[error("unknown password hasher {0:?} (Django has no such class)")]
    UnknownHasher(String),
    #[error("the list of password hashers is empty")]
    Empty,
    #[error(
        "{0:?} is not in Django {1} (CryptPasswordHasher was removed in 5.0; SHA1PasswordHasher, \
         UnsaltedSHA1PasswordHasher and UnsaltedMD5PasswordHasher in 5.1): remove it, or set \
         DJANGO_VERSION to the release the site runs"
    )]
    NotInRelease(String, &'static str),
    #[error(
        "{0:?} is not supported here: its hashes need the system's crypt(3). Keep Django \
         for the users whose hashes start with crypt$, or have them reset their passwords, \
         and remove it from PASSWORD_HASHERS"
    )]
    Unsupported(String),
}

/// What `verify_password` tells its caller: whether the password is right,
/// and whether the stored hash should be replaced (the caller re-hashes with
/// [`Hashers::make_password`] and saves it, as `check_password`'s setter does,
/// only when `valid && must_update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOutcome {
    pub valid: bool,
    pub must_update: bool,
}

/// The configured `PASSWORD_HASHERS`: the first one makes new hashes, all of
/// them verify.
#[derive(Debug, Clone)]
pub struct Hashers {
    kinds: Vec<HasherKind>,
    params: HasherParams,
}

impl Default for Hashers {
    fn default() -> Self {
        Hashers::from_names(DEFAULT_PASSWORD_HASHERS).expect("the default hashers are known")
    }
}

impl Hashers {
    /// From `PASSWORD_HASHERS` dotted names; an unknown name is an error, as
    /// Django's `import_string` failing would be.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Hashers, HasherError> {
        let kinds = names
            .iter()
            .map(|n| {
                HasherKind::from_dotted_name(n.as_ref())
                    .ok_or_else(|| HasherError::UnknownHasher(n.as_ref().to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if kinds.is_empty() {
            return Err(HasherError::Empty);
        }
        Ok(Hashers {
            kinds,
            params: HasherParams::default(),
        })
    }

    /// `get_hashers()`: the configured classes in `PASSWORD_HASHERS` order.
    pub fn kinds(&self) -> &[HasherKind] {
        &self.kinds
    }

    /// The same hashers with other work factors.
    pub fn with_params(mut self, params: HasherParams) -> Hashers {
        self.params = params;
        self
    }

    pub fn params(&self) -> &HasherParams {
        &self.params
    }

    /// The hasher that makes new hashes (`get_hasher("default")`).
    pub fn preferred(&self) -> HasherKind {
        self.kinds[0]
    }

    /// `make_password(password)`: the preferred hasher with a fresh salt.
    pub fn make_password(&self, password: &str) -> String {
        let kind = self.preferred();
        let salt = match kind {
            HasherKind::BCryptSha256 | HasherKind::BCrypt => {
                bcrypt_gensalt(self.params.bcrypt_rounds)
            }
            // `salt()` is empty for the unsalted hashers.
            HasherKind::UnsaltedSha1 | HasherKind::UnsaltedMd5 | HasherKind::Crypt => String::new(),
            _ => new_salt(),
        };
        self.encode(kind, password, &salt)
            .expect("a fresh salt and the hasher parameters are valid")
    }

    /// `make_password(password, salt)`: Django's `hasher.encode(password,
    /// salt)` with this configuration's work factors. For the bcrypt hashers
    /// the salt is a bcrypt setting string (`$2b$12$` + 22 characters).
    /// `None` where Django raises (an empty salt or one containing `$`, a
    /// malformed bcrypt setting, an argon2 salt under 8 bytes).
    pub fn make_password_with_salt(&self, password: &str, salt: &str) -> Option<String> {
        self.encode(self.preferred(), password, salt)
    }

    /// `make_password(None)`: `!` and 40 random characters.
    pub fn make_unusable_password() -> String {
        format!(
            "{UNUSABLE_PASSWORD_PREFIX}{}",
            get_random_string(UNUSABLE_PASSWORD_SUFFIX_LENGTH, RANDOM_STRING_CHARS)
        )
    }

    /// One full preferred hash, result thrown away: what `ModelBackend`
    /// spends on a login with an unknown e-mail so timing does not tell.
    pub fn dummy_hash_work(&self, password: &str) {
        std::hint::black_box(self.make_password(password));
    }

    /// `identify_hasher(encoded)` among the configured hashers.
    pub fn identify(&self, encoded: &str) -> Option<HasherKind> {
        let algorithm = algorithm_of(encoded)?;
        self.kinds
            .iter()
            .copied()
            .find(|k| k.algorithm() == algorithm)
    }

    /// `check_password` / `verify_password`, step by step as Django:
    /// unusable, empty or unidentifiable hashes cost one preferred hash and
    /// are wrong; otherwise the hash is verified, `must_update` says whether
    /// it should be re-made, and a wrong password against a weaker hash of the
    /// preferred algorithm is padded to the full work factor
    /// (`harden_runtime`). A hash Django would crash on (a malformed one of a
    /// known algorithm) is simply wrong here.
    pub fn check_password(&self, password: &str, encoded: &str) -> CheckOutcome {
        let wrong = CheckOutcome {
            valid: false,
            must_update: false,
        };
        let hasher = if is_password_usable(encoded) {
            self.identify(encoded)
        } else {
            None
        };
        let Some(hasher) = hasher else {
            self.dummy_hash_work(&get_random_string(
                UNUSABLE_PASSWORD_SUFFIX_LENGTH,
                RANDOM_STRING_CHARS,
            ));
            return wrong;
        };
        let hasher_changed = hasher != self.preferred();
        let must_update = if hasher_changed {
            true
        } else {
            match self.kind_must_update(hasher, encoded) {
                Some(b) => b,
                None => return wrong,
            }
        };
        let Some(valid) = self.verify(hasher, password, encoded) else {
            return wrong;
        };
        if !valid && !hasher_changed && must_update {
            self.harden_runtime(hasher, password, encoded);
        }
        CheckOutcome { valid, must_update }
    }

    /// Whether a stored hash should be re-made: another algorithm than the
    /// preferred one, or the preferred one with other parameters or a short
    /// salt. Unknown or malformed hashes say `false`.
    pub fn must_update(&self, encoded: &str) -> bool {
        match self.identify(encoded) {
            None => false,
            Some(kind) if kind != self.preferred() => true,
            Some(kind) => self.kind_must_update(kind, encoded).unwrap_or(false),
        }
    }

    /// `hasher.encode(password, salt)`; `None` where Django raises.
    fn encode(&self, kind: HasherKind, password: &str, salt: &str) -> Option<String> {
        // `_check_encode_args` of the hashers that format the salt themselves.
        let plain_salt = matches!(
            kind,
            HasherKind::Pbkdf2Sha256
                | HasherKind::Pbkdf2Sha1
                | HasherKind::Scrypt
                | HasherKind::Md5
                | HasherKind::Sha1
        );
        if plain_salt && (salt.is_empty() || salt.contains('$')) {
            return None;
        }
        match kind {
            HasherKind::Pbkdf2Sha256 | HasherKind::Pbkdf2Sha1 => Some(pbkdf2_encode(
                kind,
                password,
                salt,
                self.params.pbkdf2_iterations,
            )),
            HasherKind::Argon2 => {
                let p = &self.params;
                let params = Argon2Params {
                    variant: argon2::Algorithm::Argon2id,
                    version: argon2::Version::V0x13,
                    memory_cost: p.argon2_memory_cost,
                    time_cost: p.argon2_time_cost,
                    parallelism: p.argon2_parallelism,
                };
                argon2_encode(&params, password.as_bytes(), salt.as_bytes(), 32)
            }
            HasherKind::BCryptSha256 | HasherKind::BCrypt => bcrypt_encode(kind, password, salt),
            HasherKind::Scrypt => {
                let p = &self.params;
                let scrypt = ScryptHash {
                    work_factor: p.scrypt_work_factor,
                    salt: salt.to_string(),
                    block_size: p.scrypt_block_size,
                    parallelism: p.scrypt_parallelism,
                };
                scrypt.encode(password)
            }
            HasherKind::Md5 => Some(md5_encode(password, salt)),
            HasherKind::Sha1 => Some(sha1_encode(password, salt)),
            // "salt must be empty."
            HasherKind::UnsaltedSha1 => salt
                .is_empty()
                .then(|| format!("sha1$${}", hex::encode(Sha1::digest(password.as_bytes())))),
            HasherKind::UnsaltedMd5 => salt
                .is_empty()
                .then(|| hex::encode(Md5::digest(password.as_bytes()))),
            HasherKind::Crypt => None,
        }
    }

    /// `hasher.verify(password, encoded)`; `None` where Django would raise.
    fn verify(&self, kind: HasherKind, password: &str, encoded: &str) -> Option<bool> {
        match kind {
            HasherKind::Pbkdf2Sha256 | HasherKind::Pbkdf2Sha1 => {
                let d = Pbkdf2Hash::decode(encoded)?;
                // `iterations or self.iterations`: a stored 0 means the default.
                let iterations = if d.iterations == 0 {
                    self.params.pbkdf2_iterations
                } else {
                    d.iterations
                };
                let again = pbkdf2_encode(kind, password, &d.salt, iterations);
                Some(constant_time_compare(encoded, again))
            }
            HasherKind::Argon2 => argon2_verify(encoded, password),
            HasherKind::BCryptSha256 | HasherKind::BCrypt => {
                let (_, data) = encoded.split_once('$')?;
                let again = bcrypt_encode(kind, password, data)?;
                Some(constant_time_compare(encoded, again))
            }
            HasherKind::Scrypt => {
                let again = ScryptHash::decode(encoded)?.encode(password)?;
                Some(constant_time_compare(encoded, again))
            }
            HasherKind::Md5 => {
                let (_, salt, _) = split3(encoded)?;
                Some(constant_time_compare(encoded, md5_encode(password, salt)))
            }
            HasherKind::Sha1 => {
                let (_, salt, _) = split3(encoded)?;
                // `encode` raises on an empty salt.
                let again = self.encode(kind, password, salt)?;
                Some(constant_time_compare(encoded, again))
            }
            HasherKind::UnsaltedSha1 => {
                let again = self.encode(kind, password, "")?;
                Some(constant_time_compare(encoded, again))
            }
            HasherKind::UnsaltedMd5 => {
                let bare = match encoded.strip_prefix("md5$$") {
                    Some(rest) if encoded.chars().count() == 37 => rest,
                    _ => encoded,
                };
                let again = self.encode(kind, password, "")?;
                Some(constant_time_compare(bare, again))
            }
            HasherKind::Crypt => None,
        }
    }

    /// `preferred.must_update(encoded)` when `encoded` is of the preferred
    /// algorithm; `None` where Django's decode would raise.
    fn kind_must_update(&self, kind: HasherKind, encoded: &str) -> Option<bool> {
        let p = &self.params;
        Some(match kind {
            HasherKind::Pbkdf2Sha256 | HasherKind::Pbkdf2Sha1 => {
                let d = Pbkdf2Hash::decode(encoded)?;
                d.iterations != p.pbkdf2_iterations || salt_too_short(d.salt.chars().count())
            }
            HasherKind::Argon2 => {
                let e = argon2_extract_parameters(encoded)?;
                e.variant != "argon2id"
                    || e.version != 19
                    || e.hash_len != 32
                    || e.time_cost != u64::from(p.argon2_time_cost)
                    || e.memory_cost != u64::from(p.argon2_memory_cost)
                    || e.parallelism != u64::from(p.argon2_parallelism)
                    || salt_too_short(e.salt_chars?)
            }
            HasherKind::BCryptSha256 | HasherKind::BCrypt => {
                bcrypt_decode_work_factor(encoded)? != i64::from(p.bcrypt_rounds)
            }
            HasherKind::Scrypt => {
                let d = ScryptHash::decode(encoded)?;
                d.work_factor != p.scrypt_work_factor
                    || d.block_size != p.scrypt_block_size
                    || d.parallelism != p.scrypt_parallelism
            }
            HasherKind::Md5 | HasherKind::Sha1 => {
                let (_, salt, _) = split3(encoded)?;
                salt_too_short(salt.chars().count())
            }
            // `BasePasswordHasher.must_update`.
            HasherKind::UnsaltedSha1 | HasherKind::UnsaltedMd5 | HasherKind::Crypt => false,
        })
    }

    /// `harden_runtime`: only PBKDF2 (the missing iterations) and bcrypt (the
    /// missing doublings) pad; Django leaves argon2, scrypt and MD5 alone.
    fn harden_runtime(&self, kind: HasherKind, password: &str, encoded: &str) {
        match kind {
            HasherKind::Pbkdf2Sha256 | HasherKind::Pbkdf2Sha1 => {
                let Some(d) = Pbkdf2Hash::decode(encoded) else {
                    return;
                };
                let extra = i64::from(self.params.pbkdf2_iterations) - i64::from(d.iterations);
                if extra > 0 {
                    std::hint::black_box(pbkdf2_encode(kind, password, &d.salt, extra as u32));
                }
            }
            HasherKind::BCryptSha256 | HasherKind::BCrypt => {
                let Some((_, data)) = encoded.split_once('$') else {
                    return;
                };
                let Some(rounds) = bcrypt_decode_work_factor(encoded) else {
                    return;
                };
                let salt: String = data.chars().take(29).collect();
                let missing = i64::from(self.params.bcrypt_rounds) - rounds;
                if missing > 0 {
                    let times = (1u64 << missing.min(40)) - 1;
                    for _ in 0..times {
                        std::hint::black_box(bcrypt_encode(kind, password, &salt));
                    }
                }
            }
            HasherKind::Argon2
            | HasherKind::Scrypt
            | HasherKind::Md5
            | HasherKind::Sha1
            | HasherKind::UnsaltedSha1
            | HasherKind::UnsaltedMd5
            | HasherKind::Crypt => {}
        }
    }
}

impl fmt::Display for HasherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm())
    }
}

/// `is_password_usable`: not `!`-prefixed.
pub fn is_password_usable(encoded: &str) -> bool {
    !encoded.starts_with(UNUSABLE_PASSWORD_PREFIX)
}

/// The algorithm name `identify_hasher` would look up for a stored hash,
/// whether or not such a hasher is configured: `unsalted_md5` and
/// `unsalted_sha1` for Django's ancient forms, otherwise the part before the
/// first `$`. `None` for unusable (`!`) and empty values.
/// The iterations of a PBKDF2 hash (SHA-256 or SHA-1), `None` for any other.
pub fn pbkdf2_iterations_of(encoded: &str) -> Option<u32> {
    matches!(algorithm_of(encoded)?, "pbkdf2_sha256" | "pbkdf2_sha1")
        .then(|| Pbkdf2Hash::decode(encoded).map(|d| d.iterations))
        .flatten()
}

pub fn algorithm_of(encoded: &str) -> Option<&str> {
    if encoded.is_empty() || !is_password_usable(encoded) {
        return None;
    }
    let len = encoded.chars().count();
    if (len == 32 && !encoded.contains('$')) || (len == 37 && encoded.starts_with("md5$$")) {
        Some("unsalted_md5")
    } else if len == 46 && encoded.starts_with("sha1$$") {
        Some("unsalted_sha1")
    } else {
        Some(encoded.split('$').next().unwrap_or(""))
    }
}

/// `BasePasswordHasher.salt()`: ceil(128 / log2(62)) = 22 characters.
fn new_salt() -> String {
    let count = (SALT_ENTROPY_BITS / (RANDOM_STRING_CHARS.len() as f64).log2()).ceil() as usize;
    get_random_string(count, RANDOM_STRING_CHARS)
}

/// `must_update_salt`.
fn salt_too_short(chars: usize) -> bool {
    (chars as f64) * (RANDOM_STRING_CHARS.len() as f64).log2() < SALT_ENTROPY_BITS
}

/// Python's `int(s)` for the decimal fields of a hash: surrounding
/// whitespace, a sign and single underscores between digits are allowed.
fn py_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -n } else { n })
}

/// `algorithm$a$b` (as Python's `split("$", 2)` unpacked into three names).
fn split3(encoded: &str) -> Option<(&str, &str, &str)> {
    let mut parts = encoded.splitn(3, '$');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

// ---- PBKDF2 -----------------------------------------------------------------

struct Pbkdf2Hash {
    iterations: u32,
    salt: String,
}

impl Pbkdf2Hash {
    /// `algorithm, iterations, salt, hash = encoded.split("$", 3)`.
    fn decode(encoded: &str) -> Option<Pbkdf2Hash> {
        let mut parts = encoded.splitn(4, '$');
        let (_algorithm, iterations, salt, _hash) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        Some(Pbkdf2Hash {
            iterations: u32::try_from(py_int(iterations)?).ok()?,
            salt: salt.to_string(),
        })
    }
}

fn pbkdf2_encode(kind: HasherKind, password: &str, salt: &str, iterations: u32) -> String {
    let hash = match kind {
        HasherKind::Pbkdf2Sha1 => {
            let mut out = [0u8; 20];
            pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
            STANDARD.encode(out)
        }
        _ => STANDARD.encode(super::pbkdf2::pbkdf2_hmac_sha256(
            password.as_bytes(),
            salt.as_bytes(),
            iterations,
        )),
    };
    format!("{}${}${}${}", kind.algorithm(), iterations, salt, hash)
}

// ---- MD5 and SHA1 (salted) -------------------------------------------------

fn md5_encode(password: &str, salt: &str) -> String {
    let digest = Md5::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    format!("md5${}${}", salt, hex::encode(digest))
}

/// `SHA1PasswordHasher.encode`: `sha1((salt + password))`, hex.
fn sha1_encode(password: &str, salt: &str) -> String {
    let digest = Sha1::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    format!("sha1${}${}", salt, hex::encode(digest))
}

// ---- bcrypt -------------------------------------------------------------------

/// bcrypt's own base64 (`./A-Za-z0-9`), unpadded.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::BCRYPT,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// `bcrypt.gensalt(rounds)`: `$2b$NN$` and 16 random bytes.
fn bcrypt_gensalt(rounds: u32) -> String {
    let mut raw = [0u8; 16];
    OsRng.fill_bytes(&mut raw);
    format!("$2b${:02}${}", rounds, BCRYPT_B64.encode(raw))
}

/// `BCrypt(SHA256)PasswordHasher.encode(password, salt)`: Python's
/// `bcrypt.hashpw` reads the version, cost and first 22 salt characters of the
/// setting string and formats the result in that version.
fn bcrypt_encode(kind: HasherKind, password: &str, setting: &str) -> Option<String> {
    let mut parts = setting.splitn(4, '$');
    let (empty, version, cost, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
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
    let secret = match kind {
        // `binascii.hexlify(sha256(password).digest())`, so long passwords are
        // not truncated at 72 bytes.
        HasherKind::BCryptSha256 => hex::encode(Sha256::digest(password.as_bytes())).into_bytes(),
        _ => password.as_bytes().to_vec(),
    };
    let parts = bcrypt::hash_with_salt(&secret, cost, salt).ok()?;
    Some(format!(
        "{}${}",
        kind.algorithm(),
        parts.format_for_version(version)
    ))
}

/// `int(work_factor)` from `algorithm, empty, algostr, work_factor, data =
/// encoded.split("$", 4)`.
fn bcrypt_decode_work_factor(encoded: &str) -> Option<i64> {
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

// ---- scrypt -------------------------------------------------------------------

/// `scrypt$work_factor$salt$block_size$parallelism$hash`.
struct ScryptHash {
    work_factor: u64,
    salt: String,
    block_size: u32,
    parallelism: u32,
}

/// OpenSSL's default `maxmem` (Django passes `maxmem=0`): parameters needing
/// more memory than this make Python's `hashlib.scrypt` raise.
const SCRYPT_MAX_MEM: u128 = 32 * 1024 * 1024;

impl ScryptHash {
    fn decode(encoded: &str) -> Option<ScryptHash> {
        let parts: Vec<&str> = encoded.splitn(7, '$').collect();
        if parts.len() != 6 {
            return None;
        }
        Some(ScryptHash {
            work_factor: u64::try_from(py_int(parts[1])?).ok()?,
            salt: parts[2].to_string(),
            block_size: u32::try_from(py_int(parts[3])?).ok()?,
            parallelism: u32::try_from(py_int(parts[4])?).ok()?,
        })
    }

    /// `ScryptPasswordHasher.encode(password, salt, n, r, p)`; `None` where
    /// `hashlib.scrypt` raises (N not a power of two, too much memory).
    fn encode(&self, password: &str) -> Option<String> {
        let (n, r, p) = (self.work_factor, self.block_size, self.parallelism);
        if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
            return None;
        }
        let memory =
            u128::from(p) * 128 * u128::from(r) + 128 * u128::from(r) * (u128::from(n) + 2);
        if memory > SCRYPT_MAX_MEM {
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

// ---- Argon2 -------------------------------------------------------------------

struct Argon2Params {
    variant: argon2::Algorithm,
    version: argon2::Version,
    memory_cost: u32,
    time_cost: u32,
    parallelism: u32,
}

/// `"argon2" + argon2.low_level.hash_secret(...)`: the PHC string with
/// unpadded standard base64.
fn argon2_encode(
    params: &Argon2Params,
    password: &[u8],
    salt: &[u8],
    hash_len: usize,
) -> Option<String> {
    let hash = argon2_raw(params, password, salt, hash_len)?;
    let variant = match params.variant {
        argon2::Algorithm::Argon2d => "argon2d",
        argon2::Algorithm::Argon2i => "argon2i",
        argon2::Algorithm::Argon2id => "argon2id",
    };
    Some(format!(
        "argon2${}$v={}$m={},t={},p={}${}${}",
        variant,
        params.version as u32,
        params.memory_cost,
        params.time_cost,
        params.parallelism,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    ))
}

fn argon2_raw(
    params: &Argon2Params,
    password: &[u8],
    salt: &[u8],
    hash_len: usize,
) -> Option<Vec<u8>> {
    let p = argon2::Params::new(
        params.memory_cost,
        params.time_cost,
        params.parallelism,
        Some(hash_len),
    )
    .ok()?;
    let hasher = argon2::Argon2::new(params.variant, params.version, p);
    let mut out = vec![0u8; hash_len];
    hasher.hash_password_into(password, salt, &mut out).ok()?;
    Some(out)
}

/// `argon2.PasswordHasher().verify("$" + rest, password)`, which hands the
/// string to the reference C library: `$type[$v=N]$m=M,t=T,p=P$salt$hash`,
/// a missing version meaning 0x10.
///
/// `None` (Django raises) when the type prefix is not one argon2-cffi knows;
/// any other malformation is a plain mismatch, as the C library reports a
/// decoding failure and Django catches it.
fn argon2_verify(encoded: &str, password: &str) -> Option<bool> {
    let rest = encoded.strip_prefix("argon2$")?;
    let header: String = format!("${rest}").chars().take(9).collect();
    if !matches!(header.as_str(), "$argon2id" | "$argon2i$" | "$argon2d$") {
        return None;
    }
    Some(argon2_verify_phc(rest, password).unwrap_or(false))
}

fn argon2_verify_phc(rest: &str, password: &str) -> Option<bool> {
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
    let actual = argon2_raw(&params, password.as_bytes(), &salt, expected.len())?;
    Some(constant_time_compare(actual, expected))
}

/// What `argon2.extract_parameters` and Django's `decode` read for
/// `must_update`.
struct Argon2Extracted {
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

fn argon2_extract_parameters(encoded: &str) -> Option<Argon2Extracted> {
    let rest = encoded.strip_prefix("argon2")?;
    let mut parts: Vec<&str> = rest.split('$').collect();
    // argon2 1.2 hashes have no version field; argon2-cffi reads them as v=18.
    if parts.len() == 5 {
        parts.insert(2, "v=18");
    }
    if parts.len() != 6 || !parts[0].is_empty() {
        return None;
    }
    if !matches!(parts[1], "argon2id" | "argon2i" | "argon2d") {
        return None;
    }
    let mut values = std::collections::BTreeMap::new();
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
    Some(Argon2Extracted {
        variant: parts[1].to_string(),
        version: values["v"],
        hash_len: decoded_len(parts[5].len()),
        time_cost: values["t"],
        memory_cost: values["m"],
        parallelism: values["p"],
        salt_chars: lenient_b64_decode(&padded).map(|b| b.len()),
    })
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

#[cfg(test)]
mod tests;
