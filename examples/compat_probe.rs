//! A line-oriented bridge to the Django compatibility core for the Python
//! compat suite: one JSON request per line on stdin, one JSON answer per line
//! on stdout, so Django can check what Rust writes and the other way round.
//!
//! Every request is an object with an `op`; a failed request answers
//! `{"error": "..."}` and the probe keeps going.

use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};

use serde_json::{json, Map, Value};
use unchained::django::crypto::{salted_hmac_hex, Algorithm};
use unchained::django::hashers::Hashers;
use unchained::django::signing::{self, Signer, SigningError, DEFAULT_DUMPS_SALT};
use unchained::django::{csrf, sessions};

type Answer = Result<Value, String>;

fn main() {
    // Failures are answered on stdout; keep panics from cluttering stderr.
    panic::set_hook(Box::new(|_| {}));
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(request) => panic::catch_unwind(AssertUnwindSafe(|| handle(&request)))
                .unwrap_or_else(|_| Err("internal error".to_string())),
            Err(e) => Err(format!("request is not JSON: {e}")),
        };
        let out = answer.unwrap_or_else(|e| json!({ "error": e }));
        if writeln!(stdout, "{out}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
}

/// One request: an arm here and a function below.
fn handle(req: &Value) -> Answer {
    match field_str(req, "op")? {
        "make_password" => make_password(req),
        "check_password" => check_password(req),
        "salted_hmac" => salted_hmac(req),
        "sign" => sign(req),
        "unsign" => unsign(req),
        "dumps" => dumps(req),
        "loads" => loads(req),
        "session_encode" => session_encode(req),
        "session_decode" => session_decode(req),
        "session_auth_hash" => session_auth_hash(req),
        "csrf_new" => csrf_new(),
        "csrf_mask" => csrf_mask(req),
        "csrf_match" => csrf_match(req),
        "has_perm" => has_perm(req),
        other => Err(format!("unknown op {other:?}")),
    }
}

/// `{"database_url", "checks": [{"user_id", "perm"}]}` -> `{"results": [bool]}`:
/// loads each user's flags and permissions the way the site does
/// (`db::perms::user_perms`) and decides with the permission core. An
/// unknown user has no permission.
fn has_perm(req: &Value) -> Answer {
    let url = unchained::config::DatabaseUrl::parse(field_str(req, "database_url")?)
        .map_err(|e| e.to_string())?;
    let checks = req
        .get("checks")
        .and_then(Value::as_array)
        .ok_or("\"checks\" must be a list")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let db = unchained::db::Db::connect(&url)
            .await
            .map_err(|e| e.to_string())?;
        let mut loaded = std::collections::HashMap::new();
        let mut results = Vec::with_capacity(checks.len());
        for check in checks {
            let user_id = check
                .get("user_id")
                .and_then(Value::as_i64)
                .ok_or("\"user_id\" must be an integer")?;
            let perm = field_str(check, "perm")?;
            if !loaded.contains_key(&user_id) {
                let perms = unchained::db::perms::user_perms(&db, user_id)
                    .await
                    .map_err(|e| e.to_string())?;
                loaded.insert(user_id, perms);
            }
            results.push(loaded[&user_id].as_ref().is_some_and(|u| u.has_perm(perm)));
        }
        db.close().await;
        Ok(json!({ "results": results }))
    })
}

// ---- request fields -------------------------------------------------------

fn field_str<'a>(req: &'a Value, name: &str) -> Result<&'a str, String> {
    req.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name:?} must be a string"))
}

/// A string field that may be absent or null.
fn field_opt_str<'a>(req: &'a Value, name: &str) -> Result<Option<&'a str>, String> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name:?} must be a string or null")),
    }
}

/// A list of strings that may be absent or null (then empty).
fn field_strings(req: &Value, name: &str) -> Result<Vec<String>, String> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{name:?} must hold strings"))
            })
            .collect(),
        Some(_) => Err(format!("{name:?} must be a list of strings")),
    }
}

fn field_bool(req: &Value, name: &str) -> Result<bool, String> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{name:?} must be a boolean")),
    }
}

fn field_object<'a>(req: &'a Value, name: &str) -> Result<&'a Map<String, Value>, String> {
    req.get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{name:?} must be an object"))
}

fn signing_error(e: SigningError) -> Answer {
    Ok(match e {
        SigningError::BadSignature(_) => json!({ "error": "BadSignature" }),
        SigningError::SignatureExpired(_) => json!({ "error": "SignatureExpired" }),
        SigningError::Malformed(detail) => json!({ "error": "Malformed", "detail": detail }),
        SigningError::UnsafeSeparator(sep) => json!({ "error": "UnsafeSeparator", "detail": sep }),
    })
}

