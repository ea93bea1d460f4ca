"""A stand-in for Google's identity platform, for tests: real keys, real HTTP, on loopback.

It holds RSA keys with self-signed X.509 certificates, serves them in the
format of ``https://www.googleapis.com/oauth2/v1/certs`` (``{kid: PEM}``)
from an HTTP server on 127.0.0.1, and signs RS256 ID tokens with them. The
code under test fetches and verifies exactly as it would against Google.
"""

import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

WEB_CLIENT_ID = "web-client.apps.googleusercontent.com"
ANDROID_CLIENT_ID = "android-client.apps.googleusercontent.com"
CERTS_PATH = "/oauth2/v1/certs"


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate_pem = _self_signed_certificate(self.private_key)


def _self_signed_certificate(private_key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


# What Google's certificate endpoint sends (its max-age varies, some hours).
GOOGLE_CACHE_CONTROL = "public, max-age=21600, must-revalidate, no-transform"


class GoogleIdentityPlatform:
    """Publishes the certificates of ``published`` keys; signs tokens with any key.

    The certificates go out with ``cache_control`` as their ``Cache-Control``
    header (none if it is empty), and ``age`` as their ``Age`` if set.
    """

    def __init__(self) -> None:
        self.key = SigningKey("test-kid-1")
        self.published: list[SigningKey] = [self.key]
        self.cache_control = GOOGLE_CACHE_CONTROL
        self.age: int | None = None
        self.raw_body: bytes | None = None  # served instead of the certificates if set
        self.delay = 0.0  # seconds to wait before answering
        self.requests_served = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def certs_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{CERTS_PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != CERTS_PATH:
                    self.send_error(404)
                    return
                platform.requests_served += 1
                time.sleep(platform.delay)
                body = (
                    platform.raw_body
                    or json.dumps({key.kid: key.certificate_pem for key in platform.published}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                if platform.cache_control:
                    self.send_header("Cache-Control", platform.cache_control)
                if platform.age is not None:
                    self.send_header("Age", str(platform.age))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "azp": WEB_CLIENT_ID,
            "aud": WEB_CLIENT_ID,
            "sub": "110169484474386276334",
            "email": "carol.jones@gmail.com",
            "email_verified": True,
            "name": "Carol Jones",
            "picture": "https://lh3.googleusercontent.com/a/photo",
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def id_token(
        self, *, key: SigningKey | None = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A signed ID token; pass a claim as None to leave it out."""
        key = key or self.key
        return jwt.encode(
            self.claims(**claims),
            key.private_key,
            algorithm="RS256",
            headers={"kid": key.kid, **(headers or {})},
        )
