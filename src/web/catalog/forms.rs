//! The catalog's forms, cleaned as Django's `ProductForm`,
//! `ProductModeratorForm` and the inline `VersionFormSet` clean them, and
//! shown to the templates through `form_view`. A form reads only its own
//! fields: anything else posted is ignored.

use std::collections::HashMap;

use minijinja::Value;

use crate::db::catalog::{
    Category, ModeratorFields, OwnerFields, Product, Version, VersionChanges, VersionFields,
};
use crate::django::forms::{
    clean_char, clean_checkbox, clean_decimal, clean_integer, clean_text, parse_choice_id,
    INVALID_CHOICE, REQUIRED,
};
use crate::web::form::{FormData, UploadedFile};
use crate::web::form_view::{self, add_error, Errors, Field};
use crate::web::media;

const NAME_MAX: usize = 100;
const VERSION_NAME_MAX: usize = 150;
const PRICE_DIGITS: u32 = 10;
const PRICE_PLACES: u32 = 2;
/// `FileField(max_length=100)`: also the longest file name a form takes.
const IMAGE_NAME_MAX: usize = 100;
pub const VERSIONS_PREFIX: &str = "versions";
/// Django's formset defaults: `max_num` 1000, `absolute_max` 2000.
const MAX_NUM_FORMS: i64 = 1000;
const ABSOLUTE_MAX_FORMS: i64 = 2000;

fn category_choices(categories: &[Category]) -> Vec<(String, String)> {
    std::iter::once((String::new(), "---------".to_string()))
        .chain(
            categories
                .iter()
                .map(|c| (c.id.to_string(), c.name.clone())),
        )
        .collect()
}

/// A category id that must name an existing category (or be empty).
fn clean_category(value: Option<&str>, categories: &[Category]) -> Result<Option<i64>, String> {
    match parse_choice_id(value)? {
        Some(id) if !categories.iter().any(|c| c.id == id) => Err(INVALID_CHOICE.to_string()),
        id => Ok(id),
    }
}

/// Records a cleaner's outcome: the value, or its message under `field`.
fn take<T>(errors: &mut Errors, field: &str, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|message| add_error(errors, field, message))
        .ok()
}

/// What the owner form does with the image.
pub enum ImageInput<'a> {
    Keep,
    Clear,
    Upload(&'a UploadedFile),
}

/// A clean owner form.
pub struct OwnerForm<'a> {
    pub fields: OwnerFields,
    pub image: ImageInput<'a>,
}

/// Cleans the owner form (`name, description, image, category, price`).
pub async fn clean_owner_form<'a>(
    form: &'a FormData,
    categories: &[Category],
) -> Result<OwnerForm<'a>, Errors> {
    let mut errors = Errors::new();
    let name = take(
        &mut errors,
        "name",
        clean_char(form.get("name"), Some(NAME_MAX), true),
    );
    let (description, category_id) = clean_description_and_category(form, categories, &mut errors);
    let price = take(
        &mut errors,
        "price",
        clean_decimal(form.get("price"), PRICE_DIGITS, PRICE_PLACES),
    );
    let image = take(&mut errors, "image", clean_image(form).await);
    match (name, description, category_id, price, image) {
        (Some(Some(name)), Some(description), Some(category_id), Some(price), Some(image))
            if errors.is_empty() =>
        {
            Ok(OwnerForm {
                fields: OwnerFields {
                    name,
                    description,
                    category_id,
                    price,
                },
                image,
            })
        }
        _ => Err(errors),
    }
}

/// `ImageField` with Django's `ClearableFileInput`: an upload, the clear
/// box, or neither (an empty file part keeps the current image).
async fn clean_image(form: &FormData) -> Result<ImageInput<'_>, String> {
    let clear = clean_checkbox(form.get("image-clear"));
    let Some(file) = form.file("image") else {
        return Ok(if clear {
            ImageInput::Clear
        } else {
            ImageInput::Keep
        });
    };
    if clear {
        return Err("Пожалуйста, загрузите файл или поставьте флажок \"Очистить\", но не совершайте оба действия одновременно.".into());
    }
    let length = file.filename.chars().count();
    if length > IMAGE_NAME_MAX {
        return Err(format!(
            "Убедитесь, что это имя файла содержит не более {IMAGE_NAME_MAX} символов (сейчас {length})."
        ));
    }
    if file.size() == 0 {
        return Err("Отправленный файл пуст.".into());
    }
    media::check_image(file).await?;
    Ok(ImageInput::Upload(file))
}

