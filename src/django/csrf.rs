//! `django.middleware.csrf` (Django 5.2): the unmasked 32-character secret in
//! the `csrftoken` cookie, 64-character masked tokens in forms and headers,
//! and the Origin / Referer checks, with Django's rejection reasons.

use super::crypto::{constant_time_compare, get_random_string, ASCII_LETTERS_AND_DIGITS};
use super::host::is_same_domain;
use super::urlparse::urlsplit;

pub const CSRF_SECRET_LENGTH: usize = 32;
pub const CSRF_TOKEN_LENGTH: usize = 2 * CSRF_SECRET_LENGTH;
/// `string.ascii_letters + string.digits`, in that order (masking adds
/// positions in this string modulo 62).
pub const CSRF_ALLOWED_CHARS: &str = ASCII_LETTERS_AND_DIGITS;

pub const CSRF_FORM_FIELD: &str = "csrfmiddlewaretoken";
/// Django's default `CSRF_HEADER_NAME`, a `request.META` key.
pub const DEFAULT_CSRF_HEADER_NAME: &str = "HTTP_X_CSRFTOKEN";
/// The session key used when `CSRF_USE_SESSIONS` is on.
pub const CSRF_SESSION_KEY: &str = "_csrftoken";

pub const REASON_BAD_ORIGIN: &str =
    "Origin checking failed - %s does not match any trusted origins.";
pub const REASON_NO_REFERER: &str = "Referer checking failed - no Referer.";
pub const REASON_BAD_REFERER: &str =
    "Referer checking failed - %s does not match any trusted origins.";
pub const REASON_NO_CSRF_COOKIE: &str = "CSRF cookie not set.";
pub const REASON_CSRF_TOKEN_MISSING: &str = "CSRF token missing.";
pub const REASON_MALFORMED_REFERER: &str = "Referer checking failed - Referer is malformed.";
pub const REASON_INSECURE_REFERER: &str =
    "Referer checking failed - Referer is insecure while host is secure.";
pub const REASON_INCORRECT_LENGTH: &str = "has incorrect length";
pub const REASON_INVALID_CHARACTERS: &str = "has invalid characters";

/// The place of `c` in [`CSRF_ALLOWED_CHARS`] (`a`–`z`, `A`–`Z`, `0`–`9`).
fn alphabet_index(c: u8) -> Option<usize> {
    match c {
        b'a'..=b'z' => Some((c - b'a') as usize),
        b'A'..=b'Z' => Some(26 + (c - b'A') as usize),
        b'0'..=b'9' => Some(52 + (c - b'0') as usize),
        _ => None,
    }
}

fn alphabet_char(i: usize) -> char {
    CSRF_ALLOWED_CHARS.as_bytes()[i] as char
}

/// `_get_new_csrf_string()`: a new cookie secret.
pub fn new_secret() -> String {
    get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)
}

/// `_mask_cipher_secret(secret)` with a fresh random mask: what `get_token`
/// puts in a form.
pub fn mask_cipher_secret(secret: &str) -> String {
    mask_cipher_secret_with(secret, &new_secret())
}

/// `_mask_cipher_secret` with a given mask: `mask + cipher`, each cipher
/// character being secret + mask (mod 62). Both must be of the alphabet.
pub fn mask_cipher_secret_with(secret: &str, mask: &str) -> String {
    let cipher: String = secret
        .bytes()
        .zip(mask.bytes())
        .map(|(s, m)| {
            let (s, m) = (
                alphabet_index(s).unwrap_or(0),
                alphabet_index(m).unwrap_or(0),
            );
            alphabet_char((s + m) % 62)
        })
        .collect();
    format!("{mask}{cipher}")
}

/// `_unmask_cipher_token(token)`: the secret inside a 64-character token
/// (which must have passed [`check_token_format`]; any other text unmasks
/// to some secret, never a panic).
pub fn unmask_cipher_token(token: &str) -> String {
    let (mask, cipher) = token
        .as_bytes()
        .split_at(CSRF_SECRET_LENGTH.min(token.len()));
    cipher
        .iter()
        .zip(mask)
        .map(|(&c, &m)| {
            let (c, m) = (
                alphabet_index(c).unwrap_or(0),
                alphabet_index(m).unwrap_or(0),
            );
            alphabet_char((c + 62 - m) % 62)
        })
        .collect()
}

/// `InvalidTokenFormat`, with Django's reason phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidTokenFormat {
    IncorrectLength,
    InvalidCharacters,
}

impl InvalidTokenFormat {
    pub fn reason(self) -> &'static str {
        match self {
            InvalidTokenFormat::IncorrectLength => REASON_INCORRECT_LENGTH,
            InvalidTokenFormat::InvalidCharacters => REASON_INVALID_CHARACTERS,
        }
    }
}

