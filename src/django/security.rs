//! Django's `SecurityMiddleware` and `XFrameOptionsMiddleware` rules, and
//! the deployment checks of `manage.py check --deploy`
//! (`django.core.checks.security`), as plain functions: the header values,
//! which paths `SECURE_REDIRECT_EXEMPT` spares, where the SSL redirect
//! goes, which warnings a set of settings earns (with Django's ids and
//! texts), and the report `check` prints. The web layer applies them.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// `REFERRER_POLICY_VALUES` (`security.E023` names any other).
pub const REFERRER_POLICY_VALUES: [&str; 8] = [
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];

/// `CROSS_ORIGIN_OPENER_POLICY_VALUES` (`security.E024` names any other).
pub const CROSS_ORIGIN_OPENER_POLICY_VALUES: [&str; 3] =
    ["same-origin", "same-origin-allow-popups", "unsafe-none"];

/// `E023`'s message and hint, for a `SECURE_REFERRER_POLICY` refused.
pub fn referrer_policy_error() -> String {
    let mut values = REFERRER_POLICY_VALUES.to_vec();
    values.sort_unstable();
    format!(
        "You have set the SECURE_REFERRER_POLICY setting to an invalid value. \
         Valid values are: {}.",
        values.join(", ")
    )
}

/// `E024`'s message and hint, for a `SECURE_CROSS_ORIGIN_OPENER_POLICY`
/// refused.
pub fn cross_origin_opener_policy_error() -> String {
    let mut values = CROSS_ORIGIN_OPENER_POLICY_VALUES.to_vec();
    values.sort_unstable();
    format!(
        "You have set the SECURE_CROSS_ORIGIN_OPENER_POLICY setting to an invalid value. \
         Valid values are: {}.",
        values.join(", ")
    )
}

/// The `Referrer-Policy` header of a `SECURE_REFERRER_POLICY` given as a
/// comma-separated string: its values stripped and joined by `,`, as
/// `SecurityMiddleware` sends them; `None` when one of them is not a policy
/// (where `check --deploy` says E023).
pub fn referrer_policy_header(value: &str) -> Option<String> {
    let values: Vec<&str> = value.split(',').map(str::trim).collect();
    values
        .iter()
        .all(|v| REFERRER_POLICY_VALUES.contains(v))
        .then(|| values.join(","))
}

/// The `Strict-Transport-Security` header of `SECURE_HSTS_SECONDS` (none
/// when 0), `SECURE_HSTS_INCLUDE_SUBDOMAINS` and `SECURE_HSTS_PRELOAD`.
pub fn hsts_header(seconds: u64, include_subdomains: bool, preload: bool) -> Option<String> {
    if seconds == 0 {
        return None;
    }
    let mut header = format!("max-age={seconds}");
    if include_subdomains {
        header.push_str("; includeSubDomains");
    }
    if preload {
        header.push_str("; preload");
    }
    Some(header)
}

/// `SECURE_REDIRECT_EXEMPT`: the patterns whose paths the SSL redirect
/// spares, each searched (`re.search`) in the request's path without its
/// leading slashes. Patterns are Rust's `regex` syntax, which is Python's
/// `re` without look-around and back-references (a pattern using them is
/// refused when the settings are read). One difference remains: `$` here
/// matches only at the very end, Python's also before a final newline (a
/// path ending in `%0A` is redirected here where Django would exempt it).
#[derive(Debug, Clone, Default)]
pub struct RedirectExempt(Vec<regex::Regex>);

impl RedirectExempt {
    /// Compiles the patterns; the error names the one that does not.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<RedirectExempt, String> {
        patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p.as_ref()).map_err(|e| {
                    // regex's message draws the pattern over lines; its
                    // last line says what is wrong.
                    let text = e.to_string();
                    let reason = text
                        .lines()
                        .filter_map(|l| l.trim().strip_prefix("error:"))
                        .next_back()
                        .unwrap_or(&text);
                    format!(
                        "{:?} is not a regular expression: {}",
                        p.as_ref(),
                        reason.trim()
                    )
                })
            })
            .collect::<Result<_, _>>()
            .map(RedirectExempt)
    }

    /// Whether `SecurityMiddleware` leaves this request path (`request.path`,
    /// decoded: see [`request_path`]) on plain HTTP.
    pub fn exempts(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        self.0.iter().any(|pattern| pattern.is_match(path))
    }
}

