//! The real SMTP server of the mail tests (`compat-tests/tools/smtp_server.py`:
//! aiosmtpd with TLS and a login required), started on loopback and
//! stopped when dropped, with one test CA per test binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SMTP_USER: &str = "mailer@example.com";
pub const SMTP_PASSWORD: &str = "s3cret pass";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The compat virtualenv's python, which has aiosmtpd and trustme.
pub fn python() -> PathBuf {
    let python = repo().join("compat-tests/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash compat-tests/setup.sh` (scripts/test.sh does)",
        python.display()
    );
    python
}

fn server_script() -> PathBuf {
    repo().join("compat-tests/tools/smtp_server.py")
}

/// One CA for every server this test binary starts, so a restarted server is
/// still trusted by a worker that loaded the CA before.
pub struct Ca {
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
            _dir: dir,
        };
        let status = Command::new(python())
            .arg(server_script())
            .args(["--ca-only", "--ca-cert"])
            .arg(&ca.cert)
            .arg("--ca-key")
            .arg(&ca.key)
            .status()
            .expect("run smtp_server.py --ca-only");
        assert!(status.success(), "making the test CA failed");
        ca
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Implicit TLS, as port 465 (EMAIL_USE_SSL).
    Ssl,
    /// STARTTLS, required, as port 587 (EMAIL_USE_TLS).
    StartTls,
}

/// The SMTP server, stopped when dropped.
pub struct SmtpServer {
    child: Child,
    out: PathBuf,
}

impl SmtpServer {
    pub fn start(mode: Mode, port: u16, out: &Path) -> SmtpServer {
        let ca = ca();
        let mut child = Command::new(python())
            .arg(server_script())
            .args(["--port", &port.to_string()])
            .args([
                "--mode",
                match mode {
                    Mode::Ssl => "ssl",
                    Mode::StartTls => "starttls",
                },
            ])
            .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
            .arg("--ca-cert")
            .arg(&ca.cert)
            .arg("--ca-key")
            .arg(&ca.key)
            .arg("--out-dir")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start smtp_server.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == "ready" => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the SMTP server did not start: {other:?}");
            }
        }
        SmtpServer {
            child,
            out: out.to_path_buf(),
        }
    }

    /// What the server received, in order: the JSON summaries its parser wrote.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        received(&self.out)
    }

    /// Waits (bounded) until at least `n` letters arrived; returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                start.elapsed() < within,
                "only {} of {n} letters arrived within {within:?}: {messages:?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn received(out: &Path) -> Vec<serde_json::Value> {
    let mut numbered: Vec<(u64, PathBuf)> = match std::fs::read_dir(out) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse().unwrap(), p))
            .collect(),
        Err(_) => Vec::new(),
    };
    numbered.sort();
    numbered
        .into_iter()
        .map(|(_, p)| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The mail worker verifies the server against `SSL_CERT_FILE`, which
/// rustls-native-certs reads from the process environment: set once, before
/// any worker of this process starts.
pub fn trust_test_ca_in_this_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("SSL_CERT_FILE", &ca().cert));
}
