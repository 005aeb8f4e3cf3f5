//! The parts of Python's `urllib.parse` Django's rules are written with:
//! `urlsplit` (3.11), `urlunsplit`, `quote` and `parse_qsl`.

/// What `urllib.parse.urlsplit` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitUrl {
    pub scheme: String,
    pub netloc: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
}

impl SplitUrl {
    /// `SplitResult.geturl()` for a URL with a scheme and a netloc.
    pub fn geturl(&self) -> String {
        let mut url = format!("{}://{}", self.scheme, self.netloc);
        if !self.path.is_empty() && !self.path.starts_with('/') {
            url.push('/');
        }
        url.push_str(&self.path);
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&self.query);
        }
        if !self.fragment.is_empty() {
            url.push('#');
            url.push_str(&self.fragment);
        }
        url
    }
}

/// Python 3.11's `urlsplit`; `None` where it raises `ValueError` (unbalanced
/// or invalid brackets in the netloc, or a netloc that NFKC turns into one
/// with a delimiter).
pub fn urlsplit(url: &str) -> Option<SplitUrl> {
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let mut url: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut scheme = String::new();
    if let Some(i) = url.find(':') {
        let candidate = &url[..i];
        let first_ok = candidate
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic());
        if i > 0
            && first_ok
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = candidate.to_ascii_lowercase();
            url = url[i + 1..].to_string();
        }
    }
    let mut netloc = String::new();
    if let Some(rest) = url.strip_prefix("//") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        netloc = rest[..end].to_string();
        url = rest[end..].to_string();
        let (open, close) = (netloc.contains('['), netloc.contains(']'));
        if open != close {
            return None;
        }
        if open {
            let after = netloc.split_once('[')?.1;
            let bracketed = after.split_once(']').map_or(after, |(h, _)| h);
            if !bracketed_host_is_valid(bracketed) {
                return None;
            }
        }
    }
    let mut fragment = String::new();
    if let Some((before, after)) = url.split_once('#') {
        fragment = after.to_string();
        url = before.to_string();
    }
    let mut query = String::new();
    if let Some((before, after)) = url.split_once('?') {
        query = after.to_string();
        url = before.to_string();
    }
    if !netloc_is_valid(&netloc) {
        return None;
    }
    Some(SplitUrl {
        scheme,
        netloc,
        path: url,
        query,
        fragment,
    })
}

/// `_check_bracketed_host`: an IPvFuture literal, or what
/// `ipaddress.ip_address` reads as an IPv6 address (with its scope id).
fn bracketed_host_is_valid(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('v') {
        match rest.split_once('.') {
            Some((hex, tail)) => {
                !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) && !tail.is_empty()
            }
            None => false,
        }
    } else {
        super::ip::ip_address_is_v4(host) == Some(false)
    }
}

/// `_checknetloc`: a netloc that is not ASCII must not gain a `/`, `?`,
/// `#`, `@` or `:` under NFKC (U+2100 `℀` is `a/c`) once those it already
/// holds are left out.
fn netloc_is_valid(netloc: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    if netloc.is_ascii() {
        return true;
    }
    let kept: String = netloc
        .chars()
        .filter(|c| !matches!(c, '@' | ':' | '#' | '?'))
        .collect();
    let normalized: String = kept.nfkc().collect();
    normalized == kept || !normalized.contains(['/', '?', '#', '@', ':'])
}

impl SplitUrl {
    /// `urlunsplit`: the parts joined back (`//` before a netloc, or before
    /// a path that starts with `//`).
    pub fn urlunsplit(&self) -> String {
        let mut url = self.path.clone();
        if !self.netloc.is_empty() || (!self.scheme.is_empty() && url.starts_with("//")) {
            if !url.is_empty() && !url.starts_with('/') {
                url.insert(0, '/');
            }
            url = format!("//{}{url}", self.netloc);
        }
        if !self.scheme.is_empty() {
            url = format!("{}:{url}", self.scheme);
        }
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&self.query);
        }
        if !self.fragment.is_empty() {
            url.push('#');
            url.push_str(&self.fragment);
        }
        url
    }
}

/// What `quote` never escapes: letters, digits and `_.-~`.
const ALWAYS_SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `quote(value, safe="/")`, the quoting of `QueryDict.urlencode(safe="/")`.
pub fn quote_keeping_slash(value: &str) -> String {
    const SAFE: &percent_encoding::AsciiSet = &ALWAYS_SAFE.remove(b'/');
    percent_encoding::utf8_percent_encode(value, SAFE).to_string()
}

/// `parse_qsl(query, keep_blank_values=True)`: `&`-separated pairs, `+` a
/// space, percent-escapes decoded as UTF-8 (an invalid sequence becomes
/// U+FFFD), a pair without `=` a name with an empty value.
pub fn parse_qsl(query: &str) -> Vec<(String, String)> {
    let unquote = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (unquote(name), unquote(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::vectors;

    #[test]
    fn urls_split_as_python_splits_them() {
        let cases = vectors::validators_list("urlsplit");
        assert!(cases.len() >= 500, "{} vectors", cases.len());
        let mut wrong = Vec::new();
        for case in cases {
            let url = vectors::str(case, "url");
            let want = case["split"].as_array().map(|parts| {
                let part = |i: usize| parts[i].as_str().expect("a string").to_string();
                SplitUrl {
                    scheme: part(0),
                    netloc: part(1),
                    path: part(2),
                    query: part(3),
                    fragment: part(4),
                }
            });
            let got = urlsplit(url);
            if got != want {
                wrong.push(format!("{url:?}: Python {want:?}, here {got:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}
