"""Test support for the auth tests: keys, a token minter, a real local JWKS server, a fake clock."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

START = 1_700_000_000.0
ISS_A = "https://ehr-a.example.org/fhir"
ISS_B = "https://ehr-b.example.org/fhir"
AUD = "https://cds.example.org/cds-services/posterior-knee"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class FakeClock:
    """A settable clock standing in for both time.time and time.monotonic."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class SigningKey:
    """A private key with the kid and alg it signs with."""

    kid: str
    alg: str
    private: PrivateKey = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK dict."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def jwk_set(*keys: SigningKey) -> dict[str, Any]:
    """A JWK Set document holding the public halves of `keys`."""
    return {"keys": [k.public_jwk() for k in keys]}


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: Any, signature: bytes = b"") -> str:
    """Assemble a compact JWS by hand (for tokens PyJWT refuses to make)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


class Minter:
    """Mints tokens with sensible CDS Hooks defaults; every field can be overridden or removed."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Default claims (issuer A, our audience, 300 s lifetime, fresh jti) plus overrides."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": ISS_A,
            "aud": AUD,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: SigningKey,
        *,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A token signed by `key` (with `alg`, default the key's own)."""
        return jwt.encode(
            self.claims(**claim_overrides),
            key.private,
            algorithm=alg or key.alg,
            headers=_headers(key, headers or {}),
        )


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWK Set that tests can swap, counting GETs."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.delay = 0.0
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The JWK Set URL."""
        return f"http://127.0.0.1:{self._server.server_port}/jwks.json"

    def serve(self, document: Any) -> None:
        """Serve `document` from now on."""
        with self._lock:
            self.document = document

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """A handler class bound to this server's state."""
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with state._lock:
                    state.requests += 1
                    document, status, delay = state.document, state.status, state.delay
                if delay:
                    threading.Event().wait(delay)
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", state.url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = document if isinstance(document, bytes) else json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        return Handler


def _headers(key: SigningKey, overrides: dict[str, Any]) -> dict[str, Any]:
    """Header overrides; None removes a member (typ: None is PyJWT's way to omit typ)."""
    headers = {"kid": key.kid, **overrides}
    return {k: v for k, v in headers.items() if v is not None or k == "typ"}