/// Django's `request.path` of a raw request path: percent-escapes decoded,
/// and the bytes that are no valid UTF-8 escaped again
/// (`repercent_broken_unicode`), as the WSGI handler makes it.
pub fn request_path(raw: &str) -> String {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    let mut path = String::with_capacity(bytes.len());
    let mut rest = &bytes[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                path.push_str(valid);
                return path;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                path.push_str(std::str::from_utf8(valid).expect("valid up to here"));
                let broken = e.error_len().unwrap_or(after.len());
                for byte in &after[..broken] {
                    path.push_str(&format!("%{byte:02X}"));
                }
                rest = &after[broken..];
            }
        }
    }
}

/// What Python's `quote` never escapes: letters, digits and `_.-~`.
const ALWAYS_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `escape_uri_path`: `quote(path, safe="/:@&+$,-_.!~*'()")`.
pub fn escape_uri_path(path: &str) -> String {
    const SAFE: &AsciiSet = &ALWAYS_SAFE
        .remove(b'/')
        .remove(b':')
        .remove(b'@')
        .remove(b'&')
        .remove(b'+')
        .remove(b'$')
        .remove(b',')
        .remove(b'!')
        .remove(b'*')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')');
    percent_encoding::utf8_percent_encode(path, SAFE).to_string()
}

/// `iri_to_uri`: `quote(iri, safe="/#%[]=:;$&()+,!?*@'~")`.
pub fn iri_to_uri(iri: &str) -> String {
    const SAFE: &AsciiSet = &ALWAYS_SAFE
        .remove(b'/')
        .remove(b'#')
        .remove(b'%')
        .remove(b'[')
        .remove(b']')
        .remove(b'=')
        .remove(b':')
        .remove(b';')
        .remove(b'$')
        .remove(b'&')
        .remove(b'(')
        .remove(b')')
        .remove(b'+')
        .remove(b',')
        .remove(b'!')
        .remove(b'?')
        .remove(b'*')
        .remove(b'@')
        .remove(b'\'');
    percent_encoding::utf8_percent_encode(iri, SAFE).to_string()
}

/// Where `SecurityMiddleware` sends a plain-HTTP request:
/// `"https://%s%s" % (host, request.get_full_path())`, the path escaped
/// again (`escape_uri_path`) and the query as sent (`iri_to_uri`). `host`
/// is `SECURE_SSL_HOST`, or the request's host with its port.
pub fn ssl_redirect_location(host: &str, path: &str, query: Option<&str>) -> String {
    let mut location = format!("https://{host}{}", escape_uri_path(path));
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(&iri_to_uri(query));
    }
    // `HttpResponseRedirect` runs its location through `iri_to_uri` too.
    iri_to_uri(&location)
}

// ---------------------------------------------------------------------------
// The system check framework's messages and report

/// A check message's level (`django.core.checks.messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 10,
    Info = 20,
    Warning = 30,
    Error = 40,
    Critical = 50,
}

impl Level {
    /// `--fail-level`'s choices.
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name {
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARNING" => Level::Warning,
            "ERROR" => Level::Error,
            "CRITICAL" => Level::Critical,
            _ => return None,
        })
    }
}

/// One message of a system check, about no object (`?` in the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckMessage {
    pub level: Level,
    /// `security.W004`.
    pub id: String,
    pub msg: String,
}

impl CheckMessage {
    pub fn warning(id: &str, msg: impl Into<String>) -> CheckMessage {
        CheckMessage {
            level: Level::Warning,
            id: id.to_string(),
            msg: msg.into(),
        }
    }

    /// A warning written as `(id) message`, as
    /// `Settings::secret_key_warnings` gives them.
    pub fn from_tagged_warning(text: &str) -> Option<CheckMessage> {
        let (id, msg) = text.strip_prefix('(')?.split_once(") ")?;
        Some(CheckMessage::warning(id, msg))
    }
}

