//! The Django compatibility core: byte-for-byte re-implementations of the
//! parts of Django 5.2 whose output outlives a request — password hashes,
//! signed values and sessions, CSRF tokens, the session auth hash — plus the
//! permission rules of `ModelBackend` and Django's checks on untrusted input
//! (e-mail addresses, redirect targets). Nothing here touches HTTP,
//! the database or mail; the web, db and mail layers call these plain
//! functions. Unit tests check them against `compat-tests/vectors/django.json`
//! and `compat-tests/vectors/validators.json`, which a real Django produced
//! (`compat-tests/tools/make_vectors.py`, `make_validator_vectors.py`).

pub mod crypto;
pub mod csrf;
pub mod email_validator;
pub mod form_fields;
pub mod formsets;
pub mod hashers;
pub mod host;
pub mod http_date;
pub mod ip;
pub mod login_redirect;
pub mod password_validation;
pub mod pbkdf2;
pub mod perms;
pub mod python_json;
pub mod releases;
pub mod safe_url;
pub mod security;
pub mod sessions;
pub mod signing;
pub mod tokens;
pub mod unicodedata;
pub mod urlparse;
pub mod zlib;

#[cfg(test)]
pub(crate) mod vectors;
