//! Forms as the templates see them, shaped like Django's own form objects so
//! one template renders under both: `form[name].value()`, `.html_name`,
//! `.auto_id`, `.errors`, `.field.choices`; `form.fields`, `form.errors`,
//! `form.non_field_errors()`; a formset's `management_form`, `forms`,
//! `empty_form`, `prefix` and `non_form_errors()`.

use std::collections::BTreeMap;

use minijinja::Value;

/// Messages by field name; `__all__` holds the form's own.
pub type Errors = BTreeMap<String, Vec<String>>;

pub const NON_FIELD: &str = "__all__";

pub fn add_error(errors: &mut Errors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.into());
}

/// What a field's cleaning refused it with: one message, or several
/// (Django runs every validator of a field and shows each message).
pub trait Messages {
    fn into_messages(self) -> Vec<String>;
}

impl Messages for String {
    fn into_messages(self) -> Vec<String> {
        vec![self]
    }
}

impl Messages for Vec<String> {
    fn into_messages(self) -> Vec<String> {
        self
    }
}

/// The cleaned value of `field`, or its messages added to `errors`.
pub fn cleaned<T>(errors: &mut Errors, field: &str, result: Result<T, impl Messages>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(messages) => {
            for message in messages.into_messages() {
                add_error(errors, field, message);
            }
            None
        }
    }
}

/// One field of a form: its value as `BoundField.value()` gives it (the
/// submitted text on a bound form, the initial value otherwise).
pub struct Field {
    pub name: &'static str,
    pub value: Value,
    /// `(value, label)` pairs of a choice field, with the empty choice.
    pub choices: Option<Vec<(String, String)>>,
}

impl Field {
    pub fn new(name: &'static str, value: impl Into<Value>) -> Field {
        Field {
            name,
            value: value.into(),
            choices: None,
        }
    }

    pub fn with_choices(mut self, choices: Vec<(String, String)>) -> Field {
        self.choices = Some(choices);
        self
    }
}

/// A Django-shaped form value. `prefix` is the formset row's prefix
/// (`versions-0`), if any.
pub fn form(prefix: Option<&str>, fields: Vec<Field>, errors: &Errors) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    let mut names: BTreeMap<String, bool> = BTreeMap::new();
    for field in fields {
        let html_name = match prefix {
            Some(prefix) => format!("{prefix}-{}", field.name),
            None => field.name.to_string(),
        };
        let value = field.value;
        let choices = field
            .choices
            .map(|c| Value::from_serialize(&c))
            .unwrap_or(Value::UNDEFINED);
        names.insert(field.name.to_string(), true);
        map.insert(
            field.name.to_string(),
            minijinja::context! {
                name => field.name,
                auto_id => format!("id_{html_name}"),
                html_name => html_name,
                errors => errors.get(field.name).cloned().unwrap_or_default(),
                field => minijinja::context! { choices => choices },
                value => Value::from_function(move || value.clone()),
            },
        );
    }
    let non_field = errors.get(NON_FIELD).cloned().unwrap_or_default();
    map.insert("fields".into(), Value::from_serialize(&names));
    map.insert("errors".into(), Value::from_serialize(errors));
    map.insert("prefix".into(), Value::from(prefix));
    map.insert(
        "non_field_errors".into(),
        Value::from_function(move || Value::from_serialize(&non_field)),
    );
    Value::from(map)
}

/// An inline formset: the management form, the rows, the blank row the
/// "add" button copies, and the formset's own errors.
pub fn formset(
    prefix: &str,
    management: [(&'static str, Value); 4],
    forms: Vec<Value>,
    empty_form: Value,
    non_form_errors: Vec<String>,
) -> Value {
    let management = form(
        Some(prefix),
        management
            .into_iter()
            .map(|(name, value)| Field::new(name, value))
            .collect(),
        &Errors::new(),
    );
    minijinja::context! {
        prefix => prefix,
        management_form => management,
        forms => forms,
        empty_form => empty_form,
        non_form_errors => Value::from_function(move || Value::from_serialize(&non_form_errors)),
    }
}