/// `_check_token_format`: 32 or 64 characters, all of `[a-zA-Z0-9]`.
pub fn check_token_format(token: &str) -> Result<(), InvalidTokenFormat> {
    let len = token.chars().count();
    if len != CSRF_TOKEN_LENGTH && len != CSRF_SECRET_LENGTH {
        return Err(InvalidTokenFormat::IncorrectLength);
    }
    if !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(InvalidTokenFormat::InvalidCharacters);
    }
    Ok(())
}

/// The secret held by a `csrftoken` cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSecret {
    pub secret: String,
    /// The cookie was a 64-character masked token (Django < 4.0). Django
    /// keeps using the secret and writes the unmasked form the next time it
    /// sends the cookie anyway; the caller may also just reset it now.
    pub was_masked: bool,
}

/// `CsrfViewMiddleware._get_secret` for a cookie value. An error means
/// Django's `process_request` would replace the cookie with a new secret
/// (and `_check_token` would reject with "CSRF cookie <reason>.").
pub fn secret_from_cookie(cookie: &str) -> Result<CookieSecret, InvalidTokenFormat> {
    check_token_format(cookie)?;
    Ok(if cookie.len() == CSRF_TOKEN_LENGTH {
        CookieSecret {
            secret: unmask_cipher_token(cookie),
            was_masked: true,
        }
    } else {
        CookieSecret {
            secret: cookie.to_string(),
            was_masked: false,
        }
    })
}

/// The secret kept in the session under `CSRF_USE_SESSIONS`: taken as it
/// is (no format check, as Django's `_get_secret`), a 64-character one
/// unmasked, as versions before 4.0 stored it masked.
pub fn secret_from_session(stored: &str) -> String {
    if stored.len() == CSRF_TOKEN_LENGTH && check_token_format(stored).is_ok() {
        unmask_cipher_token(stored)
    } else {
        stored.to_string()
    }
}

/// `_does_token_match(request_token, secret)`: a 64-character token is
/// unmasked first, a 32-character one compared as is. Tokens of another
/// format do not match.
pub fn does_token_match(request_token: &str, secret: &str) -> bool {
    if check_token_format(request_token).is_err() {
        return false;
    }
    let candidate = if request_token.len() == CSRF_TOKEN_LENGTH {
        unmask_cipher_token(request_token)
    } else {
        request_token.to_string()
    };
    constant_time_compare(candidate, secret)
}

/// The first half of `_check_token`: the secret of the `csrftoken` cookie,
/// or Django's reason for refusing without it. Django decides this before it
/// reads the request's body.
pub fn cookie_secret(cookie: Option<&str>) -> Result<String, String> {
    match cookie {
        None => Err(REASON_NO_CSRF_COOKIE.to_string()),
        Some(c) => Ok(secret_from_cookie(c)
            .map_err(|e| format!("CSRF cookie {}.", e.reason()))?
            .secret),
    }
}

/// `CsrfViewMiddleware._check_token`, given the raw `csrftoken` cookie, the
/// `csrfmiddlewaretoken` POST field (`None` when the method is not POST or
/// the field is absent) and the `X-CSRFToken` header. The error is Django's
/// exact reason string.
pub fn check_token(
    cookie: Option<&str>,
    post_token: Option<&str>,
    header_token: Option<&str>,
) -> Result<(), String> {
    let (_, header_name) =
        header_from_meta_name(DEFAULT_CSRF_HEADER_NAME).expect("the default names a header");
    check_request_token(
        &cookie_secret(cookie)?,
        post_token,
        header_token,
        &header_name,
    )
}

/// `CSRF_HEADER_NAME` (a `request.META` key such as `HTTP_X_CSRFTOKEN`) as
/// (the HTTP header in lowercase, the name Django's messages give it, as
/// `HttpHeaders.parse_header_name` makes it: `X-Csrftoken`). `None` for a
/// key that no request header becomes.
pub fn header_from_meta_name(meta_name: &str) -> Option<(String, String)> {
    let header = meta_name.strip_prefix("HTTP_").filter(|h| !h.is_empty())?;
    if !header
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let http_name = header.replace('_', "-").to_ascii_lowercase();
    // `str.title()`: a letter after a non-letter is upper case, the rest
    // lower case.
    let mut display_name = String::with_capacity(header.len());
    let mut after_letter = false;
    for c in header.replace('_', "-").chars() {
        if c.is_ascii_alphabetic() {
            display_name.push(if after_letter {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            });
            after_letter = true;
        } else {
            display_name.push(c);
            after_letter = false;
        }
    }
    Some((http_name, display_name))
}

