"""A stand-in for an Auth0 tenant, to try the production flow offline.

NOT FOR PRODUCTION. It knows one demo client with a secret printed on start-up, keeps
its signing key in memory only, and serves plain HTTP on the loopback interface. It
implements just enough of a tenant for the example: the client-credentials grant at
``POST /oauth/token`` and the JWK Set at ``GET /.well-known/jwks.json``.

Run it, then start the example API against it with the variables it prints::

    python3 -m example.token_server --port 8765
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEMO_AUDIENCE = "https://example-api"
DEMO_CLIENT_ID = "example-client"
DEMO_SCOPES = ("read:messages",)
TOKEN_LIFETIME = 3600


class StandInTenant:
    """The tenant's state: one RSA key, one client, and the issuer URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        self.client_secret = secrets.token_urlsafe(24)
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.issuer = f"http://{host}:{self.server.server_address[1]}/"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def issue(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request as a tenant would: the token, or an OAuth error."""
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != DEMO_CLIENT_ID or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}
        if form.get("audience") != DEMO_AUDIENCE:
            return 403, {"error": "access_denied", "error_description": "Unknown audience"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"{DEMO_CLIENT_ID}@clients",
            "aud": DEMO_AUDIENCE,
            "iat": now,
            "exp": now + TOKEN_LIFETIME,
            "azp": DEMO_CLIENT_ID,
            "scope": " ".join(DEMO_SCOPES),
            "gty": "client-credentials",
        }
        token = jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME}

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_for(tenant: StandInTenant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/.well-known/jwks.json":
                self._answer(200, tenant.jwks())
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != "/oauth/token":
                self._answer(404, {"error": "not_found"})
                return
            length = min(int(self.headers.get("Content-Length") or 0), 16 * 1024)
            body = self.rfile.read(length).decode("utf-8", "replace")
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    form = {str(k): str(v) for k, v in json.loads(body).items()}
                except (ValueError, AttributeError):
                    form = {}
            else:
                form = dict(parse_qsl(body))
            self._answer(*tenant.issue(form))

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A stand-in Auth0 tenant (NOT FOR PRODUCTION).")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    tenant = StandInTenant(port=args.port)
    print("Stand-in tenant - NOT FOR PRODUCTION - listening on", tenant.issuer)
    print("Start the example API with:")
    print(f"  export AUTHFLOW_AUTH0_ISSUER={tenant.issuer}")
    print(f"  export AUTHFLOW_AUTH0_AUDIENCE={DEMO_AUDIENCE}")
    print("  export AUTHFLOW_REQUIRE_HTTPS_METADATA=false")
    print("  python3 -m flask --app example run")
    print("Then call it with:")
    print(f"  python3 -m example.client --token-url {tenant.issuer}oauth/token \\")
    print(f"      --client-id {DEMO_CLIENT_ID} --client-secret {tenant.client_secret} \\")
    print(f"      --audience {DEMO_AUDIENCE} --api http://127.0.0.1:5000/api/messages/private-scoped")
    try:
        tenant.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
