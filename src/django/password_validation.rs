//! Django's default `AUTH_PASSWORD_VALIDATORS` (the four `startproject`
//! enables): similarity to the user's attributes, minimum length 8, the
//! common-password list Django ships, and not entirely numeric, with the
//! Russian messages Django shows (`LANGUAGE_CODE = "ru-ru"`) in the release
//! `DJANGO_VERSION` names: 5.2 changed the minimum-length message and the
//! common-password list (docs/DJANGO_RELEASES.md section 6).

use std::collections::HashSet;
use std::io::Read;
use std::sync::LazyLock;

use crate::django::releases::Release;

/// Django's lists of common passwords (from its own package, BSD licence:
/// data/README.md), one per line, gzip-compressed: 5.2's and later, and
/// the one 4.2 to 5.1 ship.
const COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("../../data/common-passwords.txt.gz");
const COMMON_PASSWORDS_4_2_GZ: &[u8] = include_bytes!("../../data/common-passwords-4.2.txt.gz");

fn load_list(gz: &[u8]) -> HashSet<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .expect("the bundled common-password list decompresses");
    text.lines().map(|line| line.trim().to_string()).collect()
}

static COMMON_PASSWORDS: LazyLock<HashSet<String>> =
    LazyLock::new(|| load_list(COMMON_PASSWORDS_GZ));
static COMMON_PASSWORDS_4_2: LazyLock<HashSet<String>> =
    LazyLock::new(|| load_list(COMMON_PASSWORDS_4_2_GZ));

/// `CommonPasswordValidator`'s list in `release`.
fn common_passwords(release: Release) -> &'static HashSet<String> {
    if release < Release::Django5_2 {
        &COMMON_PASSWORDS_4_2
    } else {
        &COMMON_PASSWORDS
    }
}

pub const MIN_LENGTH: usize = 8;
const MAX_SIMILARITY: f64 = 0.7;

/// The user attributes the similarity check reads, with the names shown
/// in the message.
pub struct UserAttributes<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// Every rule the password breaks, in Django's validator order, with the
/// messages of Django `release` in Russian. The similarity message names
/// the field's `verbose_name` as the site's user model has it (`имя`,
/// `фамилия`, `почта`), as Django does.
pub fn validate_password(
    password: &str,
    user: &UserAttributes<'_>,
    release: Release,
) -> Vec<String> {
    let mut errors = Vec::new();
    let attributes = [
        ("имя", user.first_name),
        ("фамилия", user.last_name),
        ("почта", user.email),
    ];
    if let Some((label, _)) = attributes
        .iter()
        .find(|(_, value)| too_similar(password, value))
    {
        errors.push(format!("Введённый пароль слишком похож на {label}."));
    }
    if password.chars().count() < MIN_LENGTH {
        errors.push(too_short_message(release));
    }
    if common_passwords(release).contains(&password.trim().to_lowercase()) {
        errors.push("Введённый пароль слишком широко распространён.".to_string());
    }
    if !password.is_empty() && password.chars().all(char::is_numeric) {
        errors.push("Введённый пароль состоит только из цифр.".to_string());
    }
    errors
}

/// `MinimumLengthValidator`'s message: 5.2 changed its msgid, and with it
/// the Russian text («содержать» became «состоять из»).
fn too_short_message(release: Release) -> String {
    let verb = if release < Release::Django5_2 {
        "содержать"
    } else {
        "состоять из"
    };
    format!(
        "Введённый пароль слишком короткий. Он должен {verb} как минимум {MIN_LENGTH} {}.",
        symbols(MIN_LENGTH)
    )
}

/// «символ», «символа», «символов» after a number (Russian plural forms,
/// as the catalogue's `Plural-Forms`).
fn symbols(n: usize) -> &'static str {
    match (n % 10, n % 100) {
        (1, m) if m != 11 => "символ",
        (2..=4, m) if !(12..=14).contains(&m) => "символа",
        _ => "символов",
    }
}

