//! Request bodies of forms, parsed once (URL-encoded or multipart) by the
//! request pipeline, whose CSRF check needs the token field before any
//! handler runs; handlers then take the parsed [`FormData`] as an extractor.
//!
//! A body is parsed as it arrives, as Django's upload handlers do: fields
//! are held in memory up to `DATA_UPLOAD_MAX_MEMORY_SIZE`; files too when
//! the whole body is at most `FILE_UPLOAD_MAX_MEMORY_SIZE` (decided on its
//! `Content-Length`, as `MemoryFileUploadHandler` decides), and otherwise
//! written to temporary files as they come (`TemporaryFileUploadHandler`),
//! so a large upload costs disk, not memory.

use std::io::{BufRead, Seek};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::web::body::BodyReader;
use crate::web::error::AppError;

/// A file of a submitted form.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub filename: String,
    pub content_type: Option<String>,
    size: u64,
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Memory(Bytes),
    /// Deleted when the last clone of the form is dropped.
    Disk(Arc<tempfile::NamedTempFile>),
}

/// What [`UploadedFile::open`] reads with: an image decoder needs both.
pub trait FileReader: BufRead + Seek + Send {}
impl<T: BufRead + Seek + Send> FileReader for T {}

impl UploadedFile {
    pub fn in_memory(filename: &str, content_type: Option<&str>, bytes: Bytes) -> UploadedFile {
        UploadedFile {
            filename: filename.to_string(),
            content_type: content_type.map(str::to_string),
            size: bytes.len() as u64,
            content: Content::Memory(bytes),
        }
    }

    /// The content's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the content from its start. Blocking for a file on disk: call
    /// it on a blocking thread.
    pub fn open(&self) -> std::io::Result<Box<dyn FileReader>> {
        Ok(match &self.content {
            Content::Memory(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
            Content::Disk(file) => Box::new(std::io::BufReader::new(file.reopen()?)),
        })
    }

    /// Writes the content to `out`.
    pub async fn write_to(&self, out: &mut tokio::fs::File) -> std::io::Result<()> {
        match &self.content {
            Content::Memory(bytes) => out.write_all(bytes).await?,
            Content::Disk(file) => {
                let mut from = tokio::fs::File::from_std(file.reopen()?);
                tokio::io::copy(&mut from, out).await?;
            }
        }
        // tokio's File buffers: flush before it is dropped, or bytes are lost.
        out.flush().await
    }
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

    /// The value stripped as Python strips it, or "" when missing
    /// (Django's CharField cleaning).
    pub fn text(&self, name: &str) -> String {
        crate::django::form_fields::python_strip(self.get(name).unwrap_or("")).to_string()
    }

    /// A form of these fields and no files, as a test submits it.
    #[cfg(test)]
    pub fn from_fields(fields: &[(&str, &str)]) -> FormData {
        FormData {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            files: Vec::new(),
        }
    }

    /// A chosen file. A file part with no name and no content (what a
    /// browser sends when nothing was chosen) counts as no file.
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files
            .iter()
            .rev()
            .find(|(k, f)| k == name && !(f.filename.is_empty() && f.size == 0))
            .map(|(_, f)| f)
    }

    /// Reads and parses a body by its content type; any other type is an
    /// empty form. What is left of the body after an error is drained, so
    /// the client gets the answer.
    pub async fn read(
        headers: &HeaderMap,
        body: Body,
        limits: &UploadLimits,
    ) -> Result<FormData, AppError> {
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
        let content_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut reader = BodyReader::new(body);
        let parsed = match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                read_urlencoded(&mut reader, content_length, limits).await
            }
            "multipart/form-data" => {
                let files_in_memory =
                    content_length.is_some_and(|n| n <= limits.file_max_memory as u64);
                read_multipart(content_type, &mut reader, files_in_memory, limits).await
            }
            _ => Ok(FormData::default()),
        };
        reader.drain().await;
        parsed
    }
}

fn malformed() -> AppError {
    AppError::BadRequest("Форма пришла в повреждённом виде.".into())
}

