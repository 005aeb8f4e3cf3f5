//! The catalog pages driven as a browser drives them, against the real site
//! on a random loopback port (the shared harness, tests/common/app.rs): the
//! product list and its pagination, a product's page, creating, editing
//! (the owner's form with its versions formset, the moderator's form) and
//! deleting products, who may do which, prices and images stored exactly as
//! Django stores them, and bad input answered with a page, never a 500.
//! Each test runs on SQLite, and on PostgreSQL when `UNCHAINED_TEST_POSTGRES`
//! is set.
//!
//! Users are made through the library and log in through the real login
//! page; roles come from permissions (`unchained::db::perms`, or the user's
//! own permission table), never from a group's name.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::multipart;

use common::app::{
    assert_django_alternative_name, file, no_file, on_each_backend, png, App, Browser, Resp,
    GOOD_PASSWORD, PNG_1X1,
};
use common::exec;
use unchained::db::catalog::{self, Visibility};
use unchained::db::perms::{self, MODERATOR_PERMISSIONS};
use unchained::db::schema;
use unchained::db::time::DjangoDateTime;
use unchained::db::users::NewUser;
use unchained::db::{Backend, Db};

// ---------------------------------------------------------------------------
// People

/// A user of the site, logged in through the login page.
struct Person {
    id: i64,
    browser: Browser,
}

impl Person {
    async fn get(&self, path: &str) -> Resp {
        self.browser.get(path).await
    }

    /// A form token, as any page this user sees carries one.
    async fn token(&self) -> String {
        self.browser.token("/users/profile/").await
    }

    /// POSTs URL-encoded fields with a valid form token.
    async fn post(&self, path: &str, fields: &Fields) -> Resp {
        let mut all = vec![("csrfmiddlewaretoken".to_string(), self.token().await)];
        all.extend(fields.iter().cloned());
        self.browser.post(path, &all).await
    }

    /// POSTs a multipart form (fields, then files) with a valid form token.
    async fn post_multipart(
        &self,
        path: &str,
        fields: &Fields,
        files: Vec<(&str, multipart::Part)>,
    ) -> Resp {
        let mut all = vec![("csrfmiddlewaretoken".to_string(), self.token().await)];
        all.extend(fields.iter().cloned());
        self.browser
            .post_multipart(path, multipart_form(&all, files))
            .await
    }
}

/// Every user shares one password; hashing it once keeps the suite quick.
async fn password_hash(app: &App) -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(hash) = HASH.get() {
        return hash.clone();
    }
    let hash = app.make_password(GOOD_PASSWORD).await;
    HASH.get_or_init(|| hash).clone()
}

impl App {
    /// An active user, logged in.
    async fn person(&self, email: &str) -> Person {
        self.person_with(email, false).await
    }

    /// An active superuser, logged in.
    async fn superuser(&self, email: &str) -> Person {
        self.person_with(email, true).await
    }

    async fn person_with(&self, email: &str, superuser: bool) -> Person {
        let hash = password_hash(self).await;
        let id = self
            .insert(&NewUser {
                email,
                password_hash: &hash,
                is_active: true,
                is_staff: superuser,
                is_superuser: superuser,
                token: None,
            })
            .await;
        let browser = self.logged_in(email, GOOD_PASSWORD).await;
        Person { id, browser }
    }

    async fn permission(&self, name: &str) -> i64 {
        perms::permission_id(&self.db, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: no permission {name}", self.backend))
    }

    /// Puts a user in a group holding these permissions.
    async fn grant_through_group(&self, user_id: i64, group: &str, names: &[&str]) {
        let (group_id, _) = perms::ensure_group(&self.db, group).await.unwrap();
        for name in names {
            let permission = self.permission(name).await;
            perms::grant_to_group(&self.db, group_id, permission)
                .await
                .unwrap();
        }
        perms::add_user_to_group(&self.db, user_id, group_id)
            .await
            .unwrap();
    }

    /// Gives a user these permissions directly (`users_user_user_permissions`).
    async fn grant_directly(&self, user_id: i64, names: &[&str]) {
        for name in names {
            let permission = self.permission(name).await;
            exec(
                &self.db,
                &format!(
                    "INSERT INTO users_user_user_permissions (user_id, permission_id) \
                     VALUES ({user_id}, {permission})"
                ),
            )
            .await;
        }
    }

    /// A moderator: in a group (not named "moderators") with the three
    /// custom permissions.
    async fn moderator(&self, email: &str) -> Person {
        let person = self.person(email).await;
        self.grant_through_group(person.id, "Контент-редакторы", &MODERATOR_PERMISSIONS)
            .await;
        person
    }

    // -- catalog rows, written as Django writes them

    async fn category(&self, name: &str) -> i64 {
        let sql =
            "INSERT INTO catalog_category (name, description) VALUES ($1, 'Описание') RETURNING id";
        unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, i64>(
            &(&self.db).sql(sql)
        )
        .bind(name)
        .fetch_one(pool)
        .await)
        .unwrap()
    }

    /// A product created now, priced 13119.00, without category or image.
    async fn product(&self, name: &str, owner: Option<i64>, published: bool) -> i64 {
        self.product_at(name, owner, published, DjangoDateTime::now())
            .await
    }

    async fn product_at(
        &self,
        name: &str,
        owner: Option<i64>,
        published: bool,
        created: DjangoDateTime,
    ) -> i64 {
        let sql = "INSERT INTO catalog_product (name, description, image, price, created_at, \
                   updated_at, is_moderated, category_id, owner_id) \
                   VALUES ($1, 'Описание', NULL, 13119.00, $2, $3, $4, NULL, $5) RETURNING id";
        unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, i64>(
            &(&self.db).sql(sql)
        )
        .bind(name)
        .bind(created)
        .bind(created)
        .bind(published)
        .bind(owner)
        .fetch_one(pool)
        .await)
        .unwrap()
    }

    async fn version(&self, product: i64, number: i64, name: &str, current: bool) -> i64 {
        let sql =
            "INSERT INTO catalog_version (version_number, version_name, is_current, product_id) \
                   VALUES ($1, $2, $3, $4) RETURNING id";
        unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, i64>(
            &(&self.db).sql(sql)
        )
        .bind(number)
        .bind(name)
        .bind(current)
        .bind(product)
        .fetch_one(pool)
        .await)
        .unwrap()
    }

    // -- reading back

    async fn products(&self) -> Vec<ProductRow> {
        let sql = format!("{} ORDER BY id", product_select(&self.db));
        unchained::on_pool!(&self.db, |pool| sqlx::query_as::<_, ProductRow>(
            &(&self.db).sql(&sql)
        )
        .fetch_all(pool)
        .await)
        .unwrap()
    }

    async fn product_row(&self, id: i64) -> Option<ProductRow> {
        let sql = format!("{} WHERE id = $1", product_select(&self.db));
        unchained::on_pool!(&self.db, |pool| sqlx::query_as::<_, ProductRow>(
            &(&self.db).sql(&sql)
        )
        .bind(id)
        .fetch_optional(pool)
        .await)
        .unwrap()
    }

    /// The product, which must exist.
    async fn get_product(&self, id: i64) -> ProductRow {
        self.product_row(id)
            .await
            .unwrap_or_else(|| panic!("{}: product {id} is gone", self.backend))
    }

    /// The newest product row (the one a create just made).
    async fn last_product(&self) -> ProductRow {
        self.products().await.pop().expect("a product")
    }

    async fn versions(&self) -> Vec<VersionRow> {
        let sql = format!("{} ORDER BY id", version_select(&self.db));
        unchained::on_pool!(&self.db, |pool| sqlx::query_as::<_, VersionRow>(
            &(&self.db).sql(&sql)
        )
        .fetch_all(pool)
        .await)
        .unwrap()
    }

    async fn versions_of(&self, product: i64) -> Vec<VersionRow> {
        let sql = format!(
            "{} WHERE product_id = $1 ORDER BY id",
            version_select(&self.db)
        );
        unchained::on_pool!(&self.db, |pool| sqlx::query_as::<_, VersionRow>(
            &(&self.db).sql(&sql)
        )
        .bind(product)
        .fetch_all(pool)
        .await)
        .unwrap()
    }

    /// Checks nothing a catalog page could change changed since `before`.
    async fn assert_unchanged(&self, before: &CatalogState, what: &str) {
        assert_eq!(self.state().await, *before, "{what}: something changed");
    }

    /// Everything a catalog page could change.
    async fn state(&self) -> CatalogState {
        CatalogState {
            products: self.products().await,
            versions: self.versions().await,
            media: self.media_files(),
        }
    }

    /// The owner form as the update page shows it for this product:
    /// its fields, its versions as initial rows and one blank extra row.
    async fn owner_form(&self, pk: i64) -> Fields {
        let product = self.get_product(pk).await;
        let mut fields = form(&[
            ("name", &product.name),
            ("description", product.description.as_deref().unwrap_or("")),
            (
                "category",
                &product
                    .category_id
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ),
            ("price", &two_places(&product.price)),
        ]);
        let rows: Vec<Row> = self
            .versions_of(pk)
            .await
            .iter()
            .map(Row::existing)
            .collect();
        fields.extend(formset(&rows, &[Row::blank()]));
        fields
    }
}

/// The product columns as stored, the price as the database's own text.
fn product_select(db: &Db) -> String {
    let text = match db.backend() {
        Backend::MySql => "CHAR",
        Backend::Sqlite | Backend::Postgres => "TEXT",
    };
    format!(
        "SELECT id, name, description, image, CAST(price AS {text}) AS price, \
         created_at, updated_at, is_moderated, category_id, owner_id FROM catalog_product"
    )
}

