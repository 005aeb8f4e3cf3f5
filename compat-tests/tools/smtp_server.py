"""A real SMTP server on loopback for the mail tests: TLS and login required.

    smtp_server.py --port N --mode ssl|starttls --user U --password P \
        --ca-cert CA.pem [--ca-key CA.key] --out-dir DIR
    smtp_server.py --ca-only --ca-cert CA.pem --ca-key CA.key

Makes a CA and a certificate for 127.0.0.1 and localhost with trustme and
writes the CA certificate to --ca-cert (clients trust it through
SSL_CERT_FILE). With --ca-key the CA is kept there too and reused when both
files already exist, so a restarted server is trusted by a client that read
the CA earlier (--ca-only makes or loads it and exits). --mode ssl serves implicit TLS (as port 465), --mode starttls
serves plain SMTP that refuses everything but EHLO, STARTTLS and QUIT before
STARTTLS (as port 587). AUTH LOGIN and PLAIN are offered, only inside TLS, and
required before MAIL. Each accepted message is written to --out-dir as
<n>.eml (the bytes received) and <n>.json (the envelope and what Python's
e-mail parser reads from the message: decoded From, To, Subject and body),
both renamed into place only when complete. Prints "ready" once listening;
stops on SIGTERM or SIGINT.
"""
import argparse
import email
import email.policy
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import threading
import warnings

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def load_or_make_ca(cert_path, key_path):
    if key_path and os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as c, open(key_path, "rb") as k:
            return trustme.CA.from_pem(c.read(), k.read())
    ca = trustme.CA()
    write_atomically(cert_path, ca.cert_pem.bytes())
    if key_path:
        write_atomically(key_path, ca.private_key_pem.bytes())
    return ca


def write_atomically(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Handler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        parsed = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login_of(session),
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "date": str(message["Date"]),
            "message_id": str(message["Message-ID"]),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "transfer_encoding": str(message["Content-Transfer-Encoding"]),
            "body": body.get_content().replace("\r\n", "\n") if body is not None else None,
        }
        with self.lock:
            n = next(self.counter)
        base = os.path.join(self.out_dir, str(n))
        write_atomically(base + ".eml", raw)
        write_atomically(base + ".json", json.dumps(parsed, ensure_ascii=False).encode())
        return "250 Message accepted for delivery"


def login_of(session):
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode()
    return None


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--mode", choices=["ssl", "starttls"])
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--ca-cert", required=True)
    parser.add_argument("--ca-key")
    parser.add_argument("--out-dir")
    parser.add_argument("--ca-only", action="store_true")
    args = parser.parse_args()
    if args.ca_only:
        load_or_make_ca(args.ca_cert, args.ca_key)
        return 0
    for name in ("port", "mode", "user", "password", "out_dir"):
        if getattr(args, name) is None:
            parser.error(f"--{name.replace('_', '-')} is required")
    # Implicit TLS needs auth_require_tls=False (aiosmtpd only counts
    # STARTTLS as TLS), which aiosmtpd warns about; the socket is TLS anyway.
    warnings.filterwarnings("ignore", category=UserWarning, module="aiosmtpd")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    os.makedirs(args.out_dir, exist_ok=True)
    ca = load_or_make_ca(args.ca_cert, args.ca_key)
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)

    common = dict(
        hostname=args.host,
        port=args.port,
        authenticator=make_authenticator(args.user, args.password),
        auth_required=True,
    )
    if args.mode == "ssl":
        # The whole connection is TLS, so AUTH is inside TLS already.
        controller = Controller(Handler(args.out_dir), ssl_context=context,
                                auth_require_tls=False, **common)
    else:
        controller = Controller(Handler(args.out_dir), tls_context=context,
                                require_starttls=True, auth_require_tls=True, **common)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller.start()
    print("ready", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
