//! `django.contrib.auth.hashers`: making and checking the values of the
//! `password` column exactly as Django 5.2 does, so that hashes written by
//! either side verify on the other and outdated ones are upgraded the same way.
//!
//! Laid out as Django's module: each hasher class is one [`PasswordHasher`]
//! (a submodule per algorithm), and [`Hashers`], the configured
//! `PASSWORD_HASHERS`, carries `make_password`, `check_password` and
//! `identify_hasher`.
//!
//! All of this is CPU-bound on purpose (a full PBKDF2 is about a million HMACs);
//! callers on an async runtime should use `spawn_blocking`.

mod argon2;
mod bcrypt;
mod crypt;
mod md5;
mod pbkdf2;
mod scrypt;
mod sha1;
#[cfg(test)]
mod tests;

use std::fmt;

use sha2::Digest;
use thiserror::Error;

use super::crypto::{get_random_string, RANDOM_STRING_CHARS};

pub use self::pbkdf2::pbkdf2_iterations_of;

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

/// Every class of `django.contrib.auth.hashers` that a `PASSWORD_HASHERS`
/// entry may name: Django 5.2's, and the SHA1 and unsalted ones of Django
/// 4.2 and 5.0 and 4.2's `CryptPasswordHasher` (`Release::ships` says which
/// release has which); hashes in those forms are "unknown" to later
/// releases.
const ALL_HASHERS: &[&dyn PasswordHasher] = &[
    &pbkdf2::Pbkdf2Hasher::Sha256,
    &pbkdf2::Pbkdf2Hasher::Sha1,
    &argon2::Argon2Hasher,
    &bcrypt::BCryptHasher::Sha256,
    &bcrypt::BCryptHasher::Plain,
    &scrypt::ScryptHasher,
    &md5::Md5Hasher,
    &sha1::Sha1Hasher,
    &sha1::UnsaltedSha1Hasher,
    &md5::UnsaltedMd5Hasher,
    &crypt::CryptHasher,
];

/// `BasePasswordHasher`: one of Django's hasher classes. Its class
/// attributes (the work factors) come in as `params`, so one static value
/// per class serves every configuration. `None` stands where Django raises.
pub trait PasswordHasher: fmt::Debug + Sync {
    /// The class name in `django.contrib.auth.hashers`.
    fn class_name(&self) -> &'static str;

    /// The class's `algorithm`, which is also the prefix of its hashes.
    fn algorithm(&self) -> &'static str;

    /// Whether hashes can be made and checked here at all; only
    /// `CryptPasswordHasher`, which needs the system's `crypt(3)`, cannot.
    fn supported(&self) -> bool {
        true
    }

    /// `salt()`: ceil(128 / log2(62)) = 22 random characters.
    fn salt(&self, _params: &HasherParams) -> String {
        let count = (SALT_ENTROPY_BITS / (RANDOM_STRING_CHARS.len() as f64).log2()).ceil() as usize;
        get_random_string(count, RANDOM_STRING_CHARS)
    }

    /// `encode(password, salt)`.
    fn encode(&self, password: &str, salt: &str, params: &HasherParams) -> Option<String>;

    /// `verify(password, encoded)`.
    fn verify(&self, password: &str, encoded: &str, params: &HasherParams) -> Option<bool>;

    /// `must_update(encoded)`, asked only of the preferred hasher about a
    /// hash of its own algorithm.
    fn must_update(&self, _encoded: &str, _params: &HasherParams) -> Option<bool> {
        Some(false)
    }

