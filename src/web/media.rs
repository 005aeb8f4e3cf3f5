//! Uploaded images stored as Django's `ImageField` with the default file
//! storage stores them: under `MEDIA_ROOT/<upload_to>/`, a cleaned file
//! name, a random suffix on clashes, and the relative path in the column.

use std::path::{Path, PathBuf};

use crate::django::crypto::{get_random_string, ASCII_LETTERS_AND_DIGITS};
use crate::web::error::AppError;
use crate::web::form::UploadedFile;

/// Largest accepted image.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// `FileField`'s default `max_length`.
const MAX_NAME_LENGTH: usize = 100;

/// An accepted image format, by its content (never by the file's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    Webp,
}

/// Accepts only real images: a known format whose header parses to sane
/// dimensions, within the size limit. The error is shown beside the field.
pub fn check_image(file: &UploadedFile) -> Result<ImageKind, String> {
    if file.bytes.len() > MAX_IMAGE_BYTES {
        return Err("Файл слишком большой: не больше 5 МБ.".into());
    }
    let not_image = || {
        "Загрузите правильное изображение. Файл, который вы загрузили, не является изображением или повреждён.".to_string()
    };
    let kind = match imagesize::image_type(&file.bytes).map_err(|_| not_image())? {
        imagesize::ImageType::Jpeg => ImageKind::Jpeg,
        imagesize::ImageType::Png => ImageKind::Png,
        imagesize::ImageType::Gif => ImageKind::Gif,
        imagesize::ImageType::Webp => ImageKind::Webp,
        _ => return Err(not_image()),
    };
    let size = imagesize::blob_size(&file.bytes).map_err(|_| not_image())?;
    if size.width == 0 || size.height == 0 {
        return Err(not_image());
    }
    Ok(kind)
}

/// The address of a stored file, as `FileSystemStorage.url`: under
/// `/media/`, quoted as Django's `filepath_to_uri` quotes.
pub fn url(name: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'~')
        .remove(b'!')
        .remove(b'*')
        .remove(b'(')
        .remove(b')')
        .remove(b'\'')
        .remove(b'_')
        .remove(b'.')
        .remove(b'-');
    let path = name.replace('\\', "/");
    format!(
        "/media/{}",
        percent_encoding::utf8_percent_encode(path.trim_start_matches('/'), KEEP)
    )
}

/// Django's `get_valid_filename`: spaces to underscores, only `[-\w.]` kept.
pub fn valid_filename(name: &str) -> String {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim()
        .replace(' ', "_");
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "image".to_string()
    } else {
        cleaned
    }
}

fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Saves an upload under `media_root/upload_to/` and returns the value for
/// the column (`upload_to/name`). A taken name gets `_` and seven random
/// characters before the extension, as Django's `get_available_name`; a
/// name too long for the column is shortened first.
pub async fn save_upload(
    media_root: &Path,
    upload_to: &str,
    file: &UploadedFile,
    kind: ImageKind,
) -> Result<String, AppError> {
    let mut name = valid_filename(&file.filename);
    if split_extension(&name).1.is_empty() {
        name.push_str(match kind {
            ImageKind::Jpeg => ".jpg",
            ImageKind::Png => ".png",
            ImageKind::Gif => ".gif",
            ImageKind::Webp => ".webp",
        });
    }
    let folder: PathBuf = media_root.join(upload_to);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| AppError::Internal(format!("cannot create {}: {e}", folder.display())))?;
    let mut candidate = fit(upload_to, &name, "");
    loop {
        let path = media_root.join(&candidate);
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(mut out) => {
                use tokio::io::AsyncWriteExt;
                // tokio's File buffers: flush before it is dropped, or bytes are lost.
                let written = async {
                    out.write_all(&file.bytes).await?;
                    out.flush().await
                };
                written.await.map_err(|e| {
                    AppError::Internal(format!("cannot write {}: {e}", path.display()))
                })?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let suffix = format!("_{}", get_random_string(7, ASCII_LETTERS_AND_DIGITS));
                candidate = fit(upload_to, &name, &suffix);
            }
            Err(e) => {
                return Err(AppError::Internal(format!(
                    "cannot write {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

/// `upload_to/stem<suffix>.ext`, the stem cut so the whole fits the column.
fn fit(upload_to: &str, name: &str, suffix: &str) -> String {
    let (stem, extension) = split_extension(name);
    let fixed = upload_to.len() + 1 + suffix.len() + extension.len();
    let room = MAX_NAME_LENGTH.saturating_sub(fixed).max(1);
    let stem: String = stem.chars().take(room).collect();
    format!("{upload_to}/{stem}{suffix}{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    const PNG_1X1: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0A, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0,
        0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    fn upload(name: &str, bytes: &[u8]) -> UploadedFile {
        UploadedFile {
            filename: name.into(),
            content_type: None,
            bytes: Bytes::copy_from_slice(bytes),
        }
    }

    #[test]
    fn only_images_pass() {
        assert_eq!(check_image(&upload("a.png", PNG_1X1)), Ok(ImageKind::Png));
        assert!(check_image(&upload("a.png", b"not an image at all")).is_err());
        assert!(
            check_image(&upload("a.png", &PNG_1X1[..12])).is_err(),
            "a truncated header is refused"
        );
    }

    #[test]
    fn urls_are_quoted_like_django() {
        assert_eq!(url("products/a b(1).png"), "/media/products/a%20b(1).png");
        assert_eq!(
            url("products/ава.jpg"),
            "/media/products/%D0%B0%D0%B2%D0%B0.jpg"
        );
    }

    #[test]
    fn names_are_cleaned_like_django() {
        assert_eq!(
            valid_filename("../../etc/my photo (1).png"),
            "my_photo_1.png"
        );
        assert_eq!(valid_filename("ава тар.jpg"), "ава_тар.jpg");
        assert_eq!(valid_filename("..."), "...");
        assert_eq!(fit("users/avatars", &"x".repeat(200), "").len(), 100);
    }

    #[tokio::test]
    async fn clashing_names_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let file = upload("me.png", PNG_1X1);
        let first = save_upload(dir.path(), "users/avatars", &file, ImageKind::Png)
            .await
            .unwrap();
        let second = save_upload(dir.path(), "users/avatars", &file, ImageKind::Png)
            .await
            .unwrap();
        assert_eq!(first, "users/avatars/me.png");
        assert!(
            second.starts_with("users/avatars/me_")
                && second.ends_with(".png")
                && second.len() == first.len() + 8,
            "{second}"
        );
        assert_eq!(std::fs::read(dir.path().join(&second)).unwrap(), PNG_1X1);
    }
}
