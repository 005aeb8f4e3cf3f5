//! The session, CSRF and login-URL settings sites change, with Django's
//! names and meanings: cookie names, ages and attributes, sessions that end
//! with the browser or are saved on every request, a session's own expiry
//! (`set_expiry`), the `signed_cookies` engine, `CSRF_HEADER_NAME`,
//! `CSRF_USE_SESSIONS`, and `LOGIN_URL` / `LOGIN_REDIRECT_URL` /
//! `LOGOUT_REDIRECT_URL`. Each test runs on SQLite, and on PostgreSQL when
//! `UNCHAINED_TEST_POSTGRES` is set. (The compat suite checks the same
//! settings against a real Django, both ways.)

mod common;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use common::app::{csrf_token, spawn_app_with, App, Browser, Mail, Resp, GOOD_PASSWORD};
use common::{backends, SECRET_KEY};
use unchained::django::{csrf, sessions};

/// Every `Set-Cookie` of a response for this cookie name, as sent.
fn set_cookies(r: &Resp, name: &str) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|v| v.starts_with(&format!("{name}=")))
        .collect()
}

/// The one `Set-Cookie` of this name: (value, attributes in lowercase).
fn the_cookie(r: &Resp, name: &str, what: &str) -> (String, Vec<String>) {
    let all = set_cookies(r, name);
    assert_eq!(all.len(), 1, "{what}: Set-Cookie {name}: {all:?}");
    let mut parts = all[0].split("; ");
    let value = parts.next().unwrap()[name.len() + 1..].to_string();
    (value, parts.map(str::to_ascii_lowercase).collect())
}

fn attribute<'a>(attributes: &'a [String], name: &str) -> Option<&'a str> {
    attributes.iter().find_map(|a| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        (k == name).then_some(v)
    })
}

fn max_age(attributes: &[String]) -> Option<i64> {
    attribute(attributes, "max-age").map(|v| v.parse().unwrap())
}

impl App {
    async fn expire_date(&self, key: &str) -> DateTime<Utc> {
        let stored = unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<
            _,
            unchained::db::time::DjangoDateTime,
        >(
            &(&self.db).sql("SELECT expire_date FROM django_session WHERE session_key = $1")
        )
        .bind(key)
        .fetch_one(pool)
        .await)
        .unwrap_or_else(|e| panic!("{}: the row of session {key}: {e}", self.backend));
        stored.0
    }

    async fn session_data(&self, key: &str) -> Map<String, Value> {
        let stored = unchained::db::sessions::load(&self.db, key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: no session {key}", self.backend));
        sessions::decode(&stored, SECRET_KEY, &[] as &[String]).expect("a session Django reads")
    }

    /// Rewrites a session row's data (as a Django view calling
    /// `set_expiry` would leave it), keeping its key.
    async fn rewrite_session(&self, key: &str, data: &Map<String, Value>, expire: DateTime<Utc>) {
        assert!(unchained::db::sessions::update(
            &self.db,
            key,
            &sessions::encode(data, SECRET_KEY),
            unchained::db::time::DjangoDateTime(expire),
        )
        .await
        .unwrap());
    }

    /// Logs in through the login page and returns the response of the POST.
    async fn login_response(&self, browser: &Browser, email: &str) -> Resp {
        self.create_user(email, GOOD_PASSWORD, true).await;
        browser
            .submit(
                "/users/login/",
                &[("username", email), ("password", GOOD_PASSWORD)],
            )
            .await
    }
}

fn assert_close(got: DateTime<Utc>, want: DateTime<Utc>, what: &str) {
    let off = (got - want).num_seconds().abs();
    assert!(off <= 5, "{what}: {got} is not {want}");
}

