//! The Jinja templates of `templates/`, compiled into the binary and parsed
//! once at start-up, with the globals Django's Jinja2 back end gives
//! (`request`, `csrf_input`, `csrf_token`) plus `url()` and `static()`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use minijinja::{context, Environment, Error, ErrorKind, Value};

use crate::db::users::User;
use crate::django::perms::UserPerms;
use crate::web::csrf::Csrf;
use crate::web::error::AppError;
use crate::web::urls;
use crate::web::AppState;

use crate::web::embedded::TEMPLATES;

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every template; a syntax error stops start-up, not a request.
    pub fn load(time_zone: chrono_tz::Tz) -> Result<Templates, Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.set_formatter(markupsafe_formatter);
        env.add_function("url", url);
        env.add_filter("localtime", move |value: Value| {
            localtime(&value, time_zone)
        });
        env.add_function("static", |path: String| {
            format!("/static/{}", path.trim_start_matches('/'))
        });
        Ok(Templates { env })
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    pub fn render(&self, name: &str, context: Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(context)
    }
}

/// Escapes as Jinja2's MarkupSafe does (`& < > " '`, not `/`), so a page
/// renders to the same bytes here and under Django's Jinja2 back end.
fn markupsafe_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    if state.auto_escape() == minijinja::AutoEscape::None || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    if value.is_none() || value.is_undefined() {
        return minijinja::escape_formatter(out, state, value);
    }
    // Strings (most values) are escaped where they lie; runs without a
    // special character are written in one piece.
    let owned;
    let text = match value.as_str() {
        Some(text) => text,
        None => {
            owned = value.to_string();
            &owned
        }
    };
    escape_into(out, text).map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

/// markupsafe's `escape`: `& < > " '` become entities. The runs between
/// are found with memchr (a few bytes at a time) and written whole; a
/// byte-by-byte loop here was a twentieth of a list page.
fn escape_into(out: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
    let bytes = text.as_bytes();
    let end = bytes.len();
    let markup_from =
        |from: usize| memchr::memchr3(b'&', b'<', b'>', &bytes[from..]).map_or(end, |i| from + i);
    let quote_from =
        |from: usize| memchr::memchr2(b'"', b'\'', &bytes[from..]).map_or(end, |i| from + i);
    // The next of each kind at or after `plain`, each searched again only
    // once passed, so the whole text is scanned once per kind.
    let (mut markup, mut quote) = (markup_from(0), quote_from(0));
    let mut plain = 0;
    loop {
        let at = markup.min(quote);
        if at == end {
            break;
        }
        out.write_str(&text[plain..at])?;
        out.write_str(match bytes[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&#34;",
            _ => "&#39;",
        })?;
        plain = at + 1;
        if markup == at {
            markup = markup_from(plain);
        } else {
            quote = quote_from(plain);
        }
    }
    out.write_str(&text[plain..])
}

/// The `localtime` filter: an aware datetime (RFC 3339 text here, a
/// `datetime` under Django) shown in TIME_ZONE as `25.11.2026 18:23`, as
/// the reference project's Jinja environment defines it.
fn localtime(value: &Value, time_zone: chrono_tz::Tz) -> String {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|moment| {
            moment
                .with_timezone(&time_zone)
                .format(LOCALTIME_FORMAT)
                .to_string()
        })
        .unwrap_or_default()
}

/// The format of the `localtime` filter (strftime, the same on both sides).
pub const LOCALTIME_FORMAT: &str = "%d.%m.%Y %H:%M";

/// `url(name, *args)`, as the reference project's Jinja environment.
fn url(name: String, args: minijinja::value::Rest<Value>) -> Result<String, Error> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    urls::reverse(&name, &args).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("NoReverseMatch: {name} with {args:?}"),
        )
    })
}

/// What every page knows about its request: the user and the CSRF token.
/// Put in the request by the request pipeline; handlers take it as an
/// extractor and render through it.
#[derive(Clone)]
pub struct RequestContext {
    pub user: Option<Arc<User>>,
    pub csrf: Csrf,
    pub path: String,
    /// The user's permissions (none for anonymous users), for handlers and
    /// for `request.user.has_perm()` / `has_perms()` in templates.
    pub perms: Arc<UserPerms>,
}

impl RequestContext {
    /// `request.user.has_perm` and `has_perms` for a template.
    fn perm_functions(&self) -> (Value, Value) {
        let one = Arc::clone(&self.perms);
        let all = Arc::clone(&self.perms);
        (
            Value::from_function(move |perm: String| one.has_perm(&perm)),
            Value::from_function(move |list: Vec<String>| all.has_perms(&list)),
        )
    }

    /// Renders a template with the page's own context plus `request`,
    /// `csrf_token` and `csrf_input`.
    pub fn render(&self, app: &AppState, name: &str, extra: Value) -> Result<String, Error> {
        self.render_with(&app.templates, name, extra)
    }

    /// [`RequestContext::render`] with these templates.
    pub fn render_with(
        &self,
        templates: &Templates,
        name: &str,
        extra: Value,
    ) -> Result<String, Error> {
        let token = self.csrf.token();
        let csrf_input =
            format!("<input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{token}\">");
        let (has_perm, has_perms) = self.perm_functions();
        let user = match &self.user {
            Some(u) => context! {
                has_perm => has_perm,
                has_perms => has_perms,
                is_authenticated => true,
                is_anonymous => false,
                pk => u.id,
                id => u.id,
                email => u.email,
                first_name => u.first_name,
                last_name => u.last_name,
                is_superuser => u.is_superuser,
                is_staff => u.is_staff,
            },
            None => context! { is_authenticated => false, is_anonymous => true },
        };
        let base = context! {
            request => context! { user => user, path => self.path },
            csrf_token => token,
            csrf_input => Value::from_safe_string(csrf_input),
        };
        templates.render(name, context! { ..extra, ..base })
    }

    pub fn html(&self, app: &AppState, name: &str, extra: Value) -> Result<Html<String>, AppError> {
        Ok(Html(self.render(app, name, extra)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AppError::Internal("the request pipeline did not run".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    /// markupsafe's `escape`, one character at a time.
    fn escaped_slowly(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".to_string(),
                '>' => "&gt;".to_string(),
                '"' => "&#34;".to_string(),
                '\'' => "&#39;".to_string(),
                c => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn escaping_matches_markupsafe_character_by_character() {
        let pieces = [
            "&",
            "<",
            ">",
            "\"",
            "'",
            "a",
            "Товар",
            " ",
            "&amp;",
            "<<",
            "''",
        ];
        let mut texts = vec![String::new()];
        // Every sequence of up to four pieces: specials at the start, the
        // end, side by side and apart, of one kind and of both.
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| pieces.iter().map(move |p| format!("{t}{p}")))
                .collect();
            texts.extend(longer);
        }
        for text in &texts {
            let mut out = String::new();
            escape_into(&mut out, text).unwrap();
            assert_eq!(out, escaped_slowly(text), "{text:?}");
        }
    }
}
