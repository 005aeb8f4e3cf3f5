//! The settings Django's `SecurityMiddleware` and `XFrameOptionsMiddleware`
//! read, and the deployment checks (`check --deploy`) of all the settings.

use super::{parse_bool, parse_in_range, parse_list, ConfigError, Env, Settings};
use crate::django::security::{
    self, check_report, CheckMessage, CheckReport, DeploySettings, Level, RedirectExempt,
    CROSS_ORIGIN_OPENER_POLICY_VALUES,
};

/// `SECURE_*`, `X_FRAME_OPTIONS` and `SILENCED_SYSTEM_CHECKS`, with
/// Django's names, defaults and meanings.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `SECURE_HSTS_SECONDS`: 0 sends no `Strict-Transport-Security`.
    pub hsts_seconds: u64,
    /// `SECURE_HSTS_INCLUDE_SUBDOMAINS`.
    pub hsts_include_subdomains: bool,
    /// `SECURE_HSTS_PRELOAD`.
    pub hsts_preload: bool,
    /// `SECURE_SSL_REDIRECT`: plain-HTTP requests are sent to HTTPS (301).
    pub ssl_redirect: bool,
    /// `SECURE_SSL_HOST`: the host of that redirect (the request's when
    /// `None`).
    pub ssl_host: Option<String>,
    /// `SECURE_REDIRECT_EXEMPT`.
    pub redirect_exempt: RedirectExempt,
    /// `SECURE_CONTENT_TYPE_NOSNIFF`.
    pub content_type_nosniff: bool,
    /// `SECURE_REFERRER_POLICY`, as the header sends it (values joined by
    /// `,`); `None`: no header.
    pub referrer_policy: Option<String>,
    /// `SECURE_CROSS_ORIGIN_OPENER_POLICY`; `None`: no header.
    pub cross_origin_opener_policy: Option<String>,
    /// `X_FRAME_OPTIONS` as set (the header sends it in capitals); `None`:
    /// no header, as a Django site without `XFrameOptionsMiddleware`.
    pub x_frame_options: Option<String>,
    /// `SILENCED_SYSTEM_CHECKS`: check ids `check --deploy` does not show.
    pub silenced_system_checks: Vec<String>,
}

impl Default for SecuritySettings {
    /// Django's defaults.
    fn default() -> SecuritySettings {
        SecuritySettings {
            hsts_seconds: 0,
            hsts_include_subdomains: false,
            hsts_preload: false,
            ssl_redirect: false,
            ssl_host: None,
            redirect_exempt: RedirectExempt::default(),
            content_type_nosniff: true,
            referrer_policy: Some("same-origin".into()),
            cross_origin_opener_policy: Some("same-origin".into()),
            x_frame_options: Some("DENY".into()),
            silenced_system_checks: Vec::new(),
        }
    }
}

/// A setting Django takes as `None` when it is so written or empty.
fn is_none(value: &str) -> bool {
    matches!(value, "" | "None")
}

