//! Who is locked out, seen from a request: the client's address, the lock
//! keys of a login (django-axes' `AXES_LOCKOUT_PARAMETERS`), the check
//! made before a password is hashed, the failures and successes that
//! follow, and the password-reset limits. A refusal is a 429 page that
//! says until when. What is counted is stored by `db::throttle`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::config::{LockoutParameter, TrustedProxy, PASSWORD_RESET_WINDOW};
use crate::db::throttle::{self, after, before, LockKey, ResetLimits, ResetRequest};
use crate::db::time::DjangoDateTime;
use crate::web::error::AppError;
use crate::web::AppState;

/// The longest username a key keeps (an e-mail field's length): a longer
/// one names no account.
const MAX_USERNAME_LENGTH: usize = 254;

/// The client's address: the socket's peer, or the address a trusted
/// proxy forwarded; `None` when the server did not say who the peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub Option<IpAddr>);

impl Client {
    /// The address as keys store it (all unknown clients share one).
    fn key(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Client(client_address(
            peer,
            &parts.headers,
            &app.settings.throttling.trusted_proxies,
        )))
    }
}

/// The peer, unless it is a trusted proxy: then the `X-Forwarded-For`
/// addresses are read from the right, each believed while the hop that
/// reported it is trusted: the right-most one that is not a trusted proxy
/// (or the left-most, if all are). A hop that is no address ends the walk.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[TrustedProxy],
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        if !trusted.iter().any(|proxy| proxy.contains(client)) {
            break;
        }
        match parse_hop(hop) {
            Some(address) => client = address,
            None => break,
        }
    }
    Some(client)
}

/// An address as proxies write it: bare, or with a port (`[::1]:80`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The lock keys of a login by `username` from `client`, one per lockout
/// parameter. Usernames are keyed in lower case, so case variants of one
/// address share its count.
fn lock_keys(parameters: &[LockoutParameter], client: &Client, username: &str) -> Vec<LockKey> {
    let username: String = username
        .to_lowercase()
        .chars()
        .take(MAX_USERNAME_LENGTH)
        .collect();
    parameters
        .iter()
        .map(|p| LockKey {
            username: if p.username {
                username.clone()
            } else {
                String::new()
            },
            ip_address: if p.ip_address {
                client.key()
            } else {
                String::new()
            },
        })
        .collect()
}

/// A 429 saying until when (`what`, then the time in TIME_ZONE), with
/// `Retry-After`.
fn too_many(app: &AppState, what: &str, until: DjangoDateTime) -> AppError {
    let local = until.0.with_timezone(&app.settings.time_zone);
    let seconds = (until.0 - DjangoDateTime::now().0).num_milliseconds();
    AppError::TooManyRequests {
        message: format!("{what} {}.", local.format("%d.%m.%Y %H:%M:%S (%Z)")),
        retry_after: u64::try_from((seconds + 999) / 1000).unwrap_or(0).max(1),
    }
}

const LOCKED_OUT: &str = "Слишком много неудачных попыток входа. Вход закрыт до";

/// A login under way: its lock keys, checked before the password is
/// hashed.
pub struct LoginAttempt {
    keys: Vec<LockKey>,
    /// Whether any key has failures that still count (to forget on success).
    has_failures: bool,
}

impl LoginAttempt {
    /// A 429 while any key of this login is locked (whatever the password:
    /// nothing is hashed); else the attempt, to report its outcome to.
    pub async fn begin(
        app: &AppState,
        client: &Client,
        username: &str,
    ) -> Result<LoginAttempt, AppError> {
        let settings = &app.settings.throttling;
        if !settings.enabled {
            return Ok(LoginAttempt {
                keys: Vec::new(),
                has_failures: false,
            });
        }
        let keys = lock_keys(&settings.lockout_parameters, client, username);
        let since = before(DjangoDateTime::now(), settings.cooloff);
        let failures = throttle::failures_of(&app.db, &keys, since).await?;
        let locked_until = failures
            .iter()
            .filter(|f| i64::from(f.failures) >= i64::from(settings.failure_limit))
            .map(|f| after(f.last_failure_at, settings.cooloff))
            .max();
        if let Some(until) = locked_until {
            return Err(too_many(app, LOCKED_OUT, until));
        }
        Ok(LoginAttempt {
            keys,
            has_failures: !failures.is_empty(),
        })
    }

