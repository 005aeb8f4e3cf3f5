//! Request bodies of forms, parsed once (URL-encoded or multipart) by the
//! CSRF middleware, which needs the token field before any handler runs;
//! handlers then take the parsed [`FormData`] as an extractor.

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::web::error::AppError;

/// The whole body may not exceed this (uploads included).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Django's `DATA_UPLOAD_MAX_MEMORY_SIZE`: the non-file part of a body.
pub const MAX_FIELDS_BYTES: usize = 2_621_440;
/// Django's `DATA_UPLOAD_MAX_NUMBER_FIELDS`.
pub const MAX_FIELDS: usize = 1000;
/// Django's `DATA_UPLOAD_MAX_NUMBER_FILES`.
pub const MAX_FILES: usize = 100;

#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// The fields of a submitted form, in order, and its files.
#[derive(Debug, Clone, Default)]
pub struct FormData {
    fields: Vec<(String, String)>,
    files: Vec<(String, UploadedFile)>,
}

impl FormData {
    /// The last value of a field, as Django's `QueryDict.get`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value trimmed, or "" when missing (Django's CharField cleaning).
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// A chosen file. A file part with no name and no content (what a
    /// browser sends when nothing was chosen) counts as no file.
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files
            .iter()
            .rev()
            .find(|(k, f)| k == name && !(f.filename.is_empty() && f.bytes.is_empty()))
            .map(|(_, f)| f)
    }

    /// Parses a body by its content type. Anything else is an empty form.
    pub async fn parse(headers: &HeaderMap, body: Bytes) -> Result<FormData, AppError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                if body.len() > MAX_FIELDS_BYTES {
                    return Err(fields_too_big());
                }
                let fields: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).map_err(|_| {
                        AppError::BadRequest("Форма пришла в повреждённом виде.".into())
                    })?;
                if fields.len() > MAX_FIELDS {
                    return Err(too_many_fields());
                }
                Ok(FormData {
                    fields,
                    files: Vec::new(),
                })
            }
            "multipart/form-data" => parse_multipart(content_type, body).await,
            _ => Ok(FormData::default()),
        }
    }
}

/// Django's `RequestDataTooBig`, `TooManyFieldsSent` and `TooManyFilesSent`
/// are `SuspiciousOperation`s: a 400 page.
fn fields_too_big() -> AppError {
    AppError::BadRequest(format!(
        "Поля формы занимают больше {MAX_FIELDS_BYTES} байт (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    ))
}

fn too_many_fields() -> AppError {
    AppError::BadRequest(format!(
        "В форме больше {MAX_FIELDS} полей (DATA_UPLOAD_MAX_NUMBER_FIELDS)."
    ))
}

fn too_many_files() -> AppError {
    AppError::BadRequest(format!(
        "В форме больше {MAX_FILES} файлов (DATA_UPLOAD_MAX_NUMBER_FILES)."
    ))
}

async fn parse_multipart(content_type: &str, body: Bytes) -> Result<FormData, AppError> {
    let malformed = || AppError::BadRequest("Форма пришла в повреждённом виде.".into());
    let boundary = multer::parse_boundary(content_type).map_err(|_| malformed())?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = FormData::default();
    let mut field_bytes = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(|_| malformed())? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.to_string());
        let bytes = field.bytes().await.map_err(|_| malformed())?;
        match filename {
            Some(_) if form.files.len() >= MAX_FILES => return Err(too_many_files()),
            Some(filename) => form.files.push((
                name,
                UploadedFile {
                    filename,
                    content_type,
                    bytes,
                },
            )),
            None => {
                field_bytes += bytes.len();
                if field_bytes > MAX_FIELDS_BYTES {
                    return Err(fields_too_big());
                }
                if form.fields.len() >= MAX_FIELDS {
                    return Err(too_many_fields());
                }
                let value = String::from_utf8(bytes.to_vec()).map_err(|_| malformed())?;
                form.fields.push((name, value));
            }
        }
    }
    Ok(form)
}

impl<S: Send + Sync> FromRequestParts<S> for FormData {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<FormData>()
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn urlencoded_and_multipart_bodies() {
        let form = FormData::parse(
            &headers("application/x-www-form-urlencoded"),
            Bytes::from("a=1&b=%D0%AF+x&a=2"),
        )
        .await
        .unwrap();
        assert_eq!(form.get("a"), Some("2"));
        assert_eq!(form.get("b"), Some("Я x"));
        assert_eq!(form.text("missing"), "");

        let body = "--XX\r\nContent-Disposition: form-data; name=\"first_name\"\r\n\r\nИван\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
                    Content-Type: image/png\r\n\r\nPNGDATA\r\n--XX--\r\n";
        let form = FormData::parse(
            &headers("multipart/form-data; boundary=XX"),
            Bytes::from(body),
        )
        .await
        .unwrap();
        assert_eq!(form.get("first_name"), Some("Иван"));
        assert!(
            form.file("avatar").is_none(),
            "an empty file part is no file"
        );
        assert_eq!(form.file("photo").unwrap().bytes.as_ref(), b"PNGDATA");

        let broken = FormData::parse(
            &headers("multipart/form-data; boundary=XX"),
            Bytes::from("garbage"),
        )
        .await;
        assert!(matches!(broken, Err(AppError::BadRequest(_))));
        let big = "a=".to_string() + &"x".repeat(MAX_FIELDS_BYTES);
        let too_big = FormData::parse(
            &headers("application/x-www-form-urlencoded"),
            Bytes::from(big),
        )
        .await;
        assert!(matches!(too_big, Err(AppError::BadRequest(_))));
        let many = vec!["a=1"; MAX_FIELDS + 1].join("&");
        let too_many = FormData::parse(
            &headers("application/x-www-form-urlencoded"),
            Bytes::from(many),
        )
        .await;
        assert!(matches!(too_many, Err(AppError::BadRequest(_))));
        let files: String = (0..=MAX_FILES)
            .map(|i| format!("--XX\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"a.png\"\r\n\r\nx\r\n"))
            .collect();
        let too_many_files = FormData::parse(
            &headers("multipart/form-data; boundary=XX"),
            Bytes::from(files + "--XX--\r\n"),
        )
        .await;
        assert!(matches!(too_many_files, Err(AppError::BadRequest(_))));
    }
}
