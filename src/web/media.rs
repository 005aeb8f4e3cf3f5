//! Uploaded images stored as Django's `ImageField` with the default file
//! storage stores them: under `MEDIA_ROOT/<upload_to>/`, a cleaned file
//! name, a random suffix on clashes, and the relative path in the column.

use std::path::{Path, PathBuf};

use crate::django::crypto::{get_random_string, ASCII_LETTERS_AND_DIGITS};
use crate::web::error::AppError;
use crate::web::form_data::{FileReader, UploadedFile};

/// Largest accepted image.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// `FileField`'s default `max_length`.
const MAX_NAME_LENGTH: usize = 100;
/// Pillow's `Image.MAX_IMAGE_PIXELS`. Pillow only warns between this and
/// twice it; here it is the limit, so one decode holds at most ~360 MB.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;
/// Memory a decode may take: the pixels above at 4 bytes each.
const MAX_DECODE_BYTES: u64 = MAX_IMAGE_PIXELS * 4;

/// Django's `ImageField` message for a file Pillow cannot open.
pub const INVALID_IMAGE: &str = "Загрузите правильное изображение. Файл, который вы загрузили, поврежден или не является изображением.";

/// An accepted image format, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageKind {
    Jpeg,
    Png,
    Gif,
    Webp,
}

/// The extensions this site accepts, each with the format Pillow maps it
/// to (`Image.EXTENSION`), in the order Django's message lists them.
const EXTENSIONS: [(&str, ImageKind); 5] = [
    ("jpg", ImageKind::Jpeg),
    ("jpeg", ImageKind::Jpeg),
    ("png", ImageKind::Png),
    ("gif", ImageKind::Gif),
    ("webp", ImageKind::Webp),
];

/// At most one image is decoded at a time: a decode may take hundreds of
/// megabytes, and it is CPU work that must not starve the pages.
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Accepts only real images, as Django's `ImageField` with its
/// `validate_image_file_extension`: the whole file decodes (not just its
/// header) within the pixel and size limits, and its name ends in an
/// extension this site accepts for that same format, so a file stored here
/// is never served as anything but an image. The error is shown beside the
/// field.
pub async fn check_image(file: &UploadedFile) -> Result<(), String> {
    if file.size() > MAX_IMAGE_BYTES as u64 {
        return Err("Файл слишком большой: не больше 5 МБ.".into());
    }
    let upload = file.clone();
    let decoded = {
        let _permit = DECODES
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || decode(upload.open().ok()?)).await
    };
    let kind = decoded
        .map_err(|e| {
            tracing::error!("image decoding stopped: {e}");
            INVALID_IMAGE.to_string()
        })?
        .ok_or_else(|| INVALID_IMAGE.to_string())?;
    check_extension(&file.filename, kind)
}

/// The image's format when the whole file decodes within the limits.
/// Animations are checked by their first frame.
fn decode(content: Box<dyn FileReader>) -> Option<ImageKind> {
    use image::ImageDecoder;
    let mut reader = image::ImageReader::new(content)
        .with_guessed_format()
        .ok()?;
    let kind = match reader.format()? {
        image::ImageFormat::Jpeg => ImageKind::Jpeg,
        image::ImageFormat::Png => ImageKind::Png,
        image::ImageFormat::Gif => ImageKind::Gif,
        image::ImageFormat::WebP => ImageKind::Webp,
        _ => return None,
    };
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().ok()?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 || pixels > MAX_IMAGE_PIXELS || decoder.total_bytes() > MAX_DECODE_BYTES {
        return None;
    }
    let mut pixels = vec![0u8; usize::try_from(decoder.total_bytes()).ok()?];
    decoder.read_image(&mut pixels).ok()?;
    Some(kind)
}

