//! Django's `SessionMiddleware` with its two engines that keep a session
//! where Django sees it too: `db` (the `sessionid` cookie holds the key of
//! a `django_session` row whose data is signed with `SECRET_KEY`) and
//! `signed_cookies` (the cookie holds the signed data). The codecs are in
//! `crate::django::sessions`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use tower_cookies::Cookies;

use crate::config::SessionEngine;
use crate::db::sessions;
use crate::db::time::DjangoDateTime;
use crate::db::users::UserWithPermissions;
use crate::django::sessions as codec;
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

    /// The logged-in user's primary key, as the session stores it.
    pub fn user_id(&self) -> Option<i64> {
        codec::user_id(&self.state().data)
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

/// Session rows decoded lately, by session key: the stored text and its
/// data. Decoding (an HMAC check, zlib, JSON) is a pure function of that
/// text and the keys, and cost a twelfth of a logged-in page; the row
/// itself is still read every time (a session deleted or expired is seen at
/// once) and its data used only while the text is the same. The data also
/// says whose session it is before the row is read, so the row and that
/// user come in one query.
#[derive(Default)]
pub struct DecodedSessions(Mutex<HashMap<String, Decoded>>);

/// A row's stored text and the data it decodes to.
type Decoded = (String, Map<String, Value>);

/// Rows kept decoded; past it the memory starts over.
const DECODED_SESSIONS: usize = 1024;

impl DecodedSessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Decoded>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The user whose session the row `key` held when last decoded.
    fn last_user_id(&self, key: &str) -> Option<i64> {
        self.lock()
            .get(key)
            .and_then(|(_, data)| codec::user_id(data))
    }

    /// The data of the row `key` storing `stored`.
    fn decode(
        &self,
        key: &str,
        stored: &str,
        decode: impl FnOnce() -> Map<String, Value>,
    ) -> Map<String, Value> {
        if let Some((text, data)) = self.lock().get(key) {
            if text == stored {
                return data.clone();
            }
        }
        let data = decode();
        let mut decoded = self.lock();
        if decoded.len() >= DECODED_SESSIONS {
            decoded.clear();
        }
        decoded.insert(key.to_string(), (stored.to_string(), data.clone()));
        data
    }
}

/// Loads the request's session: with the `db` engine the row the cookie
/// names, with `signed_cookies` the data the cookie itself holds. A
/// missing, expired or tampered one is an empty new session. With the row
/// comes, when this server has read it before, the user it named then (see
/// [`DecodedSessions`]); `auth::load_user` decides whether that is the
/// session's user.
pub async fn load(
    app: &AppState,
    cookies: &Cookies,
) -> Result<(Session, Option<UserWithPermissions>), AppError> {
    let settings = &app.settings;
    let cookie_value = cookies
        .get(&settings.session.cookie.name)
        .map(|c| c.value().to_string());
    let mut state = SessionState {
        had_cookie: cookie_value.is_some(),
        ..SessionState::default()
    };
    let mut user = None;
    // A NUL can be in no session key (and PostgreSQL refuses it in a
    // query); the cookie's value is percent-decoded, so `%00` brings one.
    if let Some(value) = cookie_value
        .as_deref()
        .filter(|k| codec::is_valid_session_key(k) && !k.contains('\0'))
    {
        match settings.session.engine {
            SessionEngine::Database => {
                let mut stored = None;
                if let Some(user_id) = app.decoded_sessions.last_user_id(value) {
                    if let Some((data, read_with_it)) =
                        sessions::load_with_user(&app.db, value, user_id).await?
                    {
                        stored = Some(data);
                        user = Some(read_with_it);
                    }
                }
                if stored.is_none() {
                    stored = sessions::load(&app.db, value).await?;
                }
                if let Some(stored) = stored {
                    state.data = app.decoded_sessions.decode(value, &stored, || {
                        codec::decode(
                            &stored,
                            &settings.secret_key,
                            &settings.secret_key_fallbacks,
                        )
                        .unwrap_or_default()
                    });
                    state.key = Some(value.to_string());
                }
            }
            SessionEngine::SignedCookies => {
                state.data = codec::decode_signed_cookie(
                    value,
                    &settings.secret_key,
                    &settings.secret_key_fallbacks,
                    settings.session.age,
                )
                .unwrap_or_default();
            }
        }
    }
    Ok((Session(Arc::new(Mutex::new(state))), user))
}