/// A multipart body the parser refuses (logged: a client's bug or an
/// attack, never the server's).
fn broken_part(e: multer::Error) -> AppError {
    tracing::debug!("malformed multipart body: {e}");
    malformed()
}

/// Django's `RequestDataTooBig`, `TooManyFieldsSent` and `TooManyFilesSent`
/// are `SuspiciousOperation`s: a 400 page.
fn fields_too_big(limit: usize) -> AppError {
    AppError::BadRequest(format!(
        "Поля формы занимают больше {limit} байт (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    ))
}

fn too_many_fields(limit: usize) -> AppError {
    AppError::BadRequest(format!(
        "В форме больше {limit} полей (DATA_UPLOAD_MAX_NUMBER_FIELDS)."
    ))
}

fn too_many_files(limit: usize) -> AppError {
    AppError::BadRequest(format!(
        "В форме больше {limit} файлов (DATA_UPLOAD_MAX_NUMBER_FILES)."
    ))
}

/// Fails when `count` is past an optional limit.
fn within(
    count: usize,
    limit: Option<usize>,
    error: fn(usize) -> AppError,
) -> Result<(), AppError> {
    match limit {
        Some(limit) if count > limit => Err(error(limit)),
        _ => Ok(()),
    }
}

async fn read_urlencoded(
    reader: &mut BodyReader,
    content_length: Option<u64>,
    limits: &UploadLimits,
) -> Result<FormData, AppError> {
    // Django refuses a declared length past the limit before reading.
    if let (Some(length), Some(limit)) = (content_length, limits.data_max_memory) {
        within(length as usize, Some(limit), fields_too_big)?;
    }
    let mut body = Vec::new();
    while let Some(chunk) = reader.chunk().await? {
        body.extend_from_slice(&chunk);
        within(body.len(), limits.data_max_memory, fields_too_big)?;
    }
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| malformed())?;
    within(fields.len(), limits.max_fields, too_many_fields)?;
    Ok(FormData {
        fields,
        files: Vec::new(),
    })
}

async fn read_multipart(
    content_type: &str,
    reader: &mut BodyReader,
    files_in_memory: bool,
    limits: &UploadLimits,
) -> Result<FormData, AppError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| malformed())?;
    let meter = Arc::new(Meter::default());
    let chunks = futures_util::stream::unfold(&mut *reader, |reader| async move {
        match reader.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), reader)),
            Ok(None) => None,
            Err(e) => Some((Err(e.to_string()), reader)),
        }
    });
    let parsed = parse_parts(
        multer::Multipart::new(Metered::new(chunks, meter.clone()), boundary),
        &meter,
        files_in_memory,
        limits,
    )
    .await;
    // The parser sees a body that failed as a broken form: answer with
    // what really happened (too large, stalled).
    match (parsed, reader.failure()) {
        (Err(_), Some(failure)) => Err(failure.into()),
        (parsed, _) => parsed,
    }
}

/// The most the multipart parser may hold beyond the part data it handed
/// back: a few chunks (it reads one more each time it looks at its
/// stream, needed or not, and it looks up to three times for one part),
/// and room for a part's boundary and headers.
const MAX_HELD: usize = 4 * crate::web::body::MAX_CHUNK + 64 * 1024;
/// Counted as taken for each part: its boundary line and headers.
const PART_HEAD_ALLOWANCE: usize = 1024;

/// What the parser was given and what it handed back. multer keeps what it
/// is given in one buffer until it finds what it looks for: a boundary
/// that never comes, or part headers that never end, would keep a whole
/// body in memory (a hundred 10 MB posts took a gigabyte).
#[derive(Default)]
struct Meter {
    given: AtomicUsize,
    taken: AtomicUsize,
}

