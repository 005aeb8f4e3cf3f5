//! Test access to the vectors a real Django produced
//! (`compat-tests/vectors/django.json`, `validators.json` and each
//! release's `release-*.json`).

use serde_json::Value;
use std::sync::OnceLock;

const RAW: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compat-tests/vectors/django.json"
));

pub fn all() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(RAW).expect("django.json is valid JSON"))
}

/// The list of vectors under `name`; missing lists fail the test.
pub fn list(name: &str) -> &'static Vec<Value> {
    all()[name]
        .as_array()
        .unwrap_or_else(|| panic!("no vector list {name:?} in django.json"))
}

/// A string field of a vector.
pub fn str<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field:?} is not a string in {case}"))
}

/// A list-of-strings field of a vector (`null` reads as empty).
pub fn strings(case: &Value, field: &str) -> Vec<String> {
    match &case[field] {
        Value::Null => Vec::new(),
        v => v
            .as_array()
            .unwrap_or_else(|| panic!("vector field {field:?} is not a list in {case}"))
            .iter()
            .map(|s| s.as_str().expect("list of strings").to_string())
            .collect(),
    }
}

const VALIDATORS_RAW: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/compat-tests/vectors/validators.json"
));

/// `compat-tests/vectors/validators.json`: Django's checks on untrusted
/// input (`compat-tests/tools/make_validator_vectors.py`).
pub fn validators() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| {
        serde_json::from_str(VALIDATORS_RAW).expect("validators.json is valid JSON")
    })
}

/// The list of vectors under `name` in validators.json.
pub fn validators_list(name: &str) -> &'static Vec<Value> {
    validators()[name]
        .as_array()
        .unwrap_or_else(|| panic!("no vector list {name:?} in validators.json"))
}

/// `compat-tests/vectors/release-<name>.json`: what one supported Django
/// release stores and answers (`compat-tests/tools/release_vectors.py`).
pub fn release(release: crate::django::releases::Release) -> Value {
    let path = format!(
        "{}/compat-tests/vectors/release-{}.json",
        env!("CARGO_MANIFEST_DIR"),
        release.name()
    );
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
}