impl SecuritySettings {
    pub(super) fn from_env(env: &Env) -> Result<SecuritySettings, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim());
        let defaults = SecuritySettings::default();
        let ssl_host = match get("SECURE_SSL_HOST") {
            None => None,
            Some(v) if is_none(v) => None,
            Some(host) => {
                let (domain, _) = crate::django::host::split_domain_port(host);
                if domain.is_empty() {
                    return Err(ConfigError::new(
                        "SECURE_SSL_HOST",
                        format!("{host:?} is not a host name (shop.example, or with a port)"),
                    ));
                }
                Some(host.to_string())
            }
        };
        let redirect_exempt = RedirectExempt::new(&parse_list(get("SECURE_REDIRECT_EXEMPT")))
            .map_err(|e| ConfigError::new("SECURE_REDIRECT_EXEMPT", e))?;
        let referrer_policy = match get("SECURE_REFERRER_POLICY") {
            None => defaults.referrer_policy,
            Some(v) if is_none(v) => None,
            Some(v) => Some(security::referrer_policy_header(v).ok_or_else(|| {
                ConfigError::new(
                    "SECURE_REFERRER_POLICY",
                    format!("{v:?}: {}", security::referrer_policy_error()),
                )
            })?),
        };
        let cross_origin_opener_policy = match get("SECURE_CROSS_ORIGIN_OPENER_POLICY") {
            None => defaults.cross_origin_opener_policy,
            Some(v) if is_none(v) => None,
            Some(v) if CROSS_ORIGIN_OPENER_POLICY_VALUES.contains(&v) => Some(v.to_string()),
            Some(v) => {
                return Err(ConfigError::new(
                    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
                    format!("{v:?}: {}", security::cross_origin_opener_policy_error()),
                ))
            }
        };
        let x_frame_options = match get("X_FRAME_OPTIONS") {
            None => defaults.x_frame_options,
            Some(v) if is_none(v) => None,
            Some(v) if matches!(v.to_ascii_uppercase().as_str(), "DENY" | "SAMEORIGIN") => {
                Some(v.to_string())
            }
            Some(v) => {
                return Err(ConfigError::new(
                    "X_FRAME_OPTIONS",
                    format!(
                        "expected DENY or SAMEORIGIN (None for no header, as without \
                         XFrameOptionsMiddleware), got {v:?}"
                    ),
                ))
            }
        };
        Ok(SecuritySettings {
            hsts_seconds: parse_in_range(
                "SECURE_HSTS_SECONDS",
                get("SECURE_HSTS_SECONDS"),
                0,
                0..=u32::MAX as u64,
            )?,
            hsts_include_subdomains: parse_bool(
                "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                get("SECURE_HSTS_INCLUDE_SUBDOMAINS"),
                false,
            )?,
            hsts_preload: parse_bool("SECURE_HSTS_PRELOAD", get("SECURE_HSTS_PRELOAD"), false)?,
            ssl_redirect: parse_bool("SECURE_SSL_REDIRECT", get("SECURE_SSL_REDIRECT"), false)?,
            ssl_host,
            redirect_exempt,
            content_type_nosniff: parse_bool(
                "SECURE_CONTENT_TYPE_NOSNIFF",
                get("SECURE_CONTENT_TYPE_NOSNIFF"),
                true,
            )?,
            referrer_policy,
            cross_origin_opener_policy,
            x_frame_options,
            silenced_system_checks: parse_list(get("SILENCED_SYSTEM_CHECKS")),
        })
    }

    /// The `Strict-Transport-Security` header (sent over HTTPS only).
    pub fn hsts_header(&self) -> Option<String> {
        security::hsts_header(
            self.hsts_seconds,
            self.hsts_include_subdomains,
            self.hsts_preload,
        )
    }

    /// The `X-Frame-Options` header.
    pub fn x_frame_options_header(&self) -> Option<String> {
        self.x_frame_options.as_deref().map(str::to_ascii_uppercase)
    }
}

impl Settings {
    /// What `manage.py check --deploy` finds in these settings, for this
    /// site's middleware: the secret keys' W009 and W025
    /// ([`Settings::secret_key_warnings`]) and the rest of
    /// `django.core.checks.security`.
    pub fn deploy_checks(&self) -> Vec<CheckMessage> {
        let mut messages: Vec<CheckMessage> = self
            .secret_key_warnings()
            .iter()
            .filter_map(|w| CheckMessage::from_tagged_warning(w))
            .collect();
        let s = &self.security;
        messages.extend(security::deploy_checks(&DeploySettings {
            debug: self.debug,
            allowed_hosts_empty: self.allowed_hosts.is_empty(),
            hsts_seconds: s.hsts_seconds,
            hsts_include_subdomains: s.hsts_include_subdomains,
            hsts_preload: s.hsts_preload,
            content_type_nosniff: s.content_type_nosniff,
            ssl_redirect: s.ssl_redirect,
            referrer_policy: s.referrer_policy.as_deref(),
            x_frame_options: s.x_frame_options.as_deref(),
            session_cookie_secure: self.session.cookie.secure,
            session_cookie_httponly: self.session.cookie.http_only,
            csrf_cookie_secure: self.csrf.cookie.secure,
            csrf_use_sessions: self.csrf.use_sessions,
        }));
        messages
    }