/// The second half of `_check_token`: the token the request carries (the
/// POST field, else the header) against the cookie's secret.
pub fn check_request_token(
    secret: &str,
    post_token: Option<&str>,
    header_token: Option<&str>,
    header_display_name: &str,
) -> Result<(), String> {
    let (token, source) = match post_token.filter(|t| !t.is_empty()) {
        Some(t) => (t, "POST".to_string()),
        None => match header_token {
            Some(t) => (t, format!("the '{header_display_name}' HTTP header")),
            None => return Err(REASON_CSRF_TOKEN_MISSING.to_string()),
        },
    };
    if let Err(e) = check_token_format(token) {
        return Err(format!("CSRF token from {source} {}.", e.reason()));
    }
    if !does_token_match(token, secret) {
        return Err(format!("CSRF token from {source} incorrect."));
    }
    Ok(())
}

/// The Origin and Referer checks of `CsrfViewMiddleware.process_view`, set up
/// once from `CSRF_TRUSTED_ORIGINS` (and `CSRF_COOKIE_DOMAIN`, unset in the
/// original project) as the middleware's cached properties are.
#[derive(Debug, Clone, Default)]
pub struct OriginChecker {
    /// `allowed_origins_exact`: trusted origins without a `*`.
    exact: Vec<String>,
    /// `allowed_origin_subdomains`: (scheme, netloc without the `*`).
    subdomains: Vec<(String, String)>,
    /// `csrf_trusted_origins_hosts`: every trusted origin's netloc, `*`
    /// stripped.
    trusted_hosts: Vec<String>,
    cookie_domain: Option<String>,
}

impl OriginChecker {
    pub fn new<S: AsRef<str>>(trusted_origins: &[S], cookie_domain: Option<&str>) -> OriginChecker {
        let mut checker = OriginChecker {
            cookie_domain: cookie_domain.map(str::to_string),
            ..Default::default()
        };
        for origin in trusted_origins.iter().map(AsRef::as_ref) {
            let parsed = urlsplit(origin);
            let netloc = parsed
                .as_ref()
                .map_or("", |p| p.netloc.as_str())
                .trim_start_matches('*');
            checker.trusted_hosts.push(netloc.to_string());
            if origin.contains('*') {
                let scheme = parsed.as_ref().map_or("", |p| p.scheme.as_str());
                checker
                    .subdomains
                    .push((scheme.to_string(), netloc.to_string()));
            } else {
                checker.exact.push(origin.to_string());
            }
        }
        checker
    }

    /// `_origin_verified`. `good_host` is `request.get_host()` (host and
    /// port from the Host header), `None` when ALLOWED_HOSTS refuses it.
    pub fn origin_verified(&self, origin: &str, is_secure: bool, good_host: Option<&str>) -> bool {
        if let Some(host) = good_host {
            let good_origin = format!("{}://{}", if is_secure { "https" } else { "http" }, host);
            if origin == good_origin {
                return true;
            }
        }
        if self.exact.iter().any(|o| o == origin) {
            return true;
        }
        let Some(parsed) = urlsplit(origin) else {
            return false;
        };
        self.subdomains
            .iter()
            .filter(|(scheme, _)| *scheme == parsed.scheme)
            .any(|(_, host)| is_same_domain(&parsed.netloc, host))
    }