fn version_select(db: &Db) -> String {
    format!(
        "SELECT id, product_id, {} AS version_number, version_name, is_current \
         FROM catalog_version",
        db.backend().bigint("version_number")
    )
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct ProductRow {
    id: i64,
    name: String,
    description: Option<String>,
    image: Option<String>,
    /// `CAST(price AS TEXT)`: `12.50` on PostgreSQL, `12.5` on SQLite.
    price: String,
    created_at: DjangoDateTime,
    updated_at: DjangoDateTime,
    is_moderated: bool,
    category_id: Option<i64>,
    owner_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct VersionRow {
    id: i64,
    product_id: i64,
    version_number: i64,
    version_name: String,
    is_current: bool,
}

#[derive(Debug, PartialEq)]
struct CatalogState {
    products: Vec<ProductRow>,
    versions: Vec<VersionRow>,
    media: Vec<PathBuf>,
}

/// A decimal's text (as either database casts it) with exactly two places:
/// `12.5` → `12.50`, `7` → `7.00`. Digits beyond two that are not zeros are
/// kept, so a wrong value never looks right.
fn two_places(text: &str) -> String {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut fraction = fraction.trim_end_matches('0').to_string();
    while fraction.len() < 2 {
        fraction.push('0');
    }
    format!("{whole}.{fraction}")
}

/// Python's `str()` of a naive UTC datetime, as Django writes it on SQLite.
fn is_django_sqlite_datetime(text: &str) -> bool {
    let pattern = "dddd-dd-dd dd:dd:dd";
    let digits_at = |s: &str, p: &str| {
        s.len() == p.len()
            && s.chars()
                .zip(p.chars())
                .all(|(c, p)| if p == 'd' { c.is_ascii_digit() } else { c == p })
    };
    match text.len() {
        19 => digits_at(text, pattern),
        26 => digits_at(text, &format!("{pattern}.dddddd")),
        _ => false,
    }
}

fn assert_recent(when: &DjangoDateTime, what: &str) {
    let age = chrono::Utc::now() - when.0;
    assert!(
        age.num_seconds().abs() < 60,
        "{what}: {when:?} is not now (UTC): {age:?} away"
    );
}

// ---------------------------------------------------------------------------
// Forms

/// The fields of a form, in order.
type Fields = Vec<(String, String)>;

fn form(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sets a field (replacing its value, or adding it).
fn set(fields: &mut Fields, name: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(field) => field.1 = value.to_string(),
        None => fields.push((name.to_string(), value.to_string())),
    }
}

fn with(mut fields: Fields, changes: &[(&str, &str)]) -> Fields {
    for (name, value) in changes {
        set(&mut fields, name, value);
    }
    fields
}

fn without(fields: &Fields, prefix: &str) -> Fields {
    fields
        .iter()
        .filter(|(k, _)| !k.starts_with(prefix))
        .cloned()
        .collect()
}

/// A new product's form: a valid one unless changed.
fn new_product(name: &str, price: &str, category: Option<i64>) -> Fields {
    form(&[
        ("name", name),
        ("description", "Хороший товар"),
        (
            "category",
            &category.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("price", price),
    ])
}

/// One row of the versions formset.
#[derive(Clone)]
struct Row {
    id: Option<String>,
    number: String,
    name: String,
    current: bool,
    delete: bool,
}

impl Row {
    fn new(number: &str, name: &str) -> Row {
        Row {
            id: None,
            number: number.into(),
            name: name.into(),
            current: false,
            delete: false,
        }
    }

    /// An extra row left completely blank.
    fn blank() -> Row {
        Row::new("", "")
    }

    /// An initial row showing a stored version.
    fn existing(v: &VersionRow) -> Row {
        Row {
            id: Some(v.id.to_string()),
            current: v.is_current,
            ..Row::new(&v.version_number.to_string(), &v.version_name)
        }
    }

    fn current(mut self, current: bool) -> Row {
        self.current = current;
        self
    }

    fn deleted(mut self) -> Row {
        self.delete = true;
        self
    }

    fn number(mut self, number: &str) -> Row {
        self.number = number.into();
        self
    }

    fn named(mut self, name: &str) -> Row {
        self.name = name.into();
        self
    }

    fn id(mut self, id: &str) -> Row {
        self.id = Some(id.into());
        self
    }
}

/// Django's inline formset fields (prefix `versions`): the management form,
/// the initial rows, then the extra rows.
fn formset(initial: &[Row], extra: &[Row]) -> Fields {
    let mut fields = form(&[
        (
            "versions-TOTAL_FORMS",
            &(initial.len() + extra.len()).to_string(),
        ),
        ("versions-INITIAL_FORMS", &initial.len().to_string()),
        ("versions-MIN_NUM_FORMS", "0"),
        ("versions-MAX_NUM_FORMS", "1000"),
    ]);
    for (i, row) in initial.iter().chain(extra).enumerate() {
        let key = |name: &str| format!("versions-{i}-{name}");
        fields.push((key("id"), row.id.clone().unwrap_or_default()));
        fields.push((key("version_number"), row.number.clone()));
        fields.push((key("version_name"), row.name.clone()));
        if row.current {
            fields.push((key("is_current"), "on".into()));
        }
        if row.delete {
            fields.push((key("DELETE"), "on".into()));
        }
    }
    fields
}

fn multipart_form(fields: &Fields, files: Vec<(&str, multipart::Part)>) -> multipart::Form {
    let mut form = multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    for (name, part) in files {
        form = form.part(name.to_string(), part);
    }
    form
}

// ---------------------------------------------------------------------------
// Reading pages

fn update_path(pk: i64) -> String {
    format!("/products/{pk}/update/")
}

fn delete_path(pk: i64) -> String {
    format!("/products/{pk}/delete/")
}

fn detail_path(pk: i64) -> String {
    format!("/products/{pk}/")
}

/// An element of a page: its opening tag and what is inside it.
struct Element<'a> {
    tag: &'a str,
    inner: &'a str,
}

impl Element<'_> {
    fn text(&self) -> String {
        strip_tags(self.inner)
    }

    fn attr(&self, name: &str) -> Option<String> {
        attribute(self.tag, name)
    }
}

/// Every element whose class list holds `class`, in page order. An element
/// runs to the first closing tag of its name (no nesting of the same tag).
fn elements<'a>(html: &'a str, class: &str) -> Vec<Element<'a>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = html[from..].find("class=\"") {
        let value_start = from + i + "class=\"".len();
        let Some(len) = html[value_start..].find('"') else {
            break;
        };
        from = value_start + len;
        if !html[value_start..from]
            .split_whitespace()
            .any(|c| c == class)
        {
            continue;
        }
        let Some(tag_start) = html[..value_start].rfind('<') else {
            continue;
        };
        let Some(tag_len) = html[from..].find('>') else {
            break;
        };
        let tag_end = from + tag_len + 1;
        let tag_name: String = html[tag_start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let close = format!("</{tag_name}>");
        let inner_end = html[tag_end..]
            .find(&close)
            .map_or(tag_end, |j| tag_end + j);
        found.push(Element {
            tag: &html[tag_start..tag_end],
            inner: &html[tag_end..inner_end],
        });
    }
    found
}

/// Whether some element of the page has this class.
fn has_class(r: &Resp, class: &str) -> bool {
    !elements(&r.body, class).is_empty()
}

fn assert_class(r: &Resp, class: &str, present: bool, what: &str) {
    assert_eq!(
        has_class(r, class),
        present,
        "{what}: an element of class {class:?} {}: {}",
        if present {
            "is missing"
        } else {
            "should not be there"
        },
        r.body
    );
}

fn element<'a>(r: &'a Resp, class: &str, what: &str) -> Element<'a> {
    elements(&r.body, class)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{what}: no element of class {class:?} in: {}", r.body))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&marker) {
        let at = from + i;
        from = at + marker.len();
        if at > 0 && tag[..at].ends_with(|c: char| c.is_whitespace()) {
            let end = tag[from..].find('"')?;
            return Some(tag[from..from + end].to_string());
        }
    }
    None
}

/// Text without tags, entities for spaces undone, whitespace collapsed.
fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace('\u{a0}', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The opening tag of the form input named `name`.
fn input<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')? + 1;
    Some(&html[start..end])
}

fn input_value(r: &Resp, name: &str, what: &str) -> String {
    let tag =
        input(&r.body, name).unwrap_or_else(|| panic!("{what}: no input {name:?} in: {}", r.body));
    attribute(tag, "value").unwrap_or_default()
}

/// The products of a list page, by `data-pk`, in order.
fn card_pks(r: &Resp, what: &str) -> Vec<i64> {
    elements(&r.body, "product-card")
        .iter()
        .map(|card| {
            card.attr("data-pk")
                .and_then(|pk| pk.parse().ok())
                .unwrap_or_else(|| panic!("{what}: a card without data-pk: {}", card.tag))
        })
        .collect()
}

/// Where the page's `<a rel="…">` link goes, as a path from the list page.
fn rel_link(r: &Resp, rel: &str, what: &str) -> String {
    let marker = format!("rel=\"{rel}\"");
    let at = r
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("{what}: no {marker} link: {}", r.body));
    let start = r.body[..at].rfind('<').unwrap();
    let end = at + r.body[at..].find('>').unwrap();
    let href = attribute(&r.body[start..=end], "href")
        .unwrap_or_else(|| panic!("{what}: {marker} without href"))
        .replace("&amp;", "&");
    if href.starts_with('?') {
        format!("/{href}")
    } else {
        href
    }
}

/// The card of one product on a list page (its tag and inside).
fn card(r: &Resp, pk: i64, what: &str) -> String {
    elements(&r.body, "product-card")
        .into_iter()
        .find(|card| card.attr("data-pk") == Some(pk.to_string()))
        .map(|card| format!("{}{}", card.tag, card.inner))
        .unwrap_or_else(|| panic!("{what}: no card for product {pk}: {}", r.body))
}

/// Whether a number appears whole in a text (`7,00` in `7,00 ₽`, not in `17,00`).
fn shows_number(text: &str, number: &str) -> bool {
    let digit = |c: char| c.is_ascii_digit() || c == ',' || c == '.';
    text.match_indices(number)
        .any(|(i, _)| !text[..i].ends_with(digit) && !text[i + number.len()..].starts_with(digit))
}

/// The product page shows no image.
fn assert_no_image(r: &Resp, what: &str) {
    assert!(
        !elements(&r.body, "product-image")
            .iter()
            .any(|e| e.tag.starts_with("<img")),
        "{what}: an image where there is none: {}",
        r.body
    );
}

/// A list page shows exactly these products' cards, in this order.
fn assert_cards(r: &Resp, want: &[i64], what: &str) {
    assert_eq!(card_pks(r, what), want.to_vec(), "{what}");
}

fn assert_form_errors(r: &Resp, what: &str) {
    r.assert_page(200, what);
    assert_class(r, "errors", true, what);
}

