//! The `users` pages: registration with e-mail verification, login,
//! logout, password reset to a generated password, and the profile.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Value};

use crate::db::users::{self, CreateUserError, NewUser, User};
use crate::django::crypto::{get_random_string, ASCII_LETTERS_AND_DIGITS};
use crate::django::form_fields::{clean_email, clean_username, CharField, EmailError};
use crate::django::password_validation::{validate_password, UserAttributes};
use crate::django::safe_url::url_has_allowed_host_and_scheme;
use crate::django::tokens::{self, TokenUser};
use crate::django::urlparse::parse_qsl;
use crate::mail::Email;
use crate::web::auth::{self, LoggedIn};
use crate::web::csrf::Csrf;
use crate::web::error::AppError;
use crate::web::form_data::FormData;
use crate::web::form_view::{self, add_error, Errors, Field, NON_FIELD};
use crate::web::session::Session;
use crate::web::templates::RequestContext;
use crate::web::throttle::{self, Client, LoginAttempt};
use crate::web::urls;
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/register/", get(register_page).post(register))
        .route("/users/email-confirm/{token}/", get(email_confirm))
        .route("/users/login/", get(login_page).post(login))
        .route("/users/logout/", post(logout))
        .route(
            "/users/password-reset/",
            get(password_reset_page).post(password_reset),
        )
        .route(
            "/users/password-reset/{uidb64}/{token}/",
            get(password_reset_confirm_page).post(password_reset_confirm),
        )
        .route("/users/profile/", get(profile_page).post(profile))
}

/// `UserCreationForm`'s `password_mismatch`, in Russian.
const PASSWORD_MISMATCH: &str = "Введенные пароли не совпадают.";
/// `AuthenticationForm`'s `invalid_login`, in Russian, with `%(username)s`
/// the verbose name of the model's `email` field («почта»). One message for
/// a wrong password, an unknown address and an inactive account alike.
const INVALID_LOGIN: &str =
    "Пожалуйста, введите правильные почта и пароль. Оба поля могут быть чувствительны к регистру.";
/// Django's `unique_error_message` for `User.email` (`"%(model_name)s с
/// таким %(field_label)s уже существует."` with both verbose names capitalised).
const EMAIL_TAKEN: &str = "Пользователь с таким Почта уже существует.";

/// The password fields: `CharField(strip=False)`, required.
const PASSWORD_FIELD: CharField = CharField {
    max_length: None,
    required: true,
    strip: false,
};

/// Records a field's cleaning: the clean value, or its messages under `name`.
fn take<T>(errors: &mut Errors, name: &str, cleaned: Result<T, Vec<String>>) -> Option<T> {
    match cleaned {
        Ok(value) => Some(value),
        Err(messages) => {
            for message in messages {
                add_error(errors, name, message);
            }
            None
        }
    }
}

/// The `email` field of the registration and reset forms: Django's
/// `forms.EmailField(max_length=254)` (the model field's length).
fn clean_email_field(form: &FormData) -> Result<String, Vec<String>> {
    clean_email(form.get("email"), users::EMAIL_MAX_LENGTH)
        .map_err(|problems| problems.into_iter().map(EmailError::message).collect())
}

