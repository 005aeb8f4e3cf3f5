//! Django's form-field cleaning for the fields this site's forms use
//! (`CharField`, `UsernameField`, `EmailField`, `IntegerField`,
//! `DecimalField`, `BooleanField`), with Django's Russian messages: each
//! cleaner takes the submitted text and returns the clean value or the
//! messages to show beside the field.

use unicode_normalization::UnicodeNormalization;

/// `Field.default_error_messages["required"]`.
pub const REQUIRED: &str = "Обязательное поле.";
/// `ProhibitNullCharactersValidator`: every `CharField` has it, and
/// PostgreSQL cannot store NUL in text anyway.
const NUL_CHARACTER: &str = "Данные содержат запрещённый символ: ноль-байт";
/// `ModelChoiceField.default_error_messages["invalid_choice"]`.
pub const INVALID_CHOICE: &str =
    "Выберите корректный вариант. Вашего варианта нет среди допустимых значений.";
/// `EmailValidator.message`.
const INVALID_EMAIL: &str = "Введите правильный адрес электронной почты.";

/// Python's `str.strip()`: Unicode white space, and also the four
/// separators U+001C to U+001F, which Python counts as space and Rust's
/// `trim` does not.
pub fn python_strip(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// `MaxLengthValidator`'s message, `ngettext` by the limit: Russian has
/// «символ» after 1, 21, 101 … and «символов» after every other number
/// (its other plural forms are worded the same here).
fn max_length_message(limit: usize, length: usize) -> String {
    let noun = if limit % 10 == 1 && limit % 100 != 11 {
        "символ"
    } else {
        "символов"
    };
    format!("Убедитесь, что это значение содержит не более {limit} {noun} (сейчас {length}).")
}

/// `forms.CharField(max_length, required, strip)`. `clean` gives the clean
/// text (`""` for an empty optional value: a nullable column stores it as
/// NULL) or every message Django shows, in its order: `required` alone for
/// an empty value, else `MaxLengthValidator` then
/// `ProhibitNullCharactersValidator`.
#[derive(Debug, Clone, Copy)]
pub struct CharField {
    pub max_length: Option<usize>,
    pub required: bool,
    /// `strip=False` keeps surrounding white space (Django's password fields).
    pub strip: bool,
}

impl CharField {
    pub fn clean(&self, value: Option<&str>) -> Result<String, Vec<String>> {
        let value = value.unwrap_or("");
        let value = if self.strip {
            python_strip(value)
        } else {
            value
        };
        self.check(value)?;
        Ok(value.to_string())
    }

    /// `validate` and `run_validators` on the value `to_python` gave.
    fn check(&self, value: &str) -> Result<(), Vec<String>> {
        if value.is_empty() {
            return if self.required {
                Err(vec![REQUIRED.into()])
            } else {
                Ok(())
            };
        }
        let mut errors = Vec::new();
        if let Some(limit) = self.max_length {
            let length = value.chars().count();
            if length > limit {
                errors.push(max_length_message(limit, length));
            }
        }
        if value.contains('\0') {
            errors.push(NUL_CHARACTER.into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `CharField(max_length, required)`, stripped. `None` for an empty
/// optional value (Django stores NULL for an empty nullable field).
pub fn clean_char(
    value: Option<&str>,
    max_length: Option<usize>,
    required: bool,
) -> Result<Option<String>, Vec<String>> {
    let field = CharField {
        max_length,
        required,
        strip: true,
    };
    field
        .clean(value)
        .map(|value| Some(value).filter(|v| !v.is_empty()))
}

/// `AuthenticationForm`'s `username`, a required `UsernameField`: stripped,
/// then NFKC-normalised unless longer than `max_length` (which only skips
/// the normalisation: the form sets the limit after its validators are
/// made, so no length is refused).
pub fn clean_username(value: Option<&str>, max_length: usize) -> Result<String, Vec<String>> {
    let field = CharField {
        max_length: None,
        required: true,
        strip: true,
    };
    let value = python_strip(value.unwrap_or(""));
    let value = if value.chars().count() > max_length {
        value.to_string()
    } else {
        value.nfkc().collect()
    };
    field.check(&value)?;
    Ok(value)
}

/// The form field of a model `TextField`, optional: stripped, and an empty
/// value stays `""` even when the column is nullable (only a model
/// `CharField(null=True)` turns it into NULL).
pub fn clean_text(value: Option<&str>) -> Result<String, Vec<String>> {
    Ok(clean_char(value, None, false)?.unwrap_or_default())
}

/// What `forms.EmailField(max_length)` finds wrong with a value, in
/// Django's order (its validators run one after another and every error is
/// shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    /// `required`: nothing but white space.
    Required,
    /// `invalid`: `validate_email` refuses it.
    Invalid,
    /// `max_length`: longer than `limit`; `length` is its length.
    MaxLength { limit: usize, length: usize },
    /// `null_characters_not_allowed`: it holds a NUL.
    NulCharacter,
}

impl EmailError {
    /// Django's message for it.
    pub fn message(self) -> String {
        match self {
            EmailError::Required => REQUIRED.into(),
            EmailError::Invalid => INVALID_EMAIL.into(),
            EmailError::MaxLength { limit, length } => max_length_message(limit, length),
            EmailError::NulCharacter => NUL_CHARACTER.into(),
        }
    }
}

/// `forms.EmailField(max_length=...)`, required: the value stripped as
/// `CharField` strips it, then `validate_email`, `MaxLengthValidator` and
/// `ProhibitNullCharactersValidator`, all of them (an empty value stops at
/// `required`). The clean value, or every error.
pub fn clean_email(value: Option<&str>, max_length: usize) -> Result<String, Vec<EmailError>> {
    let value = python_strip(value.unwrap_or(""));
    if value.is_empty() {
        return Err(vec![EmailError::Required]);
    }
    let mut errors = Vec::new();
    if !super::email_validator::validate_email(value) {
        errors.push(EmailError::Invalid);
    }
    let length = value.chars().count();
    if length > max_length {
        errors.push(EmailError::MaxLength {
            limit: max_length,
            length,
        });
    }
    if value.contains('\0') {
        errors.push(EmailError::NulCharacter);
    }
    if errors.is_empty() {
        Ok(value.to_string())
    } else {
        Err(errors)
    }
}

/// `IntegerField(min_value, max_value)`, required. Like Django it takes
/// surrounding spaces, a sign, `_` between digits and a trailing `.000`.
pub fn clean_integer(value: Option<&str>, min: i64, max: i64) -> Result<i64, String> {
    let value = value.unwrap_or("").trim();
    if value.is_empty() {
        return Err(REQUIRED.into());
    }
    let integral = value
        .find('.')
        .filter(|&dot| value[dot + 1..].chars().all(|c| c == '0'))
        .map_or(value, |dot| &value[..dot]);
    let number = parse_python_int(integral).ok_or("Введите целое число.")?;
    if number < i128::from(min) {
        return Err(format!(
            "Убедитесь, что это значение больше либо равно {min}."
        ));
    }
    if number > i128::from(max) {
        return Err(format!(
            "Убедитесь, что это значение меньше либо равно {max}."
        ));
    }
    Ok(number as i64)
}

/// Python's `int(text)` for ASCII digits: a sign, and `_` only between digits.
fn parse_python_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    // Longer than any i64 bound: out of range either way, keep the sign.
    let magnitude: i128 = if cleaned.trim_start_matches('0').len() > 30 {
        i128::MAX / 2
    } else {
        cleaned.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A decimal number as Python's `Decimal` holds it: sign, digits, exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedDecimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// Python's `Decimal(text)` for finite numbers: `12`, `-1.50`, `.5`, `1e5`.
fn parse_decimal(text: &str) -> Option<ParsedDecimal> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, f),
        None => (mantissa, ""),
    };
    let is_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    let mut exponent: i64 = match exponent {
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !is_digits(unsigned) || unsigned.len() > 12 {
                return None;
            }
            e.parse().ok()?
        }
        None => 0,
    };
    exponent -= fraction.len() as i64;
    let digits = format!("{whole}{fraction}");
    // Decimal keeps no leading zeros in its digit tuple (but keeps one "0").
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() { "0" } else { trimmed }.to_string();
    Some(ParsedDecimal {
        negative,
        digits,
        exponent,
    })
}

/// `DecimalField(max_digits, decimal_places, min_value=0)`, required. The
/// clean value is the exact decimal text with `decimal_places` places
/// (`"13119.00"`), so no floating point ever touches a price.
pub fn clean_decimal(
    value: Option<&str>,
    max_digits: u32,
    decimal_places: u32,
) -> Result<String, String> {
    let value = value.unwrap_or("").trim();
    if value.is_empty() {
        return Err(REQUIRED.into());
    }
    let number = parse_decimal(value).ok_or("Введите число.")?;
    // Django's DecimalValidator counts digits this way.
    let length = number.digits.len() as i64;
    let (digits, decimals) = if number.exponent >= 0 {
        let digits = if number.digits == "0" {
            1
        } else {
            length + number.exponent
        };
        (digits, 0)
    } else if -number.exponent > length {
        (-number.exponent, -number.exponent)
    } else {
        (length, -number.exponent)
    };
    let whole_digits = digits - decimals;
    let (max_digits, decimal_places) = (i64::from(max_digits), i64::from(decimal_places));
    if digits > max_digits {
        return Err(format!(
            "Убедитесь, что вы ввели не более {max_digits} {}.",
            plural_digits(max_digits)
        ));
    }
    if decimals > decimal_places {
        return Err(format!(
            "Убедитесь, что вы ввели не более {decimal_places} {} после запятой.",
            plural_digits(decimal_places)
        ));
    }
    if whole_digits > max_digits - decimal_places {
        return Err(format!(
            "Убедитесь, что вы ввели не более {} {} перед запятой.",
            max_digits - decimal_places,
            plural_digits(max_digits - decimal_places)
        ));
    }
    let is_zero = number.digits == "0";
    if number.negative && !is_zero {
        return Err("Убедитесь, что это значение больше либо равно 0.".into());
    }
    // Fits: write it with exactly `decimal_places` places.
    let places = decimal_places as usize;
    let mut all = number.digits.clone();
    let shift = number.exponent + decimal_places;
    if shift >= 0 {
        all.push_str(&"0".repeat(shift as usize));
    } else {
        // Only zeros can be dropped here (more places were refused above).
        all.truncate(all.len() - (-shift) as usize);
    }
    if all.len() <= places {
        all = format!("{}{all}", "0".repeat(places + 1 - all.len()));
    }
    let (whole, fraction) = all.split_at(all.len() - places);
    Ok(if places == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    })
}

