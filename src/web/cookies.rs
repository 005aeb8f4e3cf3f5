//! Django's `HttpResponse.set_cookie` and `delete_cookie` for the session
//! and CSRF cookies, with the attributes their settings give
//! (`config::CookieSettings`), written as Python's `http.cookies` writes a
//! `Set-Cookie` line: attributes in its order and spelling (`expires` in
//! lower case), a value quoted where it must be (an emptied cookie is
//! `""`), a domain exactly as the setting gives it.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};

use crate::config::CookieSettings;
use crate::django::http_date::http_date;

/// `http.cookies._quote`: a value of legal characters as it is, anything
/// else in double quotes with `"` and `\` escaped and other bytes outside
/// printable ASCII as octal escapes.
fn quote(value: &str) -> String {
    const LEGAL: &str = "!#$%&'*+-.^_`|~:";
    const UNESCAPED: &str = "!#$%&'*+-.^_`|~: ()/<=>?@[]{}";
    let legal = |c: char| c.is_ascii_alphanumeric() || LEGAL.contains(c);
    if !value.is_empty() && value.chars().all(legal) {
        return value.to_string();
    }
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_ascii_alphanumeric() || UNESCAPED.contains(c) => quoted.push(c),
            c if (c as u32) < 256 => quoted.push_str(&format!("\\{:03o}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `Morsel.OutputString`: `name=value`, then the attributes sorted by
/// their key (domain, expires, httponly, max-age, path, samesite, secure).
fn line(
    settings: &CookieSettings,
    value: &str,
    expires: Option<String>,
    max_age: Option<i64>,
    http_only: bool,
    secure: bool,
) -> String {
    let mut parts = vec![format!("{}={}", settings.name, quote(value))];
    if let Some(domain) = &settings.domain {
        parts.push(format!("Domain={domain}"));
    }
    if let Some(expires) = expires {
        parts.push(format!("expires={expires}"));
    }
    if http_only {
        parts.push("HttpOnly".to_string());
    }
    if let Some(seconds) = max_age {
        parts.push(format!("Max-Age={seconds}"));
    }
    parts.push(format!("Path={}", settings.path));
    if let Some(same_site) = &settings.same_site {
        parts.push(format!("SameSite={same_site}"));
    }
    if secure {
        parts.push("Secure".to_string());
    }
    parts.join("; ")
}

fn append(headers: &mut HeaderMap, line: String) {
    match HeaderValue::from_str(&line) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
        }
        // Settings and values are checked to be header-safe; a line that
        // is not would be dropped by any client anyway.
        Err(_) => tracing::error!("a Set-Cookie line that is no header value was not sent"),
    }
}

/// `set_cookie(name, value, max_age=…, domain=…, path=…, secure=…,
/// httponly=…, samesite=…)`: with a `max_age`, `Max-Age` and the matching
/// `expires`; without, a cookie for the browser session.
pub fn set(headers: &mut HeaderMap, settings: &CookieSettings, value: &str, max_age: Option<i64>) {
    let expires =
        max_age.map(|seconds| http_date(chrono::Utc::now() + chrono::Duration::seconds(seconds)));
    append(
        headers,
        line(
            settings,
            value,
            expires,
            max_age,
            settings.http_only,
            settings.secure,
        ),
    );
}

/// `delete_cookie(name, path=…, domain=…, samesite=…)`: an empty value
/// that expired at the epoch, on the same path and domain. As Django's, it
/// carries no `HttpOnly`, and `Secure` only where browsers require it
/// (`SameSite=None`, or a `__Secure-`/`__Host-` name).
pub fn delete(headers: &mut HeaderMap, settings: &CookieSettings) {
    let secure = settings
        .same_site
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("none"))
        || settings.name.starts_with("__Secure-")
        || settings.name.starts_with("__Host-");
    append(
        headers,
        line(
            settings,
            "",
            Some("Thu, 01 Jan 1970 00:00:00 GMT".to_string()),
            Some(0),
            false,
            secure,
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(domain: Option<&str>, same_site: Option<&str>) -> CookieSettings {
        CookieSettings {
            name: "sessionid".into(),
            domain: domain.map(str::to_string),
            path: "/".into(),
            secure: true,
            http_only: true,
            same_site: same_site.map(str::to_string),
        }
    }

    /// The lines Django 5.2 sends (read off its responses).
    #[test]
    fn lines_as_django_writes_them() {
        let mut headers = HeaderMap::new();
        set(
            &mut headers,
            &settings(Some(".shop.test"), Some("Strict")),
            "abc:1.x",
            Some(3600),
        );
        delete(&mut headers, &settings(None, Some("Lax")));
        set(&mut headers, &settings(None, None), "a b", None);
        let lines: Vec<&str> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        let (before, after) = lines[0].split_once("; expires=").unwrap();
        assert_eq!(before, "sessionid=abc:1.x; Domain=.shop.test");
        assert!(
            after.ends_with(" GMT; HttpOnly; Max-Age=3600; Path=/; SameSite=Strict; Secure"),
            "{after}"
        );
        assert_eq!(
            lines[1],
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
        );
        assert_eq!(lines[2], "sessionid=\"a b\"; HttpOnly; Path=/; Secure");
        assert_eq!(quote("x;\"\\é"), "\"x\\073\\\"\\\\\\351\"");
    }
}