/// Saves the session after the handler, as Django's
/// `SessionMiddleware.process_response`: when modified (or on every request
/// with `SESSION_SAVE_EVERY_REQUEST`) and the view did not fail; an emptied
/// session deletes its row and its cookie.
pub async fn save(
    app: &AppState,
    session: &Session,
    status: u16,
    headers: &mut HeaderMap,
) -> Result<(), AppError> {
    let (key, data, modified, retired, had_cookie) = {
        let mut state = session.state();
        let retired = std::mem::take(&mut state.retired);
        (
            state.key.clone(),
            state.data.clone(),
            state.modified,
            retired,
            state.had_cookie,
        )
    };
    let settings = &app.settings;
    let session_settings = &settings.session;
    if session_settings.engine == SessionEngine::Database {
        for old in &retired {
            sessions::delete(&app.db, old).await?;
        }
    }
    if data.is_empty() {
        if had_cookie {
            crate::web::cookies::delete(headers, &session_settings.cookie);
        }
        return Ok(());
    }
    // Django saves nothing when the view failed.
    if !(modified || session_settings.save_every_request) || status >= 500 {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let max_age =
        if codec::expires_at_browser_close(&data, session_settings.expire_at_browser_close) {
            None
        } else {
            Some(codec::expiry_age(&data, now, session_settings.age))
        };
    let value = match session_settings.engine {
        SessionEngine::SignedCookies => codec::encode_signed_cookie(&data, &settings.secret_key),
        SessionEngine::Database => {
            let encoded = codec::encode(&data, &settings.secret_key);
            let expire = DjangoDateTime(codec::expiry_date(&data, now, session_settings.age));
            match key {
                Some(key) => {
                    if !sessions::update(&app.db, &key, &encoded, expire).await? {
                        return Err(AppError::BadRequest(
                            "Сессия была удалена до завершения запроса. Войдите снова.".into(),
                        ));
                    }
                    key
                }
                None => loop {
                    let key = codec::new_session_key();
                    if sessions::insert(&app.db, &key, &encoded, expire).await? {
                        session.state().key = Some(key.clone());
                        break key;
                    }
                },
            }
        }
    };
    crate::web::cookies::set(headers, &session_settings.cookie, &value, max_age);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_text_is_decoded_once_and_the_memory_is_bounded() {
        let decoded = DecodedSessions::default();
        let data = |n: i64| {
            let mut map = Map::new();
            map.insert(codec::SESSION_KEY.into(), Value::from(n.to_string()));
            map
        };
        let mut calls = 0;
        for _ in 0..3 {
            let got = decoded.decode("key-a", "row-a", || {
                calls += 1;
                data(1)
            });
            assert_eq!(got, data(1));
        }
        assert_eq!(calls, 1, "decoded once, then remembered");
        assert_eq!(decoded.last_user_id("key-a"), Some(1));
        assert_eq!(decoded.last_user_id("key-b"), None);
        // The same key storing another text is decoded again, never given
        // the first text's data.
        assert_eq!(decoded.decode("key-a", "row-b", || data(2)), data(2));
        assert_eq!(decoded.last_user_id("key-a"), Some(2));
        for n in 0..DECODED_SESSIONS * 2 {
            decoded.decode(&format!("key-{n}"), "row", Map::new);
            assert!(decoded.lock().len() <= DECODED_SESSIONS);
        }
    }
}
