//! Django's `request.get_host()`: the Host header, checked with Django's own
//! rule (`django::host`) against `ALLOWED_HOSTS`; and `request.is_secure()`.

use axum::http::{header, HeaderMap};

use crate::config::Settings;
use crate::django::host::allowed_host;

/// The host as the client sent it (with its port) when Django would accept
/// it, else `None` (where Django raises `DisallowedHost`). A header that is
/// not visible ASCII is refused, as Django refuses what it decodes from it.
pub fn validated_host(settings: &Settings, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    allowed_host(host, &settings.allowed_hosts, settings.debug).map(str::to_string)
}

/// Django's `request.is_secure()`: only the configured
/// `SECURE_PROXY_SSL_HEADER` can say so, since this server speaks plain
/// HTTP itself.
pub fn is_secure(settings: &Settings, headers: &HeaderMap) -> bool {
    match &settings.secure_proxy_ssl_header {
        Some((name, value)) => {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok()) == Some(value.as_str())
        }
        None => false,
    }
}