/// A form of text fields as the template sees it: each field's
/// `value()` is the submitted text (as sent, unstripped) when the form
/// comes back with errors, and nothing on an empty form. A password field
/// holds its text too, as Django's; the template's `render_value=false`
/// never writes it.
fn text_form_view(submitted: Option<&FormData>, names: &[&'static str], errors: &Errors) -> Value {
    let fields = names
        .iter()
        .map(|&name| Field::new(name, submitted.and_then(|form| form.get(name))))
        .collect();
    form_view::form(None, fields, errors)
}

const REGISTER_FIELDS: [&str; 3] = ["email", "password1", "password2"];
const LOGIN_FIELDS: [&str; 2] = ["username", "password"];
const RESET_FIELDS: [&str; 1] = ["email"];

/// The site's address for links in letters, from the request's own host.
fn absolute_url(app: &AppState, headers: &HeaderMap, path: &str) -> Result<String, AppError> {
    let host = crate::web::host::validated_host(&app.settings, headers)
        .ok_or_else(|| AppError::BadRequest("Недопустимый заголовок Host.".into()))?;
    let scheme = if crate::web::host::is_secure(&app.settings, headers) {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}{path}"))
}

/// The registration page, empty or with the submitted form's errors.
fn register_form_page(
    app: &AppState,
    ctx: &RequestContext,
    submitted: Option<&FormData>,
    errors: &Errors,
) -> Result<Response, AppError> {
    let form = text_form_view(submitted, &REGISTER_FIELDS, errors);
    Ok(ctx
        .html(app, "users/register.html", context! { form => form })?
        .into_response())
}

async fn register_page(
    State(app): State<AppState>,
    ctx: RequestContext,
) -> Result<Response, AppError> {
    register_form_page(&app, &ctx, None, &Errors::new())
}

async fn register(
    State(app): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, AppError> {
    // As UserCreationForm: the fields are cleaned one by one; clean()
    // compares the two passwords; _post_clean() puts the address on the
    // user as the model's clean() leaves it, checks it is free, and runs
    // the password validators on password2 for that user.
    let mut errors = Errors::new();
    let email = take(&mut errors, "email", clean_email_field(&form));
    let password1 = take(
        &mut errors,
        "password1",
        PASSWORD_FIELD.clean(form.get("password1")),
    );
    let password2 = take(
        &mut errors,
        "password2",
        PASSWORD_FIELD.clean(form.get("password2")),
    );
    // An error on a field takes it out of cleaned_data: the validators
    // below do not run on two passwords that differ.
    let password2 = match (&password1, password2) {
        (Some(password1), Some(password2)) if *password1 != password2 => {
            add_error(&mut errors, "password2", PASSWORD_MISMATCH);
            None
        }
        (_, password2) => password2,
    };
    let email = email.map(|e| users::normalize_email(&e));
    if let Some(email) = &email {
        if users::by_email(&app.db, email).await?.is_some() {
            add_error(&mut errors, "email", EMAIL_TAKEN);
        }
    }
    if let Some(password2) = &password2 {
        // The form's user: without a clean address its e-mail is empty.
        let attributes = UserAttributes {
            email: email.as_deref().unwrap_or(""),
            first_name: "",
            last_name: "",
        };
        for message in validate_password(password2, &attributes, app.settings.django_release) {
            add_error(&mut errors, "password2", message);
        }
    }
    let (Some(email), Some(password1), true) = (email, password1, errors.is_empty()) else {
        return register_form_page(&app, &ctx, Some(&form), &errors);
    };
    let token = hex::encode(rand::random::<[u8; 16]>());
    let hashers = app.hashers.clone();
    let password_hash = app
        .hashing
        .run(move || hashers.make_password(&password1))
        .await?;
    let link = absolute_url(
        &app,
        &headers,
        &urls::reverse("users:email_confirm", std::slice::from_ref(&token)).expect("route exists"),
    )?;
    let letter = Email {
        to: email.clone(),
        subject: "Подтверждение почты".into(),
        body: format!("Привет! Перейди по ссылке для подтверждения почты: {link}"),
    };
    // The user and the letter are stored together or not at all.
    let mut tx = app.db.begin().await?;
    let new_user = NewUser {
        email: &email,
        password_hash: &password_hash,
        is_active: false,
        is_staff: false,
        is_superuser: false,
        token: Some(&token),
    };
    match users::insert(&mut tx, &new_user).await {
        Ok(_) => {}
        Err(CreateUserError::EmailTaken) => {
            add_error(&mut errors, "email", EMAIL_TAKEN);
            return register_form_page(&app, &ctx, Some(&form), &errors);
        }
        Err(CreateUserError::Database(e)) => return Err(e.into()),
    }
    crate::db::outbox::enqueue(&mut tx, &letter, &app.settings.email.outbox_backend()).await?;
    tx.commit().await?;
    app.mailer.notify();
    tracing::info!("registered {email:?}; confirmation letter queued");
    // As the original's RegisterView: on to the login page.
    Ok(crate::web::redirect(urls::path("users:login")))
}

async fn email_confirm(
    State(app): State<AppState>,
    ctx: RequestContext,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    // A NUL can be no token (and PostgreSQL refuses it in a query).
    if !token.contains('\0') && users::activate_by_token(&app.db, &token).await? {
        return Ok(crate::web::redirect(urls::path("users:login")));
    }
    let body = ctx.render(&app, "users/email_confirm_failed.html", context! {})?;
    Ok((
        axum::http::StatusCode::NOT_FOUND,
        axum::response::Html(body),
    )
        .into_response())
}

/// `request.GET.get("next")`: the last `next` of the query string.
fn query_next(query: Option<&str>) -> Option<String> {
    parse_qsl(query.unwrap_or(""))
        .into_iter()
        .rev()
        .find(|(name, _)| name == "next")
        .map(|(_, value)| value)
}

/// `request.POST.get("next", request.GET.get("next"))`.
fn posted_next(form: &FormData, query: Option<&str>) -> Option<String> {
    form.get("next")
        .map(str::to_string)
        .or_else(|| query_next(query))
}

/// `RedirectURLMixin.get_redirect_url`: the `next` target when
/// `url_has_allowed_host_and_scheme` allows it with
/// `allowed_hosts={request.get_host()}` and
/// `require_https=request.is_secure()`, else `None`. (A Host that
/// ALLOWED_HOSTS refuses, where `get_host` raises, allows nothing.)
fn safe_next(app: &AppState, headers: &HeaderMap, next: Option<&str>) -> Option<String> {
    let host = crate::web::host::validated_host(&app.settings, headers)?;
    url_has_allowed_host_and_scheme(
        next,
        &[host],
        crate::web::host::is_secure(&app.settings, headers),
    )
    .then(|| next.map(str::to_string))
    .flatten()
}

/// The page's `next` is LoginView's `get_redirect_url()`: the safe target
/// only, so the form never carries another site's address.
async fn login_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let next = safe_next(&app, &headers, query_next(query.as_deref()).as_deref());
    login_form_page(&app, &ctx, None, &Errors::new(), next)
}

/// The login page, empty or with the submitted form's errors.
fn login_form_page(
    app: &AppState,
    ctx: &RequestContext,
    submitted: Option<&FormData>,
    errors: &Errors,
    next: Option<String>,
) -> Result<Response, AppError> {
    let form = text_form_view(submitted, &LOGIN_FIELDS, errors);
    Ok(crate::web::never_cache(
        ctx.html(
            app,
            "users/login.html",
            context! { form => form, next => next },
        )?
        .into_response(),
    ))
}

async fn login(
    State(app): State<AppState>,
    ctx: RequestContext,
    session: Session,
    csrf: Csrf,
    client: Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: FormData,
) -> Result<Response, AppError> {
    // As Django's LoginView: the form's `next`, else the query string's,
    // if it is safe.
    let next = safe_next(
        &app,
        &headers,
        posted_next(&form, query.as_deref()).as_deref(),
    );
    // As AuthenticationForm: the address is a UsernameField as long as the
    // model's field, the password a CharField(strip=False); both clean, the
    // user is authenticated.
    let mut errors = Errors::new();
    let email = take(
        &mut errors,
        "username",
        clean_username(form.get("username"), users::EMAIL_MAX_LENGTH),
    );
    let password = take(
        &mut errors,
        "password",
        PASSWORD_FIELD.clean(form.get("password")),
    );
    if let (Some(email), Some(password)) = (email, password) {
        // A locked-out login is refused before its password is hashed.
        let attempt = LoginAttempt::begin(&app, &client, &email).await?;
        match auth::authenticate(&app, &email, &password).await? {
            Some(user) => {
                attempt.succeeded(&app).await?;
                auth::login(&app, &session, &csrf, &user).await?;
                let target = next.unwrap_or_else(|| app.urls.login_redirect.clone());
                return Ok(crate::web::never_cache(crate::web::redirect(&target)));
            }
            // Until the failure that reaches the limit: that one gets the 429.
            None => {
                attempt.failed(&app).await?;
                add_error(&mut errors, NON_FIELD, INVALID_LOGIN);
            }
        }
    }
    login_form_page(&app, &ctx, Some(&form), &errors, next)
}

/// As LogoutView: a safe `next` (form, else query string), else
/// LOGOUT_REDIRECT_URL.
async fn logout(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    form: FormData,
) -> Response {
    auth::logout(&session);
    let target = safe_next(
        &app,
        &headers,
        posted_next(&form, query.as_deref()).as_deref(),
    )
    .unwrap_or_else(|| app.urls.logout_redirect.clone());
    crate::web::never_cache(crate::web::redirect(&target))
}

async fn password_reset_page(
    State(app): State<AppState>,
    ctx: RequestContext,
) -> Result<Response, AppError> {
    reset_form_page(&app, &ctx, None, &Errors::new())
}

/// The password-reset page, empty or with the submitted form's errors.
fn reset_form_page(
    app: &AppState,
    ctx: &RequestContext,
    submitted: Option<&FormData>,
    errors: &Errors,
) -> Result<Response, AppError> {
    let form = text_form_view(submitted, &RESET_FIELDS, errors);
    Ok(ctx
        .html(
            app,
            "users/password_reset.html",
            context! { form => form, confirm => app.settings.password_reset_confirm },
        )?
        .into_response())
}

/// Length of a generated password; letters and digits from the OS generator.
const RESET_PASSWORD_LENGTH: usize = 12;

/// A new random password and its hash.
async fn new_password(app: &AppState) -> Result<(String, String), AppError> {
    let password = get_random_string(RESET_PASSWORD_LENGTH, ASCII_LETTERS_AND_DIGITS);
    let hashers = app.hashers.clone();
    let to_hash = password.clone();
    let hash = app
        .hashing
        .run(move || hashers.make_password(&to_hash))
        .await?;
    Ok((password, hash))
}

/// Sets the user's new password and queues the letter that tells it,
/// together, as long as the stored hash is still the one the user was read
/// with (of two resets racing, or two uses of one link, one mails a
/// password). Returns whether it did.
async fn set_and_mail_password(
    app: &AppState,
    user: &User,
    password: &str,
    hash: &str,
) -> Result<bool, AppError> {
    let letter = Email {
        to: user.email.clone(),
        subject: "Восстановление пароля".into(),
        body: format!("Ваш новый пароль: {password}"),
    };
    let mut tx = app.db.begin().await?;
    if !users::set_password_in(&mut tx, user.id, hash, &user.password).await? {
        return Ok(false);
    }
    crate::db::outbox::enqueue(&mut tx, &letter, &app.settings.email.outbox_backend()).await?;
    tx.commit().await?;
    app.mailer.notify();
    Ok(true)
}

async fn password_reset(
    State(app): State<AppState>,
    ctx: RequestContext,
    client: Client,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, AppError> {
    let mut errors = Errors::new();
    let Some(email) = take(&mut errors, "email", clean_email_field(&form)) else {
        return reset_form_page(&app, &ctx, Some(&form), &errors);
    };
    // Counted (or refused with a 429) before anything is hashed or mailed.
    throttle::reserve_reset(&app, &client, &email).await?;
    if app.settings.password_reset_confirm {
        if let Some(user) = users::by_email_ignoring_case(&app.db, &email).await? {
            mail_reset_link(&app, &headers, &user).await?;
        }
    } else {
        // Hash before looking the address up, so known and unknown
        // addresses cost the same time.
        let (password, hash) = new_password(&app).await?;
        if let Some(user) = users::by_email_ignoring_case(&app.db, &email).await? {
            set_and_mail_password(&app, &user, &password, &hash).await?;
        }
    }
    // As the original: on to the login page (for unknown addresses too, so
    // the answer tells nobody which addresses have an account).
    Ok(crate::web::redirect(urls::path("users:login")))
}

/// What a reset token depends on, from the user's row.
fn token_user(user: &User) -> TokenUser<'_> {
    TokenUser {
        pk: user.id,
        password: &user.password,
        last_login: user.last_login.map(|t| t.0.naive_utc()),
        email: &user.email,
    }
}

/// Now as Django's token generator reads the clock: local time in TIME_ZONE.
fn local_now(app: &AppState) -> chrono::NaiveDateTime {
    chrono::Utc::now()
        .with_timezone(&app.settings.time_zone)
        .naive_local()
}

/// `PASSWORD_RESET_CONFIRM`: mails a one-time link to the page that resets
/// the password; nothing changes yet.
async fn mail_reset_link(app: &AppState, headers: &HeaderMap, user: &User) -> Result<(), AppError> {
    let token = tokens::make_token(&token_user(user), local_now(app), &app.settings.secret_key);
    let path = urls::reverse(
        "users:password_reset_confirm",
        &[tokens::uidb64(user.id), token],
    )
    .expect("route exists");
    let link = absolute_url(app, headers, &path)?;
    let letter = Email {
        to: user.email.clone(),
        subject: "Восстановление пароля".into(),
        body: format!(
            "Кто-то попросил сбросить пароль для этого адреса. Если это были вы, \
             откройте ссылку и нажмите кнопку — новый пароль придёт следующим письмом: {link}\n\n\
             Если нет, ничего не делайте: пароль останется прежним."
        ),
    };
    let mut tx = app.db.begin().await?;
    crate::db::outbox::enqueue(&mut tx, &letter, &app.settings.email.outbox_backend()).await?;
    tx.commit().await?;
    app.mailer.notify();
    Ok(())
}

/// The user a reset link is for, while the link is good.
async fn reset_link_user(
    app: &AppState,
    uidb64: &str,
    token: &str,
) -> Result<Option<User>, AppError> {
    let Some(pk) = tokens::pk_of_uidb64(uidb64) else {
        return Ok(None);
    };
    let Some(user) = users::by_id(&app.db, pk).await? else {
        return Ok(None);
    };
    let settings = &app.settings;
    let good = tokens::check_token(
        &token_user(&user),
        token,
        local_now(app),
        &settings.secret_key,
        &settings.secret_key_fallbacks,
        i64::try_from(settings.password_reset_timeout.as_secs()).unwrap_or(i64::MAX),
    );
    Ok(good.then_some(user))
}

/// The page of a reset link: a button (opening the link changes nothing:
/// mail scanners open links), or a 404 page for a used or expired link.
fn reset_link_page(
    app: &AppState,
    ctx: &RequestContext,
    valid: bool,
) -> Result<Response, AppError> {
    let body = ctx.render(
        app,
        "users/password_reset_confirm.html",
        context! { validlink => valid },
    )?;
    let status = if valid {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::NOT_FOUND
    };
    Ok((status, axum::response::Html(body)).into_response())
}

async fn password_reset_confirm_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    Path((uidb64, token)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let user = reset_link_user(&app, &uidb64, &token).await?;
    reset_link_page(&app, &ctx, user.is_some())
}

/// The button: the new password is set and mailed, as the original's reset
/// does; the link is used up with it (its token depended on the old hash).
async fn password_reset_confirm(
    State(app): State<AppState>,
    ctx: RequestContext,
    Path((uidb64, token)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let Some(user) = reset_link_user(&app, &uidb64, &token).await? else {
        return reset_link_page(&app, &ctx, false);
    };
    let (password, hash) = new_password(&app).await?;
    if !set_and_mail_password(&app, &user, &password, &hash).await? {
        return reset_link_page(&app, &ctx, false);
    }
    Ok(crate::web::redirect(urls::path("users:login")))
}

async fn profile_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
) -> Result<Response, AppError> {
    let form = profile_form_view(&user, None, &Errors::new());
    Ok(ctx
        .html(&app, "users/profile.html", context! { form => form })?
        .into_response())
}

/// The profile form as Django's `UserProfileForm`: the user's values, or
/// the submitted ones when it comes back with errors.
fn profile_form_view(user: &User, submitted: Option<&FormData>, errors: &Errors) -> Value {
    let value = |name: &str, initial: Option<&str>| match submitted {
        Some(form) => Value::from(form.get(name)),
        None => Value::from(initial),
    };
    let fields = vec![
        Field::new("first_name", value("first_name", Some(&user.first_name))),
        Field::new("last_name", value("last_name", Some(&user.last_name))),
        Field::new("phone", value("phone", user.phone.as_deref())),
        Field::new("country", value("country", user.country.as_deref())),
        // A file input shows the stored file, submitted or not.
        Field::new(
            "avatar",
            crate::web::media::image_value(user.avatar.as_deref()),
        ),
    ];
    form_view::form(None, fields, errors)
}

/// The model's `CharField(max_length=..., blank=True)` as a form field.
const fn optional_text(max_length: usize) -> CharField {
    CharField {
        max_length: Some(max_length),
        required: false,
        strip: true,
    }
}

async fn profile(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    form: FormData,
) -> Result<Response, AppError> {
    let mut errors = Errors::new();
    let mut clean = |name: &str, max_length: usize| {
        take(
            &mut errors,
            name,
            optional_text(max_length).clean(form.get(name)),
        )
    };
    let first_name = clean("first_name", 150);
    let last_name = clean("last_name", 150);
    // Nullable columns: an empty value is stored as NULL.
    let phone = clean("phone", 35).map(|v| Some(v).filter(|v| !v.is_empty()));
    let country = clean("country", 50).map(|v| Some(v).filter(|v| !v.is_empty()));
    let avatar = match form.file("avatar") {
        Some(file) => match crate::web::media::check_image(file).await {
            Ok(()) => Some(file),
            Err(message) => {
                add_error(&mut errors, "avatar", message);
                None
            }
        },
        None => None,
    };
    let (Some(first_name), Some(last_name), Some(phone), Some(country), true) =
        (first_name, last_name, phone, country, errors.is_empty())
    else {
        let view = profile_form_view(&user, Some(&form), &errors);
        return Ok(ctx
            .html(&app, "users/profile.html", context! { form => view })?
            .into_response());
    };
    let avatar_path = match avatar {
        Some(file) => Some(
            crate::web::media::save_upload(&app.settings.media_root, "users/avatars", file).await?,
        ),
        None => None,
    };
    let update = users::ProfileUpdate {
        first_name,
        last_name,
        phone,
        country,
        avatar: avatar_path,
    };
    users::update_profile(&app.db, user.id, &update).await?;
    Ok(crate::web::redirect(
        &urls::reverse("users:profile", &[]).expect("route exists"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::django::releases::Release;

    /// The auth forms' messages as every supported release words them
    /// (`auth_form_messages_ru` of `compat-tests/vectors/release-*.json`).
    #[test]
    fn auth_form_messages_are_each_releases() {
        for release in Release::ALL {
            let vectors = crate::django::vectors::release(release);
            let messages = &vectors["auth_form_messages_ru"];
            assert_eq!(
                messages["UserCreationForm.password_mismatch"],
                PASSWORD_MISMATCH,
                "{}",
                release.name()
            );
            assert_eq!(
                messages["AuthenticationForm.invalid_login"]
                    .as_str()
                    .map(|m| m.replace("%(username)s", "почта")),
                Some(INVALID_LOGIN.to_string()),
                "{}",
                release.name()
            );
        }
    }
}