/// `str(CheckMessage)` for a message about no object.
impl fmt::Display for CheckMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "?: ({}) {}", self.id, self.msg)
    }
}

/// What `manage.py check` writes, and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub stdout: String,
    pub stderr: String,
    /// A message at `fail_level` or above, not silenced: the command fails
    /// (`SystemCheckError`, exit status 1).
    pub failed: bool,
}

/// `BaseCommand.check(display_num_errors=True)` and its caller: the
/// messages by level, each level's sorted, with the count; on stderr when
/// there is one, on stdout ("no issues") when not; `SystemCheckError: `
/// before it all when one reaches `fail_level`. `silenced` is
/// `SILENCED_SYSTEM_CHECKS`.
pub fn check_report(
    messages: &[CheckMessage],
    silenced: &[String],
    fail_level: Level,
) -> CheckReport {
    let visible: Vec<&CheckMessage> = messages
        .iter()
        .filter(|m| !silenced.contains(&m.id))
        .collect();
    let mut body = String::new();
    for (level, group) in [
        (Level::Critical, "CRITICALS"),
        (Level::Error, "ERRORS"),
        (Level::Warning, "WARNINGS"),
        (Level::Info, "INFOS"),
        (Level::Debug, "DEBUGS"),
    ] {
        let mut lines: Vec<String> = visible
            .iter()
            .filter(|m| m.level == level)
            .map(|m| m.to_string())
            .collect();
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        body.push_str(&format!("\n{group}:\n{}\n", lines.join("\n")));
    }
    let header = if visible.is_empty() {
        ""
    } else {
        "System check identified some issues:\n"
    };
    let count = match visible.len() {
        0 => "no issues".to_string(),
        1 => "1 issue".to_string(),
        n => format!("{n} issues"),
    };
    let footer = format!(
        "{}System check identified {count} ({} silenced).",
        if visible.is_empty() { "" } else { "\n" },
        messages.len() - visible.len()
    );
    let failed = visible.iter().any(|m| m.level >= fail_level);
    let text = format!(
        "{}{header}{body}{footer}\n",
        if failed { "SystemCheckError: " } else { "" }
    );
    if visible.is_empty() {
        CheckReport {
            stdout: text,
            stderr: String::new(),
            failed,
        }
    } else {
        CheckReport {
            stdout: String::new(),
            stderr: text,
            failed,
        }
    }
}

// ---------------------------------------------------------------------------
// The deployment checks

/// The settings Django's deployment checks read, for this site's fixed
/// `MIDDLEWARE` (`SecurityMiddleware`, `SessionMiddleware`,
/// `CsrfViewMiddleware`, and `XFrameOptionsMiddleware` unless
/// `x_frame_options` is `None`) and `INSTALLED_APPS` (with
/// `django.contrib.sessions`). The secret keys' W009 and W025 are not
/// here: the settings judge them (`Settings::secret_key_warnings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySettings<'a> {
    pub debug: bool,
    pub allowed_hosts_empty: bool,
    pub hsts_seconds: u64,
    pub hsts_include_subdomains: bool,
    pub hsts_preload: bool,
    pub content_type_nosniff: bool,
    pub ssl_redirect: bool,
    /// `None`: no `Referrer-Policy` header (W022).
    pub referrer_policy: Option<&'a str>,
    /// `None`: no `X-Frame-Options` header, as without
    /// `XFrameOptionsMiddleware` (W002).
    pub x_frame_options: Option<&'a str>,
    pub session_cookie_secure: bool,
    pub session_cookie_httponly: bool,
    pub csrf_cookie_secure: bool,
    pub csrf_use_sessions: bool,
}

const W002: &str = "You do not have 'django.middleware.clickjacking.XFrameOptionsMiddleware' \
    in your MIDDLEWARE, so your pages will not be served with an 'x-frame-options' header. \
    Unless there is a good reason for your site to be served in a frame, you should consider \
    enabling this header to help prevent clickjacking attacks.";
