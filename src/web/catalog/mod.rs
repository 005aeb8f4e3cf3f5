//! The `catalog` pages: the product list, a product, creating, editing
//! (owner form with the versions formset, or the moderator form) and
//! deleting products, and the contact page. Who may do what is decided in
//! `access`; the product's forms are cleaned in `product_form`, its
//! versions formset in `version_formset`, and `form_views` makes what the
//! templates show of them.

pub mod access;
mod form_views;
mod product_form;
mod version_formset;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};

use crate::db::catalog::{self, ImageChange, Product};
use crate::web::auth::LoggedIn;
use crate::web::error::AppError;
use crate::web::form_data::FormData;
use crate::web::form_view::Errors;
use crate::web::templates::RequestContext;
use crate::web::urls;
use crate::web::AppState;

use access::EditForm;
use form_views::Source;
use product_form::ImageInput;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/products/create/", get(create_page).post(create))
        .route("/products/{pk}/", get(detail))
        .route("/products/{pk}/update/", get(update_page).post(update))
        .route("/products/{pk}/delete/", get(delete_page).post(delete))
        .route("/contacts/", get(contacts).post(contacts_sent))
}

/// Products a page of the list shows (`ListView.paginate_by`).
const PAGE_SIZE: i64 = 9;

/// A product as the templates see a Django model instance. Its attributes
/// are made when a template reads them: the list shows nine products and
/// reads a few attributes of each, so building every one (timestamps
/// formatted, category and owner maps) was most of the list's own work.
fn product_value(product: Product) -> Value {
    Value::from_object(ProductView(product))
}

#[derive(Debug)]
struct ProductView(Product);

impl minijinja::value::Object for ProductView {
    /// `{% if product %}`: a product is there.
    fn is_true(self: &std::sync::Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        let product = &self.0;
        Some(match key.as_str()? {
            "pk" | "id" => Value::from(product.id),
            "name" => Value::from(product.name.as_str()),
            "description" => Value::from(product.description.clone()),
            "image" => crate::web::media::image_value(product.image.as_deref()),
            "category" => Value::from(product.category_id.map(|id| {
                context! { pk => id, id => id, name => product.category_name.clone().unwrap_or_default() }
            })),
            "category_id" => Value::from(product.category_id),
            "price" => Value::from(product.price.as_str()),
            "created_at" => Value::from(product.created_at.0.to_rfc3339()),
            "updated_at" => Value::from(product.updated_at.0.to_rfc3339()),
            "is_moderated" => Value::from(product.is_moderated),
            "owner" => Value::from(product.owner_id.map(|id| {
                context! { pk => id, id => id, email => product.owner_email.clone() }
            })),
            "owner_id" => Value::from(product.owner_id),
            _ => return None,
        })
    }
}

/// A path id as Django's `<int:pk>` takes it: digits only, else 404.
fn parse_pk(raw: &str) -> Result<i64, AppError> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::NotFound);
    }
    raw.parse().map_err(|_| AppError::NotFound)
}

async fn product_or_404(app: &AppState, raw_pk: &str) -> Result<Product, AppError> {
    let pk = parse_pk(raw_pk)?;
    catalog::product(&app.db, pk)
        .await?
        .ok_or(AppError::NotFound)
}

enum PageRequest {
    Number(i64),
    Last,
}

/// The `page` parameter as Django's `ListView.paginate_queryset` reads it:
/// a number (Python's `int()`), or `last`; anything else is a 404.
fn requested_page(query: Option<&str>) -> Result<PageRequest, AppError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    // An empty value counts as none (`GET.get("page") or 1`).
    match pairs.iter().rev().find(|(k, _)| k == "page") {
        None => Ok(PageRequest::Number(1)),
        Some((_, raw)) if raw.is_empty() => Ok(PageRequest::Number(1)),
        Some((_, raw)) if raw == "last" => Ok(PageRequest::Last),
        Some((_, raw)) => crate::django::form_fields::clean_integer(Some(raw), i64::MIN, i64::MAX)
            .map(PageRequest::Number)
            .map_err(|_| AppError::NotFound),
    }
}

