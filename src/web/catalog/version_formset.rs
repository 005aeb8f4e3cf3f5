//! The product's versions formset, cleaned as Django's inline
//! `VersionFormSet` cleans it: the management form, then each row (a
//! version edited, deleted or added), then the rule of the whole formset,
//! one current version at most. What it finds is a list of changes for
//! `db::catalog`, or the errors to show beside the rows.

use std::collections::HashMap;

use crate::db::catalog::{Version, VersionChanges, VersionFields};
use crate::django::form_fields::{
    clean_char, clean_checkbox, clean_integer, parse_choice_id, INVALID_CHOICE, REQUIRED,
};
use crate::django::formsets::ManagementForm;
use crate::web::form_data::FormData;
use crate::web::form_view::{add_error, cleaned, Errors};

/// The formset's prefix: a row's fields are `versions-<index>-<field>`.
pub const VERSIONS_PREFIX: &str = "versions";
const VERSION_NAME_MAX: usize = 150;

/// The formset's own error when more than one version would be current.
pub const ONE_CURRENT_VERSION: &str = "Текущей может быть только одна версия.";

/// One submitted row, as read from the form.
pub struct Row<'a> {
    pub form: &'a FormData,
    pub index: usize,
}

impl<'a> Row<'a> {
    pub fn get(&self, field: &str) -> Option<&'a str> {
        self.form
            .get(&format!("{VERSIONS_PREFIX}-{}-{field}", self.index))
    }

    pub fn is_current(&self) -> bool {
        clean_checkbox(self.get("is_current"))
    }

    pub fn is_deleted(&self) -> bool {
        clean_checkbox(self.get("DELETE"))
    }

    /// An extra row nobody touched (`has_changed()` is false).
    fn is_blank(&self) -> bool {
        ["id", "version_number", "version_name"]
            .iter()
            .all(|f| self.get(f).unwrap_or("").is_empty())
            && !self.is_current()
            && !self.is_deleted()
    }
}

/// The submitted formset, cleaned: the changes it asks for, or its errors.
#[derive(Default)]
pub struct VersionFormset {
    /// One entry per submitted row, empty for a clean one.
    row_errors: Vec<Errors>,
    non_form_errors: Vec<String>,
    changes: VersionChanges,
}

impl VersionFormset {
    pub fn is_valid(&self) -> bool {
        self.non_form_errors.is_empty() && self.row_errors.iter().all(Errors::is_empty)
    }

    pub fn changes(&self) -> &VersionChanges {
        &self.changes
    }

    pub fn row_errors(&self) -> &[Errors] {
        &self.row_errors
    }

    pub fn non_form_errors(&self) -> &[String] {
        &self.non_form_errors
    }

    /// Adds a formset error found while saving (more than one current
    /// version once the rows not in the formset are counted).
    pub fn add_non_form_error(&mut self, message: impl Into<String>) {
        self.non_form_errors.push(message.into());
    }

    fn add_change(&mut self, change: Change) {
        match change {
            Change::Update(id, fields) => self.changes.update.push((id, fields)),
            Change::Delete(id) => self.changes.delete.push(id),
            Change::Create(fields) => self.changes.create.push(fields),
        }
    }
}

/// Cleans the versions formset of `product_id` against its `existing`
/// versions. `max_version_number` is the column's range on this database
/// (Django's `PositiveIntegerField` validator).
pub fn clean_version_formset(
    form: &FormData,
    product_id: i64,
    existing: &[Version],
    max_version_number: i64,
) -> VersionFormset {
    let mut formset = VersionFormset::default();
    let counts = match ManagementForm::clean(VERSIONS_PREFIX, |name| form.get(name)) {
        Ok(counts) => counts,
        Err(message) => {
            formset.add_non_form_error(message);
            return formset;
        }
    };
    let rules = RowRules {
        product_id,
        versions: existing.iter().map(|v| (v.id, v)).collect(),
        max_version_number,
    };
    let mut current = 0;
    for index in 0..counts.total {
        let row = rules.clean(&Row { form, index }, index < counts.initial);
        if row.counts_as_current {
            current += 1;
        }
        if let Some(change) = row.change {
            formset.add_change(change);
        }
        formset.row_errors.push(row.errors);
    }
    if current > 1 {
        formset.add_non_form_error(ONE_CURRENT_VERSION);
    }
    formset
}

/// A change one clean row asks for.
enum Change {
    Update(i64, VersionFields),
    Delete(i64),
    Create(VersionFields),
}

/// What cleaning one row finds.
#[derive(Default)]
struct CleanRow {
    errors: Errors,
    change: Option<Change>,
    /// Kept and marked current: it counts towards one current version.
    counts_as_current: bool,
}