/// "цифры"/"цифр" after a number, as Django's Russian `ngettext`.
fn plural_digits(n: i64) -> &'static str {
    let (last, last_two) = (n % 10, n % 100);
    if last == 1 && last_two != 11 {
        "цифры"
    } else {
        "цифр"
    }
}

/// `BooleanField(required=False)` from a checkbox, as `CheckboxInput`
/// reads it: missing, "", "false" (any case) are false; anything else true.
pub fn clean_checkbox(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => !(v.is_empty() || v.eq_ignore_ascii_case("false")),
    }
}

/// A model choice by primary key: `None` for the empty choice, `Err` for
/// text that is no id at all (the caller checks the id exists).
pub fn parse_choice_id(value: Option<&str>) -> Result<Option<i64>, String> {
    let value = value.unwrap_or("").trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| INVALID_CHOICE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn email_fields_clean_as_django_cleans_them() {
        let cases = vectors::validators_list("email_form_field");
        assert!(cases.len() >= 200, "{} vectors", cases.len());
        for case in cases {
            let value = vectors::str(case, "value");
            let want = match case["cleaned"].as_str() {
                Some(cleaned) => Ok(cleaned.to_string()),
                None => Err(case["errors"]
                    .as_array()
                    .expect("a list of errors")
                    .iter()
                    .map(|e| match e["code"].as_str().expect("a code") {
                        "required" => EmailError::Required,
                        "invalid" => EmailError::Invalid,
                        "max_length" => EmailError::MaxLength {
                            limit: 254,
                            length: e["length"].as_u64().expect("a length") as usize,
                        },
                        "null_characters_not_allowed" => EmailError::NulCharacter,
                        other => panic!("unknown error code {other}"),
                    })
                    .collect()),
            };
            assert_eq!(clean_email(Some(value), 254), want, "{value:?}");
        }
        assert_eq!(clean_email(None, 254), Err(vec![EmailError::Required]));
    }

    #[test]
    fn python_strips_the_separators_too() {
        assert_eq!(python_strip("\u{1c}\u{3000} a b\t\u{85}\u{1f}"), "a b");
        assert_eq!(python_strip("\u{200b}a"), "\u{200b}a");
    }

    #[test]
    fn decimals_are_cleaned_and_counted_as_django() {
        let clean = |v: &str| clean_decimal(Some(v), 10, 2);
        assert_eq!(clean("13119.00").unwrap(), "13119.00");
        assert_eq!(clean(" 7 ").unwrap(), "7.00");
        assert_eq!(clean("12.5").unwrap(), "12.50");
        assert_eq!(clean(".1").unwrap(), "0.10");
        assert_eq!(clean("0").unwrap(), "0.00");
        assert_eq!(clean("-0").unwrap(), "0.00");
        assert_eq!(clean("1e5").unwrap(), "100000.00");
        assert_eq!(clean("99999999.99").unwrap(), "99999999.99");
        assert_eq!(clean("00012.30").unwrap(), "12.30");
        // The messages a real Django gives for these (see compat-tests).
        assert_eq!(
            clean("1.234").unwrap_err(),
            "Убедитесь, что вы ввели не более 2 цифр после запятой."
        );
        assert_eq!(
            clean("123456789.00").unwrap_err(),
            "Убедитесь, что вы ввели не более 10 цифр."
        );
        assert_eq!(
            clean("123456789").unwrap_err(),
            "Убедитесь, что вы ввели не более 8 цифр перед запятой."
        );
        assert_eq!(clean("0.001").unwrap_err(), clean("1.234").unwrap_err());
        for bad in ["abc", "NaN", "inf", "1,5", "1.2.3", "e5", "1e", "--1", ""] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            clean("-1").unwrap_err(),
            "Убедитесь, что это значение больше либо равно 0."
        );
    }

    #[test]
    fn integers_as_python_int() {
        let clean = |v: &str| clean_integer(Some(v), 0, 2_147_483_647);
        assert_eq!(clean(" 42 "), Ok(42));
        assert_eq!(clean("+3"), Ok(3));
        assert_eq!(clean("1_000"), Ok(1000));
        assert_eq!(clean("5.00"), Ok(5));
        assert_eq!(clean("0"), Ok(0));
        assert_eq!(
            clean("-1").unwrap_err(),
            "Убедитесь, что это значение больше либо равно 0."
        );
        assert_eq!(
            clean("99999999999999999999999999999999999999999").unwrap_err(),
            "Убедитесь, что это значение меньше либо равно 2147483647."
        );
        for bad in ["abc", "1.5", "_1", "1__0", "", "٣"] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chars_and_checkboxes() {
        assert_eq!(
            clean_char(Some("  a "), Some(3), true),
            Ok(Some("a".into()))
        );
        assert_eq!(clean_char(Some(""), Some(3), false), Ok(None));
        assert_eq!(clean_text(Some("  ")), Ok(String::new()));
        assert_eq!(
            clean_char(None, Some(3), true),
            Err(vec![REQUIRED.to_string()])
        );
        assert_eq!(
            clean_char(Some("abcd"), Some(3), true),
            Err(vec![max_length_message(3, 4)])
        );
        assert!(max_length_message(3, 4).contains("не более 3 символов (сейчас 4)"));
        assert_eq!(
            clean_char(Some("a\0"), None, true),
            Err(vec![NUL_CHARACTER.to_string()])
        );
        // Both, in the order of Django's validators.
        assert_eq!(
            clean_char(Some("ab\0"), Some(2), true),
            Err(vec![max_length_message(2, 3), NUL_CHARACTER.to_string()])
        );
        assert!(clean_checkbox(Some("on")));
        assert!(clean_checkbox(Some("0")));
        assert!(!clean_checkbox(Some("False")));
        assert!(!clean_checkbox(None));
        assert_eq!(parse_choice_id(Some("")), Ok(None));
        assert_eq!(parse_choice_id(Some("7")), Ok(Some(7)));
        assert!(parse_choice_id(Some("x")).is_err());
    }

    /// The messages a real Django 5.2 gives (`CharField(...).clean(...)`
    /// under `LANGUAGE_CODE="ru-ru"`).
    #[test]
    fn char_fields_give_every_message_django_gives() {
        let optional = |max_length| CharField {
            max_length: Some(max_length),
            required: false,
            strip: true,
        };
        assert_eq!(optional(150).clean(Some("  Вера ")), Ok("Вера".into()));
        assert_eq!(optional(150).clean(Some(" \t")), Ok(String::new()));
        assert_eq!(optional(150).clean(None), Ok(String::new()));
        assert_eq!(
            optional(150).clean(Some(&"a".repeat(151))),
            Err(vec![
                "Убедитесь, что это значение содержит не более 150 символов (сейчас 151).".into()
            ])
        );
        assert_eq!(
            optional(150).clean(Some(&"a\0".repeat(100))),
            Err(vec![
                "Убедитесь, что это значение содержит не более 150 символов (сейчас 200).".into(),
                NUL_CHARACTER.into(),
            ])
        );
        // `ngettext` by the limit.
        for (limit, noun) in [
            (1, "символ"),
            (2, "символов"),
            (4, "символов"),
            (11, "символов"),
            (21, "символ"),
            (101, "символ"),
            (111, "символов"),
            (254, "символов"),
        ] {
            assert_eq!(
                optional(limit).clean(Some(&"я".repeat(limit + 1))),
                Err(vec![format!(
                    "Убедитесь, что это значение содержит не более {limit} {noun} (сейчас {}).",
                    limit + 1
                )])
            );
        }
        let password = CharField {
            max_length: None,
            required: true,
            strip: false,
        };
        assert_eq!(password.clean(Some(" secret ")), Ok(" secret ".into()));
        assert_eq!(password.clean(Some("  ")), Ok("  ".into()));
        assert_eq!(password.clean(Some("")), Err(vec![REQUIRED.into()]));
        assert_eq!(password.clean(None), Err(vec![REQUIRED.into()]));
        assert_eq!(
            password.clean(Some("a\0b")),
            Err(vec![NUL_CHARACTER.into()])
        );
    }

    #[test]
    fn usernames_are_normalised_unless_too_long() {
        assert_eq!(
            clean_username(Some(" ｉｖａｎ@example.com "), 254),
            Ok("ivan@example.com".into())
        );
        let long = format!("{}ｉ", "a".repeat(254));
        assert_eq!(clean_username(Some(&long), 254), Ok(long.clone()));
        assert_eq!(clean_username(Some("  "), 254), Err(vec![REQUIRED.into()]));
        assert_eq!(clean_username(None, 254), Err(vec![REQUIRED.into()]));
        assert_eq!(
            clean_username(Some("a\0"), 254),
            Err(vec![NUL_CHARACTER.into()])
        );
    }

    #[test]
    fn email_messages_are_djangos() {
        let messages = |value: &str| {
            clean_email(Some(value), 254)
                .unwrap_err()
                .into_iter()
                .map(EmailError::message)
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(" "), [REQUIRED]);
        assert_eq!(
            messages("x"),
            ["Введите правильный адрес электронной почты."]
        );
        assert_eq!(
            messages(&format!("{}@example.com", "a".repeat(250))),
            ["Убедитесь, что это значение содержит не более 254 символов (сейчас 262)."]
        );
        assert_eq!(
            messages("a\0@example.com"),
            ["Введите правильный адрес электронной почты.", NUL_CHARACTER]
        );
    }
}