const W004: &str = "You have not set a value for the SECURE_HSTS_SECONDS setting. If your \
    entire site is served only over SSL, you may want to consider setting a value and enabling \
    HTTP Strict Transport Security. Be sure to read the documentation first; enabling HSTS \
    carelessly can cause serious, irreversible problems.";
const W005: &str = "You have not set the SECURE_HSTS_INCLUDE_SUBDOMAINS setting to True. \
    Without this, your site is potentially vulnerable to attack via an insecure connection to \
    a subdomain. Only set this to True if you are certain that all subdomains of your domain \
    should be served exclusively via SSL.";
const W006: &str = "Your SECURE_CONTENT_TYPE_NOSNIFF setting is not set to True, so your pages \
    will not be served with an 'X-Content-Type-Options: nosniff' header. You should consider \
    enabling this header to prevent the browser from identifying content types incorrectly.";
const W008: &str = "Your SECURE_SSL_REDIRECT setting is not set to True. Unless your site \
    should be available over both SSL and non-SSL connections, you may want to either set this \
    setting True or configure a load balancer or reverse-proxy server to redirect all \
    connections to HTTPS.";
const W012: &str = "SESSION_COOKIE_SECURE is not set to True. Using a secure-only session \
    cookie makes it more difficult for network traffic sniffers to hijack user sessions.";
const W015: &str = "SESSION_COOKIE_HTTPONLY is not set to True. Using an HttpOnly session \
    cookie makes it more difficult for cross-site scripting attacks to hijack user sessions.";
const W016: &str = "You have 'django.middleware.csrf.CsrfViewMiddleware' in your MIDDLEWARE, \
    but you have not set CSRF_COOKIE_SECURE to True. Using a secure-only CSRF cookie makes it \
    more difficult for network traffic sniffers to steal the CSRF token.";
const W018: &str = "You should not have DEBUG set to True in deployment.";
const W019: &str = "You have 'django.middleware.clickjacking.XFrameOptionsMiddleware' in your \
    MIDDLEWARE, but X_FRAME_OPTIONS is not set to 'DENY'. Unless there is a good reason for \
    your site to serve other parts of itself in a frame, you should change it to 'DENY'.";
const W020: &str = "ALLOWED_HOSTS must not be empty in deployment.";
const W021: &str = "You have not set the SECURE_HSTS_PRELOAD setting to True. Without this, \
    your site cannot be submitted to the browser preload list.";
const W022: &str = "You have not set the SECURE_REFERRER_POLICY setting. Without this, your \
    site will not send a Referrer-Policy header. You should consider enabling this header to \
    protect user privacy.";