impl Meter {
    fn took(&self, bytes: usize) {
        self.taken.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The body's chunks as the parser reads them: one per turn (multer reads
/// for as long as chunks are ready, so a fast client would fill its buffer
/// before any part is handled), and none once the parser holds more than
/// [`MAX_HELD`].
struct Metered<S> {
    chunks: std::pin::Pin<Box<S>>,
    meter: Arc<Meter>,
    handed_one: bool,
}

impl<S> Metered<S> {
    fn new(chunks: S, meter: Arc<Meter>) -> Metered<S> {
        Metered {
            chunks: Box::pin(chunks),
            meter,
            handed_one: false,
        }
    }
}

impl<S: futures_util::Stream<Item = Result<Bytes, String>>> futures_util::Stream for Metered<S> {
    type Item = Result<Bytes, String>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if std::mem::take(&mut self.handed_one) {
            // Let the parser use what it has; poll again right after.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let given = self.meter.given.load(Ordering::Relaxed);
        if given.saturating_sub(self.meter.taken.load(Ordering::Relaxed)) > MAX_HELD {
            return Poll::Ready(Some(Err(
                "a boundary or part headers longer than any form sends".into(),
            )));
        }
        let next = self.chunks.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &next {
            self.meter.given.fetch_add(chunk.len(), Ordering::Relaxed);
            self.handed_one = true;
        }
        next
    }
}

async fn parse_parts(
    mut multipart: multer::Multipart<'_>,
    meter: &Meter,
    files_in_memory: bool,
    limits: &UploadLimits,
) -> Result<FormData, AppError> {
    let mut form = FormData::default();
    let mut field_bytes = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(broken_part)? {
        meter.took(PART_HEAD_ALLOWANCE);
        let name = field.name().unwrap_or("").to_string();
        match field.file_name().map(str::to_string) {
            Some(filename) => {
                within(form.files.len() + 1, limits.max_files, too_many_files)?;
                let content_type = field.content_type().map(|m| m.to_string());
                let mut sink = if files_in_memory {
                    FileSink::Memory(Vec::new())
                } else {
                    FileSink::Disk(None)
                };
                while let Some(chunk) = field.chunk().await.map_err(broken_part)? {
                    meter.took(chunk.len());
                    sink.write(&chunk, limits).await?;
                }
                let (size, content) = sink.finish().await?;
                form.files.push((
                    name,
                    UploadedFile {
                        filename,
                        content_type,
                        size,
                        content,
                    },
                ));
            }
            None => {
                within(form.fields.len() + 1, limits.max_fields, too_many_fields)?;
                let mut value = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(broken_part)? {
                    meter.took(chunk.len());
                    field_bytes += chunk.len();
                    within(field_bytes, limits.data_max_memory, fields_too_big)?;
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(value).map_err(|_| malformed())?;
                form.fields.push((name, value));
            }
        }
    }
    Ok(form)
}

/// Where a file part's content goes as it arrives: memory, or a temporary
/// file made at its first byte.
enum FileSink {
    Memory(Vec<u8>),
    Disk(Option<(tempfile::NamedTempFile, tokio::fs::File, u64)>),
}

fn cannot_keep(e: std::io::Error) -> AppError {
    AppError::Internal(format!("cannot keep an upload: {e}"))
}

impl FileSink {
    async fn write(&mut self, chunk: &[u8], limits: &UploadLimits) -> Result<(), AppError> {
        match self {
            FileSink::Memory(bytes) => bytes.extend_from_slice(chunk),
            FileSink::Disk(spooled) => {
                if spooled.is_none() {
                    let temp = match &limits.temp_dir {
                        Some(dir) => tempfile::NamedTempFile::new_in(dir),
                        None => tempfile::NamedTempFile::new(),
                    }
                    .map_err(cannot_keep)?;
                    let writer = temp.as_file().try_clone().map_err(cannot_keep)?;
                    *spooled = Some((temp, tokio::fs::File::from_std(writer), 0));
                }
                if let Some((_, writer, size)) = spooled {
                    writer.write_all(chunk).await.map_err(cannot_keep)?;
                    *size += chunk.len() as u64;
                }
            }
        }
        Ok(())
    }

    /// The size and the content (an empty part keeps no file).
    async fn finish(self) -> Result<(u64, Content), AppError> {
        Ok(match self {
            FileSink::Memory(bytes) => (bytes.len() as u64, Content::Memory(bytes.into())),
            FileSink::Disk(None) => (0, Content::Memory(Bytes::new())),
            FileSink::Disk(Some((temp, mut writer, size))) => {
                writer.flush().await.map_err(cannot_keep)?;
                (size, Content::Disk(Arc::new(temp)))
            }
        })
    }
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
    use std::io::Read;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn urlencoded_and_multipart_bodies() {
        let form = FormData::read(
            &headers("application/x-www-form-urlencoded"),
            Body::from("a=1&b=%D0%AF+x&a=2"),
            &UploadLimits::default(),
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
        let form = FormData::read(
            &headers("multipart/form-data; boundary=XX"),
            Body::from(body),
            &UploadLimits::default(),
        )
        .await
        .unwrap();
        assert_eq!(form.get("first_name"), Some("Иван"));
        assert!(
            form.file("avatar").is_none(),
            "an empty file part is no file"
        );
        assert_eq!(content(form.file("photo").unwrap()), b"PNGDATA");

        let broken = FormData::read(
            &headers("multipart/form-data; boundary=XX"),
            Body::from("garbage"),
            &UploadLimits::default(),
        )
        .await;
        assert!(matches!(broken, Err(AppError::BadRequest(_))));
        let big = "a=".to_string() + &"x".repeat(2_621_440);
        let too_big = FormData::read(
            &headers("application/x-www-form-urlencoded"),
            Body::from(big),
            &UploadLimits::default(),
        )
        .await;
        assert!(matches!(too_big, Err(AppError::BadRequest(_))));
        let many = vec!["a=1"; 1001].join("&");
        let too_many = FormData::read(
            &headers("application/x-www-form-urlencoded"),
            Body::from(many),
            &UploadLimits::default(),
        )
        .await;
        assert!(matches!(too_many, Err(AppError::BadRequest(_))));
        let files: String = (0..=100)
            .map(|i| format!("--XX\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"a.png\"\r\n\r\nx\r\n"))
            .collect();
        let too_many_files = FormData::read(
            &headers("multipart/form-data; boundary=XX"),
            Body::from(files + "--XX--\r\n"),
            &UploadLimits::default(),
        )
        .await;
        assert!(matches!(too_many_files, Err(AppError::BadRequest(_))));
    }

    fn content(file: &UploadedFile) -> Vec<u8> {
        let mut bytes = Vec::new();
        file.open().unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[tokio::test]
    async fn files_of_large_bodies_go_to_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = UploadLimits {
            file_max_memory: 1000,
            temp_dir: Some(dir.path().into()),
            ..UploadLimits::default()
        };
        let temporary_files = || std::fs::read_dir(dir.path()).unwrap().count();
        for (size, on_disk) in [(10, false), (5000, true)] {
            let body = format!(
                "--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\n\r\n{}\r\n--XX--\r\n",
                "x".repeat(size)
            );
            let mut h = headers("multipart/form-data; boundary=XX");
            h.insert(header::CONTENT_LENGTH, body.len().into());
            let form = FormData::read(&h, Body::from(body), &limits).await.unwrap();
            let file = form.file("f").unwrap();
            assert_eq!(file.size(), size as u64);
            assert_eq!(content(file), "x".repeat(size).as_bytes());
            assert_eq!(temporary_files(), usize::from(on_disk), "{size} bytes");
            drop(form);
            assert_eq!(temporary_files(), 0, "deleted with the form");
        }
    }

    #[tokio::test]
    async fn limits_set_to_none_are_off() {
        let limits = UploadLimits {
            max_fields: None,
            data_max_memory: None,
            ..UploadLimits::default()
        };
        let many = vec!["a=1"; 5000].join("&") + &format!("&b={}", "x".repeat(3_000_000));
        let form = FormData::read(
            &headers("application/x-www-form-urlencoded"),
            Body::from(many),
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(form.get("b").map(str::len), Some(3_000_000));
    }
}
