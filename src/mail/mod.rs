//! E-mail: the message, the back ends Django's `EMAIL_BACKEND` selects (SMTP,
//! console, file) and, in [`worker`], the loop that sends the outbox.
//!
//! Nothing is sent directly: a letter is stored in the outbox
//! ([`crate::db::outbox::enqueue`]) in the transaction of the change that
//! causes it, and the worker delivers it, retrying until it goes through;
//! a letter to an address that can never be sent is given up instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{EmailBackend, EmailSettings};
use crate::django::email_validator::validate_email;

pub mod worker;

pub use worker::{
    deliver, deliver_due, retry_delay, spawn_worker, Delivery, MailCounters, MailerHandle,
};

/// Django's `EMAIL_TIMEOUT` is None (wait forever); a worker that hangs on a
/// dead server would hold its letters, so every SMTP connect, read and write
/// here gives up after this long.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the console and file back ends write after each message, as Django's.
pub const SEPARATOR: &str =
    "-------------------------------------------------------------------------------";

/// The letter type is the outbox's (the database layer stores it and knows
/// nothing of mail); sending it is this module's.
pub use crate::db::outbox::Email;

impl Email {
    /// A letter to `to`, which must be one e-mail address.
    pub fn new(
        to: impl Into<String>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Result<Email, MailError> {
        let email = Email {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        };
        email.recipient()?;
        Ok(email)
    }

    /// The address to send to: one Django's `validate_email` takes and
    /// lettre reads (lettre refuses some Django takes, such as a domain
    /// label that is no IDNA one). Else no attempt can ever send the letter.
    fn recipient(&self) -> Result<Mailbox, MailError> {
        let to = self.to.trim();
        if !validate_email(to) {
            return Err(MailError::Address(self.to.clone()));
        }
        match to.parse::<lettre::Address>() {
            Ok(address) => Ok(Mailbox::new(None, address)),
            Err(_) => Err(MailError::Address(self.to.clone())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("not an e-mail address: {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("{}", chain(.0))]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("cannot write {}: {error}", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write to the console: {0}")]
    Console(std::io::Error),
}

impl MailError {
    /// Whether sending the letter again can never succeed: the recipient's
    /// address is none a letter can go to ([`Email::new`] refuses it).
    /// Anything else (a server away, a refused login, a full disk) may pass.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Address(_))
    }
}

/// An error and its causes on one line: lettre's own message is terse
/// ("Connection error"), the cause says what happened (an unknown issuer, a
/// refused connection).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup(); // lettre repeats its kind ("Connection error: Connection error: ...")
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// This machine's name, as Python's `socket.gethostname()`.
pub fn hostname() -> String {
    match ClientId::default() {
        ClientId::Domain(name) => name,
        other => other.to_string(),
    }
}

/// The RFC 5322 message Django's `EmailMessage` makes for a plain-text
/// letter: From, To, Subject (RFC 2047 encoded-words when not ASCII), Date,
/// Message-ID, MIME-Version, `text/plain; charset=utf-8`, and the body in
/// `7bit` when ASCII, else `8bit`, or quoted-printable when a line is too
/// long for SMTP (Django's choice, #22561).
pub fn build_message(from: &Mailbox, email: &Email) -> Result<Message, MailError> {
    let body = django_body(&email.body);
    Ok(Message::builder()
        .from(from.clone())
        .to(email.recipient()?)
        .subject(email.subject.clone())
        .date_now()
        .message_id(None)
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        // The body exactly as given: lettre's single parts add a line break.
        .body(body)?)
}

/// RFC 5322's limit on a line, which Django's `SafeMIMEText` checks.
const LINE_LENGTH_LIMIT: usize = 998;

/// The body as Django encodes `text/plain; charset=utf-8`: `7bit` or `8bit`
/// with CRLF line ends when every line fits in 998 bytes (lettre on its own
/// would switch to quoted-printable or base64 past 76), quoted-printable
/// otherwise.
fn django_body(text: &str) -> Body {
    let lines: Vec<&str> = text
        .split("\r\n")
        .flat_map(|l| l.split(['\r', '\n']))
        .collect();
    let fits = lines.iter().all(|l| l.len() <= LINE_LENGTH_LIMIT) && !text.contains('\0');
    if !fits {
        return Body::new_with_encoding(text.to_string(), ContentTransferEncoding::QuotedPrintable)
            .expect("quoted-printable encodes anything");
    }
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(lines.join("\r\n").into_bytes(), encoding)
}

/// The message as Django's console and file back ends write it: the message
/// text with `\n` line ends (Python's `as_bytes()`), a newline, 79 dashes
/// and a newline.
pub fn log_text(message: &Message) -> String {
    let text = String::from_utf8_lossy(&message.formatted()).replace("\r\n", "\n");
    format!("{text}\n{SEPARATOR}\n")
}

/// The bytes given to SMTP's DATA. lettre always writes `\r\n.\r\n` after
/// them, where Python's smtplib adds the first `\r\n` only when the message
/// does not end with one; dropping a final line break here makes the
/// delivered message the one Django would deliver, byte for byte.
pub fn smtp_data(message: &Message) -> Vec<u8> {
    let mut data = message.formatted();
    if data.ends_with(b"\r\n") {
        data.truncate(data.len() - 2);
    }
    data
}

/// Django's filebased back end names its file `%Y%m%d-%H%M%S-<id(self)>.log`
/// in local time; the number here is random, and the file is made with
/// `create_new`, so two letters never share one.
pub fn log_file_name(now: chrono::DateTime<chrono::Local>, number: u64) -> String {
    format!("{}-{number}.log", now.format("%Y%m%d-%H%M%S"))
}

enum Backend {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Console,
    File(PathBuf),
}

/// The configured back end and the sender, ready to send.
pub struct Mailer {
    from: Mailbox,
    backend: Backend,
    /// `EmailSettings::outbox_backend`: the letters of the outbox it sends.
    outbox_backend: String,
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> Result<Mailer, MailError> {
        let from = settings
            .default_from
            .parse::<Mailbox>()
            .map_err(|_| MailError::Address(settings.default_from.clone()))?;
        let backend = match &settings.backend {
            EmailBackend::Console => Backend::Console,
            EmailBackend::File(path) => Backend::File(path.clone()),
            EmailBackend::Smtp => Backend::Smtp(smtp_transport(settings)?),
        };
        Ok(Mailer {
            from,
            backend,
            outbox_backend: settings.outbox_backend(),
        })
    }

    /// Which letters of the outbox this mailer sends (those queued for it).
    pub fn outbox_backend(&self) -> &str {
        &self.outbox_backend
    }

    /// Says goodbye (QUIT) on the SMTP connections kept for reuse. The
    /// mailer sends nothing afterwards.
    pub async fn close(&self) {
        if let Backend::Smtp(transport) = &self.backend {
            transport.shutdown().await;
        }
    }

    /// Sends one letter through the configured back end.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = build_message(&self.from, email)?;
        match &self.backend {
            Backend::Smtp(transport) => {
                transport
                    .send_raw(message.envelope(), &smtp_data(&message))
                    .await?;
            }
            Backend::Console => {
                use std::io::Write;
                // One write of the whole text, so letters never interleave.
                let mut out = std::io::stdout().lock();
                out.write_all(log_text(&message).as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(MailError::Console)?;
            }
            Backend::File(dir) => write_log_file(dir, &log_text(&message)).await?,
        }
        Ok(())
    }
}

/// SMTP as Django's back end speaks it: implicit TLS with `EMAIL_USE_SSL`,
/// STARTTLS (required) with `EMAIL_USE_TLS`, plain otherwise; a login when
/// both user and password are set. Certificates are verified against the
/// system roots, or the PEM file named by `SSL_CERT_FILE` when set.
fn smtp_transport(
    settings: &EmailSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(SMTP_TIMEOUT));
    if settings.use_ssl || settings.use_tls {
        let parameters = TlsParameters::new(settings.host.clone())?;
        builder = builder.tls(if settings.use_ssl {
            Tls::Wrapper(parameters)
        } else {
            Tls::Required(parameters)
        });
    }
    if !settings.host_user.is_empty() && !settings.host_password.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.host_user.clone(),
            settings.host_password.to_string(),
        ));
    }
    Ok(builder.build())
}