/// `FileExtensionValidator` with this site's extensions (`Path.suffix`,
/// lower-cased), and the extension must name the format the content has.
fn check_extension(filename: &str, kind: ImageKind) -> Result<(), String> {
    let extension = suffix(filename).to_lowercase();
    match EXTENSIONS.iter().find(|(name, _)| *name == extension) {
        Some((_, named)) if *named == kind => Ok(()),
        Some(_) => Err(INVALID_IMAGE.to_string()),
        None => {
            let allowed: Vec<&str> = EXTENSIONS.iter().map(|(name, _)| *name).collect();
            Err(format!(
                "Расширение файлов “{extension}” не поддерживается. Разрешенные расширения: {}.",
                allowed.join(", ")
            ))
        }
    }
}

/// Python's `PurePath(name).suffix` without its dot: the last component's
/// text after its last dot, unless that dot leads the name or ends it.
fn suffix(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    match base.rfind('.') {
        Some(i) if i > 0 && i + 1 < base.len() => &base[i + 1..],
        _ => "",
    }
}

/// The content type `/media/` answers for a stored file, by its extension:
/// raster image types only (a file Django stored may have any extension
/// Pillow knows); anything else is not served.
pub fn served_content_type(path: &str) -> Option<&'static str> {
    Some(match suffix(path).to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "png" | "apng" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" | "dib" => "image/bmp",
        "ico" => "image/x-icon",
        "tif" | "tiff" => "image/tiff",
        _ => return None,
    })
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

/// A stored image as a template sees its `FieldFile`: `name` and `url`;
/// none when the column is empty.
pub fn image_value(image: Option<&str>) -> minijinja::Value {
    match image.filter(|name| !name.is_empty()) {
        Some(name) => minijinja::context! { name => name, url => url(name) },
        None => minijinja::Value::from(()),
    }
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
) -> Result<String, AppError> {
    let name = valid_filename(&file.filename);
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
                file.write_to(&mut out).await.map_err(|e| {
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
        UploadedFile::in_memory(name, None, Bytes::copy_from_slice(bytes))
    }

    #[tokio::test]
    async fn only_whole_images_with_their_own_extension_pass() {
        assert_eq!(check_image(&upload("a.png", PNG_1X1)).await, Ok(()));
        assert_eq!(check_image(&upload("A.PNG", PNG_1X1)).await, Ok(()));
        for (name, bytes) in [
            ("a.png", &b"not an image at all"[..]),
            ("a.png", &PNG_1X1[..12]),
            ("a.png", &PNG_1X1[..40]),
            ("a.gif", PNG_1X1),
            ("a.jpg", PNG_1X1),
        ] {
            assert_eq!(
                check_image(&upload(name, bytes)).await,
                Err(INVALID_IMAGE.to_string()),
                "{name}, {} bytes",
                bytes.len()
            );
        }
        assert_eq!(
            check_image(&upload("a.svg", PNG_1X1)).await,
            Err("Расширение файлов “svg” не поддерживается. Разрешенные расширения: jpg, jpeg, png, gif, webp.".to_string())
        );
    }

    #[test]
    fn extensions_are_python_path_suffixes() {
        for (name, expected) in [
            ("a.png", "png"),
            ("a.tar.gz", "gz"),
            (".png", ""),
            ("a.", ""),
            ("a", ""),
            ("..png", "png"),
            ("dir.x/a", ""),
            ("dir/a.PNG", "PNG"),
        ] {
            assert_eq!(suffix(name), expected, "{name}");
        }
    }

    #[test]
    fn only_raster_images_are_served() {
        assert_eq!(served_content_type("products/a.JPG"), Some("image/jpeg"));
        assert_eq!(
            served_content_type("users/avatars/a.webp"),
            Some("image/webp")
        );
        for path in ["a.html", "a.svg", "a.js", "a", "a.png/", ".png"] {
            assert_eq!(served_content_type(path), None, "{path}");
        }
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
        let first = save_upload(dir.path(), "users/avatars", &file)
            .await
            .unwrap();
        let second = save_upload(dir.path(), "users/avatars", &file)
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