#[tokio::test]
async fn cookie_names_ages_and_attributes() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SESSION_COOKIE_NAME", "shopsession"),
                ("SESSION_COOKIE_AGE", "3600"),
                ("SESSION_COOKIE_HTTPONLY", "False"),
                ("SESSION_COOKIE_SAMESITE", "Strict"),
                ("CSRF_COOKIE_NAME", "shopcsrf"),
                ("CSRF_COOKIE_AGE", "None"),
                ("CSRF_COOKIE_HTTPONLY", "True"),
                ("CSRF_COOKIE_SAMESITE", "False"),
            ],
        )
        .await;
        let browser = app.browser();
        let page = browser.get("/users/login/").await;
        let (secret, attributes) = the_cookie(&page, "shopcsrf", backend);
        assert_eq!(secret.len(), 32, "{backend}: the CSRF secret");
        assert_eq!(
            attributes,
            ["httponly", "path=/"],
            "{backend}: a browser-session CSRF cookie, HttpOnly, no SameSite"
        );
        assert!(set_cookies(&page, "csrftoken").is_empty(), "{backend}");

        let r = app.login_response(&browser, "names@example.com").await;
        r.assert_redirect("/", backend);
        let (key, attributes) = the_cookie(&r, "shopsession", backend);
        assert_eq!(
            max_age(&attributes),
            Some(3600),
            "{backend}: {attributes:?}"
        );
        assert!(attribute(&attributes, "expires").is_some(), "{backend}");
        assert_eq!(
            attribute(&attributes, "samesite"),
            Some("strict"),
            "{backend}"
        );
        assert_eq!(attribute(&attributes, "httponly"), None, "{backend}");
        assert!(set_cookies(&r, "sessionid").is_empty(), "{backend}");
        assert_close(
            app.expire_date(&key).await,
            Utc::now() + chrono::Duration::seconds(3600),
            backend,
        );
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend)
            .assert_contains("names@example.com", backend);

        let token = browser.token("/users/profile/").await;
        let r = browser
            .post("/users/logout/", &[("csrfmiddlewaretoken", token.as_str())])
            .await;
        let (value, attributes) = the_cookie(&r, "shopsession", backend);
        assert!(value.is_empty() || value == "\"\"", "{backend}: {value}");
        assert_eq!(max_age(&attributes), Some(0), "{backend}: {attributes:?}");
        assert_eq!(
            attribute(&attributes, "samesite"),
            Some("strict"),
            "{backend}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn cookie_domain_and_path() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SESSION_COOKIE_DOMAIN", "shop.test"),
                ("SESSION_COOKIE_PATH", "/users/"),
                ("CSRF_COOKIE_DOMAIN", "shop.test"),
                ("CSRF_COOKIE_PATH", "/users/"),
            ],
        )
        .await;
        app.create_user("domain@example.com", GOOD_PASSWORD, true)
            .await;
        // A jar would not keep cookies for another domain: this browser
        // sends them by hand.
        let browser = app.browser();
        let page = browser.get("/users/login/").await;
        let (secret, attributes) = the_cookie(&page, "csrftoken", backend);
        assert_eq!(
            attribute(&attributes, "domain"),
            Some("shop.test"),
            "{backend}"
        );
        assert_eq!(attribute(&attributes, "path"), Some("/users/"), "{backend}");
        let token = csrf_token(&page.body).unwrap();
        let r = browser
            .send(
                browser
                    .post_request("/users/login/")
                    .header("cookie", format!("csrftoken={secret}"))
                    .form(&[
                        ("csrfmiddlewaretoken", token.as_str()),
                        ("username", "domain@example.com"),
                        ("password", GOOD_PASSWORD),
                    ]),
            )
            .await;
        r.assert_redirect("/", backend);
        let (key, attributes) = the_cookie(&r, "sessionid", backend);
        assert_eq!(
            attribute(&attributes, "domain"),
            Some("shop.test"),
            "{backend}"
        );
        assert_eq!(attribute(&attributes, "path"), Some("/users/"), "{backend}");
        assert_eq!(attribute(&attributes, "httponly"), Some(""), "{backend}");
        assert_eq!(attribute(&attributes, "samesite"), Some("lax"), "{backend}");
        assert_eq!(
            app.session_data(&key).await["_auth_user_id"],
            json!(app.user("domain@example.com").await.unwrap().id.to_string()),
            "{backend}"
        );
        app.stop().await;
    }
}

