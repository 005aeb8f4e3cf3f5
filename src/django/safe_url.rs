//! Django 5.2's `url_has_allowed_host_and_scheme`
//! (`django.utils.http`): whether a URL a client handed over (a login's
//! `next`) may be redirected to. Built on the `urlsplit` port, as Django's
//! is on Python's.

use super::form_fields::python_strip;
use super::unicodedata;
use super::urlparse::urlsplit;

/// `django.utils.http.MAX_URL_LENGTH`: longer URLs are refused unread.
pub const MAX_URL_LENGTH: usize = 2048;

/// `url_has_allowed_host_and_scheme(url, allowed_hosts, require_https)`:
/// the URL, stripped, is not empty, and both it and the URL with every
/// backslash made a slash (Chrome reads `\` as `/`) are relative or
/// absolute with a host of `allowed_hosts` (compared exactly, port
/// included) and an `http`/`https` scheme (only `https` when
/// `require_https`). A URL with a scheme but no host, or that begins with a
/// control, format, private-use or unassigned character, or `///`, is
/// refused. `None` is Python's `None`, refused.
pub fn url_has_allowed_host_and_scheme<S: AsRef<str>>(
    url: Option<&str>,
    allowed_hosts: &[S],
    require_https: bool,
) -> bool {
    let Some(url) = url.map(python_strip).filter(|u| !u.is_empty()) else {
        return false;
    };
    has_allowed_host_and_scheme(url, allowed_hosts, require_https)
        && has_allowed_host_and_scheme(&url.replace('\\', "/"), allowed_hosts, require_https)
}

/// `_url_has_allowed_host_and_scheme`, for a URL that is not empty.
fn has_allowed_host_and_scheme<S: AsRef<str>>(
    url: &str,
    allowed_hosts: &[S],
    require_https: bool,
) -> bool {
    if url.starts_with("///") || url.chars().count() > MAX_URL_LENGTH {
        return false;
    }
    let Some(url_info) = urlsplit(url) else {
        return false;
    };
    // http:///example.com: a scheme and no host, which Chrome reads as a host.
    if url_info.netloc.is_empty() && !url_info.scheme.is_empty() {
        return false;
    }
    if url.chars().next().is_some_and(unicodedata::is_other) {
        return false;
    }
    let scheme = if url_info.scheme.is_empty() && !url_info.netloc.is_empty() {
        "http"
    } else {
        url_info.scheme.as_str()
    };
    let valid_schemes: &[&str] = if require_https {
        &["https"]
    } else {
        &["http", "https"]
    };
    (url_info.netloc.is_empty() || allowed_hosts.iter().any(|h| h.as_ref() == url_info.netloc))
        && (scheme.is_empty() || valid_schemes.contains(&scheme))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn urls_are_judged_as_django_judges_them() {
        let host_sets: Vec<Vec<String>> = vectors::validators()["allowed_host_sets"]
            .as_array()
            .expect("a list of host sets")
            .iter()
            .map(|set| serde_json::from_value(set.clone()).expect("a list of hosts"))
            .collect();
        let cases = vectors::validators_list("url_has_allowed_host_and_scheme");
        assert!(cases.len() >= 500, "{} vectors", cases.len());
        let mut wrong = Vec::new();
        for case in cases {
            let url = case["url"].as_str();
            for answer in case["answers"].as_array().expect("a list of answers") {
                let hosts = &host_sets[answer[0].as_u64().expect("an index") as usize];
                for (require_https, safe) in [(false, &answer[1]), (true, &answer[2])] {
                    let safe = safe.as_bool().expect("a boolean");
                    if url_has_allowed_host_and_scheme(url, hosts, require_https) != safe {
                        wrong.push(format!(
                            "{url:?} hosts {hosts:?} require_https {require_https}: Django says {safe}"
                        ));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn a_few_rules_by_name() {
        let hosts = ["shop.test"];
        let safe =
            |url: &str, https: bool| url_has_allowed_host_and_scheme(Some(url), &hosts, https);
        assert!(safe("/products/1/?page=2", false));
        assert!(safe("products/", false));
        assert!(safe("//shop.test/x", false));
        assert!(!safe("//shop.test/x", true), "no scheme counts as http");
        assert!(safe("https://shop.test/x", true));
        assert!(!safe("//SHOP.test/x", false), "hosts compare exactly");
        assert!(
            !safe("//shop.test:80/x", false),
            "the port is part of the host"
        );
        assert!(!safe("/\\evil.test", false));
        assert!(!safe("http:///shop.test", false));
        assert!(!safe("\u{200b}//evil.test", false));
        assert!(!safe("javascript:alert(1)", false));
        assert!(!url_has_allowed_host_and_scheme(None, &hosts, false));
    }
}
