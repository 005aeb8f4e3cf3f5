//! Django's `HttpResponse.set_cookie` and `delete_cookie` for the session
//! and CSRF cookies, with the attributes their settings give
//! (`config::CookieSettings`).

use tower_cookies::cookie::time::{Duration, OffsetDateTime};
use tower_cookies::cookie::{self, Cookie};

use crate::config::{CookieSettings, SameSite};

/// `set_cookie(name, value, max_age=…, domain=…, path=…, secure=…,
/// httponly=…, samesite=…)`: with a `max_age`, `Max-Age` and the matching
/// `Expires`; without, a cookie for the browser session.
pub fn set(settings: &CookieSettings, value: String, max_age: Option<i64>) -> Cookie<'static> {
    let mut builder = Cookie::build((settings.name.clone(), value))
        .path(settings.path.clone())
        .http_only(settings.http_only)
        .secure(settings.secure);
    if let Some(domain) = &settings.domain {
        builder = builder.domain(domain.clone());
    }
    if let Some(same_site) = settings.same_site {
        builder = builder.same_site(same_site_of(same_site));
    }
    if let Some(seconds) = max_age {
        builder = builder
            .max_age(Duration::seconds(seconds))
            .expires(OffsetDateTime::now_utc() + Duration::seconds(seconds));
    }
    builder.build()
}

/// `delete_cookie(name, path=…, domain=…, samesite=…)`: an empty value
/// that expired long ago, on the same path and domain. As Django's, it
/// carries no `HttpOnly`, and `Secure` only where browsers require it
/// (`SameSite=None`, or a `__Secure-`/`__Host-` name).
pub fn delete(settings: &CookieSettings) -> Cookie<'static> {
    let secure = settings.same_site == Some(SameSite::None)
        || settings.name.starts_with("__Secure-")
        || settings.name.starts_with("__Host-");
    let mut builder = Cookie::build((settings.name.clone(), ""))
        .path(settings.path.clone())
        .max_age(Duration::ZERO)
        .expires(OffsetDateTime::UNIX_EPOCH)
        .secure(secure);
    if let Some(domain) = &settings.domain {
        builder = builder.domain(domain.clone());
    }
    if let Some(same_site) = settings.same_site {
        builder = builder.same_site(same_site_of(same_site));
    }
    builder.build()
}

fn same_site_of(same_site: SameSite) -> cookie::SameSite {
    match same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    }
}
