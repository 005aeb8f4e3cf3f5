//! Django 5.2's `EmailValidator` (`django.core.validators.validate_email`):
//! which text `forms.EmailField` and the model `EmailField` take for an
//! e-mail address.
//!
//! The rule, from the source: at most 320 characters with an `@`; the part
//! before the last `@` a dot-atom or a quoted string; the part after it
//! `localhost` (the allowlist, compared exactly), a domain name of at least
//! two labels, or an IPv4/IPv6 literal in brackets. Django 5.2 no longer
//! retries a refused domain in punycode: its domain pattern
//! (`DomainNameValidator`'s) takes U+00A1 to U+FFFF as letters itself.
//!
//! Django compiles the patterns with `re.IGNORECASE`, so where one names
//! ASCII letters Python also takes the four characters whose case folds to
//! one: U+0130 `İ`, U+0131 `ı`, U+017F `ſ` and U+212A (the Kelvin sign).
//! Lengths are Python's, in code points.

use super::ip::is_valid_ipv46_address;

/// RFC 3696's limit on a whole address, which the validator checks.
pub const MAX_LENGTH: usize = 320;

/// `EmailValidator.domain_allowlist`.
pub const DOMAIN_ALLOWLIST: [&str; 1] = ["localhost"];

/// `validate_email(value)` raises nothing.
pub fn validate_email(value: &str) -> bool {
    if value.is_empty() || !value.contains('@') || value.chars().count() > MAX_LENGTH {
        return false;
    }
    let (user_part, domain_part) = value.rsplit_once('@').expect("an @ was found");
    user_part_is_valid(user_part)
        && (DOMAIN_ALLOWLIST.contains(&domain_part) || validate_domain_part(domain_part))
}

/// The non-ASCII characters `re.IGNORECASE` matches to an ASCII letter.
fn folds_to_ascii_letter(c: char) -> bool {
    matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

/// A letter of `[A-Z]`/`[a-z]` under `re.IGNORECASE`.
fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || folds_to_ascii_letter(c)
}

/// `user_regex`: a dot-atom, or a quoted string.
fn user_part_is_valid(user: &str) -> bool {
    is_dot_atom(user) || is_quoted_string(user)
}

/// `[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*`.
fn is_dot_atom(user: &str) -> bool {
    let atom_char =
        |c: char| is_letter(c) || c.is_ascii_digit() || "-!#$%&'*+/=?^_`{}|~".contains(c);
    user.split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atom_char))
}

/// `"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"`:
/// any ASCII but NUL, tab, CR, LF, space, `"` and `\`, or a backslash and
/// any ASCII but NUL, CR and LF, between double quotes.
fn is_quoted_string(user: &str) -> bool {
    let Some(inner) = user
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let qtext = |c: char| {
        matches!(c, '\u{1}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '!' | '#'..='[' | ']'..='\u{7f}')
            || folds_to_ascii_letter(c)
    };
    let quoted_pair = |c: char| {
        matches!(c, '\u{1}'..='\u{9}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{7f}')
            || folds_to_ascii_letter(c)
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let ok = if c == '\\' {
            chars.next().is_some_and(quoted_pair)
        } else {
            qtext(c)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `EmailValidator.validate_domain_part`: `domain_regex`, else a bracketed
/// IPv4 or IPv6 address (`literal_regex`, then `validate_ipv46_address`).
pub fn validate_domain_part(domain: &str) -> bool {
    if is_domain_name(domain) {
        return true;
    }
    domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|ip| {
            !ip.is_empty()
                && ip
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        })
        .is_some_and(is_valid_ipv46_address)
}

/// `[a-z\u00a1-\uffff0-9]`: a letter or digit of a domain label.
fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ('\u{a1}'..='\u{ffff}').contains(&c)
}

/// `hostname_re + domain_re + tld_no_fqdn_re`, matched whole: labels split
/// at dots (none of the three patterns takes a dot), at least two of them.
fn is_domain_name(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((tld, names)) = labels.split_last() else {
        return false;
    };
    !names.is_empty() && names.iter().all(|label| is_name_label(label)) && is_tld(tld)
}

/// `hostname_re`, and each label of `domain_re`: 1 to 63 letters, digits
/// and hyphens, neither first nor last a hyphen.
fn is_name_label(label: &str) -> bool {
    let length = label.chars().count();
    (1..=63).contains(&length)
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| is_label_char(c) || c == '-')
}

/// `tld_no_fqdn_re` after its dot: 2 to 63 letters and hyphens (no digits),
/// neither first nor last a hyphen; or a punycode label, `xn--` and 1 to 59
/// ASCII letters or digits.
fn is_tld(label: &str) -> bool {
    let length = label.chars().count();
    let letters = (2..=63).contains(&length)
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| c == '-' || (is_label_char(c) && !c.is_ascii_digit()));
    letters || is_punycode_tld(label)
}

/// `xn--[a-z0-9]{1,59}` under `re.IGNORECASE`.
fn is_punycode_tld(label: &str) -> bool {
    let Some(prefix) = label.get(..4) else {
        return false;
    };
    let rest = &label[4..];
    prefix.eq_ignore_ascii_case("xn--")
        && (1..=59).contains(&rest.chars().count())
        && rest.chars().all(|c| is_letter(c) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn addresses_are_judged_as_django_judges_them() {
        let cases = vectors::validators_list("email_validator");
        assert!(cases.len() >= 500, "{} vectors", cases.len());
        let mut wrong = Vec::new();
        for case in cases {
            let value = vectors::str(case, "value");
            let valid = case["valid"].as_bool().expect("valid is a boolean");
            if validate_email(value) != valid {
                wrong.push(format!("{value:?}: Django says {valid}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn a_few_rules_by_name() {
        assert!(validate_email("ivan@example.com"));
        assert!(validate_email("ivan@localhost"));
        assert!(!validate_email("ivan@LOCALHOST"), "the allowlist is exact");
        assert!(validate_email("ivan@пример.рф"), "no punycode needed");
        assert!(
            !validate_email("иван@example.com"),
            "the local part is ASCII"
        );
        assert!(
            !validate_email("\"a b\"@example.com"),
            "a space must be escaped"
        );
        assert!(validate_email("\"a\\ b\"@example.com"));
        assert!(validate_email("ivan@[::1]"));
        assert!(!validate_email("ivan@[01.2.3.4]"));
        assert!(
            validate_email("\u{212a}@example.com"),
            "the Kelvin sign folds to k"
        );
        assert!(!validate_email("ivan@example.com."));
    }
}
