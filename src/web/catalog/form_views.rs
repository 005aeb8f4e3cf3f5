//! The catalog's forms as `catalog/product_form.html` sees them (built with
//! `web::form_view`): the owner and moderator forms, with the product's or
//! the submitted values, and the versions formset, before a submit or as
//! submitted with its errors.

use minijinja::Value;

use crate::db::catalog::{Category, Product, Version};
use crate::django::form_fields::clean_checkbox;
use crate::django::formsets::DEFAULT_MAX_NUM;
use crate::web::form_data::FormData;
use crate::web::form_view::{self, Errors, Field};
use crate::web::media;

use super::version_formset::{Row, VersionFormset, VERSIONS_PREFIX};

/// Where a form's values come from: the submitted form, or the product.
pub enum Source<'a> {
    Submitted(&'a FormData),
    Initial(Option<&'a Product>),
}

impl Source<'_> {
    fn value(&self, name: &str, initial: impl FnOnce(&Product) -> Value) -> Value {
        match self {
            Source::Submitted(form) => Value::from(form.get(name)),
            Source::Initial(Some(product)) => initial(product),
            Source::Initial(None) => Value::from(()),
        }
    }

    fn checkbox(&self, name: &str, initial: impl FnOnce(&Product) -> bool) -> Value {
        match self {
            Source::Submitted(form) => Value::from(clean_checkbox(form.get(name))),
            Source::Initial(Some(product)) => Value::from(initial(product)),
            Source::Initial(None) => Value::from(false),
        }
    }
}

fn category_choices(categories: &[Category]) -> Vec<(String, String)> {
    std::iter::once((String::new(), "---------".to_string()))
        .chain(
            categories
                .iter()
                .map(|c| (c.id.to_string(), c.name.clone())),
        )
        .collect()
}

/// The owner form for a template.
pub fn owner_form_view(
    source: &Source<'_>,
    product: Option<&Product>,
    categories: &[Category],
    errors: &Errors,
) -> Value {
    let fields = vec![
        Field::new(
            "name",
            source.value("name", |p| Value::from(p.name.clone())),
        ),
        Field::new(
            "description",
            source.value("description", |p| Value::from(p.description.clone())),
        ),
        // A file input shows the current file, submitted or not.
        Field::new(
            "image",
            media::image_value(product.and_then(|p| p.image.as_deref())),
        ),
        Field::new(
            "category",
            source.value("category", |p| Value::from(p.category_id)),
        )
        .with_choices(category_choices(categories)),
        Field::new(
            "price",
            source.value("price", |p| Value::from(p.price.clone())),
        ),
    ];
    form_view::form(None, fields, errors)
}

/// The moderator form for a template.
pub fn moderator_form_view(source: &Source<'_>, categories: &[Category], errors: &Errors) -> Value {
    let fields = vec![
        Field::new(
            "is_moderated",
            source.checkbox("is_moderated", |p| p.is_moderated),
        ),
        Field::new(
            "description",
            source.value("description", |p| Value::from(p.description.clone())),
        ),
        Field::new(
            "category",
            source.value("category", |p| Value::from(p.category_id)),
        )
        .with_choices(category_choices(categories)),
    ];
    form_view::form(None, fields, errors)
}

/// The formset of a product's versions before any submit: one row per
/// version and one blank row, as `inlineformset_factory(extra=1)`.
pub fn initial_formset_view(product_id: i64, versions: &[Version]) -> Value {
    let mut forms: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            row_view(
                &i.to_string(),
                [
                    Value::from(v.id),
                    Value::from(product_id),
                    Value::from(v.version_number),
                    Value::from(v.version_name.clone()),
                ],
                [v.is_current, false],
                &Errors::new(),
            )
        })
        .collect();
    forms.push(blank_row_view(&versions.len().to_string(), product_id));
    form_view::formset(
        VERSIONS_PREFIX,
        [
            ("TOTAL_FORMS", Value::from(versions.len() + 1)),
            ("INITIAL_FORMS", Value::from(versions.len())),
            ("MIN_NUM_FORMS", Value::from(0)),
            ("MAX_NUM_FORMS", Value::from(DEFAULT_MAX_NUM)),
        ],
        forms,
        empty_row_view(product_id),
        Vec::new(),
    )
}

/// The formset as `form` submitted it, with the errors `formset` found:
/// the submitted values of the rows it cleaned, and of its management form.
pub fn submitted_formset_view(form: &FormData, formset: &VersionFormset, product_id: i64) -> Value {
    let forms = formset
        .row_errors()
        .iter()
        .enumerate()
        .map(|(index, errors)| {
            let row = Row { form, index };
            let value = |f: &str| Value::from(row.get(f));
            row_view(
                &index.to_string(),
                [
                    value("id"),
                    Value::from(product_id),
                    value("version_number"),
                    value("version_name"),
                ],
                [row.is_current(), row.is_deleted()],
                errors,
            )
        })
        .collect();
    let submitted = |name: &str| {
        Value::from(
            form.get(&format!("{VERSIONS_PREFIX}-{name}"))
                .map(str::to_string),
        )
    };
    form_view::formset(
        VERSIONS_PREFIX,
        [
            ("TOTAL_FORMS", submitted("TOTAL_FORMS")),
            ("INITIAL_FORMS", submitted("INITIAL_FORMS")),
            ("MIN_NUM_FORMS", submitted("MIN_NUM_FORMS")),
            ("MAX_NUM_FORMS", submitted("MAX_NUM_FORMS")),
        ],
        forms,
        empty_row_view(product_id),
        formset.non_form_errors().to_vec(),
    )
}

fn blank_row_view(index: &str, product_id: i64) -> Value {
    row_view(
        index,
        [
            Value::from(()),
            Value::from(product_id),
            Value::from(()),
            Value::from(()),
        ],
        [false, false],
        &Errors::new(),
    )
}

/// `formset.empty_form`: the row the "add a version" button copies.
fn empty_row_view(product_id: i64) -> Value {
    blank_row_view("__prefix__", product_id)
}

fn row_view(
    index: &str,
    [id, product, number, name]: [Value; 4],
    [is_current, delete]: [bool; 2],
    errors: &Errors,
) -> Value {
    form_view::form(
        Some(&format!("{VERSIONS_PREFIX}-{index}")),
        vec![
            Field::new("id", id),
            Field::new("product", product),
            Field::new("version_number", number),
            Field::new("version_name", name),
            Field::new("is_current", is_current),
            Field::new("DELETE", delete),
        ],
        errors,
    )
}
