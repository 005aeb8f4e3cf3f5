//! The Jinja templates of `templates/`, compiled into the binary and parsed
//! once at start-up, with the globals Django's Jinja2 back end gives
//! (`request`, `csrf_input`, `csrf_token`) plus `url()` and `static()`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use minijinja::{context, Environment, Error, ErrorKind, Value};

use crate::db::users::User;
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
    pub fn load() -> Result<Templates, Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.set_formatter(markupsafe_formatter);
        env.add_function("url", url);
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
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&#34;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped)
        .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

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
pub struct Page {
    pub user: Option<Arc<User>>,
    pub csrf: Csrf,
    pub path: String,
}

impl Page {
    /// Renders a template with the page's own context plus `request`,
    /// `csrf_token` and `csrf_input`.
    pub fn render(&self, app: &AppState, name: &str, extra: Value) -> Result<String, Error> {
        let token = self.csrf.token();
        let csrf_input =
            format!("<input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"{token}\">");
        let user = match &self.user {
            Some(u) => context! {
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
        app.templates.render(name, context! { ..extra, ..base })
    }

    pub fn html(&self, app: &AppState, name: &str, extra: Value) -> Result<Html<String>, AppError> {
        Ok(Html(self.render(app, name, extra)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Page>()
            .cloned()
            .ok_or_else(|| AppError::Internal("the request pipeline did not run".into()))
    }
}