/// The two fields both forms have.
fn clean_description_and_category(
    form: &FormData,
    categories: &[Category],
    errors: &mut Errors,
) -> (Option<String>, Option<Option<i64>>) {
    let description = take(errors, "description", clean_text(form.get("description")));
    let category_id = take(
        errors,
        "category",
        clean_category(form.get("category"), categories),
    );
    (description, category_id)
}

/// Cleans the moderator form (`is_moderated, description, category`).
pub fn clean_moderator_form(
    form: &FormData,
    categories: &[Category],
) -> Result<ModeratorFields, Errors> {
    let mut errors = Errors::new();
    let (description, category_id) = clean_description_and_category(form, categories, &mut errors);
    match (description, category_id) {
        (Some(description), Some(category_id)) if errors.is_empty() => Ok(ModeratorFields {
            is_moderated: clean_checkbox(form.get("is_moderated")),
            description,
            category_id,
        }),
        _ => Err(errors),
    }
}

/// The image as a `FieldFile` shows in templates: `name` and `url`.
pub fn image_value(image: Option<&str>) -> Value {
    match image.filter(|name| !name.is_empty()) {
        Some(name) => minijinja::context! { name => name, url => media::url(name) },
        None => Value::from(()),
    }
}

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
            image_value(product.and_then(|p| p.image.as_deref())),
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

// ---------------------------------------------------------------------------
// The versions formset

fn field_name(index: &str, field: &str) -> String {
    format!("{VERSIONS_PREFIX}-{index}-{field}")
}

/// One submitted row, as read from the form.
struct Row<'a> {
    form: &'a FormData,
    index: usize,
}

impl<'a> Row<'a> {
    fn get(&self, field: &str) -> Option<&'a str> {
        self.form.get(&field_name(&self.index.to_string(), field))
    }

    fn is_deleted(&self) -> bool {
        clean_checkbox(self.get("DELETE"))
    }

    /// An extra row nobody touched (`has_changed()` is false).
    fn is_blank(&self) -> bool {
        ["id", "version_number", "version_name"]
            .iter()
            .all(|f| self.get(f).unwrap_or("").is_empty())
            && !clean_checkbox(self.get("is_current"))
            && !self.is_deleted()
    }
}

/// The submitted formset, cleaned or with its errors.
pub struct VersionFormset<'a> {
    form: &'a FormData,
    total: usize,
    initial: usize,
    row_errors: Vec<Errors>,
    non_form_errors: Vec<String>,
    changes: VersionChanges,
}

impl VersionFormset<'_> {
    pub fn is_valid(&self) -> bool {
        self.non_form_errors.is_empty() && self.row_errors.iter().all(Errors::is_empty)
    }

    pub fn changes(&self) -> &VersionChanges {
        &self.changes
    }

    /// Adds a formset error found while saving (more than one current
    /// version once the rows not in the formset are counted).
    pub fn add_non_form_error(&mut self, message: impl Into<String>) {
        self.non_form_errors.push(message.into());
    }

    /// The submitted formset for a template, with its errors.
    pub fn view(&self, product_id: i64) -> Value {
        let forms = (0..self.total)
            .map(|i| {
                let row = Row {
                    form: self.form,
                    index: i,
                };
                let value = |f: &str| Value::from(row.get(f));
                row_view(
                    &i.to_string(),
                    [
                        value("id"),
                        Value::from(product_id),
                        value("version_number"),
                        value("version_name"),
                    ],
                    [clean_checkbox(row.get("is_current")), row.is_deleted()],
                    self.row_errors.get(i).unwrap_or(&Errors::new()),
                )
            })
            .collect();
        let submitted = |name: &str| {
            Value::from(
                self.form
                    .get(&format!("{VERSIONS_PREFIX}-{name}"))
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
            self.non_form_errors.clone(),
        )
    }
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
            ("MAX_NUM_FORMS", Value::from(MAX_NUM_FORMS)),
        ],
        forms,
        empty_row_view(product_id),
        Vec::new(),
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

/// Reads one management-form count; `None` when missing or not a number.
fn management_count(form: &FormData, name: &str) -> Option<i64> {
    clean_integer(form.get(&format!("{VERSIONS_PREFIX}-{name}")), 0, i64::MAX).ok()
}

