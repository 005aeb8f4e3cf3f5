//! `django.core.signing`: HMAC-signed strings and objects, with optional
//! timestamps and zlib compression, in Django's exact wire format
//! (`value:timestamp:signature`, URL-safe base64 without padding, base62
//! timestamps, a leading `.` for compressed payloads).

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
// bufread: the input is already in memory (read::ZlibDecoder would copy it
// through a zeroed 32 KiB buffer on every session read).
use flate2::bufread::ZlibDecoder;
use serde_json::Value;
use thiserror::Error;

use super::crypto::{constant_time_compare, salted_hmac, Algorithm};
use super::{python_json, zlib};

pub const BASE62_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The salt `signing.dumps` / `signing.loads` use when none is given.
pub const DEFAULT_DUMPS_SALT: &str = "django.core.signing";

/// Why a signed value was refused. Django's `SignatureExpired` is a subclass
/// of `BadSignature`; [`SigningError::is_bad_signature`] answers the
/// `except BadSignature` question.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigningError {
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    SignatureExpired(String),
    /// The signature matched but the payload is not what `dumps` writes
    /// (bad base64, zlib, JSON or timestamp). Django raises assorted
    /// exceptions here; only someone holding the key can get this far.
    #[error("malformed signed payload: {0}")]
    Malformed(String),
    /// Django's `ValueError("Unsafe Signer separator ...")`.
    #[error("Unsafe Signer separator: {0:?} (cannot be empty or consist of only A-z0-9-_=)")]
    UnsafeSeparator(String),
}

impl SigningError {
    pub fn is_bad_signature(&self) -> bool {
        matches!(
            self,
            SigningError::BadSignature(_) | SigningError::SignatureExpired(_)
        )
    }
}

/// `b62_encode`.
pub fn b62_encode(n: i64) -> String {
    if n == 0 {
        return "0".to_string();
    }
    let mut rest = n.unsigned_abs();
    let mut digits = Vec::new();
    while rest > 0 {
        digits.push(BASE62_ALPHABET[(rest % 62) as usize]);
        rest /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII")
}

/// `b62_decode`; `None` where Python raises (bad digit, empty, overflow).
pub fn b62_decode(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        let digit = BASE62_ALPHABET.iter().position(|&c| c == b)? as i128;
        value = value.checked_mul(62)?.checked_add(digit)?;
    }
    i64::try_from(if negative { -value } else { value }).ok()
}

const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `b64_encode`: URL-safe base64 with the `=` padding stripped.
pub fn b64_encode(data: &[u8]) -> String {
    URL_SAFE_LENIENT.encode(data)
}

/// `b64_decode`: URL-safe base64, padding optional.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_LENIENT.decode(s).ok()
}

/// `base64_hmac(salt, value, key, algorithm)`.
pub fn base64_hmac(salt: &str, value: &str, key: &str, algorithm: Algorithm) -> String {
    b64_encode(&salted_hmac(salt, value, key, algorithm))
}

/// `_SEP_UNSAFE = r"^[A-z0-9-_=]*$"`: a separator made only of characters a
/// signature or base64 could contain (note `A-z` also spans `[\]^_` and the
/// backtick, `_` among them) would make `rsplit` ambiguous. Python's `$` also matches before
/// a final newline, so one trailing `\n` does not make a separator safe.
pub fn separator_is_safe(sep: &str) -> bool {
    let body = sep.strip_suffix('\n').unwrap_or(sep);
    !body
        .chars()
        .all(|c| matches!(c, 'A'..='z' | '0'..='9' | '-' | '='))
}

/// `Signer`: `value:signature`, tried against the key and then each fallback.
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: String,
    pub fallback_keys: Vec<String>,
    pub salt: String,
    pub sep: String,
    pub algorithm: Algorithm,
}

impl Signer {
    /// `Signer(key=key, salt=salt)`: an empty or missing salt becomes the
    /// class path `django.core.signing.Signer`, as in Django.
    pub fn new(key: &str, salt: Option<&str>) -> Signer {
        Signer::with_default_salt(key, salt, "django.core.signing.Signer")
    }

    fn with_default_salt(key: &str, salt: Option<&str>, default_salt: &str) -> Signer {
        Signer {
            key: key.to_string(),
            fallback_keys: Vec::new(),
            salt: match salt {
                Some(s) if !s.is_empty() => s.to_string(),
                _ => default_salt.to_string(),
            },
            sep: ":".to_string(),
            algorithm: Algorithm::Sha256,
        }
    }