/// Pages for `count` products; at least one, even when empty.
fn num_pages(count: i64) -> i64 {
    ((count + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

async fn home(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let visibility = access::list_visibility(user.id, &ctx.perms);
    let number = match requested_page(query.as_deref())? {
        PageRequest::Number(number) => number,
        PageRequest::Last => num_pages(catalog::count_visible(&app.db, visibility).await?),
    };
    if number < 1 {
        return Err(AppError::NotFound);
    }
    let offset = (number - 1)
        .checked_mul(PAGE_SIZE)
        .ok_or(AppError::NotFound)?;
    let (products, count) = catalog::page_visible(&app.db, visibility, PAGE_SIZE, offset).await?;
    // A page past the end is a 404; an empty first page is allowed, as
    // `allow_empty` is by default.
    if products.is_empty() && number > 1 {
        return Err(AppError::NotFound);
    }
    Ok(ctx
        .html(
            &app,
            "catalog/product_list.html",
            list_context(products, number, count),
        )?
        .into_response())
}

/// What `ListView` gives `catalog/product_list.html`: page `number` of a
/// list of `count` products, showing `products`.
pub fn list_context(products: Vec<Product>, number: i64, count: i64) -> Value {
    let num_pages = num_pages(count);
    let product_list: Vec<Value> = products.into_iter().map(product_value).collect();
    let paginator = context! { count => count, num_pages => num_pages, per_page => PAGE_SIZE };
    let page_obj = context! {
        number => number,
        paginator => paginator.clone(),
        has_next => Value::from_function(move || number < num_pages),
        has_previous => Value::from_function(move || number > 1),
        has_other_pages => Value::from_function(move || num_pages > 1),
        next_page_number => Value::from_function(move || number + 1),
        previous_page_number => Value::from_function(move || number - 1),
    };
    context! {
        product_list => product_list.clone(),
        object_list => product_list,
        page_obj => page_obj,
        paginator => paginator,
        is_paginated => num_pages > 1,
    }
}

async fn detail(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(_user): LoggedIn,
    Path(pk): Path<String>,
) -> Result<Response, AppError> {
    let (product, current_version) = catalog::product_with_current_version(&app.db, parse_pk(&pk)?)
        .await?
        .ok_or(AppError::NotFound)?;
    let current_version = current_version.map(|v| {
        context! { pk => v.id, id => v.id, version_number => v.version_number, version_name => v.version_name, is_current => v.is_current }
    });
    product_page(
        &app,
        &ctx,
        "catalog/product_detail.html",
        Some(&product),
        context! { current_version => current_version },
    )
}

/// Renders a page about one product (or none, when creating one): the
/// product under DetailView's two names, `product` and `object`, plus
/// `extra`.
fn product_page(
    app: &AppState,
    ctx: &RequestContext,
    template: &str,
    product: Option<&Product>,
    extra: Value,
) -> Result<Response, AppError> {
    let product = product.cloned().map(product_value);
    let context = context! { product => product.clone(), object => product, ..extra };
    Ok(ctx.html(app, template, context)?.into_response())
}

async fn create_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(_user): LoggedIn,
) -> Result<Response, AppError> {
    let categories = catalog::categories(&app.db).await?;
    let form =
        form_views::owner_form_view(&Source::Initial(None), None, &categories, &Errors::new());
    render_form(&app, &ctx, None, form, None)
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    form: FormData,
) -> Result<Response, AppError> {
    let categories = catalog::categories(&app.db).await?;
    let clean = match product_form::clean_owner_form(&form, &categories).await {
        Ok(clean) => clean,
        Err(errors) => {
            let view =
                form_views::owner_form_view(&Source::Submitted(&form), None, &categories, &errors);
            return render_form(&app, &ctx, None, view, None);
        }
    };
    let image = match clean.image {
        ImageInput::Upload(file) => Some(save_image(&app, file).await?),
        ImageInput::Keep | ImageInput::Clear => None,
    };
    let id = catalog::insert_product(&app.db, &clean.fields, image.as_deref(), user.id).await?;
    tracing::info!("product {id} created by user {}", user.id);
    Ok(crate::web::redirect(&reverse("catalog:home", &[])))
}

async fn save_image(
    app: &AppState,
    file: &crate::web::form_data::UploadedFile,
) -> Result<String, AppError> {
    crate::web::media::save_upload(&app.settings.media_root, "products", file).await
}

fn reverse(name: &str, args: &[String]) -> String {
    urls::reverse(name, args).expect("the catalog's routes are in urls::ROUTES")
}

/// Renders `catalog/product_form.html` (create and update share it).
fn render_form(
    app: &AppState,
    ctx: &RequestContext,
    product: Option<&Product>,
    form: Value,
    formset: Option<Value>,
) -> Result<Response, AppError> {
    product_page(
        app,
        ctx,
        "catalog/product_form.html",
        product,
        context! { form => form, formset => formset },
    )
}

/// The product and which form its editor gets; 403 for anyone else.
async fn editable_product(
    app: &AppState,
    ctx: &RequestContext,
    user: &crate::db::users::User,
    pk: &str,
) -> Result<(Product, EditForm), AppError> {
    let product = product_or_404(app, pk).await?;
    let kind =
        access::edit_form(user.id, &ctx.perms, product.owner_id).ok_or(AppError::Forbidden)?;
    Ok((product, kind))
}

async fn update_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    Path(pk): Path<String>,
) -> Result<Response, AppError> {
    let (product, kind) = editable_product(&app, &ctx, &user, &pk).await?;
    let categories = catalog::categories(&app.db).await?;
    let source = Source::Initial(Some(&product));
    match kind {
        EditForm::Owner => {
            let versions = catalog::versions(&app.db, product.id).await?;
            let form =
                form_views::owner_form_view(&source, Some(&product), &categories, &Errors::new());
            let formset = form_views::initial_formset_view(product.id, &versions);
            render_form(&app, &ctx, Some(&product), form, Some(formset))
        }
        EditForm::Moderator => {
            let form = form_views::moderator_form_view(&source, &categories, &Errors::new());
            render_form(&app, &ctx, Some(&product), form, None)
        }
    }
}

/// The largest `version_number` the column takes on this database, as
/// Django's `integer_field_range` for a `PositiveIntegerField`.
fn max_version_number(app: &AppState) -> i64 {
    match app.db {
        crate::db::Db::Sqlite(..) => i64::MAX,
        crate::db::Db::Postgres(_) => i64::from(i32::MAX),
        crate::db::Db::MySql(_) => i64::from(u32::MAX),
    }
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    Path(pk): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let (product, kind) = editable_product(&app, &ctx, &user, &pk).await?;
    let categories = catalog::categories(&app.db).await?;
    let detail_url = reverse("catalog:product_detail", &[product.id.to_string()]);
    if kind == EditForm::Moderator {
        return match product_form::clean_moderator_form(&form, &categories) {
            Ok(fields) => {
                catalog::update_moderator_fields(&app.db, product.id, &fields).await?;
                tracing::info!(
                    "product {} moderated by user {} (published: {})",
                    product.id,
                    user.id,
                    fields.is_moderated
                );
                Ok(crate::web::redirect(&detail_url))
            }
            Err(errors) => {
                let view = form_views::moderator_form_view(
                    &Source::Submitted(&form),
                    &categories,
                    &errors,
                );
                render_form(&app, &ctx, Some(&product), view, None)
            }
        };
    }
    let versions = catalog::versions(&app.db, product.id).await?;
    let mut formset = version_formset::clean_version_formset(
        &form,
        product.id,
        &versions,
        max_version_number(&app),
    );
    let clean = product_form::clean_owner_form(&form, &categories).await;
    if let (Ok(clean), true) = (&clean, formset.is_valid()) {
        let mut tx = app.db.begin_write().await?;
        let current =
            catalog::apply_version_changes(&mut tx, product.id, formset.changes()).await?;
        if current <= 1 {
            let image = match &clean.image {
                ImageInput::Keep => ImageChange::Keep,
                ImageInput::Clear => ImageChange::Clear,
                ImageInput::Upload(file) => ImageChange::Set(save_image(&app, file).await?),
            };
            catalog::update_owner_fields(&mut tx, product.id, &clean.fields, &image).await?;
            tx.commit().await?;
            return Ok(crate::web::redirect(&detail_url));
        }
        // Versions left out of the formset were current too: keep nothing.
        drop(tx);
        formset.add_non_form_error(version_formset::ONE_CURRENT_VERSION);
    }
    let errors = clean.err().unwrap_or_default();
    let view = form_views::owner_form_view(
        &Source::Submitted(&form),
        Some(&product),
        &categories,
        &errors,
    );
    render_form(
        &app,
        &ctx,
        Some(&product),
        view,
        Some(form_views::submitted_formset_view(
            &form, &formset, product.id,
        )),
    )
}

/// The product, if this user may delete it; 403 otherwise.
async fn deletable_product(
    app: &AppState,
    ctx: &RequestContext,
    user: &crate::db::users::User,
    pk: &str,
) -> Result<Product, AppError> {
    let product = product_or_404(app, pk).await?;
    if !access::may_delete(user.id, &ctx.perms, product.owner_id) {
        return Err(AppError::Forbidden);
    }
    Ok(product)
}

async fn delete_page(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    Path(pk): Path<String>,
) -> Result<Response, AppError> {
    let product = deletable_product(&app, &ctx, &user, &pk).await?;
    product_page(
        &app,
        &ctx,
        "catalog/product_confirm_delete.html",
        Some(&product),
        context! {},
    )
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    LoggedIn(user): LoggedIn,
    Path(pk): Path<String>,
) -> Result<Response, AppError> {
    let product = deletable_product(&app, &ctx, &user, &pk).await?;
    catalog::delete_product(&app.db, product.id).await?;
    tracing::info!("product {} deleted by user {}", product.id, user.id);
    Ok(crate::web::redirect(&reverse("catalog:home", &[])))
}

async fn contacts(State(app): State<AppState>, ctx: RequestContext) -> Result<Response, AppError> {
    Ok(ctx
        .html(&app, "catalog/contacts.html", context! {})?
        .into_response())
}

/// The contact form: the message is logged, as the original prints it,
/// quoted with its control characters escaped (a newline in it must not
/// start a log line of its own).
async fn contacts_sent(
    State(app): State<AppState>,
    ctx: RequestContext,
    form: FormData,
) -> Result<Response, AppError> {
    tracing::info!(
        "contact message from {:?} ({:?}): {:?}",
        form.text("name"),
        form.text("phone"),
        form.text("message")
    );
    contacts(State(app), ctx).await
}
