//! A MySQL or MariaDB `DATABASE_URL` in dj-database-url's form:
//! `mysql://user:password@host:3306/name?charset=utf8mb4`. The schemes are
//! dj-database-url's `mysql` and `mysql2`, and `mariadb`. The server may be
//! a Unix socket, given as a percent-encoded host
//! (`mysql://shop@%2Frun%2Fmysqld%2Fmysqld.sock/shop`) or as
//! `?unix_socket=/run/mysqld/mysqld.sock` (mysqlclient's option name, which
//! dj-database-url passes on from the query).

use percent_encoding::percent_decode_str;

/// Where the server listens.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MySqlServer {
    Tcp { host: String, port: u16 },
    Socket(String),
}

/// TLS to the server, as mysqlclient's `ssl_mode` names it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MySqlSslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

/// A parsed MySQL `DATABASE_URL`. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MySqlUrl {
    pub user: String,
    pub password: Option<String>,
    pub server: MySqlServer,
    pub database: String,
    /// The connection's character set; Django's is `utf8mb4`.
    pub charset: String,
    pub ssl_mode: Option<MySqlSslMode>,
    /// A file of CA certificates to verify the server with.
    pub ssl_ca: Option<String>,
}

impl std::fmt::Debug for MySqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlUrl")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("server", &self.server)
            .field("database", &self.database)
            .field("charset", &self.charset)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .finish()
    }
}

pub const SCHEMES: [&str; 3] = ["mysql://", "mysql2://", "mariadb://"];

/// The port MySQL and MariaDB listen on when the URL names none.
const DEFAULT_PORT: u16 = 3306;

fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| format!("the {what} is not UTF-8 once percent-decoded"))
}

impl MySqlUrl {
    /// Parses what follows the scheme; the error says what is wrong
    /// without repeating the URL.
    pub fn parse(rest: &str) -> Result<MySqlUrl, String> {
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = before_query
            .split_once('/')
            .ok_or("the MySQL database name is missing")?;
        // The user information ends at the last `@`, as `without_password`
        // reads it.
        let (userinfo, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(decode(password, "password")?)),
            None => (userinfo, None),
        };
        let user = decode(user, "user")?;
        let database = decode(path, "database name")?;
        if database.is_empty() || database.contains('/') {
            return Err("the MySQL database name is missing".into());
        }
        let mut url = MySqlUrl {
            user,
            password,
            server: server(host_port)?,
            database,
            charset: "utf8mb4".into(),
            ssl_mode: None,
            ssl_ca: None,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value, "option value")?;
            match name {
                "charset" => url.charset = value,
                "unix_socket" => url.server = MySqlServer::Socket(value),
                "ssl_mode" | "ssl-mode" | "sslmode" => url.ssl_mode = Some(ssl_mode(&value)?),
                "ssl_ca" | "ssl-ca" | "sslca" => url.ssl_ca = Some(value),
                other => {
                    return Err(format!(
                        "the MySQL option {other:?} is not supported (supported: charset, \
                         unix_socket, ssl_mode, ssl_ca)"
                    ))
                }
            }
        }
        if url.charset.is_empty() {
            return Err("charset is empty".into());
        }
        Ok(url)
    }
}

fn server(host_port: &str) -> Result<MySqlServer, String> {
    // A socket path percent-encoded as the host holds no `:` of a port.
    let decoded = decode(host_port, "host")?;
    if decoded.starts_with('/') {
        return Ok(MySqlServer::Socket(decoded));
    }
    let (host, port) = match host_port.rsplit_once(':') {
        // `[::1]:3306`; a bare IPv6 address without brackets has no port.
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            let port = port
                .parse()
                .map_err(|_| format!("the port {port:?} is not a number from 1 to 65535"))?;
            if port == 0 {
                return Err("the port 0 is not a port a server listens on".into());
            }
            (host, port)
        }
        _ => (host_port, DEFAULT_PORT),
    };
    let host = decode(host.trim_start_matches('[').trim_end_matches(']'), "host")?;
    Ok(MySqlServer::Tcp {
        // mysqlclient's default: the local server.
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        port,
    })
}

fn ssl_mode(value: &str) -> Result<MySqlSslMode, String> {
    Ok(
        match value.to_ascii_uppercase().replace('-', "_").as_str() {
            "DISABLED" => MySqlSslMode::Disabled,
            "PREFERRED" => MySqlSslMode::Preferred,
            "REQUIRED" => MySqlSslMode::Required,
            "VERIFY_CA" => MySqlSslMode::VerifyCa,
            "VERIFY_IDENTITY" => MySqlSslMode::VerifyIdentity,
            _ => {
                return Err(format!(
                    "ssl_mode {value:?} is none of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, \
                 VERIFY_IDENTITY"
                ))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> MySqlServer {
        MySqlServer::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn the_forms_dj_database_url_reads() {
        let url =
            MySqlUrl::parse("shop:p%40ss%2Fw:rd@db.internal:3307/catalog?charset=utf8mb4").unwrap();
        assert_eq!(url.user, "shop");
        assert_eq!(url.password.as_deref(), Some("p@ss/w:rd"));
        assert_eq!(url.server, tcp("db.internal", 3307));
        assert_eq!(url.database, "catalog");
        assert_eq!(url.charset, "utf8mb4");
        let url = MySqlUrl::parse("root@127.0.0.1/shop").unwrap();
        assert_eq!((url.password, url.server), (None, tcp("127.0.0.1", 3306)));
        assert_eq!(
            MySqlUrl::parse("u@[::1]:3308/x").unwrap().server,
            tcp("::1", 3308)
        );
        assert_eq!(
            MySqlUrl::parse("u@/x").unwrap().server,
            tcp("localhost", 3306)
        );
        for socket in [
            "shop@%2Frun%2Fmysqld%2Fmysqld.sock/shop",
            "shop@localhost/shop?unix_socket=/run/mysqld/mysqld.sock",
        ] {
            assert_eq!(
                MySqlUrl::parse(socket).unwrap().server,
                MySqlServer::Socket("/run/mysqld/mysqld.sock".into()),
                "{socket}"
            );
        }
        let url = MySqlUrl::parse("u:p@h/x?ssl_mode=verify_identity&ssl_ca=%2Fca.pem&charset=utf8")
            .unwrap();
        assert_eq!(url.ssl_mode, Some(MySqlSslMode::VerifyIdentity));
        assert_eq!(url.ssl_ca.as_deref(), Some("/ca.pem"));
        assert_eq!(url.charset, "utf8");
    }

    #[test]
    fn what_is_refused_and_never_shown() {
        for (bad, why) in [
            ("u:p@h", "database name is missing"),
            ("u:p@h/", "database name is missing"),
            ("u:p@h/a/b", "database name is missing"),
            ("u:p@h:port/x", "not a number"),
            ("u:p@h:0/x", "port 0"),
            ("u:p@h/x?init_command=SET+x", "not supported"),
            ("u:p@h/x?ssl_mode=sometimes", "ssl_mode"),
            ("u:p@h/x?charset=", "charset is empty"),
        ] {
            let err = MySqlUrl::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let shown = format!("{:?}", MySqlUrl::parse("u:s3cret@h/x").unwrap());
        assert!(
            !shown.contains("s3cret") && shown.contains("********"),
            "{shown}"
        );
    }
}