    pub fn with_fallback_keys<S: AsRef<str>>(mut self, keys: &[S]) -> Signer {
        self.fallback_keys = keys.iter().map(|k| k.as_ref().to_string()).collect();
        self
    }

    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Signer {
        self.algorithm = algorithm;
        self
    }

    /// Django validates the separator in the constructor.
    pub fn with_sep(mut self, sep: &str) -> Result<Signer, SigningError> {
        if !separator_is_safe(sep) {
            return Err(SigningError::UnsafeSeparator(sep.to_string()));
        }
        self.sep = sep.to_string();
        Ok(self)
    }

    /// `signature(value, key)`: salted with `salt + "signer"`.
    pub fn signature(&self, value: &str, key: &str) -> String {
        base64_hmac(&format!("{}signer", self.salt), value, key, self.algorithm)
    }

    pub fn sign(&self, value: &str) -> String {
        format!("{}{}{}", value, self.sep, self.signature(value, &self.key))
    }

    /// The key first, then each fallback key, as `Signer.unsign`.
    pub fn unsign(&self, signed_value: &str) -> Result<String, SigningError> {
        let Some((value, sig)) = signed_value.rsplit_once(self.sep.as_str()) else {
            return Err(SigningError::BadSignature(format!(
                "No \"{}\" found in value",
                self.sep
            )));
        };
        let matched = std::iter::once(&self.key)
            .chain(self.fallback_keys.iter())
            .any(|key| constant_time_compare(sig, self.signature(value, key)));
        if matched {
            Ok(value.to_string())
        } else {
            Err(SigningError::BadSignature(format!(
                "Signature \"{sig}\" does not match"
            )))
        }
    }

    /// `sign_object(obj, compress=...)`.
    pub fn sign_object(&self, obj: &Value, compress: bool) -> String {
        self.sign(&encode_payload(obj, compress))
    }

    pub fn unsign_object(&self, signed_obj: &str) -> Result<Value, SigningError> {
        decode_payload(&self.unsign(signed_obj)?)
    }
}

/// `TimestampSigner`: `value:timestamp:signature`, the timestamp being base62
/// whole seconds since the epoch.
#[derive(Debug, Clone)]
pub struct TimestampSigner {
    pub signer: Signer,
}

impl TimestampSigner {
    /// An empty or missing salt becomes `django.core.signing.TimestampSigner`.
    pub fn new(key: &str, salt: Option<&str>) -> TimestampSigner {
        TimestampSigner {
            signer: Signer::with_default_salt(key, salt, "django.core.signing.TimestampSigner"),
        }
    }

    pub fn with_fallback_keys<S: AsRef<str>>(mut self, keys: &[S]) -> TimestampSigner {
        self.signer = self.signer.with_fallback_keys(keys);
        self
    }

    pub fn sign(&self, value: &str) -> String {
        self.sign_at(value, now_seconds() as i64)
    }

    /// `sign` with a given `int(time.time())`.
    pub fn sign_at(&self, value: &str, timestamp: i64) -> String {
        self.signer.sign(&format!(
            "{}{}{}",
            value,
            self.signer.sep,
            b62_encode(timestamp)
        ))
    }

    /// `unsign(value, max_age)`, `max_age` in seconds.
    pub fn unsign(&self, value: &str, max_age: Option<f64>) -> Result<String, SigningError> {
        self.unsign_at(value, max_age, now_seconds())
    }

    /// `unsign` with a given `time.time()`: expired when `now - timestamp >
    /// max_age` (so exactly `max_age` old is still good).
    pub fn unsign_at(
        &self,
        value: &str,
        max_age: Option<f64>,
        now: f64,
    ) -> Result<String, SigningError> {
        let result = self.signer.unsign(value)?;
        let Some((value, timestamp)) = result.rsplit_once(self.signer.sep.as_str()) else {
            return Err(SigningError::Malformed("no timestamp".to_string()));
        };
        let timestamp = b62_decode(timestamp)
            .ok_or_else(|| SigningError::Malformed(format!("bad timestamp {timestamp:?}")))?;
        if let Some(max_age) = max_age {
            let age = now - timestamp as f64;
            if age > max_age {
                return Err(SigningError::SignatureExpired(format!(
                    "Signature age {age} > {max_age} seconds"
                )));
            }
        }
        Ok(value.to_string())
    }

    pub fn sign_object(&self, obj: &Value, compress: bool) -> String {
        self.sign(&encode_payload(obj, compress))
    }