    /// `harden_runtime(password, encoded)`: after a wrong password against
    /// a hash with a lower work factor, do the missing work so the answer
    /// takes as long as for a current hash. Only PBKDF2 and bcrypt pad;
    /// Django leaves the others alone.
    fn harden_runtime(&self, _password: &str, _encoded: &str, _params: &HasherParams) {}
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
    hashers: Vec<&'static dyn PasswordHasher>,
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
        let hashers = names
            .iter()
            .map(|n| {
                let n = n.as_ref();
                n.strip_prefix("django.contrib.auth.hashers.")
                    .and_then(|class| {
                        ALL_HASHERS
                            .iter()
                            .copied()
                            .find(|h| h.class_name() == class)
                    })
                    .ok_or_else(|| HasherError::UnknownHasher(n.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hashers.is_empty() {
            return Err(HasherError::Empty);
        }
        Ok(Hashers {
            hashers,
            params: HasherParams::default(),
        })
    }

    /// `get_hashers()`: the configured classes in `PASSWORD_HASHERS` order.
    pub fn all(&self) -> &[&'static dyn PasswordHasher] {
        &self.hashers
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
    pub fn preferred(&self) -> &'static dyn PasswordHasher {
        self.hashers[0]
    }

    /// `make_password(password)`: the preferred hasher with a fresh salt.
    pub fn make_password(&self, password: &str) -> String {
        let hasher = self.preferred();
        hasher
            .encode(password, &hasher.salt(&self.params), &self.params)
            .expect("a fresh salt and the hasher parameters are valid")
    }

    /// `make_password(password, salt)`: Django's `hasher.encode(password,
    /// salt)` with this configuration's work factors. For the bcrypt hashers
    /// the salt is a bcrypt setting string (`$2b$12$` + 22 characters).
    /// `None` where Django raises (an empty salt or one containing `$`, a
    /// malformed bcrypt setting, an argon2 salt under 8 bytes).
    pub fn make_password_with_salt(&self, password: &str, salt: &str) -> Option<String> {
        self.preferred().encode(password, salt, &self.params)
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
    pub fn identify(&self, encoded: &str) -> Option<&'static dyn PasswordHasher> {
        let algorithm = algorithm_of(encoded)?;
        self.hashers
            .iter()
            .copied()
            .find(|h| h.algorithm() == algorithm)
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
        let preferred = self.preferred();
        let hasher_changed = hasher.algorithm() != preferred.algorithm();
        let must_update = if hasher_changed {
            true
        } else {
            match preferred.must_update(encoded, &self.params) {
                Some(b) => b,
                None => return wrong,
            }
        };
        let Some(valid) = hasher.verify(password, encoded, &self.params) else {
            return wrong;
        };
        if !valid && !hasher_changed && must_update {
            hasher.harden_runtime(password, encoded, &self.params);
        }
        CheckOutcome { valid, must_update }
    }

    /// Whether a stored hash should be re-made: another algorithm than the
    /// preferred one, or the preferred one with other parameters or a short
    /// salt. Unknown or malformed hashes say `false`.
    pub fn must_update(&self, encoded: &str) -> bool {
        match self.identify(encoded) {
            None => false,
            Some(h) if h.algorithm() != self.preferred().algorithm() => true,
            Some(h) => h.must_update(encoded, &self.params).unwrap_or(false),
        }
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

/// `_check_encode_args` of the hashers that format the salt themselves:
/// Django raises on an empty salt or one containing `$`.
fn check_encode_args(salt: &str) -> Option<()> {
    (!salt.is_empty() && !salt.contains('$')).then_some(())
}

/// `must_update_salt`.
fn salt_too_short(chars: usize) -> bool {
    (chars as f64) * (RANDOM_STRING_CHARS.len() as f64).log2() < SALT_ENTROPY_BITS
}

/// `algorithm$salt$hex(digest(salt + password))`: the salted MD5 and SHA1
/// hashers' `encode` once the arguments are checked.
fn salted_hex_digest<D: Digest>(algorithm: &str, password: &str, salt: &str) -> String {
    let digest = D::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    format!("{algorithm}${salt}${}", hex::encode(digest))
}

/// `must_update` of the salted MD5 and SHA1 hashers: only a short salt.
fn salted_hex_must_update(encoded: &str) -> Option<bool> {
    let (_, salt, _) = split3(encoded)?;
    Some(salt_too_short(salt.chars().count()))
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
