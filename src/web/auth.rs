//! Who is logged in: Django's `get_user`, `authenticate`, `login` and
//! `logout` over the session, with `ModelBackend`'s rules.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::db::users::{self, User, UserWithPermissions};
use crate::django::login_redirect::redirect_to_login;
use crate::django::perms::UserPerms;
use crate::django::sessions::{
    session_auth_hash, verify_session_auth_hash, SessionHashCheck, BACKEND_SESSION_KEY,
    HASH_SESSION_KEY, MODEL_BACKEND, SESSION_KEY,
};
use crate::web::csrf::Csrf;
use crate::web::error::AppError;
use crate::web::session::Session;
use crate::web::templates::RequestContext;
use crate::web::AppState;

/// Django's `get_user`: the session's user while it is active and the
/// session's auth hash matches its password; a stale hash flushes the
/// session (a password change logs out other sessions). A hash made with a
/// fallback key is renewed under a new session key. The user's permissions
/// come with it, so every page can ask `has_perm` without another query.
/// `read_with_session` is the user `session::load` read with the row, if
/// any: used when it is the session's user, read again otherwise.
pub async fn load_user(
    app: &AppState,
    session: &Session,
    read_with_session: Option<UserWithPermissions>,
) -> Result<Option<(Arc<User>, Arc<UserPerms>)>, AppError> {
    let Some(user_id) = session.user_id() else {
        return Ok(None);
    };
    if session.get_str(BACKEND_SESSION_KEY).as_deref() != Some(MODEL_BACKEND) {
        return Ok(None);
    }
    let loaded = match read_with_session {
        Some(loaded) if loaded.0.id == user_id => Some(loaded),
        _ => users::by_id_with_permissions(&app.db, user_id).await?,
    };
    let Some((user, permissions)) = loaded else {
        return Ok(None);
    };
    if !user.is_active {
        return Ok(None);
    }
    let perms = Arc::new(UserPerms {
        is_active: user.is_active,
        is_superuser: user.is_superuser,
        perms: permissions,
    });
    let settings = &app.settings;
    let stored = session.get_str(HASH_SESSION_KEY);
    match verify_session_auth_hash(
        stored.as_deref(),
        &user.password,
        &settings.secret_key,
        &settings.secret_key_fallbacks,
    ) {
        SessionHashCheck::Current => Ok(Some((Arc::new(user), perms))),
        SessionHashCheck::Fallback => {
            session.cycle_key();
            session.insert(
                HASH_SESSION_KEY,
                session_auth_hash(&user.password, &settings.secret_key),
            );
            Ok(Some((Arc::new(user), perms)))
        }
        SessionHashCheck::Invalid => {
            session.flush();
            Ok(None)
        }
    }
}

/// `authenticate(email, password)` with `ModelBackend`: the user when the
/// password is right and the account active. An outdated hash is upgraded
/// on success. Unknown e-mails still cost one full hash, and wrong
/// passwords against old hashes the full work factor, so timing tells
/// nothing. Hashing runs on the bounded hashing pool.
pub async fn authenticate(
    app: &AppState,
    email: &str,
    password: &str,
) -> Result<Option<User>, AppError> {
    let hashers = app.hashers.clone();
    let password = password.to_string();
    let Some(mut user) = users::by_email(&app.db, email).await? else {
        app.hashing
            .run(move || hashers.dummy_hash_work(&password))
            .await?;
        return Ok(None);
    };
    let encoded = user.password.clone();
    let (outcome, upgraded) = app
        .hashing
        .run(move || {
            let outcome = hashers.check_password(&password, &encoded);
            let upgraded =
                (outcome.valid && outcome.must_update).then(|| hashers.make_password(&password));
            (outcome, upgraded)
        })
        .await?;
    if !outcome.valid {
        return Ok(None);
    }
    if let Some(new_hash) = upgraded {
        users::set_password(&app.db, user.id, &new_hash).await?;
        user.password = new_hash;
    }
    Ok(user.is_active.then_some(user))
}

/// Django's `login`: a new session key (or a flushed session when another
/// user was logged in), the three auth keys, a new CSRF secret, and
/// `last_login` updated.
pub async fn login(
    app: &AppState,
    session: &Session,
    csrf: &Csrf,
    user: &User,
) -> Result<(), AppError> {
    let hash = session_auth_hash(&user.password, &app.settings.secret_key);
    if session.contains(SESSION_KEY) {
        let same_user = session.user_id() == Some(user.id);
        let same_hash = session.get_str(HASH_SESSION_KEY).as_deref() == Some(hash.as_str());
        if !same_user || !same_hash {
            session.flush();
        }
    } else {
        session.cycle_key();
    }
    session.insert(SESSION_KEY, user.id.to_string());
    session.insert(BACKEND_SESSION_KEY, MODEL_BACKEND);
    session.insert(HASH_SESSION_KEY, hash);
    csrf.rotate();
    users::touch_last_login(&app.db, user.id).await?;
    Ok(())
}

/// Django's `logout`: the session is flushed.
pub fn logout(session: &Session) {
    session.flush();
}

/// A logged-in user, or a redirect to the login page with `next`, as
/// `LoginRequiredMixin` does.
pub struct LoggedIn(pub Arc<User>);

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = RequestContext::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(user) = ctx.user {
            return Ok(LoggedIn(user));
        }
        let full_path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let scheme = if crate::web::host::is_secure(&app.settings, &parts.headers) {
            "https"
        } else {
            "http"
        };
        let host =
            crate::web::host::validated_host(&app.settings, &parts.headers).unwrap_or_default();
        let location = redirect_to_login(
            &app.urls.login,
            full_path,
            &format!("{scheme}://{host}{full_path}"),
        );
        Err(crate::web::redirect(&location))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::Internal("the request pipeline did not run".into()))
    }
}