/// `SESSION_EXPIRE_AT_BROWSER_CLOSE`, `SESSION_SAVE_EVERY_REQUEST`, and a
/// session's own expiry as Django's `set_expiry` stores it, which wins
/// over both.
#[tokio::test]
async fn browser_close_save_every_request_and_set_expiry() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "True"),
                ("SESSION_SAVE_EVERY_REQUEST", "True"),
            ],
        )
        .await;
        let browser = app.browser();
        let r = app.login_response(&browser, "close@example.com").await;
        r.assert_redirect("/", backend);
        let (key, attributes) = the_cookie(&r, "sessionid", backend);
        assert_eq!(max_age(&attributes), None, "{backend}: {attributes:?}");
        assert_eq!(attribute(&attributes, "expires"), None, "{backend}");
        // The row still ends after SESSION_COOKIE_AGE, as Django's does.
        let two_weeks = Utc::now() + chrono::Duration::seconds(1_209_600);
        assert_close(app.expire_date(&key).await, two_weeks, backend);

        // Every request saves: an ordinary page moves the row's end.
        let mut data = app.session_data(&key).await;
        app.rewrite_session(&key, &data, Utc::now() + chrono::Duration::seconds(100))
            .await;
        let r = browser.get("/users/profile/").await;
        r.assert_page(200, backend);
        let (again, _) = the_cookie(&r, "sessionid", backend);
        assert_eq!(again, key, "{backend}: the same session, sent again");
        assert_close(app.expire_date(&key).await, two_weeks, backend);

        // `set_expiry(600)`: ten minutes of inactivity.
        data.insert(sessions::SESSION_EXPIRY_KEY.into(), json!(600));
        app.rewrite_session(&key, &data, two_weeks).await;
        let r = browser.get("/users/profile/").await;
        let (_, attributes) = the_cookie(&r, "sessionid", backend);
        assert_eq!(max_age(&attributes), Some(600), "{backend}: {attributes:?}");
        assert_close(
            app.expire_date(&key).await,
            Utc::now() + chrono::Duration::seconds(600),
            backend,
        );

        // `set_expiry(datetime)`: an ISO moment two hours ahead.
        let at = Utc::now() + chrono::Duration::seconds(7200);
        let at = at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
        data.insert(
            sessions::SESSION_EXPIRY_KEY.into(),
            json!(at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()),
        );
        app.rewrite_session(&key, &data, two_weeks).await;
        let r = browser.get("/users/profile/").await;
        let (_, attributes) = the_cookie(&r, "sessionid", backend);
        let age = max_age(&attributes).expect("a Max-Age");
        assert!((7190..=7200).contains(&age), "{backend}: {age}");
        assert_eq!(
            app.expire_date(&key).await,
            at,
            "{backend}: the moment itself"
        );

        // `set_expiry(0)`: at browser close, whatever the setting.
        data.insert(sessions::SESSION_EXPIRY_KEY.into(), json!(0));
        app.rewrite_session(&key, &data, two_weeks).await;
        let r = browser.get("/users/profile/").await;
        let (_, attributes) = the_cookie(&r, "sessionid", backend);
        assert_eq!(max_age(&attributes), None, "{backend}: {attributes:?}");
        app.stop().await;

        // Without SESSION_SAVE_EVERY_REQUEST an unchanged session is not
        // sent again.
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        let browser = app.new_user_logged_in("quiet@example.com").await;
        let r = browser.get("/users/profile/").await;
        r.assert_page(200, backend);
        assert!(set_cookies(&r, "sessionid").is_empty(), "{backend}");
        app.stop().await;
    }
}

