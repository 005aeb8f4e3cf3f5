//! Where `LoginRequiredMixin` sends an anonymous visitor:
//! `handle_no_permission` and `redirect_to_login` of
//! `django.contrib.auth` (Django 5.2), given the resolved `LOGIN_URL`.

use super::urlparse::{parse_qsl, quote_keeping_slash, urlsplit};

/// The `next` parameter's name (`REDIRECT_FIELD_NAME`).
pub const REDIRECT_FIELD_NAME: &str = "next";

/// The `Location` of the redirect to the login page. `full_path` is the
/// request's path and query (`get_full_path()`), `absolute_uri` its
/// `build_absolute_uri()`: the absolute form is the `next` only when the
/// login page is on another scheme or host.
pub fn redirect_to_login(login_url: &str, full_path: &str, absolute_uri: &str) -> String {
    let Some(mut login) = urlsplit(login_url) else {
        // Django would fail on such a LOGIN_URL; start-up resolves it, so
        // this is not reached with a setting that names a page.
        return login_url.to_string();
    };
    let current = urlsplit(absolute_uri);
    let same_site = |login_part: &str, current_part: Option<&str>| {
        login_part.is_empty() || Some(login_part) == current_part
    };
    let next = if same_site(&login.scheme, current.as_ref().map(|c| c.scheme.as_str()))
        && same_site(&login.netloc, current.as_ref().map(|c| c.netloc.as_str()))
    {
        full_path
    } else {
        absolute_uri
    };
    // `QueryDict(query)[REDIRECT_FIELD_NAME] = next`, then
    // `urlencode(safe="/")`: the login URL's own parameters kept in order,
    // `next` replacing any earlier one in its place.
    let mut pairs = parse_qsl(&login.query);
    match pairs
        .iter()
        .position(|(name, _)| name == REDIRECT_FIELD_NAME)
    {
        Some(i) => {
            pairs[i].1 = next.to_string();
            let mut seen = false;
            pairs.retain(|(name, _)| {
                let keep = name != REDIRECT_FIELD_NAME || !seen;
                seen |= name == REDIRECT_FIELD_NAME;
                keep
            });
        }
        None => pairs.push((REDIRECT_FIELD_NAME.to_string(), next.to_string())),
    }
    login.query = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                quote_keeping_slash(name),
                quote_keeping_slash(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    login.urlunsplit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn redirects_match_django() {
        let cases = vectors::list("redirect_to_login");
        assert!(cases.len() >= 8);
        for case in cases {
            let got = redirect_to_login(
                vectors::str(case, "login_url"),
                vectors::str(case, "full_path"),
                vectors::str(case, "absolute_uri"),
            );
            assert_eq!(got, vectors::str(case, "location"), "{case}");
        }
    }
}
