//! Packaging and deployment: `--version`, `collectstatic` (the files
//! `/static/` serves, written to `STATIC_ROOT` under the same names, again
//! and again without change), and the nginx site of `docs/nginx.conf` run
//! by a real nginx in front of `serve` (skipped, saying so, where nginx or
//! openssl is missing; scripts/test.sh installs them).
//!
//! `collectstatic` opens no database (as Django's), so these run on
//! SQLite only; `serve` behind nginx is the same on either back end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::app::Browser;
use common::{free_port, serve, text, TestDb};
use unchained::web::collectstatic;

#[test]
fn version_names_the_program_and_its_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_unchained"))
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("unchained {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Every file under the repository's `static/` (what build.rs embeds).
fn source_files() -> Vec<String> {
    files_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("static"))
}

/// Every file under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// `unchained collectstatic ARGS` into `root`, with this standard input
/// (none: an empty one). The database named cannot be reached: the command
/// must not open one.
fn collectstatic_run(
    t: &TestDb,
    root: &Path,
    args: &[&str],
    input: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    let mut child = t
        .command(&[&["collectstatic"], args].concat())
        .env("STATIC_ROOT", root)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/absent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or("").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn collectstatic_writes_what_static_serves_and_runs_again_unchanged() {
    let t = TestDb::new("sqlite").await;
    let root = t.path("collected");
    let root_text = root.display().to_string();
    let env = [("STATIC_ROOT", root_text.as_str())];

    // `/static/` is served from the binary before anything is collected.
    let log = t.path("serve.log");
    // Stopped when the test ends, also on a failure.
    let (_server, port) = serve(&t, &env, &log).await;
    let browser = Browser::new(&format!("http://127.0.0.1:{port}"));
    let names: Vec<&str> = collectstatic::files().iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), source_files().len(), "{names:?}");
    let mut served = Vec::new();
    for name in &names {
        let response = browser
            .client
            .get(browser.url(&format!("/static/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "/static/{name}");
        served.push(response.bytes().await.unwrap().to_vec());
    }
    assert!(!root.exists(), "serve must not write STATIC_ROOT");

    let first = collectstatic_run(&t, &root, &["--noinput"], None);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        format!("\n{} static files copied to '{root_text}'.\n", names.len())
    );
    assert_eq!(files_under(&root), source_files());
    for (name, bytes) in names.iter().zip(&served) {
        assert_eq!(&std::fs::read(root.join(name)).unwrap(), bytes, "{name}");
        assert_eq!(
            &std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("static")
                    .join(name)
            )
            .unwrap(),
            bytes,
            "{name}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{name}: readable by the proxy's user");
        }
    }

    // Again: nothing written, the files keep their times.
    let times: Vec<_> = names
        .iter()
        .map(|n| std::fs::metadata(root.join(n)).unwrap().modified().unwrap())
        .collect();
    let second = collectstatic_run(&t, &root, &["--noinput"], None);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        format!(
            "\n0 static files copied to '{root_text}', {} unmodified.\n",
            names.len()
        )
    );
    for (name, time) in names.iter().zip(&times) {
        assert_eq!(
            std::fs::metadata(root.join(name))
                .unwrap()
                .modified()
                .unwrap(),
            *time,
            "{name} was rewritten"
        );
    }

    // A changed file is put right, another file is left (Django's
    // collectstatic deletes nothing without --clear).
    std::fs::write(root.join(names[0]), b"changed").unwrap();
    std::fs::write(root.join("left-over.txt"), b"old").unwrap();
    let third = collectstatic_run(&t, &root, &["--noinput"], None);
    assert!(third.status.success(), "{}", text(&third));
    assert_eq!(
        String::from_utf8_lossy(&third.stdout),
        format!(
            "\n1 static file copied to '{root_text}', {} unmodified.\n",
            names.len() - 1
        )
    );
    assert_eq!(std::fs::read(root.join(names[0])).unwrap(), served[0]);
    assert!(root.join("left-over.txt").exists());

    // Interactive, as Django's: a folder with files in it is written to
    // only after "yes".
    std::fs::write(root.join(names[0]), b"changed").unwrap();
    let refused = collectstatic_run(&t, &root, &[], Some("no\n"));
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout),
        format!(
            "\nYou have requested to collect static files at the destination\n\
             location as specified in your settings:\n\n    {root_text}\n\n\
             This will overwrite existing files!\n\
             Are you sure you want to do this?\n\n\
             Type 'yes' to continue, or 'no' to cancel: "
        )
    );
    assert!(
        text(&refused).contains("Collecting static files cancelled."),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read(root.join(names[0])).unwrap(), b"changed");
    // No answer at all (end of input) is no "yes" either.
    let silent = collectstatic_run(&t, &root, &[], None);
    assert_eq!(silent.status.code(), Some(1), "{}", text(&silent));

    // --dry-run changes nothing.
    let dry = collectstatic_run(&t, &root, &["--noinput", "--clear", "--dry-run"], None);
    assert!(dry.status.success(), "{}", text(&dry));
    let dry_text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_text.contains("Pretending to delete 'left-over.txt'\n"),
        "{dry_text}"
    );
    assert!(
        dry_text.contains(&format!("Pretending to copy '{}'\n", names[0])),
        "{dry_text}"
    );
    assert!(root.join("left-over.txt").exists());
    assert_eq!(std::fs::read(root.join(names[0])).unwrap(), b"changed");

    let cleared = collectstatic_run(&t, &root, &["--clear"], Some("yes\n"));
    assert!(cleared.status.success(), "{}", text(&cleared));
    let cleared_text = String::from_utf8_lossy(&cleared.stdout);
    assert!(
        cleared_text.contains("This will DELETE ALL FILES in this location!\n"),
        "{cleared_text}"
    );
    assert!(
        cleared_text.contains("Deleting 'left-over.txt'\n"),
        "{cleared_text}"
    );
    assert!(
        cleared_text.ends_with(&format!(
            "\n{} static files copied to '{root_text}'.\n",
            names.len()
        )),
        "{cleared_text}"
    );
    assert_eq!(files_under(&root), source_files());
    assert_eq!(std::fs::read(root.join(names[0])).unwrap(), served[0]);

    // The folder the files are built from is refused (a dry run: were the
    // refusal broken, nothing would be deleted).
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let refused = collectstatic_run(&t, &source, &["--noinput", "--clear", "--dry-run"], None);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("the folder the static files are built from"),
        "{}",
        text(&refused)
    );
    assert!(source.join(names[0]).exists());
}

