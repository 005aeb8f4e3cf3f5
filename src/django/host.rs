//! Django's rule for the `Host` of a request (`django.http.request`:
//! `host_validation_re`, `split_domain_port`, `validate_host`, and
//! `django.utils.http.is_same_domain`), so that exactly the hosts Django
//! accepts are accepted, and every absolute URL in a letter is built on one.

/// `ALLOWED_HOSTS` when it is empty and `DEBUG` is on (`get_host`).
pub const DEBUG_ALLOWED_HOSTS: [&str; 3] = [".localhost", "127.0.0.1", "[::1]"];

/// `split_domain_port`: the host lower-cased and split into its domain
/// (one trailing dot removed) and port, when it matches
/// `host_validation_re`; `("", "")` when it does not.
pub fn split_domain_port(host: &str) -> (String, String) {
    let host = host.to_lowercase();
    match domain_and_port(&host) {
        Some((domain, port)) => (
            domain.strip_suffix('.').unwrap_or(domain).to_string(),
            port.to_string(),
        ),
        None => (String::new(), String::new()),
    }
}

/// `^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?$`, matched whole.
fn domain_and_port(host: &str) -> Option<(&str, &str)> {
    let (domain, rest) = if host.starts_with('[') {
        let end = host.find(']')?;
        let inside = &host[1..end];
        let (head, tail) = inside.split_once(':')?;
        let hex = |c: char| matches!(c, 'a'..='f' | '0'..='9');
        if !head.chars().all(hex)
            || tail.is_empty()
            || !tail.chars().all(|c| hex(c) || c == '.' || c == ':')
        {
            return None;
        }
        host.split_at(end + 1)
    } else {
        let end = host.find(':').unwrap_or(host.len());
        let domain = &host[..end];
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'))
        {
            return None;
        }
        host.split_at(end)
    };
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => "",
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port,
        _ => return None,
    };
    Some((domain, port))
}

/// `validate_host`: the domain (lower-cased, port removed) matches `*`, a
/// name exactly, or `.example.com` (that domain and its subdomains).
pub fn validate_host<S: AsRef<str>>(domain: &str, allowed_hosts: &[S]) -> bool {
    allowed_hosts
        .iter()
        .any(|pattern| pattern.as_ref() == "*" || is_same_domain(domain, pattern.as_ref()))
}

/// `django.utils.http.is_same_domain(host, pattern)`: exact (pattern
/// lowercased), or `.example.com` matching the domain and its subdomains.
pub fn is_same_domain(host: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let pattern = pattern.to_lowercase();
    (pattern.starts_with('.') && (host.ends_with(&pattern) || host == &pattern[1..]))
        || pattern == host
}

/// `request.get_host()`'s check: the host as sent when its domain is valid
/// and allowed, else `None` (where Django raises `DisallowedHost`).
pub fn allowed_host<'a, S: AsRef<str>>(
    host: &'a str,
    allowed_hosts: &[S],
    debug: bool,
) -> Option<&'a str> {
    let (domain, _) = split_domain_port(host);
    let allowed = if debug && allowed_hosts.is_empty() {
        validate_host(&domain, &DEBUG_ALLOWED_HOSTS)
    } else {
        validate_host(&domain, allowed_hosts)
    };
    (!domain.is_empty() && allowed).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn hosts_are_split_and_allowed_as_django_does() {
        let patterns: Vec<Vec<String>> = vectors::all()["host_patterns"]
            .as_array()
            .expect("host_patterns")
            .iter()
            .map(|list| {
                list.as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect()
            })
            .collect();
        let cases = vectors::list("hosts");
        assert!(cases.len() > 200, "{} host vectors", cases.len());
        for case in cases {
            let host = vectors::str(case, "host");
            let (domain, port) = split_domain_port(host);
            assert_eq!(
                (domain.as_str(), port.as_str()),
                (vectors::str(case, "domain"), vectors::str(case, "port")),
                "{host:?}"
            );
            for (allowed, expected) in patterns.iter().zip(case["allowed"].as_array().unwrap()) {
                assert_eq!(
                    allowed_host(host, allowed, false).is_some(),
                    expected.as_bool().unwrap(),
                    "{host:?} with ALLOWED_HOSTS={allowed:?}"
                );
            }
        }
    }

    #[test]
    fn debug_with_no_allowed_hosts_admits_localhost_only() {
        let none: [&str; 0] = [];
        assert_eq!(
            allowed_host("localhost:8000", &none, true),
            Some("localhost:8000")
        );
        assert_eq!(
            allowed_host("a.localhost", &none, true),
            Some("a.localhost")
        );
        assert_eq!(allowed_host("[::1]:80", &none, true), Some("[::1]:80"));
        assert_eq!(allowed_host("shop.test", &none, true), None);
        assert_eq!(allowed_host("localhost", &none, false), None);
    }
}