/// Cleans the versions formset of `product_id` against its `existing`
/// versions. `max_version_number` is the column's range on this database
/// (Django's `PositiveIntegerField` validator).
pub fn clean_version_formset<'a>(
    form: &'a FormData,
    product_id: i64,
    existing: &[Version],
    max_version_number: i64,
) -> VersionFormset<'a> {
    let mut formset = VersionFormset {
        form,
        total: 0,
        initial: 0,
        row_errors: Vec::new(),
        non_form_errors: Vec::new(),
        changes: VersionChanges::default(),
    };
    let total = management_count(form, "TOTAL_FORMS");
    let initial = management_count(form, "INITIAL_FORMS");
    let (Some(total), Some(initial)) = (total, initial) else {
        let missing: Vec<String> = [("TOTAL_FORMS", total), ("INITIAL_FORMS", initial)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| format!("{VERSIONS_PREFIX}-{name}"))
            .collect();
        formset.add_non_form_error(format!(
            "Данные ManagementForm отсутствуют или были подделаны. Отсутствующие поля: {}. Если проблема не исчезнет, вам может потребоваться отправить отчет об ошибке.",
            missing.join(", ")
        ));
        return formset;
    };
    if total > ABSOLUTE_MAX_FORMS {
        formset.add_non_form_error(format!(
            "Пожалуйста, отправьте не больше {MAX_NUM_FORMS} форм."
        ));
        return formset;
    }
    formset.total = total as usize;
    formset.initial = initial.min(total) as usize;
    let by_id: HashMap<i64, &Version> = existing.iter().map(|v| (v.id, v)).collect();
    let mut current = 0;
    for index in 0..formset.total {
        let row = Row { form, index };
        let mut errors = Errors::new();
        let is_initial = index < formset.initial;
        if !is_initial && row.is_blank() {
            formset.row_errors.push(errors);
            continue;
        }
        // The hidden parent key must be this product, if sent at all.
        if let Some(parent) = row.get("product").filter(|p| !p.trim().is_empty()) {
            if parent.trim() != product_id.to_string() {
                add_error(
                    &mut errors,
                    "product",
                    "Значение во вложенной форме не совпадает со значением в базовой форме.",
                );
            }
        }
        // A row of the formset's own versions needs the id of one of them.
        let existing_version = if is_initial {
            match parse_choice_id(row.get("id")) {
                Ok(None) => {
                    add_error(&mut errors, "id", REQUIRED);
                    None
                }
                Ok(Some(id)) => match by_id.get(&id) {
                    Some(version) => Some(*version),
                    None => {
                        add_error(&mut errors, "id", INVALID_CHOICE);
                        None
                    }
                },
                Err(message) => {
                    add_error(&mut errors, "id", message);
                    None
                }
            }
        } else {
            None
        };
        if row.is_deleted() {
            // A deleted row is not validated, but an id that is not one of
            // this product's versions is refused (Django skips it silently).
            if let Some(version) = existing_version {
                formset.changes.delete.push(version.id);
            }
            let forged: Errors = errors
                .into_iter()
                .filter(|(field, messages)| {
                    field == "id" && messages.iter().any(|m| m == INVALID_CHOICE)
                })
                .collect();
            formset.row_errors.push(forged);
            continue;
        }
        let number = take(
            &mut errors,
            "version_number",
            clean_integer(row.get("version_number"), 0, max_version_number),
        );
        let name = take(
            &mut errors,
            "version_name",
            clean_char(row.get("version_name"), Some(VERSION_NAME_MAX), true),
        );
        let is_current = clean_checkbox(row.get("is_current"));
        if let (Some(version_number), Some(Some(version_name))) = (number, name) {
            if is_current {
                current += 1;
            }
            let fields = VersionFields {
                version_number,
                version_name,
                is_current,
            };
            if errors.is_empty() {
                match existing_version {
                    Some(version) => {
                        let unchanged = version.version_number == fields.version_number
                            && version.version_name == fields.version_name
                            && version.is_current == fields.is_current;
                        if !unchanged {
                            formset.changes.update.push((version.id, fields));
                        }
                    }
                    None if !is_initial => formset.changes.create.push(fields),
                    None => {}
                }
            }
        } else if is_current {
            current += 1;
        }
        formset.row_errors.push(errors);
    }
    if current > 1 {
        formset.add_non_form_error(ONE_CURRENT_VERSION);
    }
    formset
}