/// What every row is checked against.
struct RowRules<'v> {
    product_id: i64,
    /// This product's versions, by id.
    versions: HashMap<i64, &'v Version>,
    max_version_number: i64,
}

impl<'v> RowRules<'v> {
    /// Cleans one row; an initial row edits one of the product's versions.
    fn clean(&self, row: &Row<'_>, is_initial: bool) -> CleanRow {
        if !is_initial && row.is_blank() {
            return CleanRow::default();
        }
        let mut errors = Errors::new();
        self.check_parent(row, &mut errors);
        let version = if is_initial {
            self.initial_version(row, &mut errors)
        } else {
            None
        };
        if row.is_deleted() {
            return deleted_row(version, errors);
        }
        let fields = self.clean_fields(row, &mut errors);
        let change = match fields {
            Some(fields) if errors.is_empty() => match version {
                Some(version) => {
                    is_changed(version, &fields).then_some(Change::Update(version.id, fields))
                }
                // An initial row without its version has an error.
                None => Some(Change::Create(fields)),
            },
            _ => None,
        };
        CleanRow {
            errors,
            change,
            counts_as_current: row.is_current(),
        }
    }

    /// The hidden parent key must be this product, if sent at all.
    fn check_parent(&self, row: &Row<'_>, errors: &mut Errors) {
        if let Some(parent) = row.get("product").filter(|p| !p.trim().is_empty()) {
            if parent.trim() != self.product_id.to_string() {
                add_error(
                    errors,
                    "product",
                    "Значение во вложенной форме не совпадает со значением в базовой форме.",
                );
            }
        }
    }

    /// The version an initial row edits: its id must be one of this
    /// product's versions.
    fn initial_version(&self, row: &Row<'_>, errors: &mut Errors) -> Option<&'v Version> {
        let version = parse_choice_id(row.get("id")).and_then(|id| match id {
            None => Err(REQUIRED.to_string()),
            Some(id) => self
                .versions
                .get(&id)
                .copied()
                .ok_or_else(|| INVALID_CHOICE.to_string()),
        });
        cleaned(errors, "id", version)
    }

    /// The row's fields, each cleaned as its model field.
    fn clean_fields(&self, row: &Row<'_>, errors: &mut Errors) -> Option<VersionFields> {
        let number = cleaned(
            errors,
            "version_number",
            clean_integer(row.get("version_number"), 0, self.max_version_number),
        );
        let name = cleaned(
            errors,
            "version_name",
            clean_char(row.get("version_name"), Some(VERSION_NAME_MAX), true),
        );
        Some(VersionFields {
            version_number: number?,
            version_name: name.flatten()?,
            is_current: row.is_current(),
        })
    }
}

/// A deleted row is not validated, but an id that is not one of this
/// product's versions is refused (Django skips it silently).
fn deleted_row(version: Option<&Version>, errors: Errors) -> CleanRow {
    let forged: Errors = errors
        .into_iter()
        .filter(|(field, messages)| field == "id" && messages.iter().any(|m| m == INVALID_CHOICE))
        .collect();
    CleanRow {
        errors: forged,
        change: version.map(|version| Change::Delete(version.id)),
        counts_as_current: false,
    }
}

/// Whether a row's clean fields differ from the version it edits.
fn is_changed(version: &Version, fields: &VersionFields) -> bool {
    version.version_number != fields.version_number
        || version.version_name != fields.version_name
        || version.is_current != fields.is_current
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn rows_become_creates_updates_and_deletes() {
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
        let data = FormData::from_fields(&pairs);
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

    #[test]
    fn forged_ids_two_current_and_bad_rows_are_refused() {
        let existing = [version(10, 1, false)];
        // Another product's version id in an initial row.
        let mut pairs = management("1", "1");
        pairs.extend([
            ("versions-0-id", "99"),
            ("versions-0-version_number", "1"),
            ("versions-0-version_name", "x"),
        ]);
        let data = FormData::from_fields(&pairs);
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
        let data = FormData::from_fields(&pairs);
        let formset = clean_version_formset(&data, 1, &[], 2_147_483_647);
        assert!(!formset.is_valid());
        assert_eq!(
            formset.non_form_errors,
            vec![ONE_CURRENT_VERSION.to_string()]
        );
        let row = &formset.row_errors[1];
        assert!(row.contains_key("version_number") && row.contains_key("version_name"));
        assert!(row.contains_key("product"));

        let data = FormData::from_fields(&[("versions-TOTAL_FORMS", "x")]);
        let formset = clean_version_formset(&data, 1, &[], i64::MAX);
        assert!(!formset.is_valid());
        assert!(formset.non_form_errors[0]
            .contains("Отсутствующие поля: versions-TOTAL_FORMS, versions-INITIAL_FORMS"));
    }
}