fn assert_owner_form(r: &Resp, what: &str) {
    r.assert_page(200, what);
    for field in [
        "name=\"name\"",
        "name=\"price\"",
        "name=\"description\"",
        "name=\"category\"",
        "name=\"image\"",
        "name=\"versions-TOTAL_FORMS\"",
        "name=\"versions-INITIAL_FORMS\"",
        "name=\"versions-MIN_NUM_FORMS\"",
        "name=\"versions-MAX_NUM_FORMS\"",
    ] {
        r.assert_contains(field, what);
    }
    r.assert_lacks("name=\"is_moderated\"", what);
}

fn assert_moderator_form(r: &Resp, what: &str) {
    r.assert_page(200, what)
        .assert_contains("name=\"is_moderated\"", what)
        .assert_contains("name=\"description\"", what)
        .assert_contains("name=\"category\"", what);
    for hidden in [
        "name=\"name\"",
        "name=\"price\"",
        "name=\"image\"",
        "name=\"versions-TOTAL_FORMS\"",
    ] {
        r.assert_lacks(hidden, what);
    }
}

// ---------------------------------------------------------------------------
// 1. Who may see what

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    on_each_backend(async |app, backend| {
        let owner = app.person("owner@example.com").await;
        let pk = app.product("Ноутбук", Some(owner.id), true).await;
        let anonymous = app.browser();
        for path in [
            "/".to_string(),
            detail_path(pk),
            "/products/create/".to_string(),
            update_path(pk),
            delete_path(pk),
            // An unknown product too: login comes first.
            "/products/999/".to_string(),
        ] {
            anonymous
                .get(&path)
                .await
                .assert_redirect(&format!("/users/login/?next={path}"), backend);
        }
        // The query string goes along, quoted as Django quotes it.
        anonymous
            .get("/?page=2")
            .await
            .assert_redirect("/users/login/?next=/%3Fpage%3D2", backend);

        // An anonymous POST with a valid token changes nothing.
        let before = app.state().await;
        let token = anonymous.token("/users/login/").await;
        for path in [
            "/products/create/".to_string(),
            update_path(pk),
            delete_path(pk),
        ] {
            let mut fields = new_product("Чужой", "1.00", None);
            fields.push(("csrfmiddlewaretoken".into(), token.clone()));
            anonymous
                .post(&path, &fields)
                .await
                .assert_redirect(&format!("/users/login/?next={path}"), backend);
        }
        app.assert_unchanged(&before, backend).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_lists_nine_a_page_newest_first() {
    on_each_backend(async |app, backend| {
        let viewer = app.person("viewer@example.com").await;

        // No products: page 1 (and "last") is an empty page; page 2 is not.
        for path in ["/", "/?page=1", "/?page=last"] {
            let r = viewer.get(path).await;
            r.assert_page(200, &format!("{backend} empty {path}"));
            assert_cards(&r, &[], &format!("{backend} {path}"));
        }
        viewer
            .get("/?page=2")
            .await
            .assert_page(404, &format!("{backend}: page 2 of nothing"));

        // 21 products: creation times out of insertion order, three sharing
        // the newest time (then the higher pk first), one far older made last.
        let base = DjangoDateTime::now();
        let at = |minutes: i64| DjangoDateTime(base.0 + chrono::Duration::minutes(minutes));
        let mut made: Vec<(i64, i64)> = Vec::new(); // (minutes, pk)
        let mut minutes: Vec<i64> = (0..17).map(|i| (i * 7) % 17).collect();
        minutes.extend([20, 20, 20, -100_000]);
        for (i, m) in minutes.iter().enumerate() {
            let pk = app
                .product_at(&format!("Товар {i}"), None, true, at(*m))
                .await;
            made.push((*m, pk));
        }
        made.sort_by(|a, b| b.cmp(a));
        let expected: Vec<i64> = made.iter().map(|(_, pk)| *pk).collect();
        assert_eq!(expected.len(), 21);

        let page = |n: &str| format!("/?page={n}");
        let pages = [
            ("1", &expected[0..9], false, true),
            ("2", &expected[9..18], true, true),
            ("3", &expected[18..21], true, false),
            ("last", &expected[18..21], true, false),
        ];
        for (n, want, prev, next) in pages {
            let what = format!("{backend} page {n}");
            let r = viewer.get(&page(n)).await;
            r.assert_page(200, &what);
            assert_cards(&r, want, &what);
            assert_eq!(r.body.contains("rel=\"prev\""), prev, "{what}: rel=prev");
            assert_eq!(r.body.contains("rel=\"next\""), next, "{what}: rel=next");
        }
        let r = viewer.get("/").await;
        assert_cards(&r, &expected[0..9], &format!("{backend} /"));
        // Following the links walks the pages.
        let next = rel_link(&r, "next", backend);
        let r = viewer.get(&next).await;
        assert_cards(&r, &expected[9..18], &format!("{backend} {next}"));
        let r = viewer.get(&rel_link(&r, "next", backend)).await;
        assert_cards(&r, &expected[18..21], backend);
        let prev = rel_link(&r, "prev", backend);
        let r = viewer.get(&prev).await;
        assert_cards(&r, &expected[9..18], &format!("{backend} {prev}"));

        for bad in ["4", "0", "-1", "abc", "99999999999999999999", "1.5", "%00"] {
            viewer
                .get(&page(bad))
                .await
                .assert_page(404, &format!("{backend} ?page={bad}"));
        }
        // An empty `page` is page 1 (ListView: `GET.get("page") or 1`).
        let r = viewer.get("/?page=").await;
        let what = format!("{backend} ?page=");
        r.assert_page(200, &what);
        assert_cards(&r, &expected[0..9], &what);
    })
    .await;
}

/// Product ids in the list's order (`-created_at, -pk`) for one viewer,
/// read by scanning the whole table: what the paginator must agree with.
async fn listed_by_scan(app: &App, visibility: Visibility) -> Vec<i64> {
    let filter = match visibility {
        Visibility::All => String::new(),
        Visibility::PublishedOrOwnedBy(owner) => {
            format!(" WHERE is_moderated OR owner_id = {owner}")
        }
    };
    let sql = format!("SELECT id FROM catalog_product{filter} ORDER BY created_at DESC, id DESC");
    unchained::on_pool!(&app.db, |pool| sqlx::query_scalar::<_, i64>(
        &(&app.db).sql(&sql)
    )
    .fetch_all(pool)
    .await)
    .unwrap()
}

/// Every way of reading the list agrees with a scan of the table: the
/// count, the first pages, pages read newest first past the first thousand
/// rows, pages read oldest first in the older half, the last page, and a
/// page past the end.
async fn assert_pages_match_a_scan(app: &App, viewers: &[Visibility], what: &str) {
    for &visibility in viewers {
        let expected = listed_by_scan(app, visibility).await;
        let total = expected.len() as i64;
        let what = format!("{what}, {visibility:?}");
        assert_eq!(
            catalog::count_visible(&app.db, visibility).await.unwrap(),
            total,
            "{what}: count"
        );
        let last = (total + 8) / 9;
        let mut numbers = vec![
            1,
            2,
            3,
            111,
            112,
            113,
            150,
            last / 2,
            last / 2 + 1,
            last - 1,
            last,
            last + 1,
        ];
        numbers.retain(|n| *n >= 1);
        for number in numbers {
            let offset = (number - 1) * 9;
            let (products, count) = catalog::page_visible(&app.db, visibility, 9, offset)
                .await
                .unwrap();
            let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
            let start = (offset as usize).min(expected.len());
            let end = (start + 9).min(expected.len());
            assert_eq!(ids, expected[start..end].to_vec(), "{what}: page {number}");
            if !ids.is_empty() {
                assert_eq!(count, total, "{what}: total on page {number}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_and_counts_stay_exact_whoever_writes() {
    on_each_backend(async |app, backend| {
        let owners = [
            app.person("a@example.com").await.id,
            app.person("b@example.com").await.id,
            app.person("c@example.com").await.id,
        ];
        let stranger = app.person("d@example.com").await.id;
        // 2,400 products written by plain SQL as Django would write them:
        // three share each second (the id breaks ties), owners and
        // publication mixed, some without an owner.
        let [a, b, c] = owners;
        let insert = match backend {
            "sqlite" => format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2400) \
                 INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
                 is_moderated, category_id, owner_id) \
                 SELECT 'P' || i, '', '', 1, datetime('2024-01-01', '+' || (i / 3) || ' seconds'), \
                 datetime('2024-01-01'), i % 3 = 0, NULL, \
                 CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN {a} WHEN 2 THEN {b} WHEN 3 THEN {b} ELSE {c} END FROM n"
            ),
            "mysql" => format!(
                "INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
                 is_moderated, category_id, owner_id) \
                 WITH d(x) AS (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                 UNION ALL SELECT 8 UNION ALL SELECT 9), \
                 n(i) AS (SELECT 1 + d1.x + 10 * d2.x + 100 * d3.x + 1000 * d4.x FROM d d1, d d2, d d3, d d4) \
                 SELECT CONCAT('P', i), '', '', 1, TIMESTAMPADD(SECOND, i DIV 3, '2024-01-01 00:00:00'), \
                 UTC_TIMESTAMP(6), i % 3 = 0, NULL, \
                 CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN {a} WHEN 2 THEN {b} WHEN 3 THEN {b} ELSE {c} END \
                 FROM n WHERE i <= 2400 ORDER BY i"
            ),
            _ => format!(
                "INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
                 is_moderated, category_id, owner_id) \
                 SELECT 'P' || i, '', '', 1, timestamptz '2024-01-01 00:00:00+00' + (i / 3) * interval '1 second', \
                 now(), i % 3 = 0, NULL, \
                 CASE i % 7 WHEN 0 THEN NULL WHEN 1 THEN {a} WHEN 2 THEN {b} WHEN 3 THEN {b} ELSE {c} END \
                 FROM generate_series(1, 2400) AS i"
            ),
        };
        exec(&app.db, &insert).await;
        let viewers = [
            Visibility::All,
            Visibility::PublishedOrOwnedBy(a),
            Visibility::PublishedOrOwnedBy(b),
            Visibility::PublishedOrOwnedBy(c),
            Visibility::PublishedOrOwnedBy(stranger),
        ];
        assert_pages_match_a_scan(app, &viewers, &format!("{backend} after inserts")).await;

        // Publishing, unpublishing, owners changed or removed (Django's
        // SET_NULL is an UPDATE), rows deleted, one statement each.
        for sql in [
            "UPDATE catalog_product SET is_moderated = NOT is_moderated WHERE id % 5 = 0".to_string(),
            format!("UPDATE catalog_product SET owner_id = {stranger} WHERE id % 11 = 0"),
            format!("UPDATE catalog_product SET owner_id = NULL WHERE owner_id = {a} AND id % 2 = 0"),
            "UPDATE catalog_product SET name = 'renamed' WHERE id % 13 = 0".to_string(),
            "DELETE FROM catalog_product WHERE id % 17 = 0".to_string(),
        ] {
            exec(&app.db, &sql).await;
        }
        let viewers_now = [Visibility::All, Visibility::PublishedOrOwnedBy(stranger), Visibility::PublishedOrOwnedBy(a)];
        assert_pages_match_a_scan(app, &viewers_now, &format!("{backend} after changes")).await;
        // Folding each owner's count rows into one changes no count.
        let folded = catalog::fold_product_counts(&app.db).await.unwrap();
        if backend == "postgres" {
            assert!(folded > 0, "postgres: nothing folded");
            assert_eq!(catalog::fold_product_counts(&app.db).await.unwrap(), 0, "folded twice");
        }
        assert_pages_match_a_scan(app, &viewers_now, &format!("{backend} after folding")).await;

        // The list's page itself: `?page=last` for a moderator.
        let moderator = app.superuser("m@example.com").await;
        let expected = listed_by_scan(app, Visibility::All).await;
        let r = moderator.get("/?page=last").await;
        r.assert_page(200, backend);
        let last_start = (expected.len() - 1) / 9 * 9;
        assert_cards(&r, &expected[last_start..], &format!("{backend} ?page=last"));

        // A Django migration that rebuilds catalog_product drops this
        // project's indexes and triggers; the counts then go stale until
        // `migrate` or `serve` makes them again and counts afresh.
        for sql in [
            "DROP INDEX unchained_product_newest",
            "DROP TRIGGER unchained_product_inserted ON catalog_product",
        ] {
            // SQLite names neither table; MariaDB names the index's only.
            let sql = match backend {
                "sqlite" => sql.split(" ON ").next().unwrap(),
                "mysql" if sql.starts_with("DROP TRIGGER") => sql.split(" ON ").next().unwrap(),
                "mysql" => "DROP INDEX unchained_product_newest ON catalog_product",
                _ => sql,
            };
            exec(&app.db, sql).await;
        }
        exec(&app.db, "INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, is_moderated, category_id, owner_id) SELECT name, description, image, price, created_at, updated_at, is_moderated, category_id, owner_id FROM catalog_product WHERE id < 50").await;
        assert!(schema::ensure_product_list(&app.db).await.unwrap(), "{backend}: not remade");
        assert!(!schema::ensure_product_list(&app.db).await.unwrap(), "{backend}: remade twice");
        assert_pages_match_a_scan(app, &viewers_now, &format!("{backend} after remaking")).await;

        if backend == "postgres" {
            // TRUNCATE fires no row trigger: a statement trigger empties the counts.
            exec(&app.db, "TRUNCATE catalog_product CASCADE").await;
            assert_pages_match_a_scan(app, &viewers_now, "postgres after TRUNCATE").await;
            app.product("again", Some(a), false).await;
            assert_pages_match_a_scan(app, &viewers_now, "postgres after TRUNCATE and an insert").await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_shows_published_products_and_the_viewers_own() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let bob = app.person("bob@example.com").await;
        let carol = app.person("carol@example.com").await;
        let publisher = app.person("publisher@example.com").await;
        app.grant_directly(publisher.id, &["catalog.can_publish_product"])
            .await;
        let group_publisher = app.person("group-publisher@example.com").await;
        app.grant_through_group(
            group_publisher.id,
            "Публикаторы",
            &["catalog.can_publish_product"],
        )
        .await;
        let root = app.superuser("root@example.com").await;

        let a_draft = app.product("Черновик Алисы", Some(alice.id), false).await;
        let b_draft = app.product("Черновик Боба", Some(bob.id), false).await;
        let b_public = app.product("Товар Боба", Some(bob.id), true).await;
        let orphan = app.product("Ничей черновик", None, false).await;
        let a_public = app.product("Товар Алисы", Some(alice.id), true).await;
        let all = {
            let mut all = vec![a_draft, b_draft, b_public, orphan, a_public];
            all.sort();
            all
        };
        let cases: Vec<(&str, &Person, Vec<i64>)> = vec![
            ("alice", &alice, vec![a_draft, b_public, a_public]),
            ("bob", &bob, vec![b_draft, b_public, a_public]),
            ("carol", &carol, vec![b_public, a_public]),
            ("can_publish_product", &publisher, all.clone()),
            (
                "can_publish_product by group",
                &group_publisher,
                all.clone(),
            ),
            ("superuser", &root, all.clone()),
        ];
        for (who, person, want) in cases {
            let what = format!("{backend} home as {who}");
            let r = person.get("/").await;
            r.assert_page(200, &what);
            let mut seen = card_pks(&r, &what);
            seen.sort();
            assert_eq!(seen, want, "{what}");
        }

        // Unpublished products carry the badge; published ones do not.
        let r = alice.get("/").await;
        assert!(
            card(&r, a_draft, backend).contains("badge-unpublished"),
            "{backend}: no badge on an unpublished product"
        );
        assert!(
            !card(&r, b_public, backend).contains("badge-unpublished"),
            "{backend}: a badge on a published product"
        );
        let r = publisher.get("/").await;
        for pk in [b_draft, orphan] {
            assert!(
                card(&r, pk, backend).contains("badge-unpublished"),
                "{backend}"
            );
        }
        // Each card links to its product and shows its name and price.
        let c = card(&r, b_public, backend);
        assert!(
            c.contains(&format!("href=\"/products/{b_public}/\"")),
            "{backend}: {c}"
        );
        assert!(c.contains("Товар Боба"), "{backend}: {c}");
        assert!(shows_number(&strip_tags(&c), "13119,00"), "{backend}: {c}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_shows_the_product_and_its_current_version() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let carol = app.person("carol@example.com").await;
        let moderator = app.moderator("moderator@example.com").await;
        let deleter = app.person("deleter@example.com").await;
        app.grant_directly(deleter.id, &["catalog.delete_product"])
            .await;
        let root = app.superuser("root@example.com").await;

        let pk = app.product("Ноутбук Альфа", Some(alice.id), true).await;
        app.version(pk, 1, "Первая", false).await;
        app.version(pk, 2, "Вторая", true).await;
        app.version(pk, 3, "Третья", false).await;
        let bare = app.product("Без версии", Some(alice.id), true).await;
        app.version(bare, 1, "Старая", false).await;

        let r = carol.get(&detail_path(pk)).await;
        r.assert_page(200, backend);
        assert_eq!(
            element(&r, "product-name", backend).text(),
            "Ноутбук Альфа",
            "{backend}"
        );
        let price = element(&r, "product-price", backend).text();
        assert!(
            shows_number(&price, "13119,00"),
            "{backend}: price {price:?}"
        );
        let current = element(&r, "current-version", backend).text();
        assert!(
            current.contains("Вторая") && shows_number(&current, "2"),
            "{backend}: current version {current:?}"
        );
        assert!(
            !current.contains("Первая") && !current.contains("Третья"),
            "{backend}: {current:?}"
        );
        assert_class(&r, "no-version", false, backend);
        assert_no_image(&r, backend);

        let r = carol.get(&detail_path(bare)).await;
        r.assert_page(200, backend);
        assert_class(&r, "no-version", true, backend);
        assert_class(&r, "current-version", false, backend);

        // The links are shown to those who may follow them.
        let edit = format!("href=\"{}\"", update_path(pk));
        let delete = format!("href=\"{}\"", delete_path(pk));
        for (who, person, may_edit, may_delete) in [
            ("owner", &alice, true, true),
            ("plain user", &carol, false, false),
            ("moderator", &moderator, true, false),
            ("delete_product", &deleter, false, true),
            ("superuser", &root, true, true),
        ] {
            let what = format!("{backend} detail as {who}");
            let r = person.get(&detail_path(pk)).await;
            r.assert_page(200, &what);
            assert_eq!(
                r.body.contains("id=\"edit-link\""),
                may_edit,
                "{what}: edit-link"
            );
            assert_eq!(r.body.contains(&edit), may_edit, "{what}: {edit}");
            assert_eq!(
                r.body.contains("id=\"delete-link\""),
                may_delete,
                "{what}: delete-link"
            );
            assert_eq!(r.body.contains(&delete), may_delete, "{what}: {delete}");
        }

        for path in [
            "/products/999/",
            "/products/0/",
            "/products/99999999999999999999/",
            "/products/9223372036854775807/",
            "/products/9223372036854775808/",
            "/products/-1/",
            "/products/abc/",
            "/products/1.0/",
        ] {
            carol
                .get(path)
                .await
                .assert_page(404, &format!("{backend} GET {path}"));
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2. Creating

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stores_the_product_for_its_owner_unpublished() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let bob = app.person("bob@example.com").await;
        let phones = app.category("Телефоны").await;
        app.category("Планшеты").await;

        let r = alice.get("/products/create/").await;
        r.assert_page(200, backend);
        for field in ["name", "description", "image", "category", "price"] {
            r.assert_contains(&format!("name=\"{field}\""), backend)
                .assert_contains(&format!("id=\"id_{field}\""), backend);
        }
        r.assert_lacks("name=\"is_moderated\"", backend)
            .assert_contains("Телефоны", backend)
            .assert_contains("Планшеты", backend);

        // URL-encoded, trying to publish it and to give it to someone else.
        let posted = with(
            new_product("Смартфон", "13119.00", Some(phones)),
            &[("is_moderated", "on"), ("owner", &bob.id.to_string())],
        );
        let r = alice.post("/products/create/", &posted).await;
        r.assert_redirect("/", backend);
        assert_eq!(app.products().await.len(), 1, "{backend}");
        let p = app.last_product().await;
        assert_eq!(p.name, "Смартфон", "{backend}");
        assert_eq!(p.description.as_deref(), Some("Хороший товар"), "{backend}");
        assert_eq!(p.category_id, Some(phones), "{backend}");
        assert_eq!(two_places(&p.price), "13119.00", "{backend}");
        assert_eq!(p.owner_id, Some(alice.id), "{backend}: owner");
        assert!(!p.is_moderated, "{backend}: published by its owner");
        assert_eq!(p.image, None, "{backend}: an image from nowhere");
        assert_recent(&p.created_at, &format!("{backend} created_at"));
        assert_recent(&p.updated_at, &format!("{backend} updated_at"));
        let gap = (p.updated_at.0 - p.created_at.0).num_milliseconds().abs();
        assert!(
            gap < 1000,
            "{backend}: created {:?}, updated {:?}",
            p.created_at,
            p.updated_at
        );
        if backend == "sqlite" {
            let stored = app
                .strings(&format!(
                    "SELECT CAST(created_at AS TEXT) FROM catalog_product WHERE id = {}",
                    p.id
                ))
                .await;
            assert!(
                is_django_sqlite_datetime(&stored[0]),
                "sqlite: created_at stored as {:?}, not as Django writes it",
                stored[0]
            );
        }

        // The owner sees it, marked unpublished; nobody else does.
        let r = alice.get("/").await;
        assert_cards(&r, &[p.id], backend);
        assert!(card(&r, p.id, backend).contains("badge-unpublished"));
        assert_cards(&bob.get("/").await, &[], backend);

        // Multipart, no category, no file chosen.
        let r = alice
            .post_multipart(
                "/products/create/",
                &new_product("Планшет", "7", None),
                vec![("image", no_file())],
            )
            .await;
        r.assert_redirect("/", backend);
        let q = app.last_product().await;
        assert_ne!(q.id, p.id, "{backend}");
        assert_eq!(
            (q.name.as_str(), q.category_id),
            ("Планшет", None),
            "{backend}"
        );
        assert_eq!(two_places(&q.price), "7.00", "{backend}");
        assert_eq!(q.owner_id, Some(alice.id), "{backend}");
        assert!(
            q.image.as_deref().unwrap_or("").is_empty(),
            "{backend}: {q:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_values_and_stores_nothing() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let phones = app.category("Телефоны").await;
        let good = new_product("Смартфон", "100.00", Some(phones));
        let long_name = "Я".repeat(101);
        let cases: Vec<(&str, Fields)> = vec![
            ("negative price", with(good.clone(), &[("price", "-1")])),
            ("price abc", with(good.clone(), &[("price", "abc")])),
            (
                "three decimal places",
                with(good.clone(), &[("price", "1.234")]),
            ),
            (
                "nine whole digits",
                with(good.clone(), &[("price", "123456789.00")]),
            ),
            ("empty price", with(good.clone(), &[("price", "")])),
            ("no price", without(&good, "price")),
            ("NaN price", with(good.clone(), &[("price", "NaN")])),
            ("empty name", with(good.clone(), &[("name", "")])),
            ("blank name", with(good.clone(), &[("name", "   ")])),
            (
                "101-character name",
                with(good.clone(), &[("name", &long_name)]),
            ),
            ("NUL in name", with(good.clone(), &[("name", "Смарт\0фон")])),
            (
                "NUL in description",
                with(good.clone(), &[("description", "Хоро\0ший")]),
            ),
            (
                "unknown category",
                with(good.clone(), &[("category", "999999")]),
            ),
            ("category abc", with(good.clone(), &[("category", "abc")])),
        ];
        let before = app.state().await;
        for (case, fields) in &cases {
            let what = format!("{backend} create: {case}");
            let r = alice.post("/products/create/", fields).await;
            assert_form_errors(&r, &what);
            app.assert_unchanged(&before, &what).await;
            let r = alice
                .post_multipart("/products/create/", fields, vec![])
                .await;
            assert_form_errors(&r, &format!("{what} (multipart)"));
            app.assert_unchanged(&before, &format!("{what} (multipart)"))
                .await;
        }
        // A file that is not an image, named as one.
        let r = alice
            .post_multipart(
                "/products/create/",
                &good,
                vec![("image", file("x.png", b"just some text, not a picture"))],
            )
            .await;
        let what = format!("{backend} create: text as image");
        assert_form_errors(&r, &what);
        app.assert_unchanged(&before, &what).await;
        let r = alice
            .post_multipart(
                "/products/create/",
                &good,
                vec![("image", file("x.png", &PNG_1X1[..20]))],
            )
            .await;
        let what = format!("{backend} create: truncated PNG");
        assert_form_errors(&r, &what);
        app.assert_unchanged(&before, &what).await;

        // 100 characters (counted as characters, not bytes) are fine.
        let name = "Я".repeat(100);
        let r = alice
            .post("/products/create/", &with(good.clone(), &[("name", &name)]))
            .await;
        r.assert_redirect("/", &format!("{backend}: 100-character name"));
        assert_eq!(app.last_product().await.name, name, "{backend}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_exact_on_every_database() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        for (posted, stored, shown) in [
            ("0.10", "0.10", "0,10"),
            ("99999999.99", "99999999.99", "99999999,99"),
            ("12.5", "12.50", "12,50"),
            ("7", "7.00", "7,00"),
            ("0.01", "0.01", "0,01"),
        ] {
            let what = format!("{backend} price {posted}");
            let r = alice
                .post(
                    "/products/create/",
                    &new_product(&format!("Цена {posted}"), posted, None),
                )
                .await;
            r.assert_redirect("/", &what);
            let p = app.last_product().await;
            assert_eq!(two_places(&p.price), stored, "{what}: stored {:?}", p.price);
            if backend != "sqlite" {
                assert_eq!(p.price, stored, "{what}: the decimal column as text");
            }
            let r = alice.get(&detail_path(p.id)).await;
            r.assert_page(200, &what);
            let text = element(&r, "product-price", &what).text();
            assert!(
                shows_number(&text, shown),
                "{what}: detail shows {text:?}, not {shown}"
            );
            let home = alice.get("/").await;
            let c = strip_tags(&card(&home, p.id, &what));
            assert!(
                shows_number(&c, shown),
                "{what}: the card shows {c:?}, not {shown}"
            );
            // The owner form shows it as the input takes it.
            let r = alice.get(&update_path(p.id)).await;
            assert_eq!(
                input_value(&r, "price", &what),
                stored,
                "{what}: form value"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Updating

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_form_depends_on_permissions_not_group_names() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let root = app.superuser("root@example.com").await;
        let group_moderator = app.moderator("group-moderator@example.com").await;
        let direct_moderator = app.person("direct-moderator@example.com").await;
        app.grant_directly(direct_moderator.id, &MODERATOR_PERMISSIONS)
            .await;
        let half = app.person("half@example.com").await;
        app.grant_through_group(
            half.id,
            "moderators",
            &[
                "catalog.can_publish_product",
                "catalog.can_change_description",
            ],
        )
        .await;
        let carol = app.person("carol@example.com").await;
        let changer = app.person("changer@example.com").await;
        app.grant_directly(changer.id, &["catalog.change_product"])
            .await;
        let cameras = app.category("Фотоаппараты").await;

        let an_hour_ago = DjangoDateTime(DjangoDateTime::now().0 - chrono::Duration::hours(1));
        let pk = app
            .product_at("Фотоаппарат", Some(alice.id), false, an_hour_ago)
            .await;
        let version = app.version(pk, 1, "Первая", true).await;
        let path = update_path(pk);

        for (who, person) in [("owner", &alice), ("superuser", &root)] {
            let what = format!("{backend} update page as {who}");
            let r = person.get(&path).await;
            assert_owner_form(&r, &what);
            assert_eq!(
                input_value(&r, "versions-INITIAL_FORMS", &what),
                "1",
                "{what}"
            );
            assert_eq!(
                input_value(&r, "versions-0-id", &what),
                version.to_string(),
                "{what}"
            );
            r.assert_contains("id=\"id_versions-0-version_name\"", &what)
                .assert_contains("name=\"versions-0-is_current\"", &what)
                .assert_contains("name=\"versions-0-DELETE\"", &what);
            assert_eq!(input_value(&r, "name", &what), "Фотоаппарат", "{what}");
        }
        for (who, person) in [
            ("moderator by group", &group_moderator),
            ("moderator by own permissions", &direct_moderator),
        ] {
            let r = person.get(&path).await;
            assert_moderator_form(&r, &format!("{backend} update page as {who}"));
        }

        // Everyone else: 403 on GET and on POST, nothing changed.
        let before = app.state().await;
        let mut everything = app.owner_form(pk).await;
        everything.extend(form(&[
            ("name", "Взлом"),
            ("is_moderated", "on"),
            ("description", "Взлом"),
            ("category", &cameras.to_string()),
        ]));
        for (who, person) in [
            (
                "two of three permissions in a group named moderators",
                &half,
            ),
            ("plain user", &carol),
            ("change_product only", &changer),
        ] {
            let what = format!("{backend} update as {who}");
            person.get(&path).await.assert_page(403, &what);
            person
                .post(&path, &everything)
                .await
                .assert_page(403, &what);
            person
                .post_multipart(&path, &everything, vec![])
                .await
                .assert_page(403, &what);
            app.assert_unchanged(&before, &what).await;
        }

        // The owner saves the owner form.
        let fields = with(
            app.owner_form(pk).await,
            &[
                ("name", "Фотоаппарат Про"),
                ("price", "15000.50"),
                ("category", &cameras.to_string()),
            ],
        );
        let r = alice
            .post_multipart(&path, &fields, vec![("image", no_file())])
            .await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} owner saves"));
        let p = app.get_product(pk).await;
        let old = &before.products[0];
        assert_eq!(p.name, "Фотоаппарат Про", "{backend}");
        assert_eq!(two_places(&p.price), "15000.50", "{backend}");
        assert_eq!(p.category_id, Some(cameras), "{backend}");
        assert_eq!(p.owner_id, Some(alice.id), "{backend}");
        assert!(!p.is_moderated, "{backend}");
        assert_eq!(p.created_at, old.created_at, "{backend}: created_at moved");
        assert_recent(&p.updated_at, &format!("{backend}: updated_at"));
        assert_eq!(
            app.versions_of(pk).await,
            before.versions,
            "{backend}: versions"
        );

        // The superuser too; the product stays the owner's.
        let fields = with(
            app.owner_form(pk).await,
            &[("name", "Правка администратора")],
        );
        root.post(&path, &fields)
            .await
            .assert_redirect(&detail_path(pk), &format!("{backend} superuser saves"));
        let p = app.get_product(pk).await;
        assert_eq!(p.name, "Правка администратора", "{backend}");
        assert_eq!(
            p.owner_id,
            Some(alice.id),
            "{backend}: the superuser took it"
        );

        // A moderator publishes, with a new description and category.
        let phones = app.category("Телефоны").await;
        let r = group_moderator
            .post(
                &path,
                &form(&[
                    ("is_moderated", "on"),
                    ("description", "Проверено модератором"),
                    ("category", &phones.to_string()),
                ]),
            )
            .await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} moderator saves"));
        let published = app.get_product(pk).await;
        assert!(published.is_moderated, "{backend}: not published");
        assert_eq!(
            published.description.as_deref(),
            Some("Проверено модератором"),
            "{backend}"
        );
        assert_eq!(published.category_id, Some(phones), "{backend}");
        assert_eq!(
            (
                published.name.as_str(),
                published.price.as_str(),
                published.owner_id
            ),
            (p.name.as_str(), p.price.as_str(), p.owner_id),
            "{backend}: the moderator changed a hidden field"
        );
        // The other moderator withdraws it (the box left unticked) and
        // clears the category.
        let r = direct_moderator
            .post(&path, &form(&[("description", "Снято"), ("category", "")]))
            .await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} moderator withdraws"));
        let p = app.get_product(pk).await;
        assert!(!p.is_moderated, "{backend}: still published");
        assert_eq!(p.description.as_deref(), Some("Снято"), "{backend}");
        assert_eq!(p.category_id, None, "{backend}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_fields_cannot_be_changed_by_posting_them() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let carol = app.person("carol@example.com").await;
        let moderator = app.moderator("moderator@example.com").await;
        let books = app.category("Книги").await;
        let pk = app.product("Книга", Some(alice.id), false).await;
        let version = app.version(pk, 1, "Первое издание", true).await;
        let path = update_path(pk);
        let before = app.get_product(pk).await;
        let versions = app.versions_of(pk).await;

        // The moderator: only is_moderated, description and category move.
        let mut fields = form(&[
            ("is_moderated", "on"),
            ("description", "Одобрено"),
            ("category", &books.to_string()),
            ("price", "1"),
            ("name", "Hacked"),
            ("owner", &carol.id.to_string()),
            ("created_at", "2000-01-01 00:00:00"),
        ]);
        fields.extend(formset(
            &[Row::existing(&versions[0]).deleted()],
            &[Row::new("9", "Подложная").current(true)],
        ));
        let r = moderator
            .post_multipart(&path, &fields, vec![("image", png("hack.png"))])
            .await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} moderator"));
        let p = app.get_product(pk).await;
        assert!(p.is_moderated, "{backend}");
        assert_eq!(p.description.as_deref(), Some("Одобрено"), "{backend}");
        assert_eq!(p.category_id, Some(books), "{backend}");
        assert_eq!(
            (&p.name, &p.price, p.owner_id, &p.image, &p.created_at),
            (
                &before.name,
                &before.price,
                before.owner_id,
                &before.image,
                &before.created_at
            ),
            "{backend}: the moderator changed a field of the owner form"
        );
        assert_eq!(
            app.versions_of(pk).await,
            versions,
            "{backend}: versions changed"
        );
        assert_eq!(
            app.media_files(),
            Vec::<PathBuf>::new(),
            "{backend}: a file was stored"
        );
        assert_eq!(versions[0].id, version);

        // The owner: cannot publish, give away or backdate. (The moderator
        // withdraws it first, so publishing would show.)
        moderator
            .post(
                &path,
                &form(&[("description", "Одобрено"), ("category", "")]),
            )
            .await
            .assert_redirect(&detail_path(pk), backend);
        assert!(!app.get_product(pk).await.is_moderated, "{backend}");
        let fields = with(
            app.owner_form(pk).await,
            &[
                ("is_moderated", "on"),
                ("name", "Книга 2"),
                ("owner", &carol.id.to_string()),
                ("created_at", "2000-01-01 00:00:00"),
            ],
        );
        let r = alice.post(&path, &fields).await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} owner"));
        let p = app.get_product(pk).await;
        assert_eq!(p.name, "Книга 2", "{backend}");
        assert!(!p.is_moderated, "{backend}: the owner published it");
        assert_eq!(
            p.owner_id,
            Some(alice.id),
            "{backend}: the owner gave it away"
        );
        assert_eq!(p.created_at, before.created_at, "{backend}: backdated");
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. The versions formset

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_formset_adds_edits_and_deletes() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let pk = app.product("Ноутбук", Some(alice.id), false).await;
        let path = update_path(pk);

        let r = alice.get(&path).await;
        assert_owner_form(&r, backend);
        assert_eq!(input_value(&r, "versions-INITIAL_FORMS", backend), "0");

        // Two new versions in one submit; the blank extra row is ignored.
        let mut fields = app.owner_form(pk).await;
        fields = without(&fields, "versions-");
        fields.extend(formset(
            &[],
            &[
                Row::new("1", "Первая"),
                Row::new("2", "Вторая").current(true),
                Row::blank(),
            ],
        ));
        let r = alice.post(&path, &fields).await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} add two"));
        let versions = app.versions_of(pk).await;
        let summary = |v: &[VersionRow]| -> Vec<(i64, String, bool)> {
            v.iter()
                .map(|v| (v.version_number, v.version_name.clone(), v.is_current))
                .collect()
        };
        assert_eq!(
            summary(&versions),
            vec![(1, "Первая".into(), false), (2, "Вторая".into(), true)],
            "{backend}"
        );
        let current = element(
            &alice.get(&detail_path(pk)).await,
            "current-version",
            backend,
        )
        .text();
        assert!(current.contains("Вторая"), "{backend}: {current:?}");

        // The page shows them as initial rows, ordered by id, with their ids.
        let r = alice.get(&path).await;
        assert_eq!(input_value(&r, "versions-INITIAL_FORMS", backend), "2");
        assert_eq!(
            input_value(&r, "versions-0-id", backend),
            versions[0].id.to_string()
        );
        assert_eq!(
            input_value(&r, "versions-1-id", backend),
            versions[1].id.to_string()
        );
        assert_eq!(
            input_value(&r, "versions-0-version_name", backend),
            "Первая"
        );
        assert_eq!(input_value(&r, "versions-1-version_number", backend), "2");
        let current_box = input(&r.body, "versions-1-is_current").expect("is_current box");
        assert!(current_box.contains("checked"), "{backend}: {current_box}");
        let other_box = input(&r.body, "versions-0-is_current").expect("is_current box");
        assert!(!other_box.contains("checked"), "{backend}: {other_box}");

        // Edit the first (and make it current), delete the second, at once.
        let mut fields = without(&app.owner_form(pk).await, "versions-");
        fields.extend(formset(
            &[
                Row::existing(&versions[0])
                    .number("3")
                    .named("Первая, исправленная")
                    .current(true),
                Row::existing(&versions[1]).deleted(),
            ],
            &[Row::blank()],
        ));
        let r = alice.post(&path, &fields).await;
        r.assert_redirect(&detail_path(pk), &format!("{backend} edit and delete"));
        let now = app.versions_of(pk).await;
        assert_eq!(now.len(), 1, "{backend}: {now:?}");
        assert_eq!(now[0].id, versions[0].id, "{backend}: edited in place");
        assert_eq!(
            summary(&now),
            vec![(3, "Первая, исправленная".into(), true)],
            "{backend}"
        );

        // Version number 0 is a positive integer to Django.
        let fields = with(
            app.owner_form(pk).await,
            &[("versions-0-version_number", "0")],
        );
        alice
            .post(&path, &fields)
            .await
            .assert_redirect(&detail_path(pk), &format!("{backend} number 0"));
        assert_eq!(app.versions_of(pk).await[0].version_number, 0, "{backend}");

        // No current version at all is fine; the page says so.
        let fields = app
            .owner_form(pk)
            .await
            .into_iter()
            .filter(|(k, _)| k != "versions-0-is_current")
            .collect::<Fields>();
        alice
            .post(&path, &fields)
            .await
            .assert_redirect(&detail_path(pk), &format!("{backend} none current"));
        assert!(!app.versions_of(pk).await[0].is_current, "{backend}");
        let r = alice.get(&detail_path(pk)).await;
        assert_class(&r, "no-version", true, backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_at_once_leave_at_most_one_current_version() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        for round in 0..8 {
            let pk = app
                .product(&format!("Гонка {round}"), Some(alice.id), false)
                .await;
            // Three tabs opened on a product without versions, each adding
            // one marked current, saved at the same moment.
            let tab = |n: usize| {
                let mut fields = form(&[
                    ("name", "Гонка"),
                    ("description", ""),
                    ("category", ""),
                    ("price", "1.00"),
                ]);
                let row = Row::new(&n.to_string(), &format!("вкладка {n}")).current(true);
                fields.extend(formset(&[], &[row]));
                fields
            };
            let (one, two, three) = (tab(1), tab(2), tab(3));
            let path = update_path(pk);
            let answers = tokio::join!(
                alice.post_multipart(&path, &one, vec![]),
                alice.post_multipart(&path, &two, vec![]),
                alice.post_multipart(&path, &three, vec![]),
            );
            let answers = [answers.0, answers.1, answers.2];
            let what = format!("{backend} round {round}");
            let saved = answers.iter().filter(|r| r.status == 302).count();
            for r in &answers {
                assert!(
                    r.status == 302 || (r.status == 200 && r.body.contains("errors")),
                    "{what}: {} {}",
                    r.status,
                    r.body
                );
            }
            let current = app
                .versions_of(pk)
                .await
                .iter()
                .filter(|v| v.is_current)
                .count();
            assert_eq!(
                current, 1,
                "{what}: {current} current versions ({saved} saves)"
            );
            assert_eq!(saved, 1, "{what}: {saved} saves went through");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_formset_refuses_bad_rows_and_changes_nothing() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let bob = app.person("bob@example.com").await;
        let pk = app.product("Ноутбук", Some(alice.id), false).await;
        app.version(pk, 1, "Первая", true).await;
        app.version(pk, 2, "Вторая", false).await;
        let other = app.product("Чужой ноутбук", Some(bob.id), false).await;
        let foreign = app.version(other, 7, "Чужая", true).await;
        let path = update_path(pk);
        let versions = app.versions_of(pk).await;
        // Every case also changes the product: nothing of it may be saved.
        let product = with(
            without(&app.owner_form(pk).await, "versions-"),
            &[("name", "Не должно сохраниться"), ("price", "1.00")],
        );
        let rows = |first: Row, second: Row, extra: Row| -> Fields {
            let mut fields = product.clone();
            fields.extend(formset(&[first, second], &[extra]));
            fields
        };
        let management = |change: &dyn Fn(Fields) -> Fields| -> Fields {
            let v = versions.iter().map(Row::existing).collect::<Vec<_>>();
            let mut fields = product.clone();
            fields.extend(change(formset(&v, &[Row::blank()])));
            fields
        };
        let v0 = Row::existing(&versions[0]);
        let v1 = Row::existing(&versions[1]);
        let long_name = "В".repeat(151);
        let foreign_id = foreign.to_string();
        let cases: Vec<(&str, Fields)> = vec![
            // The management form missing or garbled.
            ("no management form", product.clone()),
            (
                "no TOTAL_FORMS",
                management(&|f| without(&f, "versions-TOTAL_FORMS")),
            ),
            (
                "no INITIAL_FORMS",
                management(&|f| without(&f, "versions-INITIAL_FORMS")),
            ),
            (
                "TOTAL_FORMS abc",
                management(&|f| with(f, &[("versions-TOTAL_FORMS", "abc")])),
            ),
            (
                "INITIAL_FORMS abc",
                management(&|f| with(f, &[("versions-INITIAL_FORMS", "abc")])),
            ),
            (
                "a million forms",
                management(&|f| with(f, &[("versions-TOTAL_FORMS", "1000000")])),
            ),
            // Bad rows.
            (
                "two current",
                rows(v0.clone(), v1.clone().current(true), Row::blank()),
            ),
            (
                "a new current beside the current one",
                rows(
                    v0.clone(),
                    v1.clone(),
                    Row::new("3", "Третья").current(true),
                ),
            ),
            (
                "number -1",
                rows(v0.clone(), v1.clone().number("-1"), Row::blank()),
            ),
            (
                "number abc",
                rows(v0.clone().number("abc"), v1.clone(), Row::blank()),
            ),
            (
                "number empty",
                rows(v0.clone().number(""), v1.clone(), Row::blank()),
            ),
            (
                "blank name",
                rows(v0.clone().named(""), v1.clone(), Row::blank()),
            ),
            (
                "151-character name",
                rows(v0.clone(), v1.clone().named(&long_name), Row::blank()),
            ),
            (
                "NUL in a name",
                rows(v0.clone().named("Пер\0вая"), v1.clone(), Row::blank()),
            ),
            (
                "new row without a name",
                rows(v0.clone(), v1.clone(), Row::new("3", "")),
            ),
            (
                "new row without a number",
                rows(v0.clone(), v1.clone(), Row::new("", "Третья")),
            ),
            (
                "an id no version has",
                rows(v0.clone().id("999999"), v1.clone(), Row::blank()),
            ),
            (
                "a garbled id",
                rows(v0.clone().id("abc"), v1.clone(), Row::blank()),
            ),
            // Another product's version, by its id.
            (
                "another product's version edited",
                rows(
                    v0.clone(),
                    v1.clone().id(&foreign_id).named("Угнанная"),
                    Row::blank(),
                ),
            ),
            (
                "another product's version deleted",
                rows(
                    v0.clone(),
                    v1.clone().id(&foreign_id).deleted(),
                    Row::blank(),
                ),
            ),
        ];
        let before = app.state().await;
        for (case, fields) in cases {
            let what = format!("{backend} versions: {case}");
            let r = alice.post(&path, &fields).await;
            app.assert_unchanged(&before, &what).await;
            assert_form_errors(&r, &what);
        }
        assert_eq!(
            app.versions_of(other).await,
            vec![VersionRow {
                id: foreign,
                product_id: other,
                version_number: 7,
                version_name: "Чужая".into(),
                is_current: true
            }],
            "{backend}: the other product's version"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Deleting

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_for_the_owner_and_the_delete_permission() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let bob = app.person("bob@example.com").await;
        let carol = app.person("carol@example.com").await;
        let moderator = app.moderator("moderator@example.com").await;
        let deleter = app.person("deleter@example.com").await;
        app.grant_through_group(deleter.id, "Уборщики", &["catalog.delete_product"])
            .await;
        let root = app.superuser("root@example.com").await;
        let mine = app.product("Товар Алисы", Some(alice.id), true).await;
        app.version(mine, 1, "Первая", false).await;
        app.version(mine, 2, "Вторая", true).await;
        let second = app
            .product("Второй товар Алисы", Some(alice.id), true)
            .await;
        let bobs = app.product("Товар Боба", Some(bob.id), false).await;
        app.version(bobs, 1, "Версия Боба", true).await;

        // Not the owner and no permission: 403, nothing deleted.
        let before = app.state().await;
        for (who, person) in [
            ("plain user", &carol),
            ("moderator", &moderator),
            ("other owner", &bob),
        ] {
            let what = format!("{backend} delete as {who}");
            person.get(&delete_path(mine)).await.assert_page(403, &what);
            person
                .post(&delete_path(mine), &Fields::new())
                .await
                .assert_page(403, &what);
            app.assert_unchanged(&before, &what).await;
        }

        // The owner: asked, then deleted with its versions.
        let r = alice.get(&delete_path(mine)).await;
        r.assert_page(200, backend)
            .assert_contains("id=\"delete-form\"", backend)
            .assert_contains("method=\"post\"", backend);
        assert_eq!(
            app.get_product(mine).await.id,
            mine,
            "{backend}: deleted by a GET"
        );
        alice
            .post(&delete_path(mine), &Fields::new())
            .await
            .assert_redirect("/", &format!("{backend} owner deletes"));
        assert!(
            app.product_row(mine).await.is_none(),
            "{backend}: still there"
        );
        assert!(
            app.versions_of(mine).await.is_empty(),
            "{backend}: versions left behind"
        );
        alice
            .get(&detail_path(mine))
            .await
            .assert_page(404, backend);
        alice
            .get(&delete_path(mine))
            .await
            .assert_page(404, backend);

        // catalog.delete_product through a group, on someone else's product.
        deleter
            .get(&delete_path(second))
            .await
            .assert_page(200, backend)
            .assert_contains("id=\"delete-form\"", backend);
        deleter
            .post(&delete_path(second), &Fields::new())
            .await
            .assert_redirect("/", &format!("{backend} delete_product deletes"));
        assert!(app.product_row(second).await.is_none(), "{backend}");

        // A superuser.
        root.get(&delete_path(bobs)).await.assert_page(200, backend);
        root.post(&delete_path(bobs), &Fields::new())
            .await
            .assert_redirect("/", &format!("{backend} superuser deletes"));
        assert!(app.product_row(bobs).await.is_none(), "{backend}");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM catalog_version").await,
            0,
            "{backend}"
        );
        // The users are all still there.
        assert_eq!(
            app.count("SELECT COUNT(*) FROM users_user").await,
            6,
            "{backend}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// 6. Images

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_stored_served_and_kept() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;

        let r = alice
            .post_multipart(
                "/products/create/",
                &new_product("Фото", "10.00", None),
                vec![("image", png("photo.png"))],
            )
            .await;
        r.assert_redirect("/", &format!("{backend} create with an image"));
        let p = app.last_product().await;
        assert_eq!(p.image.as_deref(), Some("products/photo.png"), "{backend}");
        let stored = app.media_root().join("products/photo.png");
        assert_eq!(std::fs::read(&stored).unwrap(), PNG_1X1, "{backend}");
        alice
            .browser
            .assert_serves("/media/products/photo.png", PNG_1X1, backend)
            .await;
        let r = alice.get(&detail_path(p.id)).await;
        let img = element(&r, "product-image", backend);
        assert_eq!(
            img.attr("src").as_deref(),
            Some("/media/products/photo.png"),
            "{backend}: {}",
            img.tag
        );

        // The same name again gets Django's random suffix.
        alice
            .post_multipart(
                "/products/create/",
                &new_product("Фото 2", "10.00", None),
                vec![("image", png("photo.png"))],
            )
            .await
            .assert_redirect("/", backend);
        let second = app.last_product().await.image.unwrap();
        assert_django_alternative_name(&second, "products/photo", ".png", backend);
        assert!(stored.exists(), "{backend}: the first file is gone");

        // On update, no file chosen keeps the image.
        let path = update_path(p.id);
        let fields = with(app.owner_form(p.id).await, &[("name", "Фото, новое имя")]);
        alice
            .post_multipart(&path, &fields, vec![("image", no_file())])
            .await
            .assert_redirect(
                &detail_path(p.id),
                &format!("{backend} update without a file"),
            );
        let q = app.get_product(p.id).await;
        assert_eq!(q.name, "Фото, новое имя", "{backend}");
        assert_eq!(
            q.image.as_deref(),
            Some("products/photo.png"),
            "{backend}: image lost"
        );

        // Not an image: refused, nothing changed.
        let before = app.state().await;
        let r = alice
            .post_multipart(
                &path,
                &with(fields.clone(), &[("name", "Не сохранится")]),
                vec![("image", file("x.png", b"plain text pretending to be a PNG"))],
            )
            .await;
        assert_form_errors(&r, &format!("{backend} update with text as image"));
        app.assert_unchanged(&before, backend).await;

        // A new image replaces it.
        alice
            .post_multipart(&path, &fields, vec![("image", png("second.png"))])
            .await
            .assert_redirect(&detail_path(p.id), &format!("{backend} new image"));
        assert_eq!(
            app.get_product(p.id).await.image.as_deref(),
            Some("products/second.png"),
            "{backend}"
        );
        for path in app.media_files() {
            assert!(
                path.starts_with(app.media_root().join("products")),
                "{backend}: {path:?}"
            );
        }

        // An empty file with a name, or a file and the clear box at once:
        // refused (Django's FileField), nothing changed.
        let before = app.state().await;
        for (case, extra, part) in [
            ("an empty file", vec![], file("empty.png", b"")),
            (
                "a file and the clear box",
                vec![("image-clear", "on")],
                png("third.png"),
            ),
        ] {
            let what = format!("{backend} update with {case}");
            let r = alice
                .post_multipart(&path, &with(fields.clone(), &extra), vec![("image", part)])
                .await;
            assert_form_errors(&r, &what);
            app.assert_unchanged(&before, &what).await;
        }
        // The clear box alone empties the column as Django does ('').
        alice
            .post_multipart(
                &path,
                &with(fields.clone(), &[("image-clear", "on")]),
                vec![("image", no_file())],
            )
            .await
            .assert_redirect(&detail_path(p.id), &format!("{backend} clear"));
        assert_eq!(
            app.get_product(p.id).await.image.as_deref(),
            Some(""),
            "{backend}: cleared"
        );
        let r = alice.get(&detail_path(p.id)).await;
        r.assert_page(200, backend);
        assert_no_image(&r, &format!("{backend} after clearing"));
    })
    .await;
}

/// A 2×2 picture in one of the formats the site accepts.
fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let picture = image::RgbaImage::from_pixel(2, 2, image::Rgba([200, 30, 30, 255]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(picture)
        .write_to(&mut bytes, format)
        .unwrap();
    bytes.into_inner()
}

/// A PNG whose header claims `width`×`height` pixels (checksum right), with
/// one empty data chunk: the header parses, the picture is not there.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut bytes = PNG_1X1[..8].to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc.sum().to_be_bytes());
    bytes.extend_from_slice(&PNG_1X1[33..]);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_served_only_as_inert_images() {
    const SCRIPT: &[u8] = b"<html><script>alert(document.cookie)</script></html>";
    let with_script = |picture: &[u8]| [picture, SCRIPT].concat();
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let gif = encoded(image::ImageFormat::Gif);

        // Pictures with a page after them, under names a browser would run.
        let mut refused: Vec<(String, Vec<u8>, &str)> = Vec::new();
        for name in ["x.html", "x.htm", "x.svg", "x.js", "x.HTML", "x.png.html", "x", "x."] {
            refused.push((name.to_string(), with_script(PNG_1X1), "extension"));
            refused.push((name.to_string(), with_script(&gif), "extension"));
        }
        // Content and name of different formats; a header claiming more
        // pixels than Pillow opens; a good header with garbage after it.
        refused.push(("x.gif".into(), PNG_1X1.to_vec(), "invalid"));
        refused.push(("x.jpg".into(), gif.clone(), "invalid"));
        refused.push(("huge.png".into(), png_claiming(60_000, 60_000), "invalid"));
        refused.push(("broken.png".into(), [&PNG_1X1[..33], &[0x5A; 4000][..]].concat(), "invalid"));
        let truncated = encoded(image::ImageFormat::Jpeg);
        refused.push(("cut.jpg".into(), truncated[..truncated.len() / 2].to_vec(), "invalid"));
        let before = app.state().await;
        for (name, bytes, why) in &refused {
            let what = format!("{backend}: {name} ({} bytes)", bytes.len());
            let r = alice
                .post_multipart(
                    "/products/create/",
                    &new_product("Ловушка", "1.00", None),
                    vec![("image", file(name, bytes))],
                )
                .await;
            assert_form_errors(&r, &what);
            let expected = match *why {
                "extension" => {
                    let extension = name.rsplit_once('.').map_or("", |(_, e)| e).to_lowercase();
                    format!(
                        "Расширение файлов “{extension}” не поддерживается. Разрешенные расширения: jpg, jpeg, png, gif, webp."
                    )
                }
                _ => "Загрузите правильное изображение. Файл, который вы загрузили, поврежден или не является изображением.".to_string(),
            };
            r.assert_contains(&expected, &what);
            app.assert_unchanged(&before, &what).await;
        }
        assert!(app.media_files().is_empty(), "{backend}: {:?}", app.media_files());

        // The same for an avatar.
        let r = alice
            .post_multipart(
                "/users/profile/",
                &form(&[("first_name", "A")]),
                vec![("avatar", file("me.html", &with_script(PNG_1X1)))],
            )
            .await;
        r.assert_page(200, backend)
            .assert_contains("Расширение файлов “html” не поддерживается", backend);
        assert!(app.media_files().is_empty(), "{backend}: {:?}", app.media_files());

        // Real pictures of each accepted format are stored and served as
        // images that nothing may run in.
        for (name, format, content_type) in [
            ("a.jpg", image::ImageFormat::Jpeg, "image/jpeg"),
            ("b.JPEG", image::ImageFormat::Jpeg, "image/jpeg"),
            ("c.png", image::ImageFormat::Png, "image/png"),
            ("d.gif", image::ImageFormat::Gif, "image/gif"),
            ("e.webp", image::ImageFormat::WebP, "image/webp"),
        ] {
            let bytes = encoded(format);
            alice
                .post_multipart(
                    "/products/create/",
                    &new_product(name, "1.00", None),
                    vec![("image", file(name, &bytes))],
                )
                .await
                .assert_redirect("/", &format!("{backend}: {name}"));
            let stored = app.last_product().await.image.unwrap();
            assert_eq!(stored, format!("products/{name}"), "{backend}");
            let r = alice.get(&format!("/media/{stored}")).await;
            assert_eq!(r.status, 200, "{backend}: {name}");
            assert_inert(&r, content_type, &format!("{backend}: {name}"));
        }

        // Files already under MEDIA_ROOT (stored before this check, or by
        // hand): a page is not served at all; a page named as an image is
        // served as that image type, which a browser will not run.
        let products = app.media_root().join("products");
        std::fs::write(products.join("planted.html"), SCRIPT).unwrap();
        std::fs::write(products.join("planted.svg"), SCRIPT).unwrap();
        std::fs::write(products.join("planted.png"), SCRIPT).unwrap();
        for path in ["/media/products/planted.html", "/media/products/planted.svg"] {
            let r = alice.get(path).await;
            assert_eq!(r.status, 404, "{backend}: {path}");
            assert!(!r.body.contains("<script>alert"), "{backend}: {path}");
        }
        let r = alice.get("/media/products/planted.png").await;
        assert_eq!(r.status, 200, "{backend}");
        assert_inert(&r, "image/png", backend);
        // A NUL in the path is not found, whatever the method.
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let response = alice
                .browser
                .client
                .request(method.clone(), alice.browser.url("/media/a%00b.png"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 404, "{backend}: {method} with NUL");
        }
    })
    .await;
}

/// `/media/` answered with an image type only, no sniffing, no scripts.
fn assert_inert(r: &Resp, content_type: &str, what: &str) {
    let header = |name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), content_type, "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    let policy = header("content-security-policy");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("sandbox"),
        "{what}: {policy}"
    );
}

// ---------------------------------------------------------------------------
// 7. Bad requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_failures_are_403_and_change_nothing() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let pk = app.product("Товар", Some(alice.id), false).await;
        app.version(pk, 1, "Первая", true).await;
        let before = app.state().await;
        let update = with(app.owner_form(pk).await, &[("name", "Изменено")]);
        let create = new_product("Новый", "1.00", None);
        let posts: Vec<(String, &Fields)> = vec![
            ("/products/create/".into(), &create),
            (update_path(pk), &update),
            (delete_path(pk), &create),
        ];
        let wrong = "A".repeat(64);
        for (path, fields) in &posts {
            for (case, token) in [("no token", None), ("wrong token", Some(wrong.as_str()))] {
                let what = format!("{backend} POST {path}: {case}");
                let mut all = (*fields).clone();
                if let Some(token) = token {
                    all.push(("csrfmiddlewaretoken".into(), token.into()));
                }
                alice.browser.post(path, &all).await.assert_page(403, &what);
                alice
                    .browser
                    .post_multipart(path, multipart_form(&all, vec![]))
                    .await
                    .assert_page(403, &format!("{what} (multipart)"));
                app.assert_unchanged(&before, &what).await;
            }
        }
        alice.get("/").await.assert_page(200, backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_products_and_bad_input_never_500() {
    on_each_backend(async |app, backend| {
        let alice = app.person("alice@example.com").await;
        let moderator = app.moderator("moderator@example.com").await;
        let pk = app.product("Товар", Some(alice.id), true).await;
        app.version(pk, 1, "Первая", true).await;
        let before = app.state().await;

        // Unknown products, on every page, GET and POST.
        let update = app.owner_form(pk).await;
        for id in [
            "999",
            "0",
            "99999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
        ] {
            for path in [
                format!("/products/{id}/"),
                format!("/products/{id}/update/"),
                format!("/products/{id}/delete/"),
            ] {
                let what = format!("{backend} {path}");
                alice.get(&path).await.assert_page(404, &what);
                // The product page takes no POST (Django's 405); the others 404.
                let r = alice.post(&path, &update).await;
                if r.status == 405 {
                    assert!(path.ends_with(&format!("/{id}/")), "{what}: 405");
                } else {
                    r.assert_page(404, &format!("{what} POST"));
                }
            }
        }
        for path in [
            "/products/abc/update/",
            "/products/-1/delete/",
            "/products//",
        ] {
            alice
                .get(path)
                .await
                .assert_page(404, &format!("{backend} {path}"));
        }
        app.assert_unchanged(&before, backend).await;

        // NUL characters: a field error, never a 500.
        let path = update_path(pk);
        let cases: Vec<(&str, &Person, Fields)> = vec![
            (
                "owner: name",
                &alice,
                with(update.clone(), &[("name", "То\0вар")]),
            ),
            (
                "owner: description",
                &alice,
                with(update.clone(), &[("description", "\0")]),
            ),
            (
                "owner: price",
                &alice,
                with(update.clone(), &[("price", "1\0")]),
            ),
            (
                "owner: version name",
                &alice,
                with(update.clone(), &[("versions-0-version_name", "Пер\0вая")]),
            ),
            (
                "moderator: description",
                &moderator,
                form(&[("is_moderated", "on"), ("description", "Оп\0исание")]),
            ),
            (
                "moderator: category",
                &moderator,
                form(&[("is_moderated", "on"), ("category", "1\0")]),
            ),
        ];
        for (case, person, fields) in cases {
            let what = format!("{backend} NUL in {case}");
            let r = person.post(&path, &fields).await;
            assert_form_errors(&r, &what);
            app.assert_unchanged(&before, &what).await;
        }

        // Broken encodings on create: a page, not a 500, and nothing stored.
        let token = alice.token().await;
        for (case, content_type, body) in [
            (
                "bad percent-encoding",
                "application/x-www-form-urlencoded",
                format!("csrfmiddlewaretoken={token}&name=%FF%FE%&price=%ZZ"),
            ),
            (
                "broken multipart",
                "multipart/form-data; boundary=XX",
                format!(
                    "--XX\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{token}\r\n\
                     --XX\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n\u{0}\r\n--XX"
                ),
            ),
        ] {
            let what = format!("{backend} create: {case}");
            alice
                .browser
                .post_raw("/products/create/", content_type, body)
                .await
                .assert_form_or_400_page(&what);
            app.assert_unchanged(&before, &what).await;
        }
    })
    .await;
}