// ------------------------------------------------------------------ nginx

fn find_program(name: &str, also: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(also.iter().map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// `docs/nginx.conf` with the test's ports and folders: each replaced
/// text must be there, so the test follows the file as it is written.
fn site_for_test(http: u16, https: u16, upstream: u16, dir: &Path) -> String {
    let site =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/nginx.conf"))
            .unwrap();
    let mut site: String = site
        .lines()
        .filter(|line| !line.trim_start().starts_with("listen [::]"))
        .map(|line| format!("{line}\n"))
        .collect();
    let d = dir.display();
    for (from, to) in [
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        ("listen 443 ssl", format!("listen 127.0.0.1:{https} ssl")),
        (
            "server 127.0.0.1:8000;",
            format!("server 127.0.0.1:{upstream};"),
        ),
        (
            "/etc/letsencrypt/live/shop.example/fullchain.pem",
            format!("{d}/cert.pem"),
        ),
        (
            "/etc/letsencrypt/live/shop.example/privkey.pem",
            format!("{d}/key.pem"),
        ),
        (
            "alias /srv/unchained/static/;",
            format!("alias {d}/static/;"),
        ),
        ("alias /srv/unchained/media/;", format!("alias {d}/media/;")),
    ] {
        assert!(
            site.contains(from),
            "docs/nginx.conf no longer has {from:?}"
        );
        site = site.replace(from, &to);
    }
    site
}

/// An HTTPS request through nginx with curl (reqwest here has no TLS):
/// (status, lower-case headers, body).
fn curl(https: u16, path: &str, dir: &Path) -> (u16, Vec<(String, String)>, Vec<u8>) {
    curl_with(https, path, dir, &[])
}

fn curl_with(
    https: u16,
    path: &str,
    dir: &Path,
    extra: &[&str],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body_file = dir.join("curl-body");
    let output = Command::new("curl")
        .args(extra)
        .args([
            "--silent",
            "--show-error",
            "--insecure",
            "--max-time",
            "30",
            "--resolve",
            &format!("shop.example:{https}:127.0.0.1"),
            "--dump-header",
            "-",
            "--output",
        ])
        .arg(&body_file)
        .arg(format!("https://shop.example:{https}{path}"))
        .output()
        .unwrap();
    assert!(output.status.success(), "curl {path}: {}", text(&output));
    let head = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, std::fs::read(&body_file).unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn nginx_site_serves_pages_static_files_and_uploads() {
    let Some(nginx) = find_program("nginx", &["/usr/sbin/nginx"]) else {
        eprintln!("nginx is not installed: the test of docs/nginx.conf was NOT run (scripts/test.sh installs nginx-light)");
        return;
    };
    for program in ["openssl", "curl"] {
        if find_program(program, &[]).is_none() {
            eprintln!("{program} is not installed: the test of docs/nginx.conf was NOT run (scripts/test.sh installs it)");
            return;
        }
    }
    let t = TestDb::new("sqlite").await;
    let dir = t.path("nginx");
    std::fs::create_dir_all(dir.join("media/products")).unwrap();
    let static_root = dir.join("static");
    let media_root = dir.join("media");

    // A certificate for shop.example, the site's server_name.
    let cert = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=shop.example",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(cert.status.success(), "openssl: {}", text(&cert));

    // A proxy sends the bytes as they are: no real image needed.
    let png = b"\x89PNG\r\n\x1a\n bytes a proxy sends as they are".to_vec();
    std::fs::write(media_root.join("products/photo.png"), &png).unwrap();
    std::fs::write(
        media_root.join("products/page.html"),
        b"<script>alert(1)</script>",
    )
    .unwrap();

    let settings = [
        ("STATIC_ROOT", static_root.to_str().unwrap()),
        ("MEDIA_ROOT", media_root.to_str().unwrap()),
        ("ALLOWED_HOSTS", "shop.example"),
        ("CSRF_TRUSTED_ORIGINS", "https://shop.example"),
        ("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https"),
        ("AXES_IPWARE_PROXY_TRUSTED_IPS", "127.0.0.1"),
        ("SECURE_HSTS_SECONDS", "60"),
    ];
    let collected = collectstatic_run(&t, &static_root, &["--noinput"], None);
    assert!(collected.status.success(), "{}", text(&collected));
    let log = dir.join("serve.log");
    let (_server, upstream) = serve(&t, &settings, &log).await;

    let (http, https) = (free_port(), free_port());
    std::fs::write(
        dir.join("site.conf"),
        site_for_test(http, https, upstream, &dir),
    )
    .unwrap();
    let mime_types = if Path::new("/etc/nginx/mime.types").exists() {
        "include /etc/nginx/mime.types;"
    } else {
        ""
    };
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  {mime_types}\n  default_type application/octet-stream;\n\
               log_format ids '$request_id $status $request_uri';\n  access_log {d}/access.log ids;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let nginx_args = |command: &mut Command| {
        command
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"));
    };
    let mut syntax = Command::new(&nginx);
    nginx_args(&mut syntax);
    let checked = syntax.arg("-t").output().unwrap();
    assert!(checked.status.success(), "nginx -t: {}", text(&checked));

    let mut start = Command::new(&nginx);
    nginx_args(&mut start);
    let _proxy = Stopped(
        start
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let plain = Browser::new(&format!("http://127.0.0.1:{http}"));
    let mut redirect = None;
    for _ in 0..100 {
        if let Ok(response) = plain
            .client
            .get(plain.url("/users/login/?next=/"))
            .header("Host", "shop.example")
            .send()
            .await
        {
            redirect = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        let redirect = redirect.unwrap_or_else(|| {
            panic!(
                "nginx did not answer: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            )
        });
        // Plain HTTP: only a redirect to HTTPS.
        assert_eq!(redirect.status(), 301);
        assert_eq!(
            redirect.headers()["location"],
            "https://shop.example/users/login/?next=/"
        );

        // A page, from unchained: HTTPS as the proxy said (HSTS is sent
        // over HTTPS only), with nginx's request id.
        let (status, headers, body) = curl(https, "/users/login/", &dir);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{headers:?} {body}");
        assert!(body.contains("/static/css/site.css"), "{body}");
        assert_eq!(
            header(&headers, "strict-transport-security"),
            Some("max-age=60"),
            "{headers:?}"
        );
        let id = header(&headers, "x-request-id")
            .expect("X-Request-ID")
            .to_string();
        let access = std::fs::read_to_string(dir.join("access.log")).unwrap();
        assert!(
            access.contains(&format!("{id} 200 /users/login/")),
            "unchained's request id {id} is not nginx's: {access}"
        );

        // The static files, from STATIC_ROOT by nginx (no request id: not
        // proxied), the same bytes unchained serves.
        for (name, contents) in collectstatic::files() {
            let (status, headers, body) = curl(https, &format!("/static/{name}"), &dir);
            assert_eq!(status, 200, "/static/{name}");
            assert_eq!(&body, contents, "/static/{name}");
            assert_eq!(header(&headers, "x-request-id"), None, "{name} was proxied");
            assert_eq!(
                header(&headers, "cache-control"),
                Some("public, max-age=86400")
            );
        }

        // Uploads: an image, inert; anything else under MEDIA_ROOT is not found.
        let (status, headers, body) = curl(https, "/media/products/photo.png", &dir);
        assert_eq!(status, 200);
        assert_eq!(body, png);
        assert_eq!(header(&headers, "content-type"), Some("image/png"));
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert!(
            header(&headers, "content-security-policy").is_some_and(|p| p.contains("sandbox")),
            "{headers:?}"
        );
        let (status, _, _) = curl(https, "/media/products/page.html", &dir);
        assert_eq!(status, 404);

        // A body past the 10 MB unchained reads is refused by nginx itself.
        let big = dir.join("big-body");
        std::fs::write(&big, vec![b'a'; 10 * 1024 * 1024 + 1]).unwrap();
        let (status, headers, _) = curl_with(
            https,
            "/users/login/",
            &dir,
            &["--data-binary", &format!("@{}", big.display())],
        );
        assert_eq!(status, 413, "{headers:?}");
        assert_eq!(
            header(&headers, "x-request-id"),
            None,
            "the body was proxied"
        );
    }
}

/// A process of this test, ended when the test ends, also on a failure:
/// SIGTERM, then a wait.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the id of a child this test started.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------------ systemd

#[test]
fn systemd_unit_is_valid_and_waits_longer_than_the_grace_period() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/unchained.service"),
    )
    .unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("docs/unchained.service has no {key}"))
            .to_string()
    };
    let stop: u64 = value("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let env =
        unchained::config::Env::from([("SECRET_KEY".to_string(), common::SECRET_KEY.to_string())]);
    let grace = unchained::config::Settings::from_env(&env)
        .unwrap()
        .connections
        .grace
        .as_secs();
    assert!(
        stop > grace,
        "TimeoutStopSec {stop} s must exceed GRACEFUL_TIMEOUT {grace} s"
    );
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(value("ExecStart"), "/usr/local/bin/unchained serve");

    let Some(analyze) = find_program("systemd-analyze", &[]) else {
        eprintln!(
            "systemd-analyze is not installed: docs/unchained.service was NOT checked by systemd"
        );
        return;
    };
    // The unit as installed, with this build's binary in place of
    // /usr/local/bin/unchained (systemd checks that it is executable).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unchained.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/unchained", env!("CARGO_BIN_EXE_unchained")),
    )
    .unwrap();
    let verified = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&verified)
    );
}