async fn write_log_file(dir: &Path, text: &str) -> Result<(), MailError> {
    let fail = |path: &Path, error| MailError::File {
        path: path.to_path_buf(),
        error,
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| fail(dir, e))?;
    loop {
        // A number the size of a CPython id(), as Django's names carry.
        let number = rand::random::<u64>() >> 17;
        let path = dir.join(log_file_name(chrono::Local::now(), number));
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(mut file) => {
                use tokio::io::AsyncWriteExt;
                file.write_all(text.as_bytes())
                    .await
                    .map_err(|e| fail(&path, e))?;
                return file.flush().await.map_err(|e| fail(&path, e));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "Каталог <shop@example.com>".parse().unwrap()
    }

    fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        let head = text.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
    }

    #[test]
    fn plain_ascii_letter_has_django_headers() {
        let email = Email::new(
            "ivan@example.com",
            "Test email from host on 2026-11-25",
            "If you're reading this, it was successful.",
        )
        .unwrap();
        let message = build_message(&"shop@example.com".parse().unwrap(), &email).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert_eq!(header(&text, "From"), Some("shop@example.com"));
        assert_eq!(header(&text, "To"), Some("ivan@example.com"));
        assert_eq!(
            header(&text, "Subject"),
            Some("Test email from host on 2026-11-25")
        );
        assert_eq!(header(&text, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&text, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&text, "Content-Transfer-Encoding"), Some("7bit"));
        let date = header(&text, "Date").expect("a Date header");
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
        let id = header(&text, "Message-ID").expect("a Message-ID header");
        assert!(
            id.starts_with('<') && id.ends_with('>') && id.contains('@'),
            "{id}"
        );
        assert!(text.ends_with("\r\n\r\nIf you're reading this, it was successful."));
        assert_eq!(message.formatted(), smtp_data(&message));
        // Each letter gets its own Message-ID.
        let again = String::from_utf8(
            build_message(&"shop@example.com".parse().unwrap(), &email)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert_ne!(header(&again, "Message-ID"), Some(id));
    }

    /// Decodes RFC 2047 `=?utf-8?b?...?=` words, as a mail reader does.
    fn decode_words(value: &str) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        for word in value.split_whitespace() {
            let inner = word
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap_or_else(|| panic!("not a base64 encoded-word: {word}"));
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap(),
            );
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn russian_subject_is_encoded_words_and_body_is_8bit() {
        let subject = "Подтверждение регистрации на сайте каталога товаров — ссылка внутри";
        let body =
            "Здравствуйте!\nПерейдите по ссылке: http://127.0.0.1:8000/users/email-confirm/abc/";
        let email = Email::new("ivan@example.com", subject, body).unwrap();
        let text = String::from_utf8(build_message(&from(), &email).unwrap().formatted()).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "headers must be ASCII: {head}");
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "header line too long: {line}");
        }
        // The Subject may be folded over several lines.
        let unfolded = head.replace("\r\n ", " ");
        let subject_value = unfolded
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert!(subject_value.starts_with("=?utf-8?b?"), "{subject_value}");
        assert_eq!(decode_words(subject_value), subject);
        let from_value = unfolded
            .split("\r\n")
            .find_map(|l| l.strip_prefix("From: "))
            .unwrap();
        assert!(from_value.ends_with(" <shop@example.com>"), "{from_value}");
        assert_eq!(
            decode_words(from_value.strip_suffix(" <shop@example.com>").unwrap()),
            "Каталог"
        );
        assert_eq!(header(&text, "Content-Transfer-Encoding"), Some("8bit"));
        assert!(text.ends_with(&format!("\r\n\r\n{}", body.replace('\n', "\r\n"))));
    }

    #[test]
    fn lines_up_to_998_bytes_stay_as_they_are() {
        // lettre alone would re-encode anything past 76 bytes; Django does not.
        for (body, encoding) in [("x".repeat(998), "7bit"), ("ы".repeat(499), "8bit")] {
            let email =
                Email::new("ivan@example.com", "s", format!("{body}\r\nend\rend\n")).unwrap();
            let message = build_message(&from(), &email).unwrap();
            let text = String::from_utf8(message.formatted()).unwrap();
            assert_eq!(header(&text, "Content-Transfer-Encoding"), Some(encoding));
            assert!(
                text.ends_with(&format!("\r\n\r\n{body}\r\nend\r\nend\r\n")),
                "{encoding}"
            );
            // lettre then ends DATA with "\r\n.\r\n", as smtplib would here.
            assert!(smtp_data(&message).ends_with(b"\r\nend\r\nend"));
        }
    }

    #[test]
    fn very_long_lines_are_quoted_printable() {
        let body = "ы".repeat(600); // 1200 bytes on one line: too long for 8bit
        let email = Email::new("ivan@example.com", "s", body).unwrap();
        let text = String::from_utf8(build_message(&from(), &email).unwrap().formatted()).unwrap();
        assert_eq!(
            header(&text, "Content-Transfer-Encoding"),
            Some("quoted-printable")
        );
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
    }

    #[test]
    fn errors_read_on_one_line() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let error = E(
            "Connection error: Connection error",
            Some(Box::new(E(
                "invalid peer\ncertificate: UnknownIssuer",
                None,
            ))),
        );
        assert_eq!(
            chain(&error),
            "Connection error: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn addresses_are_checked() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        for bad in [
            "",
            "ivan",
            "ivan@",
            "a b@example.com",
            "<ivan@example.com>",
            // lettre takes these, Django's validator does not.
            "ivan@example",
            "иван@example.com",
            "ivan@example.c",
            // Django's validator takes these, lettre does not.
            "\"\"@example.com",
            "\"\u{1}\"@example.com",
            &long_local,
        ] {
            let refused = Email::new(bad, "s", "b").unwrap_err();
            assert!(matches!(refused, MailError::Address(_)), "{bad:?}");
            assert!(refused.is_permanent(), "{bad:?}");
        }
        assert!(Email::new("ivan.petrov+shop@mail.ru", "s", "b").is_ok());
        assert!(Email::new("ivan@пример.рф", "s", "b").is_ok());
        assert!(Email::new(" ivan@example.com ", "s", "b").is_ok());
    }

    #[test]
    fn console_and_file_text_is_djangos() {
        let email = Email::new("ivan@example.com", "Тема", "Строка 1\nСтрока 2").unwrap();
        let text = log_text(&build_message(&from(), &email).unwrap());
        assert!(text.contains("\nMIME-Version: 1.0\n"), "{text}");
        assert!(
            text.contains("\nContent-Type: text/plain; charset=utf-8\n"),
            "{text}"
        );
        assert!(!text.contains('\r'));
        assert!(text.contains("\nTo: ivan@example.com\n"), "{text}");
        assert!(
            text.contains("\nContent-Transfer-Encoding: 8bit\n"),
            "{text}"
        );
        assert!(
            text.ends_with(&format!("\n\nСтрока 1\nСтрока 2\n{}\n", "-".repeat(79))),
            "{text}"
        );
        assert_eq!(SEPARATOR.len(), 79);
        assert!(SEPARATOR.chars().all(|c| c == '-'));
    }

    #[test]
    fn log_file_names_are_djangos() {
        use chrono::TimeZone;
        let now = chrono::Local.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            log_file_name(now, 140234567890123),
            "20260102-030405-140234567890123.log"
        );
    }

    #[tokio::test]
    async fn the_file_back_end_writes_one_file_per_letter() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("not").join("there");
        let settings = EmailSettings {
            backend: EmailBackend::File(folder.clone()),
            host: "unused".into(),
            port: 25,
            host_user: String::new(),
            host_password: Default::default(),
            use_ssl: false,
            use_tls: false,
            default_from: "shop@example.com".into(),
            retry_base: Duration::from_secs(30),
        };
        let mailer = Mailer::new(&settings).unwrap();
        for n in 0..2 {
            let email = Email::new("ivan@example.com", format!("Письмо {n}"), "Текст").unwrap();
            mailer.send(&email).await.unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        for name in &names {
            let (stamp, rest) = name.split_at(15);
            assert!(
                chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S").is_ok(),
                "{name}"
            );
            let number = rest
                .strip_prefix('-')
                .and_then(|r| r.strip_suffix(".log"))
                .unwrap();
            assert!(number.parse::<u64>().is_ok(), "{name}");
            let text = std::fs::read_to_string(folder.join(name)).unwrap();
            assert!(
                text.starts_with("From: shop@example.com\n")
                    || text.contains("\nFrom: shop@example.com\n"),
                "{text}"
            );
            assert!(
                text.ends_with(&format!("\n\nТекст\n{SEPARATOR}\n")),
                "{text}"
            );
        }
    }
}
