//! The JSON that `django.core.signing.JSONSerializer` writes and reads:
//! `json.dumps(obj, separators=(",", ":"))` (so `ensure_ascii=True`) encoded as
//! Latin-1, and `json.loads(data.decode("latin-1"))`.
//!
//! serde_json's own writer emits raw UTF-8 and different float spellings, and a
//! signed value is compared byte for byte, so the writer here follows Python's
//! encoder exactly. Object keys keep the order they are given in (serde_json is
//! built with `preserve_order`), as a Python dict does.

use serde_json::{Map, Number, Value};
use std::fmt::Write;

/// `json.dumps(value, separators=(",", ":"))`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// `json.loads(data.decode("latin-1"))`: every byte becomes the character of
/// the same number, so raw UTF-8 in a payload reads back as mojibake, exactly
/// as it does in Django.
pub fn loads_latin1(data: &[u8]) -> Result<Value, serde_json::Error> {
    let text: String = data.iter().map(|&b| b as char).collect();
    serde_json::from_str(&text)
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, item);
    }
    out.push('}');
}

/// Python's `py_encode_basestring_ascii`: `"` and `\` and the five short
/// escapes, everything else outside printable ASCII (`' '..='~'`) as `\uxxxx`
/// in lowercase hex, astral characters as a surrogate pair.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&python_float_repr(f));
    }
}

/// `float.__repr__`: the shortest digits that round-trip (Rust's formatter
/// finds the same ones), laid out as Python does: positional when the decimal
/// exponent is in -4..16, otherwise `d.ddde+XX` with at least two exponent
/// digits; a whole number keeps a trailing `.0`.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let sci = format!("{:e}", f);
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python's `decpt`: the value is 0.DIGITS * 10**decpt.
    let decpt = exponent + 1;
    let mut out = String::from(sign);
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', decpt as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn dumps_matches_python() {
        let cases = vectors::list("json");
        assert!(cases.len() >= 5);
        for case in cases {
            assert_eq!(dumps(&case["obj"]), vectors::str(case, "dumped"), "{case}");
            // and reading Python's text gives the value back
            let back = loads_latin1(vectors::str(case, "dumped").as_bytes()).unwrap();
            assert_eq!(back, case["obj"]);
        }
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = vectors::list("float_repr");
        assert!(cases.len() >= 10);
        for case in cases {
            let f = case["value"].as_f64().unwrap();
            assert_eq!(python_float_repr(f), vectors::str(case, "repr"), "{case}");
        }
        assert_eq!(python_float_repr(-0.0), "-0.0");
    }

    /// Found by fuzzing (tests/fuzz_parsers.rs): serde_json's default float
    /// parser can miss by one unit in the last place, so a float Django
    /// signed came back a different number.
    #[test]
    fn floats_read_back_exactly() {
        for f in [
            7.007565326893933e155,
            1.985832584808886e-105,
            9.255906979546966e201,
        ] {
            let text = python_float_repr(f);
            assert_eq!(
                loads_latin1(text.as_bytes()).unwrap().as_f64(),
                Some(f),
                "{text}"
            );
        }
    }

    #[test]
    fn raw_utf8_reads_as_latin1() {
        let v = loads_latin1("\"é\"".as_bytes()).unwrap();
        assert_eq!(v, Value::String("Ã©".to_string()));
    }
}
