//! The Django releases a site may run (`DJANGO_VERSION`) and what differs
//! between them in stored data. A hash made with work factors other than
//! the release's own is one `must_update` replaces at the next login, so
//! this server must hash as the Django beside it does: with 5.2's factors
//! next to a 6.1 site it would lower every hash it touched, and the two
//! would rewrite each other's at every login.
//!
//! Read from each release's `django/contrib/auth/hashers.py`; the default
//! `PASSWORD_HASHERS` list is the same in all of them. This module sits
//! above `hashers`, which implements the classes with their work factors as
//! parameters and knows nothing of releases.

use crate::django::hashers::{HasherError, HasherParams, Hashers, PasswordHasher};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    Django4_2,
    Django5_0,
    Django5_1,
    Django5_2,
    Django6_0,
    Django6_1,
}

impl Release {
    pub const ALL: [Release; 6] = [
        Release::Django4_2,
        Release::Django5_0,
        Release::Django5_1,
        Release::Django5_2,
        Release::Django6_0,
        Release::Django6_1,
    ];

    /// `4.2`, `5.2`, …; a patch level (`5.2.19`) is accepted and ignored.
    pub fn parse(text: &str) -> Option<Release> {
        let mut parts = text.trim().split('.');
        let feature = format!("{}.{}", parts.next()?, parts.next()?);
        if parts.any(|p| p.parse::<u32>().is_err()) {
            return None;
        }
        Release::ALL.into_iter().find(|r| r.name() == feature)
    }