    /// `_check_referer` (HTTPS requests without an Origin header).
    /// `server_port` is `request.get_port()`, used only with a cookie domain.
    pub fn check_referer(
        &self,
        referer: Option<&str>,
        good_host: Option<&str>,
        server_port: &str,
    ) -> Result<(), String> {
        let Some(referer) = referer else {
            return Err(REASON_NO_REFERER.to_string());
        };
        let Some(referer) = urlsplit(referer) else {
            return Err(REASON_MALFORMED_REFERER.to_string());
        };
        if referer.scheme.is_empty() || referer.netloc.is_empty() {
            return Err(REASON_MALFORMED_REFERER.to_string());
        }
        if referer.scheme != "https" {
            return Err(REASON_INSECURE_REFERER.to_string());
        }
        if self
            .trusted_hosts
            .iter()
            .any(|h| is_same_domain(&referer.netloc, h))
        {
            return Ok(());
        }
        let bad = || REASON_BAD_REFERER.replace("%s", &referer.geturl());
        let good_referer = match &self.cookie_domain {
            None => good_host.ok_or_else(bad)?.to_string(),
            Some(domain) if server_port != "443" && server_port != "80" => {
                format!("{domain}:{server_port}")
            }
            Some(domain) => domain.clone(),
        };
        if is_same_domain(&referer.netloc, &good_referer) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// The source check of `process_view` for an unsafe method: the Origin
    /// header if there is one, otherwise over HTTPS the Referer.
    pub fn check_request_source(
        &self,
        origin: Option<&str>,
        referer: Option<&str>,
        is_secure: bool,
        good_host: Option<&str>,
        server_port: &str,
    ) -> Result<(), String> {
        if let Some(origin) = origin {
            if self.origin_verified(origin, is_secure, good_host) {
                Ok(())
            } else {
                Err(REASON_BAD_ORIGIN.replace("%s", origin))
            }
        } else if is_secure {
            self.check_referer(referer, good_host, server_port)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_as_django_reads_and_shows_them() {
        for (meta, http, shown) in [
            ("HTTP_X_CSRFTOKEN", "x-csrftoken", "X-Csrftoken"),
            ("HTTP_X_MY_CSRF", "x-my-csrf", "X-My-Csrf"),
            ("HTTP_X_2FA_TOKEN", "x-2fa-token", "X-2Fa-Token"),
        ] {
            assert_eq!(
                header_from_meta_name(meta),
                Some((http.to_string(), shown.to_string())),
                "{meta}"
            );
        }
        for never_a_header in ["X_CSRFTOKEN", "HTTP_", "HTTP_X-CSRF", "CONTENT_TYPE", ""] {
            assert_eq!(
                header_from_meta_name(never_a_header),
                None,
                "{never_a_header}"
            );
        }
    }

    #[test]
    fn unmasking_a_token_of_any_text_does_not_panic() {
        let token = format!("{}é{}", "a".repeat(31), "b".repeat(31));
        assert_eq!(unmask_cipher_token(&token).len(), 32);
    }
    use crate::django::vectors;

    #[test]
    fn masking_matches_django() {
        let cases = vectors::list("csrf_mask");
        assert!(cases.len() >= 4);
        for case in cases {
            let secret = vectors::str(case, "secret");
            let token = vectors::str(case, "token");
            assert_eq!(
                mask_cipher_secret_with(secret, vectors::str(case, "mask")),
                token
            );
            assert_eq!(unmask_cipher_token(token), secret);
            assert!(does_token_match(token, secret));
        }
    }

    #[test]
    fn random_tokens_round_trip() {
        let secret = new_secret();
        assert!(check_token_format(&secret).is_ok());
        let token = mask_cipher_secret(&secret);
        assert_eq!(token.len(), CSRF_TOKEN_LENGTH);
        assert_ne!(token, mask_cipher_secret(&secret));
        assert!(does_token_match(&token, &secret));
        assert!(!does_token_match(&token, &new_secret()));
    }

    #[test]
    fn token_checks_match_django() {
        let cases = vectors::list("csrf_check_token");
        assert!(cases.len() >= 10);
        for case in cases {
            let got = check_token(
                case["cookie"].as_str(),
                case["post"].as_str(),
                case["header"].as_str(),
            );
            match case["reason"].as_str() {
                None => assert_eq!(got, Ok(()), "{case}"),
                Some(reason) => assert_eq!(got, Err(reason.to_string()), "{case}"),
            }
        }
    }

    #[test]
    fn cookie_secrets_match_django() {
        let cases = vectors::list("csrf_cookie");
        assert!(cases.len() >= 4);
        for case in cases {
            let got = secret_from_cookie(vectors::str(case, "cookie"));
            match case["secret"].as_str() {
                Some(secret) => {
                    let got = got.unwrap();
                    assert_eq!(got.secret, secret);
                    assert_eq!(got.was_masked, vectors::str(case, "cookie").len() == 64);
                }
                None => assert_eq!(got.unwrap_err().reason(), vectors::str(case, "reason")),
            }
        }
    }

    #[test]
    fn origin_and_referer_checks_match_django() {
        let cases = vectors::list("csrf_origin");
        assert!(cases.len() >= 15);
        for case in cases {
            let checker = OriginChecker::new(
                &vectors::strings(case, "trusted_origins"),
                case["cookie_domain"].as_str(),
            );
            let got = checker.check_request_source(
                case["origin"].as_str(),
                case["referer"].as_str(),
                case["secure"].as_bool().unwrap(),
                case["host"].as_str(),
                vectors::str(case, "port"),
            );
            match case["reason"].as_str() {
                None => assert_eq!(got, Ok(()), "{case}"),
                Some(reason) => assert_eq!(got, Err(reason.to_string()), "{case}"),
            }
        }
    }

    #[test]
    fn same_domain() {
        assert!(is_same_domain("example.com", "example.com"));
        assert!(is_same_domain("a.example.com", ".example.com"));
        assert!(is_same_domain("example.com", ".EXAMPLE.com"));
        assert!(!is_same_domain("badexample.com", ".example.com"));
        assert!(!is_same_domain("example.com", ""));
    }
}
