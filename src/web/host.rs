//! Django's `request.get_host()`: the Host header, checked against
//! `ALLOWED_HOSTS`.

use axum::http::{header, HeaderMap};

use crate::config::Settings;

/// The host (with port) when `ALLOWED_HOSTS` admits it, else `None`
/// (where Django raises `DisallowedHost`).
pub fn validated_host(settings: &Settings, headers: &HeaderMap) -> Option<String> {
    let host = headers
        .get(header::HOST)?
        .to_str()
        .ok()?
        .trim()
        .to_ascii_lowercase();
    let domain = split_domain_port(&host)?;
    let allowed = if settings.debug && settings.allowed_hosts.is_empty() {
        // Django's DEBUG default: localhost only.
        ["localhost", ".localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|p| host_matches(&domain, p))
    } else {
        settings
            .allowed_hosts
            .iter()
            .any(|p| host_matches(&domain, p))
    };
    allowed.then_some(host)
}

/// `split_domain_port`: the domain part, without a trailing dot; `None`
/// when malformed.
fn split_domain_port(host: &str) -> Option<String> {
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        return Some(host[..=end].to_string());
    }
    let domain = host.rsplit_once(':').map_or(host, |(domain, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            domain
        } else {
            host
        }
    });
    Some(domain.trim_end_matches('.').to_string())
}

/// `validate_host`'s pattern rule: `*`, an exact name, or `.example.com`
/// for the domain and its subdomains.
fn host_matches(domain: &str, pattern: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    pattern == "*"
        || pattern == domain
        || (pattern.starts_with('.') && (domain.ends_with(&pattern) || domain == &pattern[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_as_django_does() {
        assert_eq!(
            split_domain_port("shop.test:8000").as_deref(),
            Some("shop.test")
        );
        assert_eq!(split_domain_port("[::1]:8000").as_deref(), Some("[::1]"));
        assert!(host_matches("a.shop.test", ".shop.test"));
        assert!(host_matches("shop.test", ".shop.test"));
        assert!(!host_matches("evilshop.test", ".shop.test"));
        assert!(host_matches("anything", "*"));
        assert!(split_domain_port("user@evil").is_none());
    }
}