    pub fn name(self) -> &'static str {
        match self {
            Release::Django4_2 => "4.2",
            Release::Django5_0 => "5.0",
            Release::Django5_1 => "5.1",
            Release::Django5_2 => "5.2",
            Release::Django6_0 => "6.0",
            Release::Django6_1 => "6.1",
        }
    }

    /// The work factors of the release's hasher classes. They differ in
    /// `PBKDF2PasswordHasher.iterations` and, before 5.1,
    /// `ScryptPasswordHasher.parallelism` (1, then 5); argon2's and
    /// bcrypt's are the same throughout.
    pub fn hasher_params(self) -> HasherParams {
        let pbkdf2_iterations = match self {
            Release::Django4_2 => 600_000,
            Release::Django5_0 => 720_000,
            Release::Django5_1 => 870_000,
            Release::Django5_2 => 1_000_000,
            Release::Django6_0 => 1_200_000,
            Release::Django6_1 => 1_500_000,
        };
        let scrypt_parallelism = if self < Release::Django5_1 { 1 } else { 5 };
        HasherParams {
            pbkdf2_iterations,
            scrypt_parallelism,
            ..HasherParams::default()
        }
    }

    /// Whether the release has the hasher class: `CryptPasswordHasher` was
    /// removed in 5.0, the SHA1 and unsalted ones in 5.1
    /// (docs/DJANGO_RELEASES.md 1.3).
    pub fn ships(self, hasher: &dyn PasswordHasher) -> bool {
        match hasher.class_name() {
            "CryptPasswordHasher" => self < Release::Django5_0,
            "SHA1PasswordHasher" | "UnsaltedSHA1PasswordHasher" | "UnsaltedMD5PasswordHasher" => {
                self < Release::Django5_1
            }
            _ => true,
        }
    }

    /// [`Hashers::from_names`] for a site on this release: a class the
    /// release does not ship is an error naming the release, and
    /// `CryptPasswordHasher` (which would need the system's `crypt(3)`) is
    /// refused. The work factors are the release's.
    pub fn password_hashers<S: AsRef<str>>(self, names: &[S]) -> Result<Hashers, HasherError> {
        let hashers = Hashers::from_names(names)?;
        for (name, &hasher) in names.iter().zip(hashers.all()) {
            if !self.ships(hasher) {
                return Err(HasherError::NotInRelease(
                    name.as_ref().to_string(),
                    self.name(),
                ));
            }
            if !hasher.supported() {
                return Err(HasherError::Unsupported(name.as_ref().to_string()));
            }
        }
        Ok(hashers.with_params(self.hasher_params()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_by_name() {
        assert_eq!(Release::parse("6.1"), Some(Release::Django6_1));
        assert_eq!(Release::parse("4.2.30"), Some(Release::Django4_2));
        for bad in ["", "5", "3.2", "5.3", "5.2.x", "6.1.3.1a"] {
            assert_eq!(Release::parse(bad), None, "{bad}");
        }
        assert_eq!(Release::Django5_2.hasher_params(), HasherParams::default());
    }

    /// A hash made by one release verifies under every other, and only the
    /// release whose factors it has leaves it alone.
    #[test]
    fn each_release_upgrades_only_hashes_with_other_factors() {
        for maker in Release::ALL {
            let mut params = maker.hasher_params();
            // Fewer iterations so the test is quick; the ratio between
            // releases is what `must_update` compares, so scale them all.
            params.pbkdf2_iterations /= 1000;
            let encoded = Hashers::default()
                .with_params(params.clone())
                .make_password("secret");
            for checker in Release::ALL {
                let mut theirs = checker.hasher_params();
                theirs.pbkdf2_iterations /= 1000;
                let outcome = Hashers::default()
                    .with_params(theirs.clone())
                    .check_password("secret", &encoded);
                assert!(outcome.valid, "{maker:?} → {checker:?}");
                assert_eq!(
                    outcome.must_update,
                    theirs.pbkdf2_iterations != params.pbkdf2_iterations,
                    "{maker:?} → {checker:?}"
                );
            }
        }
    }

    /// Each release's own Django (`compat-tests/tools/release_vectors.py`)
    /// judged hashes made under every release's defaults: the right
    /// password logs in, and its hash is replaced (`setter_called`) exactly
    /// when that release would replace it.
    #[test]
    fn hashes_are_upgraded_exactly_as_each_release_upgrades_them() {
        const PASSWORD: &str = "correct horse battery staple";
        for release in Release::ALL {
            let vectors = crate::django::vectors::release(release);
            let pbkdf2 = vectors["default_hashers"][0]["iterations"]
                .as_u64()
                .unwrap();
            let scrypt = vectors["default_hashers"][4]["parallelism"]
                .as_u64()
                .unwrap();
            let params = release.hasher_params();
            assert_eq!(
                u64::from(params.pbkdf2_iterations),
                pbkdf2,
                "{}",
                release.name()
            );
            assert_eq!(
                u64::from(params.scrypt_parallelism),
                scrypt,
                "{}",
                release.name()
            );
            let hashers = Hashers::default().with_params(params);
            for case in vectors["stored"].as_array().unwrap() {
                let encoded = case["encoded"].as_str().unwrap();
                let right = &case["right"];
                let outcome = hashers.check_password(PASSWORD, encoded);
                let what = format!("Django {}: {}", release.name(), case["name"]);
                assert_eq!(
                    Some(outcome.valid),
                    right["check_password"].as_bool(),
                    "{what}"
                );
                assert_eq!(
                    Some(outcome.valid && outcome.must_update),
                    right["setter_called"].as_bool(),
                    "{what}"
                );
            }
        }
    }

    /// `stored_with_all_hashers`: with every hasher class the release
    /// ships listed (the SHA1 and unsalted ones too in 4.2 and 5.0), each
    /// stored hash logs in, and is replaced, exactly as that release does.
    #[test]
    fn legacy_hashers_verify_and_upgrade_where_the_release_has_them() {
        const PASSWORD: &str = "correct horse battery staple";
        for release in Release::ALL {
            let vectors = crate::django::vectors::release(release);
            let all = &vectors["stored_with_all_hashers"];
            let names: Vec<&str> = all["PASSWORD_HASHERS"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            let legacy = names.iter().any(|n| n.contains("Unsalted"));
            assert_eq!(legacy, release < Release::Django5_1, "{names:?}");
            let hashers = release
                .password_hashers(&names)
                .unwrap_or_else(|e| panic!("Django {}: {e}", release.name()));
            let mut legacy_rows = 0;
            for case in all["rows"].as_array().unwrap() {
                let encoded = case["encoded"].as_str().unwrap();
                let right = &case["right"];
                let outcome = hashers.check_password(PASSWORD, encoded);
                let what = format!("Django {}: {}", release.name(), case["name"]);
                assert_eq!(
                    Some(outcome.valid),
                    right["check_password"].as_bool(),
                    "{what}"
                );
                assert_eq!(
                    Some(outcome.valid && outcome.must_update),
                    right["setter_called"].as_bool(),
                    "{what}"
                );
                if ["sha1", "unsalted_md5", "unsalted_sha1"]
                    .contains(&right["identified_as"].as_str().unwrap_or(""))
                {
                    assert!(outcome.valid, "{what}");
                    assert!(!hashers.check_password("wrong", encoded).valid, "{what}");
                    legacy_rows += 1;
                }
            }
            let expected = if legacy { 3 } else { 0 };
            assert_eq!(legacy_rows, expected, "Django {}", release.name());
        }
    }

    /// A class the release does not ship is a configuration error naming
    /// the release; `crypt` (4.2 only) is refused as not supported.
    #[test]
    fn hashers_the_release_lacks_are_refused() {
        let with = |class: &str| {
            vec![
                "django.contrib.auth.hashers.PBKDF2PasswordHasher".to_string(),
                format!("django.contrib.auth.hashers.{class}"),
            ]
        };
        for release in Release::ALL {
            for class in [
                "SHA1PasswordHasher",
                "UnsaltedSHA1PasswordHasher",
                "UnsaltedMD5PasswordHasher",
            ] {
                let got = release.password_hashers(&with(class));
                if release <= Release::Django5_0 {
                    assert!(got.is_ok(), "{class} in {release:?}");
                } else {
                    let err = got.unwrap_err();
                    assert!(
                        matches!(err, HasherError::NotInRelease(_, r) if r == release.name()),
                        "{class} in {release:?}: {err}"
                    );
                    assert!(err
                        .to_string()
                        .contains(&format!("Django {}", release.name())));
                }
            }
            let crypt = release
                .password_hashers(&with("CryptPasswordHasher"))
                .unwrap_err();
            if release == Release::Django4_2 {
                assert!(matches!(crypt, HasherError::Unsupported(_)), "{crypt}");
                assert!(crypt.to_string().contains("crypt(3)"), "{crypt}");
            } else {
                assert!(matches!(crypt, HasherError::NotInRelease(..)), "{crypt}");
            }
        }
        // The release's work factors come along.
        let h = Release::Django4_2
            .password_hashers(&with("SHA1PasswordHasher"))
            .unwrap();
        assert_eq!(h.params().pbkdf2_iterations, 600_000);
    }
}