    pub fn sign_object_at(&self, obj: &Value, compress: bool, timestamp: i64) -> String {
        self.sign_at(&encode_payload(obj, compress), timestamp)
    }

    pub fn unsign_object(&self, signed: &str, max_age: Option<f64>) -> Result<Value, SigningError> {
        decode_payload(&self.unsign(signed, max_age)?)
    }

    pub fn unsign_object_at(
        &self,
        signed: &str,
        max_age: Option<f64>,
        now: f64,
    ) -> Result<Value, SigningError> {
        decode_payload(&self.unsign_at(signed, max_age, now)?)
    }
}

/// `signing.dumps(obj, key, salt, compress=compress)` now.
pub fn dumps(obj: &Value, key: &str, salt: &str, compress: bool) -> String {
    TimestampSigner::new(key, Some(salt)).sign_object(obj, compress)
}

/// `signing.dumps` at a given `int(time.time())`.
pub fn dumps_at(obj: &Value, key: &str, salt: &str, compress: bool, timestamp: i64) -> String {
    TimestampSigner::new(key, Some(salt)).sign_object_at(obj, compress, timestamp)
}

/// `signing.loads(s, key, salt, max_age=..., fallback_keys=...)` now.
pub fn loads<S: AsRef<str>>(
    s: &str,
    key: &str,
    fallback_keys: &[S],
    salt: &str,
    max_age: Option<f64>,
) -> Result<Value, SigningError> {
    loads_at(s, key, fallback_keys, salt, max_age, now_seconds())
}

/// `signing.loads` at a given `time.time()`.
pub fn loads_at<S: AsRef<str>>(
    s: &str,
    key: &str,
    fallback_keys: &[S],
    salt: &str,
    max_age: Option<f64>,
    now: f64,
) -> Result<Value, SigningError> {
    TimestampSigner::new(key, Some(salt))
        .with_fallback_keys(fallback_keys)
        .unsign_object_at(s, max_age, now)
}

/// The part of `sign_object` before signing: JSON, zlib if that saves more
/// than one byte, base64, `.` for compressed.
fn encode_payload(obj: &Value, compress: bool) -> String {
    let data = python_json::dumps(obj).into_bytes();
    if compress {
        let compressed = zlib::compress(&data);
        if compressed.len() + 1 < data.len() {
            return format!(".{}", b64_encode(&compressed));
        }
    }
    b64_encode(&data)
}

/// The part of `unsign_object` after the signature check.
fn decode_payload(base64d: &str) -> Result<Value, SigningError> {
    let (compressed, base64d) = match base64d.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, base64d),
    };
    let mut data = b64_decode(base64d).ok_or_else(|| SigningError::Malformed("base64".into()))?;
    if compressed {
        let mut inflated = Vec::new();
        ZlibDecoder::new(data.as_slice())
            .read_to_end(&mut inflated)
            .map_err(|e| SigningError::Malformed(format!("zlib: {e}")))?;
        data = inflated;
    }
    python_json::loads_latin1(&data).map_err(|e| SigningError::Malformed(format!("JSON: {e}")))
}

