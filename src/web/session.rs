//! Django's `SessionMiddleware` with the database back end: the `sessionid`
//! cookie holds the key of a `django_session` row whose data is signed with
//! `SECRET_KEY` (see `crate::django::sessions` for the codec).

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use tower_cookies::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};

use crate::db::time::DjangoDateTime;
use crate::django::sessions::{self as codec, SESSION_COOKIE_AGE, SESSION_COOKIE_NAME};
use crate::web::error::AppError;
use crate::web::AppState;

#[derive(Debug, Default)]
struct SessionState {
    /// The key the data was loaded under (None for a new session).
    key: Option<String>,
    data: Map<String, Value>,
    modified: bool,
    /// Keys to delete when the response is saved (cycled or flushed ones).
    retired: Vec<String>,
    had_cookie: bool,
}

/// The request's session, shared between the middleware and the handler.
#[derive(Clone, Debug, Default)]
pub struct Session(Arc<Mutex<SessionState>>);

impl Session {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        self.state().data.get(name).cloned()
    }

    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| v.as_str().map(str::to_string))
    }

    pub fn insert(&self, name: &str, value: impl Into<Value>) {
        let mut state = self.state();
        state.data.insert(name.to_string(), value.into());
        state.modified = true;
    }

    pub fn contains(&self, name: &str) -> bool {
        self.state().data.contains_key(name)
    }

    /// `cycle_key`: same data under a new key, the old row deleted (done
    /// against session fixation at login).
    pub fn cycle_key(&self) {
        let mut state = self.state();
        if let Some(old) = state.key.take() {
            state.retired.push(old);
        }
        state.modified = true;
    }

    /// `flush`: drop the data and the row; the cookie is deleted.
    pub fn flush(&self) {
        let mut state = self.state();
        state.data.clear();
        if let Some(old) = state.key.take() {
            state.retired.push(old);
        }
        state.modified = true;
    }
}

/// Loads the session named by the `sessionid` cookie; a missing, expired or
/// tampered one is an empty new session.
pub async fn load(app: &AppState, cookies: &Cookies) -> Result<Session, AppError> {
    let cookie_key = cookies
        .get(SESSION_COOKIE_NAME)
        .map(|c| c.value().to_string());
    let mut state = SessionState {
        had_cookie: cookie_key.is_some(),
        ..SessionState::default()
    };
    // A NUL can be in no session key (and PostgreSQL refuses it in a
    // query); the cookie's value is percent-decoded, so `%00` brings one.
    if let Some(key) = cookie_key
        .as_deref()
        .filter(|k| codec::is_valid_session_key(k) && !k.contains('\0'))
    {
        if let Some(stored) = crate::db::sessions::load(&app.db, key).await? {
            let settings = &app.settings;
            state.data = codec::decode(
                &stored,
                &settings.secret_key,
                &settings.secret_key_fallbacks,
            )
            .unwrap_or_default();
            state.key = Some(key.to_string());
        }
    }
    Ok(Session(Arc::new(Mutex::new(state))))
}

/// Saves the session after the handler, as Django's
/// `SessionMiddleware.process_response`: only when modified and the view did
/// not fail; an emptied session deletes its row and its cookie.
pub async fn save(
    app: &AppState,
    session: &Session,
    cookies: &Cookies,
    status: u16,
) -> Result<(), AppError> {
    let (key, data, modified, retired) = {
        let mut state = session.state();
        let retired = std::mem::take(&mut state.retired);
        (
            state.key.clone(),
            state.data.clone(),
            state.modified,
            retired,
        )
    };
    let had_cookie = session.state().had_cookie;
    for old in &retired {
        crate::db::sessions::delete(&app.db, old).await?;
    }
    if data.is_empty() {
        if had_cookie {
            let mut removal = Cookie::build((SESSION_COOKIE_NAME, "")).path("/").build();
            removal.make_removal();
            cookies.add(removal);
        }
        return Ok(());
    }
    // Django saves nothing when the view failed.
    if !modified || status >= 500 {
        return Ok(());
    }
    let settings = &app.settings;
    let encoded = codec::encode(&data, &settings.secret_key);
    let expire = DjangoDateTime(chrono::Utc::now() + chrono::Duration::seconds(SESSION_COOKIE_AGE));
    let key = match key {
        Some(key) => {
            if !crate::db::sessions::update(&app.db, &key, &encoded, expire).await? {
                return Err(AppError::BadRequest(
                    "Сессия была удалена до завершения запроса. Войдите снова.".into(),
                ));
            }
            key
        }
        None => loop {
            let key = codec::new_session_key();
            if crate::db::sessions::insert(&app.db, &key, &encoded, expire).await? {
                session.state().key = Some(key.clone());
                break key;
            }
        },
    };
    cookies.add(session_cookie(key, settings.session_cookie_secure));
    Ok(())
}

fn session_cookie(key: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE_NAME, key))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::seconds(SESSION_COOKIE_AGE))
        .expires(OffsetDateTime::now_utc() + CookieDuration::seconds(SESSION_COOKIE_AGE))
        .build()
}