// ---- ops ------------------------------------------------------------------

fn make_password(req: &Value) -> Answer {
    let password = field_str(req, "password")?;
    Ok(json!({ "encoded": Hashers::default().make_password(password) }))
}

fn check_password(req: &Value) -> Answer {
    let hashers = match req.get("hashers") {
        None | Some(Value::Null) => Hashers::default(),
        Some(_) => {
            Hashers::from_names(&field_strings(req, "hashers")?).map_err(|e| e.to_string())?
        }
    };
    let outcome = hashers.check_password(field_str(req, "password")?, field_str(req, "encoded")?);
    Ok(json!({ "valid": outcome.valid, "must_update": outcome.must_update }))
}

fn salted_hmac(req: &Value) -> Answer {
    let name = field_str(req, "algorithm")?;
    let algorithm =
        Algorithm::from_name(name).ok_or_else(|| format!("unsupported algorithm {name:?}"))?;
    let hexdigest = salted_hmac_hex(
        field_str(req, "key_salt")?,
        field_str(req, "value")?,
        field_str(req, "secret")?,
        algorithm,
    );
    Ok(json!({ "hexdigest": hexdigest }))
}

fn sign(req: &Value) -> Answer {
    let signer = Signer::new(field_str(req, "key")?, field_opt_str(req, "salt")?);
    Ok(json!({ "signed": signer.sign(field_str(req, "value")?) }))
}

fn unsign(req: &Value) -> Answer {
    let signer = Signer::new(field_str(req, "key")?, field_opt_str(req, "salt")?)
        .with_fallback_keys(&field_strings(req, "fallback_keys")?);
    match signer.unsign(field_str(req, "signed")?) {
        Ok(value) => Ok(json!({ "value": value })),
        Err(e) => signing_error(e),
    }
}

fn dumps(req: &Value) -> Answer {
    let obj = req.get("obj").ok_or("\"obj\" is missing")?;
    let salt = field_opt_str(req, "salt")?.unwrap_or(DEFAULT_DUMPS_SALT);
    let signed = signing::dumps(
        obj,
        field_str(req, "key")?,
        salt,
        field_bool(req, "compress")?,
    );
    Ok(json!({ "signed": signed }))
}

fn loads(req: &Value) -> Answer {
    let salt = field_opt_str(req, "salt")?.unwrap_or(DEFAULT_DUMPS_SALT);
    let max_age = match req.get("max_age") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().ok_or("\"max_age\" must be a number or null")?),
    };
    let result = signing::loads(
        field_str(req, "signed")?,
        field_str(req, "key")?,
        &field_strings(req, "fallback_keys")?,
        salt,
        max_age,
    );
    match result {
        Ok(obj) => Ok(json!({ "obj": obj })),
        Err(e) => signing_error(e),
    }
}

fn session_encode(req: &Value) -> Answer {
    let session = field_object(req, "session")?;
    Ok(json!({ "encoded": sessions::encode(session, field_str(req, "secret_key")?) }))
}

fn session_decode(req: &Value) -> Answer {
    let session = sessions::decode(
        field_str(req, "encoded")?,
        field_str(req, "secret_key")?,
        &field_strings(req, "fallback_keys")?,
    );
    Ok(json!({ "session": session }))
}

fn session_auth_hash(req: &Value) -> Answer {
    let hash =
        sessions::session_auth_hash(field_str(req, "password")?, field_str(req, "secret_key")?);
    Ok(json!({ "hash": hash }))
}

fn csrf_new() -> Answer {
    let secret = csrf::new_secret();
    let token = csrf::mask_cipher_secret(&secret);
    Ok(json!({ "secret": secret, "token": token }))
}

fn csrf_mask(req: &Value) -> Answer {
    let secret = field_str(req, "secret")?;
    if secret.len() != csrf::CSRF_SECRET_LENGTH || csrf::check_token_format(secret).is_err() {
        return Err("\"secret\" must be 32 characters of [a-zA-Z0-9]".to_string());
    }
    Ok(json!({ "token": csrf::mask_cipher_secret(secret) }))
}

fn csrf_match(req: &Value) -> Answer {
    let token = field_str(req, "token")?;
    let ok = match csrf::secret_from_cookie(field_str(req, "cookie")?) {
        Ok(cookie) => csrf::does_token_match(token, &cookie.secret),
        Err(_) => false,
    };
    Ok(json!({ "ok": ok }))
}