/// The deployment checks of `django.core.checks.security` (`base`, `csrf`,
/// `sessions`) that apply to these settings, in Django's registration
/// order. W001 and W003 never apply (the middleware is always there);
/// W010/W011 and W013/W014 come together as W012 and W015, since both the
/// sessions app and its middleware are; E023 and E024 cannot, since a
/// policy outside Django's values is refused when the settings are read.
pub fn deploy_checks(s: &DeploySettings<'_>) -> Vec<CheckMessage> {
    let w = CheckMessage::warning;
    let mut messages = Vec::new();
    if s.x_frame_options.is_none() {
        messages.push(w("security.W002", W002));
    }
    if s.hsts_seconds == 0 {
        messages.push(w("security.W004", W004));
    }
    if s.hsts_seconds != 0 && !s.hsts_include_subdomains {
        messages.push(w("security.W005", W005));
    }
    if s.hsts_seconds != 0 && !s.hsts_preload {
        messages.push(w("security.W021", W021));
    }
    if !s.content_type_nosniff {
        messages.push(w("security.W006", W006));
    }
    if !s.ssl_redirect {
        messages.push(w("security.W008", W008));
    }
    if s.debug {
        messages.push(w("security.W018", W018));
    }
    if s.x_frame_options.is_some_and(|x| x != "DENY") {
        messages.push(w("security.W019", W019));
    }
    if s.allowed_hosts_empty {
        messages.push(w("security.W020", W020));
    }
    if s.referrer_policy.is_none() {
        messages.push(w("security.W022", W022));
    }
    if !s.csrf_use_sessions && !s.csrf_cookie_secure {
        messages.push(w("security.W016", W016));
    }
    if !s.session_cookie_secure {
        messages.push(w("security.W012", W012));
    }
    if !s.session_cookie_httponly {
        messages.push(w("security.W015", W015));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `check --deploy` asks for.
    fn secure() -> DeploySettings<'static> {
        DeploySettings {
            debug: false,
            allowed_hosts_empty: false,
            hsts_seconds: 31_536_000,
            hsts_include_subdomains: true,
            hsts_preload: true,
            content_type_nosniff: true,
            ssl_redirect: true,
            referrer_policy: Some("same-origin"),
            x_frame_options: Some("DENY"),
            session_cookie_secure: true,
            session_cookie_httponly: true,
            csrf_cookie_secure: true,
            csrf_use_sessions: false,
        }
    }

    fn ids(s: &DeploySettings<'_>) -> Vec<String> {
        let mut ids: Vec<String> = deploy_checks(s).into_iter().map(|m| m.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn each_setting_earns_its_warning() {
        assert_eq!(ids(&secure()), Vec::<String>::new());
        let defaults = DeploySettings {
            hsts_seconds: 0,
            hsts_include_subdomains: false,
            hsts_preload: false,
            ssl_redirect: false,
            session_cookie_secure: false,
            csrf_cookie_secure: false,
            ..secure()
        };
        // What manage.py check --deploy says of the reference project's
        // defaults (besides W009 for the key).
        assert_eq!(
            ids(&defaults),
            [
                "security.W004",
                "security.W008",
                "security.W012",
                "security.W016"
            ]
        );
        for (changed, expected) in [
            (
                DeploySettings {
                    debug: true,
                    ..secure()
                },
                "security.W018",
            ),
            (
                DeploySettings {
                    allowed_hosts_empty: true,
                    ..secure()
                },
                "security.W020",
            ),
            (
                DeploySettings {
                    hsts_include_subdomains: false,
                    ..secure()
                },
                "security.W005",
            ),
            (
                DeploySettings {
                    hsts_preload: false,
                    ..secure()
                },
                "security.W021",
            ),
            (
                DeploySettings {
                    content_type_nosniff: false,
                    ..secure()
                },
                "security.W006",
            ),
            (
                DeploySettings {
                    referrer_policy: None,
                    ..secure()
                },
                "security.W022",
            ),
            (
                DeploySettings {
                    x_frame_options: Some("SAMEORIGIN"),
                    ..secure()
                },
                "security.W019",
            ),
            (
                DeploySettings {
                    x_frame_options: None,
                    ..secure()
                },
                "security.W002",
            ),
            (
                DeploySettings {
                    session_cookie_httponly: false,
                    ..secure()
                },
                "security.W015",
            ),
        ] {
            assert_eq!(ids(&changed), [expected], "{changed:?}");
        }
        // Without HSTS, its two details are not asked for.
        let no_hsts = DeploySettings {
            hsts_seconds: 0,
            hsts_include_subdomains: false,
            hsts_preload: false,
            ..secure()
        };
        assert_eq!(ids(&no_hsts), ["security.W004"]);
        // The CSRF secret in the session needs no secure CSRF cookie.
        let in_session = DeploySettings {
            csrf_cookie_secure: false,
            csrf_use_sessions: true,
            ..secure()
        };
        assert_eq!(ids(&in_session), Vec::<String>::new());
    }

    #[test]
    fn the_report_is_djangos() {
        let messages = vec![
            CheckMessage::warning("security.W008", "Second."),
            CheckMessage::warning("security.W004", "First."),
        ];
        let report = check_report(&messages, &[], Level::Error);
        assert!(!report.failed);
        assert_eq!(report.stdout, "");
        assert_eq!(
            report.stderr,
            "System check identified some issues:\n\nWARNINGS:\n\
             ?: (security.W004) First.\n?: (security.W008) Second.\n\n\
             System check identified 2 issues (0 silenced).\n"
        );
        let report = check_report(&messages, &["security.W004".into()], Level::Warning);
        assert!(report.failed);
        assert_eq!(
            report.stderr,
            "SystemCheckError: System check identified some issues:\n\nWARNINGS:\n\
             ?: (security.W008) Second.\n\nSystem check identified 1 issue (1 silenced).\n"
        );
        let report = check_report(&messages[..1], &["security.W008".into()], Level::Warning);
        assert!(!report.failed);
        assert_eq!(
            (report.stdout.as_str(), report.stderr.as_str()),
            ("System check identified no issues (1 silenced).\n", "")
        );
        assert_eq!(
            CheckMessage::from_tagged_warning("(security.W009) Your SECRET_KEY is weak."),
            Some(CheckMessage::warning(
                "security.W009",
                "Your SECRET_KEY is weak."
            ))
        );
    }

    #[test]
    fn headers_as_security_middleware_sends_them() {
        assert_eq!(hsts_header(0, true, true), None);
        assert_eq!(hsts_header(60, false, false).as_deref(), Some("max-age=60"));
        assert_eq!(
            hsts_header(31_536_000, true, true).as_deref(),
            Some("max-age=31536000; includeSubDomains; preload")
        );
        assert_eq!(
            hsts_header(5, false, true).as_deref(),
            Some("max-age=5; preload")
        );
        assert_eq!(
            referrer_policy_header(" no-referrer , strict-origin").as_deref(),
            Some("no-referrer,strict-origin")
        );
        assert_eq!(
            referrer_policy_header("same-origin").as_deref(),
            Some("same-origin")
        );
        assert_eq!(referrer_policy_header("same-origin,"), None);
        assert_eq!(referrer_policy_header("sameorigin"), None);
        assert!(referrer_policy_error().ends_with(
            "Valid values are: no-referrer, no-referrer-when-downgrade, origin, \
             origin-when-cross-origin, same-origin, strict-origin, \
             strict-origin-when-cross-origin, unsafe-url."
        ));
    }

    #[test]
    fn redirect_exempt_searches_the_path_without_its_slash() {
        let exempt = RedirectExempt::new(&["^health/$", "api/"]).unwrap();
        assert!(exempt.exempts("/health/"));
        assert!(!exempt.exempts("/health/x"));
        assert!(!exempt.exempts("/x/health/"));
        // `search`, not `match`: anywhere in the path.
        assert!(exempt.exempts("/v1/api/items"));
        assert!(!exempt.exempts("/"));
        // Every leading slash goes (`lstrip("/")`).
        assert!(exempt.exempts("//health/"));
        assert!(!RedirectExempt::default().exempts("/health/"));
        let err = RedirectExempt::new(&["ok", "(unclosed"]).unwrap_err();
        assert!(
            err.starts_with("\"(unclosed\" is not a regular expression"),
            "{err}"
        );
    }

    #[test]
    fn the_ssl_redirect_goes_where_djangos_does() {
        assert_eq!(
            ssl_redirect_location("shop.example", "/products/", Some("page=2&q=a%20b")),
            "https://shop.example/products/?page=2&q=a%20b"
        );
        assert_eq!(
            ssl_redirect_location("shop.example:8443", "/", Some("")),
            "https://shop.example:8443/"
        );
        // request.path is decoded; get_full_path escapes it again.
        let path = request_path("/%D0%BA%D0%B0%D1%82/a%20b;c=d/%41");
        assert_eq!(path, "/кат/a b;c=d/A");
        assert_eq!(
            ssl_redirect_location("h", &path, None),
            "https://h/%D0%BA%D0%B0%D1%82/a%20b%3Bc%3Dd/A"
        );
        // Bytes that are no UTF-8 stay escaped (and the escape is escaped).
        let broken = request_path("/a%FFb/");
        assert_eq!(broken, "/a%FFb/");
        assert_eq!(
            ssl_redirect_location("h", &broken, None),
            "https://h/a%25FFb/"
        );
        // The query's characters outside iri_to_uri's safe set.
        assert_eq!(iri_to_uri("a=\"x\"&b={y}|^"), "a=%22x%22&b=%7By%7D%7C%5E");
    }
}
