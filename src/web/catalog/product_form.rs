//! The product's own form, cleaned as Django's `ProductForm` (the owner's:
//! name, description, image, category, price) and `ProductModeratorForm`
//! (a moderator's: published, description, category) clean it. A form
//! reads only its own fields: anything else posted is ignored.

use crate::db::catalog::{Category, ModeratorFields, OwnerFields};
use crate::django::form_fields::{
    clean_char, clean_checkbox, clean_decimal, clean_text, parse_choice_id, INVALID_CHOICE,
};
use crate::web::form_data::{FormData, UploadedFile};
use crate::web::form_view::{cleaned, Errors};
use crate::web::media;

const NAME_MAX: usize = 100;
const PRICE_DIGITS: u32 = 10;
const PRICE_PLACES: u32 = 2;
/// `FileField(max_length=100)`: also the longest file name a form takes.
const IMAGE_NAME_MAX: usize = 100;

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
    let name = cleaned(
        &mut errors,
        "name",
        clean_char(form.get("name"), Some(NAME_MAX), true),
    );
    let (description, category_id) = clean_description_and_category(form, categories, &mut errors);
    let price = cleaned(
        &mut errors,
        "price",
        clean_decimal(form.get("price"), PRICE_DIGITS, PRICE_PLACES),
    );
    let image = cleaned(&mut errors, "image", clean_image(form).await);
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

/// The two fields both forms have.
fn clean_description_and_category(
    form: &FormData,
    categories: &[Category],
    errors: &mut Errors,
) -> (Option<String>, Option<Option<i64>>) {
    let description = cleaned(errors, "description", clean_text(form.get("description")));
    let category_id = cleaned(
        errors,
        "category",
        clean_category(form.get("category"), categories),
    );
    (description, category_id)
}

/// A category id that must name an existing category (or be empty).
fn clean_category(value: Option<&str>, categories: &[Category]) -> Result<Option<i64>, String> {
    match parse_choice_id(value)? {
        Some(id) if !categories.iter().any(|c| c.id == id) => Err(INVALID_CHOICE.to_string()),
        id => Ok(id),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owner_and_moderator_forms_read_only_their_fields() {
        let categories = [Category {
            id: 3,
            name: "c".into(),
        }];
        let data = FormData::from_fields(&[
            ("name", "  Телефон "),
            ("price", "13119"),
            ("category", "3"),
            ("description", ""),
            ("is_moderated", "on"),
        ]);
        let clean = clean_owner_form(&data, &categories).await.unwrap();
        assert_eq!(clean.fields.name, "Телефон");
        assert_eq!(clean.fields.price, "13119.00");
        assert_eq!(clean.fields.category_id, Some(3));
        assert_eq!(
            clean.fields.description, "",
            "a TextField keeps \"\", as Django"
        );
        assert!(matches!(clean.image, ImageInput::Keep));

        let data = FormData::from_fields(&[
            ("name", &"x".repeat(101)),
            ("price", "1"),
            ("category", "4"),
        ]);
        let errors = clean_owner_form(&data, &categories).await.err().unwrap();
        assert!(errors.contains_key("name") && errors.contains_key("category"));

        let data = FormData::from_fields(&[("is_moderated", "on"), ("price", "1"), ("name", "x")]);
        let clean = clean_moderator_form(&data, &categories).unwrap();
        assert!(clean.is_moderated);
        assert_eq!(clean.category_id, None);
    }
}
