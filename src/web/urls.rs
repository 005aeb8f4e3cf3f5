//! URL names, as the templates and redirects reverse them (Django's
//! `reverse`). The router mounts the same paths.

use crate::config::ConfigError;

/// `(name, path)`, with `{}` standing for each positional argument.
pub const ROUTES: &[(&str, &str)] = &[
    ("catalog:home", "/"),
    ("catalog:product_detail", "/products/{}/"),
    ("catalog:product_create", "/products/create/"),
    ("catalog:product_update", "/products/{}/update/"),
    ("catalog:product_delete", "/products/{}/delete/"),
    ("catalog:contacts", "/contacts/"),
    ("users:register", "/users/register/"),
    ("users:email_confirm", "/users/email-confirm/{}/"),
    ("users:login", "/users/login/"),
    ("users:logout", "/users/logout/"),
    ("users:password_reset", "/users/password-reset/"),
    (
        "users:password_reset_confirm",
        "/users/password-reset/{}/{}/",
    ),
    ("users:profile", "/users/profile/"),
];

/// The path of a named URL that takes no arguments, for the views' own
/// `reverse("users:login")`; the name must be one of [`ROUTES`].
pub fn path(name: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(n, pattern)| *n == name && !pattern.contains("{}"))
        .map(|(_, pattern)| *pattern)
        .unwrap_or_else(|| panic!("no route named {name} without arguments"))
}

/// Django's `resolve_url` for a setting: a URL name of this site becomes
/// its path; a value that looks like a URL (it has a `/` or a `.`) stays
/// as it is; anything else is Django's `NoReverseMatch`, `None` here.
pub fn resolve_url(value: &str) -> Option<String> {
    if value.starts_with("./") || value.starts_with("../") {
        return Some(value.to_string());
    }
    if let Some(path) = reverse(value, &[]) {
        return Some(path);
    }
    (value.contains('/') || value.contains('.')).then(|| value.to_string())
}

/// `LOGIN_URL`, `LOGIN_REDIRECT_URL` and `LOGOUT_REDIRECT_URL`, resolved
/// once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrls {
    pub login: String,
    pub login_redirect: String,
    pub logout_redirect: String,
}

impl AuthUrls {
    pub fn resolve(settings: &crate::config::AuthUrls) -> Result<AuthUrls, ConfigError> {
        let resolve = |name: &str, value: &str| {
            resolve_url(value).ok_or_else(|| {
                let names: Vec<&str> = ROUTES
                    .iter()
                    .filter(|(_, p)| !p.contains("{}"))
                    .map(|(n, _)| *n)
                    .collect();
                ConfigError::new(
                    name,
                    format!(
                        "{value:?} is neither a path nor a URL name of this site ({})",
                        names.join(", ")
                    ),
                )
            })
        };
        Ok(AuthUrls {
            login: resolve("LOGIN_URL", &settings.login)?,
            login_redirect: resolve("LOGIN_REDIRECT_URL", &settings.login_redirect)?,
            logout_redirect: resolve("LOGOUT_REDIRECT_URL", &settings.logout_redirect)?,
        })
    }
}

/// The path of a named URL, each argument percent-encoded as Django's
/// `reverse` quotes it. `None` for an unknown name or a wrong argument count.
pub fn reverse(name: &str, args: &[String]) -> Option<String> {
    let (_, pattern) = ROUTES.iter().find(|(n, _)| *n == name)?;
    if pattern.matches("{}").count() != args.len() {
        return None;
    }
    let mut path = String::new();
    let mut args = args.iter();
    for (i, piece) in pattern.split("{}").enumerate() {
        if i > 0 {
            let arg = args.next()?;
            if arg.is_empty() {
                return None;
            }
            path.extend(percent_encoding::utf8_percent_encode(arg, PATH_ARG));
        }
        path.push_str(piece);
    }
    Some(path)
}

/// What Django's `reverse` leaves unquoted in an argument: RFC 3986
/// unreserved characters and sub-delimiters, plus `:@~`.
pub const PATH_ARG: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_fills_and_quotes_arguments() {
        assert_eq!(reverse("catalog:home", &[]).as_deref(), Some("/"));
        assert_eq!(
            reverse("catalog:product_detail", &["7".into()]).as_deref(),
            Some("/products/7/")
        );
        assert_eq!(
            reverse("users:email_confirm", &["a b/c?".into()]).as_deref(),
            Some("/users/email-confirm/a%20b%2Fc%3F/")
        );
        assert_eq!(reverse("catalog:product_detail", &[]), None);
        assert_eq!(reverse("nope", &[]), None);
    }

    #[test]
    fn settings_resolve_as_resolve_url() {
        assert_eq!(path("users:login"), "/users/login/");
        for (value, want) in [
            ("users:login", Some("/users/login/")),
            ("catalog:home", Some("/")),
            ("/accounts/login/", Some("/accounts/login/")),
            (
                "https://sso.example/login",
                Some("https://sso.example/login"),
            ),
            ("login.html", Some("login.html")),
            ("./login/", Some("./login/")),
            // Needs an argument, and looks like no URL: NoReverseMatch.
            ("catalog:product_detail", None),
            ("users:signin", None),
            ("login", None),
        ] {
            assert_eq!(resolve_url(value).as_deref(), want, "{value}");
        }
    }
}