/// `UserAttributeSimilarityValidator` for one attribute: the whole value and
/// each of its `\W+`-separated parts, by `SequenceMatcher.quick_ratio`.
fn too_similar(password: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let password = password.to_lowercase();
    let value = value.to_lowercase();
    let mut parts: Vec<&str> = value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    parts.push(&value);
    parts.into_iter().any(|part| {
        !exceeds_maximum_length_ratio(&password, part)
            && quick_ratio(&password, part) >= MAX_SIMILARITY
    })
}

/// Skips parts so much shorter than the password that they cannot reach
/// the threshold (Django's shortcut; kept so the same passwords pass).
fn exceeds_maximum_length_ratio(password: &str, value: &str) -> bool {
    let password_len = password.chars().count() as f64;
    let value_len = value.chars().count() as f64;
    password_len >= 10.0 * value_len && value_len < MAX_SIMILARITY / 2.0 * password_len
}

/// `difflib.SequenceMatcher(a, b).quick_ratio()`: twice the size of the
/// multiset intersection over the total length.
fn quick_ratio(a: &str, b: &str) -> f64 {
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut available = std::collections::HashMap::new();
    for c in b.chars() {
        *available.entry(c).or_insert(0usize) += 1;
    }
    let mut matches = 0usize;
    for c in a.chars() {
        if let Some(n) = available.get_mut(&c).filter(|n| **n > 0) {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(password: &str, email: &str) -> Vec<String> {
        validate_password(
            password,
            &UserAttributes {
                email,
                first_name: "",
                last_name: "",
            },
            Release::Django5_2,
        )
    }

    #[test]
    fn each_rule() {
        assert!(errors("Kx9#mPq2vL!z", "ivan@example.com").is_empty());
        assert_eq!(errors("Kx9#mP", "ivan@example.com").len(), 1, "too short");
        assert!(errors("password", "ivan@example.com")
            .iter()
            .any(|e| e.contains("распространён")));
        assert!(errors("PASSWORD ", "ivan@example.com")
            .iter()
            .any(|e| e.contains("распространён")));
        assert!(errors("8203948571", "ivan@example.com")
            .iter()
            .any(|e| e.contains("цифр")));
        assert!(errors("ivanpetrov1", "ivanpetrov1@example.com")
            .iter()
            .any(|e| e.ends_with("похож на почта.")));
        assert!(
            errors("elpmaxe.moc", "x@example.com")
                .iter()
                .any(|e| e.ends_with("похож на почта.")),
            "quick_ratio ignores order"
        );
    }

    /// `password_validation_ru` of each release's vectors
    /// (compat-tests/tools/release_vectors.py): the same messages for the
    /// same passwords. The vectors' user is Django's own `User`, whose
    /// e-mail field is «адрес электронной почты» where this site's is
    /// «почта»; its last name is «Петров».
    #[test]
    fn messages_and_lists_follow_the_release() {
        for release in Release::ALL {
            let vectors = crate::django::vectors::release(release);
            let cases = vectors["password_validation_ru"].as_object().unwrap();
            let mut checked = 0;
            for (password, want) in cases {
                if password == "help_texts" {
                    continue;
                }
                let got = validate_password(
                    password,
                    &UserAttributes {
                        email: "ivan@example.com",
                        first_name: "Иван",
                        last_name: "Петров",
                    },
                    release,
                );
                let want: Vec<String> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        m.as_str()
                            .unwrap()
                            .replace("адрес электронной почты", "почта")
                    })
                    .collect();
                assert_eq!(got, want, "Django {}: {password:?}", release.name());
                checked += 1;
            }
            assert!(checked >= 7, "{}: {checked} cases", release.name());
        }
        assert_eq!(symbols(1), "символ");
        assert_eq!(symbols(3), "символа");
        assert_eq!(symbols(8), "символов");
        assert_eq!(symbols(12), "символов");
        assert_eq!(symbols(21), "символ");
    }

    #[test]
    fn quick_ratio_matches_difflib() {
        // Values from Python's difflib.SequenceMatcher(a=..., b=...).quick_ratio().
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-12);
        assert!((quick_ratio("a", "aaaaaaaaaa") - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(quick_ratio("", ""), 1.0);
    }
}