/// `time.time()`.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn base62_both_ways() {
        let cases = vectors::list("base62");
        assert!(cases.len() >= 5);
        for case in cases {
            let n = case["n"].as_i64().unwrap();
            let s = vectors::str(case, "s");
            assert_eq!(b62_encode(n), s);
            assert_eq!(b62_decode(s), Some(n));
        }
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("!"), None);
    }

    #[test]
    fn b64_both_ways() {
        for case in vectors::list("b64") {
            let data = hex::decode(vectors::str(case, "hex")).unwrap();
            assert_eq!(b64_encode(&data), vectors::str(case, "encoded"));
            assert_eq!(b64_decode(vectors::str(case, "encoded")).unwrap(), data);
        }
    }

    #[test]
    fn signer_sign_matches_django() {
        let cases = vectors::list("signer");
        assert!(cases.len() >= 3);
        for case in cases {
            let mut signer = Signer::new(vectors::str(case, "key"), case["salt"].as_str());
            if let Some(sep) = case["sep"].as_str() {
                signer = signer.with_sep(sep).unwrap();
            }
            if let Some(alg) = case["algorithm"].as_str() {
                signer = signer.with_algorithm(Algorithm::from_name(alg).unwrap());
            }
            let value = vectors::str(case, "value");
            let signed = vectors::str(case, "signed");
            assert_eq!(signer.sign(value), signed, "{case}");
            assert_eq!(signer.unsign(signed).unwrap(), value);
        }
    }

    #[test]
    fn signer_unsign_matches_django() {
        let cases = vectors::list("signer_unsign");
        assert!(cases.len() >= 4);
        for case in cases {
            let signer = Signer::new(vectors::str(case, "key"), case["salt"].as_str())
                .with_fallback_keys(&vectors::strings(case, "fallback_keys"));
            let got = signer.unsign(vectors::str(case, "signed"));
            match case["value"].as_str() {
                Some(v) => assert_eq!(got.unwrap(), v, "{case}"),
                None => assert!(matches!(got, Err(SigningError::BadSignature(_))), "{case}"),
            }
        }
    }

    #[test]
    fn unsafe_separators_are_refused() {
        for (sep, safe) in vectors::list("separators")
            .iter()
            .map(|c| (vectors::str(c, "sep"), c["safe"].as_bool().unwrap()))
        {
            assert_eq!(separator_is_safe(sep), safe, "{sep:?}");
        }
    }

    #[test]
    fn timestamp_signer_matches_django() {
        let cases = vectors::list("timestamp_signer");
        assert!(cases.len() >= 3);
        for case in cases {
            let signer = TimestampSigner::new(vectors::str(case, "key"), case["salt"].as_str());
            let ts = case["timestamp"].as_i64().unwrap();
            let value = vectors::str(case, "value");
            let signed = vectors::str(case, "signed");
            assert_eq!(signer.sign_at(value, ts), signed, "{case}");
            for check in case["checks"].as_array().unwrap() {
                let got = signer.unsign_at(
                    signed,
                    check["max_age"].as_f64(),
                    check["now"].as_f64().unwrap(),
                );
                match check["result"].as_str() {
                    Some("SignatureExpired") => {
                        assert!(
                            matches!(got, Err(SigningError::SignatureExpired(_))),
                            "{check}"
                        )
                    }
                    Some(v) => assert_eq!(got.unwrap(), v, "{check}"),
                    None => panic!("bad vector"),
                }
            }
        }
    }

    #[test]
    fn dumps_matches_django() {
        let cases = vectors::list("dumps");
        assert!(cases.len() >= 6);
        let mut compressed = 0;
        for case in cases {
            let key = vectors::str(case, "key");
            let salt = vectors::str(case, "salt");
            let compress = case["compress"].as_bool().unwrap();
            let ts = case["timestamp"].as_i64().unwrap();
            let signed = vectors::str(case, "signed");
            let ours = dumps_at(&case["obj"], key, salt, compress, ts);
            if signed.starts_with('.') {
                compressed += 1;
            }
            assert_eq!(ours, signed, "{case}");
            let none: [&str; 0] = [];
            for s in [signed, ours.as_str()] {
                assert_eq!(
                    loads_at(s, key, &none, salt, None, 0.0).unwrap(),
                    case["obj"]
                );
            }
        }
        assert!(compressed >= 2);
    }

    #[test]
    fn signed_but_malformed_payloads_are_not_bad_signatures() {
        // Django raises JSONDecodeError here, not BadSignature.
        let none: [&str; 0] = [];
        for case in vectors::list("loads_malformed") {
            let signed = vectors::str(case, "signed");
            let key = vectors::str(case, "key");
            let got = loads_at(signed, key, &none, vectors::str(case, "salt"), None, 0.0);
            let err = got.unwrap_err();
            assert!(matches!(err, SigningError::Malformed(_)), "{err:?}");
            assert!(!err.is_bad_signature());
        }
    }

    #[test]
    fn loads_matches_django() {
        let cases = vectors::list("loads");
        assert!(cases.len() >= 5);
        for case in cases {
            let got = loads_at(
                vectors::str(case, "signed"),
                vectors::str(case, "key"),
                &vectors::strings(case, "fallback_keys"),
                vectors::str(case, "salt"),
                case["max_age"].as_f64(),
                case["now"].as_f64().unwrap(),
            );
            match case["error"].as_str() {
                Some("BadSignature") => {
                    assert!(matches!(got, Err(SigningError::BadSignature(_))), "{case}")
                }
                Some("SignatureExpired") => {
                    assert!(
                        matches!(got, Err(SigningError::SignatureExpired(_))),
                        "{case}"
                    )
                }
                Some(other) => panic!("unknown error kind {other}"),
                None => assert_eq!(got.unwrap(), case["obj"], "{case}"),
            }
        }
    }
}