    /// Counts the failure against every key; the one that reaches
    /// `AXES_FAILURE_LIMIT` is answered with the 429 already.
    pub async fn failed(self, app: &AppState) -> Result<(), AppError> {
        let settings = &app.settings.throttling;
        let now = DjangoDateTime::now();
        let since = before(now, settings.cooloff);
        let mut locked = false;
        for key in &self.keys {
            let failures = throttle::record_failure(&app.db, key, now, since).await?;
            locked |= i64::from(failures) >= i64::from(settings.failure_limit);
        }
        if locked {
            tracing::warn!(
                "login locked out after {} failures: {}",
                settings.failure_limit,
                self.keys
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return Err(too_many(app, LOCKED_OUT, after(now, settings.cooloff)));
        }
        Ok(())
    }

    /// With `AXES_RESET_ON_SUCCESS`, forgets the keys' failures.
    pub async fn succeeded(self, app: &AppState) -> Result<(), AppError> {
        if app.settings.throttling.reset_on_success && self.has_failures {
            throttle::clear(&app.db, &self.keys).await?;
        }
        Ok(())
    }
}

/// Counts a password-reset request for `email` from `client`, or answers
/// 429 when the address or the client has had its limit within the hour
/// (counted whether the address has an account or not, so the answer tells
/// nobody which do).
pub async fn reserve_reset(app: &AppState, client: &Client, email: &str) -> Result<(), AppError> {
    let settings = &app.settings.throttling;
    let limits = ResetLimits {
        per_email: settings.reset_max_per_email,
        per_client: settings.reset_max_per_client,
        window: PASSWORD_RESET_WINDOW,
    };
    if limits.per_email.is_none() && limits.per_client.is_none() {
        return Ok(());
    }
    let request = ResetRequest {
        email: &email.to_lowercase(),
        client: &client.key(),
    };
    match throttle::reserve_reset(&app.db, &request, &limits, DjangoDateTime::now()).await? {
        Ok(()) => Ok(()),
        Err(until) => Err(too_many(
            app,
            "Слишком много запросов на восстановление пароля. Новый запрос можно будет отправить после",
            until,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &str) -> Vec<TrustedProxy> {
        let env = [
            (
                "SECRET_KEY",
                "k3y-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
            ),
            ("AXES_IPWARE_PROXY_TRUSTED_IPS", list),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        crate::config::Settings::from_env(&env)
            .unwrap()
            .throttling
            .trusted_proxies
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_peer() {
        let header = forwarded(&["198.51.100.7, 203.0.113.9, 10.0.0.2"]);
        // No proxy trusted: the peer, whatever the header says.
        assert_eq!(client_address(ip("10.0.0.1"), &header, &[]), ip("10.0.0.1"));
        // The peer is not the trusted proxy: the header is a client's lie.
        let trusted = proxies("10.0.0.1");
        assert_eq!(
            client_address(ip("192.0.2.1"), &header, &trusted),
            ip("192.0.2.1")
        );
        // Trusted peer: the right-most hop (10.0.0.2 is not trusted).
        assert_eq!(
            client_address(ip("10.0.0.1"), &header, &trusted),
            ip("10.0.0.2")
        );
        // A trusted network: past both proxies to the client; what the
        // client itself put further left is not believed.
        let trusted = proxies("10.0.0.0/8");
        assert_eq!(
            client_address(ip("10.0.0.1"), &header, &trusted),
            ip("203.0.113.9")
        );
        // Several headers are one list; ports and IPv4-mapped peers too.
        let two = forwarded(&["198.51.100.7", "203.0.113.9:4444"]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), &two, &trusted),
            ip("203.0.113.9")
        );
        // Garbage ends the walk at the last trusted hop.
        let garbage = forwarded(&["198.51.100.7, nonsense"]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &garbage, &trusted),
            ip("10.0.0.1")
        );
        // No peer known: unknown.
        assert_eq!(client_address(None, &header, &trusted), None);
        // IPv6 networks.
        let trusted = proxies("2001:db8::/32");
        assert_eq!(
            client_address(
                ip("2001:db8::1"),
                &forwarded(&["[2001:db9::5]:80"]),
                &trusted
            ),
            ip("2001:db9::5")
        );
    }

    #[test]
    fn one_key_per_lockout_parameter() {
        let client = Client(ip("192.0.2.1"));
        let both = LockoutParameter {
            username: true,
            ip_address: true,
        };
        let ip_only = LockoutParameter {
            username: false,
            ip_address: true,
        };
        let keys = lock_keys(&[both, ip_only], &client, "Ivan@Example.com");
        assert_eq!(
            keys[0].to_string(),
            "username=ivan@example.com ip_address=192.0.2.1"
        );
        assert_eq!(keys[1].to_string(), "ip_address=192.0.2.1");
        let long = "x".repeat(1000);
        let keys = lock_keys(&[both], &Client(None), &long);
        assert_eq!(keys[0].username.len(), MAX_USERNAME_LENGTH);
        assert_eq!(keys[0].ip_address, "unknown");
    }
}