pub const ONE_CURRENT_VERSION: &str = "Текущей может быть только одна версия.";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, HeaderMap};

    async fn form(pairs: &[(&str, &str)]) -> FormData {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let body = serde_urlencoded::to_string(pairs).unwrap();
        FormData::read(&headers, Body::from(body), &Default::default())
            .await
            .unwrap()
    }

    fn version(id: i64, product_id: i64, is_current: bool) -> Version {
        Version {
            id,
            product_id,
            version_number: id,
            version_name: format!("v{id}"),
            is_current,
        }
    }

    fn management(total: &'static str, initial: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("versions-TOTAL_FORMS", total),
            ("versions-INITIAL_FORMS", initial),
            ("versions-MIN_NUM_FORMS", "0"),
            ("versions-MAX_NUM_FORMS", "1000"),
        ]
    }

    #[tokio::test]
    async fn rows_become_creates_updates_and_deletes() {
        let existing = [version(10, 1, true), version(11, 1, false)];
        let mut pairs = management("4", "2");
        pairs.extend([
            // Unchanged: no update.
            ("versions-0-id", "10"),
            ("versions-0-version_number", "10"),
            ("versions-0-version_name", "v10"),
            ("versions-0-is_current", "on"),
            // Deleted, even with a bad number.
            ("versions-1-id", "11"),
            ("versions-1-version_number", "x"),
            ("versions-1-DELETE", "on"),
            // New.
            ("versions-2-version_number", "0"),
            ("versions-2-version_name", " Новая "),
            ("versions-2-product", "1"),
            // Blank extra row: ignored.
            ("versions-3-version_number", ""),
        ]);
        let data = form(&pairs).await;
        let formset = clean_version_formset(&data, 1, &existing, i64::MAX);
        assert!(formset.is_valid(), "{:?}", formset.row_errors);
        let changes = formset.changes();
        assert_eq!(changes.delete, vec![11]);
        assert!(changes.update.is_empty());
        assert_eq!(
            changes.create,
            vec![VersionFields {
                version_number: 0,
                version_name: "Новая".into(),
                is_current: false
            }]
        );
    }

    #[tokio::test]
    async fn forged_ids_two_current_and_bad_rows_are_refused() {
        let existing = [version(10, 1, false)];
        // Another product's version id in an initial row.
        let mut pairs = management("1", "1");
        pairs.extend([
            ("versions-0-id", "99"),
            ("versions-0-version_number", "1"),
            ("versions-0-version_name", "x"),
        ]);
        let data = form(&pairs).await;
        let formset = clean_version_formset(&data, 1, &existing, i64::MAX);
        assert!(!formset.is_valid());
        assert_eq!(
            formset.row_errors[0]["id"],
            vec![INVALID_CHOICE.to_string()]
        );

        let mut pairs = management("2", "0");
        pairs.extend([
            ("versions-0-version_number", "1"),
            ("versions-0-version_name", "a"),
            ("versions-0-is_current", "on"),
            ("versions-1-version_number", "-1"),
            ("versions-1-version_name", ""),
            ("versions-1-is_current", "on"),
            ("versions-1-product", "2"),
        ]);
        let data = form(&pairs).await;
        let formset = clean_version_formset(&data, 1, &[], 2_147_483_647);
        assert!(!formset.is_valid());
        assert_eq!(
            formset.non_form_errors,
            vec![ONE_CURRENT_VERSION.to_string()]
        );
        let row = &formset.row_errors[1];
        assert!(row.contains_key("version_number") && row.contains_key("version_name"));
        assert!(row.contains_key("product"));

        let data = form(&[("versions-TOTAL_FORMS", "x")]).await;
        let formset = clean_version_formset(&data, 1, &[], i64::MAX);
        assert!(!formset.is_valid());
        assert!(formset.non_form_errors[0]
            .contains("Отсутствующие поля: versions-TOTAL_FORMS, versions-INITIAL_FORMS"));
    }

    #[tokio::test]
    async fn owner_and_moderator_forms_read_only_their_fields() {
        let categories = [Category {
            id: 3,
            name: "c".into(),
        }];
        let data = form(&[
            ("name", "  Телефон "),
            ("price", "13119"),
            ("category", "3"),
            ("description", ""),
            ("is_moderated", "on"),
        ])
        .await;
        let clean = clean_owner_form(&data, &categories).await.unwrap();
        assert_eq!(clean.fields.name, "Телефон");
        assert_eq!(clean.fields.price, "13119.00");
        assert_eq!(clean.fields.category_id, Some(3));
        assert_eq!(
            clean.fields.description, "",
            "a TextField keeps \"\", as Django"
        );
        assert!(matches!(clean.image, ImageInput::Keep));

        let data = form(&[
            ("name", &"x".repeat(101)),
            ("price", "1"),
            ("category", "4"),
        ])
        .await;
        let errors = clean_owner_form(&data, &categories).await.err().unwrap();
        assert!(errors.contains_key("name") && errors.contains_key("category"));

        let data = form(&[("is_moderated", "on"), ("price", "1"), ("name", "x")]).await;
        let clean = clean_moderator_form(&data, &categories).unwrap();
        assert!(clean.is_moderated);
        assert_eq!(clean.category_id, None);
    }
}
