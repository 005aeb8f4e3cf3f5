//! Django 4.2's `CryptPasswordHasher` (`crypt$$` and the system `crypt(3)`
//! of the password): known by name only, so that a configuration listing it
//! is refused clearly (`Release::password_hashers`) rather than as an unknown
//! class.

use super::{HasherParams, PasswordHasher};

#[derive(Debug)]
pub(super) struct CryptHasher;

impl PasswordHasher for CryptHasher {
    fn class_name(&self) -> &'static str {
        "CryptPasswordHasher"
    }

    fn algorithm(&self) -> &'static str {
        "crypt"
    }

    fn supported(&self) -> bool {
        false
    }

    fn encode(&self, _password: &str, _salt: &str, _params: &HasherParams) -> Option<String> {
        None
    }

    fn verify(&self, _password: &str, _encoded: &str, _params: &HasherParams) -> Option<bool> {
        None
    }
}