#[tokio::test]
async fn signed_cookie_sessions() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[(
                "SESSION_ENGINE",
                "django.contrib.sessions.backends.signed_cookies",
            )],
        )
        .await;
        let browser = app.browser();
        let r = app.login_response(&browser, "signed@example.com").await;
        r.assert_redirect("/", backend);
        let (cookie, attributes) = the_cookie(&r, "sessionid", backend);
        assert_eq!(max_age(&attributes), Some(1_209_600), "{backend}");
        let data = sessions::decode_signed_cookie(&cookie, SECRET_KEY, &[] as &[String], 1_209_600)
            .expect("a cookie Django's signed_cookies engine reads");
        let id = app.user("signed@example.com").await.unwrap().id;
        assert_eq!(data["_auth_user_id"], json!(id.to_string()), "{backend}");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM django_session").await,
            0,
            "{backend}: no rows with this engine"
        );
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend)
            .assert_contains("signed@example.com", backend);

        // A cookie signed with another key, or older than
        // SESSION_COOKIE_AGE, is no session.
        let forged = sessions::encode_signed_cookie(&data, "another-key");
        let stale = sessions::encode_signed_cookie_at(
            &data,
            SECRET_KEY,
            Utc::now().timestamp() - 1_209_600 - 60,
        );
        for (what, value) in [("forged", forged), ("too old", stale)] {
            let other = app.browser();
            other.set_cookie("sessionid", &value);
            other
                .get("/users/profile/")
                .await
                .assert_redirect("/users/login/?next=/users/profile/", what);
        }

        let token = browser.token("/users/profile/").await;
        let r = browser
            .post("/users/logout/", &[("csrfmiddlewaretoken", token.as_str())])
            .await;
        let (value, attributes) = the_cookie(&r, "sessionid", backend);
        assert!(value.is_empty() || value == "\"\"", "{backend}: {value}");
        assert_eq!(max_age(&attributes), Some(0), "{backend}");
        browser
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);
        app.stop().await;
    }
}

#[tokio::test]
async fn csrf_header_name_and_secret_in_the_session() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("CSRF_USE_SESSIONS", "True"),
                ("CSRF_HEADER_NAME", "HTTP_X_MY_CSRF"),
            ],
        )
        .await;
        let browser = app.browser();
        let page = browser.get("/users/login/").await;
        page.assert_page(200, backend);
        assert!(
            set_cookies(&page, "csrftoken").is_empty(),
            "{backend}: no CSRF cookie"
        );
        // The secret went into a session of its own, as Django keeps it.
        let (key, _) = the_cookie(&page, "sessionid", backend);
        let secret = app.session_data(&key).await[csrf::CSRF_SESSION_KEY]
            .as_str()
            .expect("the secret in the session")
            .to_string();
        let token = csrf_token(&page.body).unwrap();
        assert_eq!(csrf::unmask_cipher_token(&token), secret, "{backend}");

        app.create_user("header@example.com", GOOD_PASSWORD, true)
            .await;
        browser
            .post(
                "/users/login/",
                &[
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("username", "header@example.com"),
                    ("password", GOOD_PASSWORD),
                ],
            )
            .await
            .assert_redirect("/", backend);

        // The token only in a header: the configured one is read, Django's
        // default one is not.
        let token = browser.token("/users/profile/").await;
        let r = browser
            .send(
                browser
                    .post_request("/users/logout/")
                    .header("X-CSRFToken", &token),
            )
            .await;
        r.assert_page(403, backend);
        let r = browser
            .send(
                browser
                    .post_request("/users/logout/")
                    .header("X-My-Csrf", &token),
            )
            .await;
        r.assert_redirect("/", backend);
        browser
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);
        app.stop().await;
    }
}

#[tokio::test]
async fn login_and_logout_urls() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("LOGIN_URL", "/users/login/?from=shop"),
                ("LOGIN_REDIRECT_URL", "users:profile"),
                ("LOGOUT_REDIRECT_URL", "/users/login/"),
            ],
        )
        .await;
        let browser = app.browser();
        browser.get("/products/create/?a=1").await.assert_redirect(
            "/users/login/?from=shop&next=/products/create/%3Fa%3D1",
            backend,
        );
        app.login_response(&browser, "urls@example.com")
            .await
            .assert_redirect("/users/profile/", backend);
        let token = browser.token("/users/profile/").await;
        browser
            .post("/users/logout/", &[("csrfmiddlewaretoken", token.as_str())])
            .await
            .assert_redirect("/users/login/", backend);
        app.stop().await;
    }
}