    /// `manage.py check --deploy --fail-level <fail_level>`'s output.
    pub fn deploy_check_report(&self, fail_level: Level) -> CheckReport {
        check_report(
            &self.deploy_checks(),
            &self.security.silenced_system_checks,
            fail_level,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG";

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: Env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("SECRET_KEY".into()).or_insert(KEY.into());
        Settings::from_env(&env)
    }

    fn ids(s: &Settings) -> Vec<String> {
        let mut ids: Vec<String> = s.deploy_checks().into_iter().map(|m| m.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn djangos_defaults() {
        let s = settings(&[]).unwrap().security;
        assert_eq!(s.hsts_seconds, 0);
        assert_eq!(s.hsts_header(), None);
        assert!(!s.hsts_include_subdomains && !s.hsts_preload && !s.ssl_redirect);
        assert_eq!(s.ssl_host, None);
        assert!(!s.redirect_exempt.exempts("/anything/"));
        assert!(s.content_type_nosniff);
        assert_eq!(s.referrer_policy.as_deref(), Some("same-origin"));
        assert_eq!(s.cross_origin_opener_policy.as_deref(), Some("same-origin"));
        assert_eq!(s.x_frame_options_header().as_deref(), Some("DENY"));
        assert!(s.silenced_system_checks.is_empty());
    }

    #[test]
    fn values_as_django_reads_them() {
        let s = settings(&[
            ("SECURE_HSTS_SECONDS", " 31536000 "),
            ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True"),
            ("SECURE_HSTS_PRELOAD", "1"),
            ("SECURE_SSL_REDIRECT", "true"),
            ("SECURE_SSL_HOST", "secure.shop.example:8443"),
            ("SECURE_REDIRECT_EXEMPT", "^health/$, ^api/"),
            ("SECURE_CONTENT_TYPE_NOSNIFF", "False"),
            (
                "SECURE_REFERRER_POLICY",
                "no-referrer, strict-origin-when-cross-origin",
            ),
            (
                "SECURE_CROSS_ORIGIN_OPENER_POLICY",
                "same-origin-allow-popups",
            ),
            ("X_FRAME_OPTIONS", "sameorigin"),
            ("SILENCED_SYSTEM_CHECKS", "security.W019, security.W006"),
        ])
        .unwrap()
        .security;
        assert_eq!(
            s.hsts_header().as_deref(),
            Some("max-age=31536000; includeSubDomains; preload")
        );
        assert!(s.ssl_redirect);
        assert_eq!(s.ssl_host.as_deref(), Some("secure.shop.example:8443"));
        assert!(s.redirect_exempt.exempts("/health/") && s.redirect_exempt.exempts("/api/x"));
        assert!(!s.redirect_exempt.exempts("/x/api/"));
        assert!(!s.content_type_nosniff);
        assert_eq!(
            s.referrer_policy.as_deref(),
            Some("no-referrer,strict-origin-when-cross-origin")
        );
        assert_eq!(
            s.cross_origin_opener_policy.as_deref(),
            Some("same-origin-allow-popups")
        );
        assert_eq!(s.x_frame_options.as_deref(), Some("sameorigin"));
        assert_eq!(s.x_frame_options_header().as_deref(), Some("SAMEORIGIN"));
        assert_eq!(s.silenced_system_checks, ["security.W019", "security.W006"]);
        // None (or empty) turns a header off.
        let s = settings(&[
            ("SECURE_REFERRER_POLICY", "None"),
            ("SECURE_CROSS_ORIGIN_OPENER_POLICY", ""),
            ("X_FRAME_OPTIONS", "None"),
            ("SECURE_SSL_HOST", "None"),
        ])
        .unwrap()
        .security;
        assert_eq!(s.referrer_policy, None);
        assert_eq!(s.cross_origin_opener_policy, None);
        assert_eq!(s.x_frame_options_header(), None);
        assert_eq!(s.ssl_host, None);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("SECURE_HSTS_SECONDS", "-1"),
            ("SECURE_HSTS_SECONDS", "a year"),
            ("SECURE_HSTS_SECONDS", "1.5"),
            ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "sure"),
            ("SECURE_HSTS_PRELOAD", "2"),
            ("SECURE_SSL_REDIRECT", "always"),
            ("SECURE_SSL_HOST", "https://shop.example/"),
            ("SECURE_REDIRECT_EXEMPT", "^ok/$,(unclosed"),
            ("SECURE_REDIRECT_EXEMPT", "(?=lookahead)"),
            ("SECURE_CONTENT_TYPE_NOSNIFF", "maybe"),
            ("SECURE_REFERRER_POLICY", "sameorigin"),
            ("SECURE_REFERRER_POLICY", "same-origin,"),
            ("SECURE_CROSS_ORIGIN_OPENER_POLICY", "same-site"),
            ("X_FRAME_OPTIONS", "ALLOW-FROM https://other.example"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}: {err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let err = settings(&[("SECURE_REFERRER_POLICY", "sameorigin")]).unwrap_err();
        assert!(
            err.problem
                .contains("You have set the SECURE_REFERRER_POLICY setting to an invalid value."),
            "{err}"
        );
    }

    #[test]
    fn the_deploy_checks_of_the_settings() {
        // The defaults, with a key Django finds weak.
        let s = settings(&[("SECRET_KEY", "short")]).unwrap();
        assert_eq!(
            ids(&s),
            [
                "security.W004",
                "security.W008",
                "security.W009",
                "security.W012",
                "security.W016"
            ]
        );
        let w009 = s
            .deploy_checks()
            .into_iter()
            .find(|m| m.id == "security.W009")
            .unwrap();
        assert_eq!(
            w009.to_string(),
            format!("?: {}", s.secret_key_warnings()[0])
        );
        let all = [
            ("DEBUG", "True"),
            ("ALLOWED_HOSTS", ""),
            ("SECURE_HSTS_SECONDS", "3600"),
            ("SECURE_CONTENT_TYPE_NOSNIFF", "False"),
            ("SECURE_REFERRER_POLICY", "None"),
            ("X_FRAME_OPTIONS", "deny"),
            ("SESSION_COOKIE_HTTPONLY", "False"),
            ("CSRF_USE_SESSIONS", "True"),
            ("SECRET_KEY_FALLBACKS", "old"),
        ];
        assert_eq!(
            ids(&settings(&all).unwrap()),
            [
                "security.W005",
                "security.W006",
                "security.W008",
                "security.W012",
                "security.W015",
                "security.W018",
                "security.W019",
                "security.W020",
                "security.W021",
                "security.W022",
                "security.W025"
            ]
        );
        let secure = settings(&[
            ("SECURE_HSTS_SECONDS", "31536000"),
            ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True"),
            ("SECURE_HSTS_PRELOAD", "True"),
            ("SECURE_SSL_REDIRECT", "True"),
            ("SESSION_COOKIE_SECURE", "True"),
            ("CSRF_COOKIE_SECURE", "True"),
            ("ALLOWED_HOSTS", "shop.example"),
        ])
        .unwrap();
        assert_eq!(ids(&secure), Vec::<String>::new());
        let report = secure.deploy_check_report(Level::Warning);
        assert_eq!(
            (
                report.stdout.as_str(),
                report.stderr.as_str(),
                report.failed
            ),
            (
                "System check identified no issues (0 silenced).\n",
                "",
                false
            )
        );
        let silenced = settings(&[("SILENCED_SYSTEM_CHECKS", "security.W004,security.W008")])
            .unwrap()
            .deploy_check_report(Level::Error);
        assert!(
            silenced
                .stderr
                .ends_with("System check identified 2 issues (2 silenced).\n"),
            "{}",
            silenced.stderr
        );
        assert!(!silenced.stderr.contains("W004") && !silenced.failed);
    }
}
