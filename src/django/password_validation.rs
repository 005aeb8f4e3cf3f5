//! Django's default `AUTH_PASSWORD_VALIDATORS` (the four `startproject`
//! enables): similarity to the user's attributes, minimum length 8, the
//! common-password list Django ships, and not entirely numeric. Messages are
//! the project's own, in Russian.

use std::collections::HashSet;
use std::io::Read;
use std::sync::LazyLock;

/// Django's list of 20,000 common passwords (from its own package, BSD
/// licence), one per line, gzip-compressed.
const COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("../../data/common-passwords.txt.gz");

static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut text = String::new();
    flate2::read::GzDecoder::new(COMMON_PASSWORDS_GZ)
        .read_to_string(&mut text)
        .expect("the bundled common-password list decompresses");
    text.lines().map(|line| line.trim().to_string()).collect()
});

pub const MIN_LENGTH: usize = 8;
const MAX_SIMILARITY: f64 = 0.7;

/// The user attributes the similarity check reads, with the names shown
/// in the message.
pub struct UserAttributes<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

/// Every rule the password breaks, in Django's validator order.
pub fn validate_password(password: &str, user: &UserAttributes<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let attributes = [
        ("имя", user.first_name),
        ("фамилию", user.last_name),
        ("адрес электронной почты", user.email),
    ];
    if let Some((label, _)) = attributes
        .iter()
        .find(|(_, value)| too_similar(password, value))
    {
        errors.push(format!("Пароль слишком похож на {label}."));
    }
    if password.chars().count() < MIN_LENGTH {
        errors.push(format!(
            "Пароль слишком короткий: нужно не меньше {MIN_LENGTH} символов."
        ));
    }
    if COMMON_PASSWORDS.contains(&password.trim().to_lowercase()) {
        errors.push("Этот пароль слишком распространён, его легко подобрать.".to_string());
    }
    if !password.is_empty() && password.chars().all(char::is_numeric) {
        errors.push("Пароль не может состоять только из цифр.".to_string());
    }
    errors
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
            .any(|e| e.contains("почты")));
        assert!(
            errors("elpmaxe.moc", "x@example.com")
                .iter()
                .any(|e| e.contains("почты")),
            "quick_ratio ignores order"
        );
    }

    #[test]
    fn quick_ratio_matches_difflib() {
        // Values from Python's difflib.SequenceMatcher(a=..., b=...).quick_ratio().
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-12);
        assert!((quick_ratio("a", "aaaaaaaaaa") - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(quick_ratio("", ""), 1.0);
    }
}
