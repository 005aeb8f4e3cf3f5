use super::*;
use crate::django::vectors;

/// The low work factors `make_vectors.py` gives its "fast" hasher
/// subclasses, so most vectors run quickly in a debug build.
fn params_for(profile: &str) -> HasherParams {
    match profile {
        "default" => HasherParams::default(),
        "fast" => {
            let p = &vectors::all()["hasher_profiles"]["fast"];
            let n = |k: &str| p[k].as_u64().unwrap();
            HasherParams {
                pbkdf2_iterations: n("pbkdf2_iterations") as u32,
                argon2_time_cost: n("argon2_time_cost") as u32,
                argon2_memory_cost: n("argon2_memory_cost") as u32,
                argon2_parallelism: n("argon2_parallelism") as u32,
                bcrypt_rounds: n("bcrypt_rounds") as u32,
                scrypt_work_factor: n("scrypt_work_factor"),
                scrypt_block_size: n("scrypt_block_size") as u32,
                scrypt_parallelism: n("scrypt_parallelism") as u32,
            }
        }
        other => panic!("unknown profile {other}"),
    }
}

fn hashers_for(case: &serde_json::Value) -> Hashers {
    let names = match case["hashers"].as_array() {
        Some(_) => vectors::strings(case, "hashers"),
        None => DEFAULT_PASSWORD_HASHERS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    Hashers::from_names(&names)
        .unwrap()
        .with_params(params_for(vectors::str(case, "profile")))
}

/// Pbkdf2 vectors at Django's real million iterations take seconds each in
/// a debug build; they run on their own threads.
fn is_full_cost(case: &serde_json::Value) -> bool {
    vectors::str(case, "profile") == "default"
        && vectors::str(case, "encoded").starts_with("pbkdf2_sha256$")
}

fn check_case(case: &serde_json::Value) {
    let all = [
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "argon2",
        "bcrypt_sha256",
        "bcrypt",
        "scrypt",
        "md5",
    ];
    let hashers = hashers_for(case);
    let encoded = vectors::str(case, "encoded");
    let got = hashers.check_password(vectors::str(case, "password"), encoded);
    let want = CheckOutcome {
        valid: case["valid"].as_bool().unwrap(),
        must_update: case["must_update"].as_bool().unwrap(),
    };
    assert_eq!(got, want, "{case}");
    if !case["django_raises"].as_bool().unwrap() {
        assert_eq!(hashers.must_update(encoded), want.must_update, "{case}");
    }
    // identify_hasher with every hasher (and stand-ins for the unsalted
    // ones) installed; where Django found none, neither may we.
    match case["identified"].as_str() {
        Some(algorithm) => assert_eq!(algorithm_of(encoded), Some(algorithm), "{encoded:?}"),
        None => {
            let known = ["unsalted_md5", "unsalted_sha1"];
            let ours = algorithm_of(encoded);
            assert!(
                ours.is_none_or(|a| !known.contains(&a) && !all.contains(&a)),
                "{encoded:?} -> {ours:?}"
            );
        }
    }
}

#[test]
fn check_password_matches_django() {
    let cases = vectors::list("check_password");
    assert!(cases.len() >= 30);
    let (full, cheap): (Vec<_>, Vec<_>) = cases.iter().partition(|c| is_full_cost(c));
    assert!(!full.is_empty());
    std::thread::scope(|scope| {
        for case in full {
            scope.spawn(move || check_case(case));
        }
        for case in cheap {
            check_case(case);
        }
    });
}

#[test]
fn encode_matches_django() {
    let cases = vectors::list("encode");
    assert!(cases.len() >= 8);
    for case in cases {
        let hashers = hashers_for(case);
        let got = hashers
            .make_password_with_salt(vectors::str(case, "password"), vectors::str(case, "salt"));
        assert_eq!(
            got.as_deref(),
            Some(vectors::str(case, "encoded")),
            "{case}"
        );
    }
}

#[test]
fn made_passwords_verify_and_are_current() {
    for (names, profile) in [
        (
            vec!["django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher"],
            "fast",
        ),
        (
            vec!["django.contrib.auth.hashers.Argon2PasswordHasher"],
            "fast",
        ),
        (
            vec!["django.contrib.auth.hashers.BCryptSHA256PasswordHasher"],
            "fast",
        ),
        (
            vec!["django.contrib.auth.hashers.BCryptPasswordHasher"],
            "fast",
        ),
        (
            vec!["django.contrib.auth.hashers.ScryptPasswordHasher"],
            "fast",
        ),
        (
            vec!["django.contrib.auth.hashers.MD5PasswordHasher"],
            "fast",
        ),
    ] {
        let hashers = Hashers::from_names(&names)
            .unwrap()
            .with_params(params_for(profile));
        let encoded = hashers.make_password("pässword");
        assert_eq!(
            algorithm_of(&encoded),
            Some(hashers.preferred().algorithm())
        );
        let ok = hashers.check_password("pässword", &encoded);
        assert_eq!(
            ok,
            CheckOutcome {
                valid: true,
                must_update: false
            },
            "{encoded}"
        );
        assert!(!hashers.check_password("password", &encoded).valid);
        assert_ne!(
            encoded,
            hashers.make_password("pässword"),
            "salts are random"
        );
    }
}

#[test]
fn default_make_password_is_pbkdf2_sha256_with_a_22_char_salt() {
    let defaults = Hashers::default();
    assert_eq!(defaults.preferred().algorithm(), "pbkdf2_sha256");
    assert_eq!(defaults.params().pbkdf2_iterations, 1_000_000);
    // (the full cost is exercised by the check_password vectors)
    let encoded = defaults.with_params(params_for("fast")).make_password("x");
    let parts: Vec<&str> = encoded.split('$').collect();
    assert_eq!(parts[0], "pbkdf2_sha256");
    assert_eq!(parts[2].len(), 22);
    assert!(parts[2].chars().all(|c| RANDOM_STRING_CHARS.contains(c)));
    assert_eq!(parts[3].len(), 44);
}

/// Django 4.2's legacy hashers as the preferred one: what they make
/// verifies and is current (values from Django 4.2's `encode`).
#[test]
fn legacy_hashers_make_and_check_as_django_4_2() {
    for (class, salt, password, encoded) in [
        (
            "SHA1PasswordHasher",
            "seasalt",
            "lètmein",
            "sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8",
        ),
        (
            "UnsaltedSHA1PasswordHasher",
            "",
            "lètmein",
            "sha1$$6d138ca3ae545631b3abd71a4f076ce759c5700b",
        ),
        (
            "UnsaltedMD5PasswordHasher",
            "",
            "lètmein",
            "88a434c88cca4e900f7874cd98123f43",
        ),
    ] {
        let hashers =
            Hashers::from_names(&[format!("django.contrib.auth.hashers.{class}")]).unwrap();
        assert_eq!(
            hashers.make_password_with_salt(password, salt).as_deref(),
            Some(encoded),
            "{class}"
        );
        let made = hashers.make_password(password);
        assert_eq!(algorithm_of(&made), Some(hashers.preferred().algorithm()));
        for stored in [encoded, made.as_str()] {
            let ok = hashers.check_password(password, stored);
            let sha1_short_salt = class == "SHA1PasswordHasher" && stored == encoded;
            assert_eq!(
                ok,
                CheckOutcome {
                    valid: true,
                    // `seasalt` is too short a salt for 128 bits.
                    must_update: sha1_short_salt,
                },
                "{class}: {stored}"
            );
            assert!(!hashers.check_password("letmein", stored).valid);
        }
    }
    // `md5$$` and the digest: also an unsalted MD5 hash.
    let unsalted = Hashers::from_names(&[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
    ])
    .unwrap()
    .with_params(params_for("fast"));
    let got = unsalted.check_password("lètmein", "md5$$88a434c88cca4e900f7874cd98123f43");
    assert_eq!(
        got,
        CheckOutcome {
            valid: true,
            must_update: true
        }
    );
    // A salted SHA1 with an empty salt makes Django raise: wrong here.
    let sha1 = Hashers::from_names(&["django.contrib.auth.hashers.SHA1PasswordHasher"]).unwrap();
    assert!(!sha1.check_password("x", "sha1$$abc").valid);
}

#[test]
fn unknown_and_empty_hasher_lists_are_refused() {
    assert!(Hashers::from_names(&["django.contrib.auth.hashers.NoSuchHasher"]).is_err());
    assert!(Hashers::from_names(&["nope"]).is_err());
    assert_eq!(
        Hashers::from_names::<&str>(&[]).unwrap_err(),
        HasherError::Empty
    );
}

#[test]
fn salts_django_refuses() {
    let fast = |name: &str| {
        Hashers::from_names(&[name])
            .unwrap()
            .with_params(params_for("fast"))
    };
    let pbkdf2 = fast("django.contrib.auth.hashers.PBKDF2PasswordHasher");
    assert_eq!(pbkdf2.make_password_with_salt("p", ""), None);
    assert_eq!(pbkdf2.make_password_with_salt("p", "a$b"), None);
    let bcrypt = fast("django.contrib.auth.hashers.BCryptSHA256PasswordHasher");
    assert_eq!(bcrypt.make_password_with_salt("p", "plainsalt"), None);
    let argon2 = fast("django.contrib.auth.hashers.Argon2PasswordHasher");
    assert_eq!(argon2.make_password_with_salt("p", "short"), None);
}

#[test]
fn unusable_passwords() {
    let p = Hashers::make_unusable_password();
    assert!(p.starts_with('!') && p.len() == 41);
    assert!(!is_password_usable(&p));
    assert_eq!(algorithm_of(&p), None);
}

#[test]
fn python_int_parsing() {
    assert_eq!(py_int(" 12 "), Some(12));
    assert_eq!(py_int("1_000"), Some(1000));
    assert_eq!(py_int("+7"), Some(7));
    assert_eq!(py_int("-7"), Some(-7));
    assert_eq!(py_int("1__0"), None);
    assert_eq!(py_int("_1"), None);
    assert_eq!(py_int(""), None);
    assert_eq!(py_int("x"), None);
}
