"""A real SMTP server that speaks TLS and checks credentials, for tests/smtp_tls.rs.

Usage: smtp_tls_server.py MODE PORT MAILDIR CERT KEY USER PASSWORD
MODE is "starttls" (plain greeting, STARTTLS required before anything else) or "tls"
(TLS from the first byte). AUTH (PLAIN, LOGIN) is required, only over TLS, and only
USER/PASSWORD pass. Messages go to MAILDIR (tmp/ new/ cur/). Prints "ready" when it
accepts connections; runs until killed.
"""
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, maildir, cert, key, user, password = sys.argv[1:8]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    # handled=False: aiosmtpd answers 535 itself on failure (the default stays silent).
    return AuthResult(success=ok, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
options = dict(
    hostname="127.0.0.1",
    port=int(port),
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
if mode == "starttls":
    options.update(tls_context=context, require_starttls=True)
else:
    # The whole connection is TLS; aiosmtpd does not see that from ssl_context and would
    # hide AUTH, so the TLS requirement is met by the socket itself.
    options.update(ssl_context=context, auth_require_tls=False)
controller = Controller(Mailbox(maildir), **options)
controller.start()
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pause()
