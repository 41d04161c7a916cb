"""The development scheme can never be reached in production.

A real development token (HS256, ``iss`` "dotnet-user-jwts", signed with a key written
into a user-secrets store in .NET's layout) is refused with "The issuer is invalid"
whenever the environment is production: set explicitly, even with ``app.debug``, and by
default without ``AUTHFLOW_ENV`` and without debug. The same token is accepted in
development, which shows that the token and the store are good and that production
refuses the token for being a development token.

"The store is never opened" is watched two ways while the app starts and serves:

- a Python audit hook records every ``open``, ``os.listdir``, ``os.scandir`` and other
  file system event naming a path under the store's root, from any Python code;
- a Linux inotify watch on the store's folders records every open or read of them or of
  a file in them, by any code at all, as the kernel sees it.

Both are shown to notice the store being read in development.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import os
import secrets
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from support import Clock, bearer

from flask_authflow import AuthFlow, current_token, requires_auth
from flask_authflow.config import ConfigurationError
from flask_authflow.extension import get_state

DEV_ISSUER = "dotnet-user-jwts"
DEV_AUDIENCE = "http://localhost:5000"
SECRETS_ID = "guarded-app"
BAD_ISSUER = 'Bearer error="invalid_token", error_description="The issuer is invalid"'


# -- detecting any access to the store ---------------------------------------------------

_watched_root: Path | None = None
_audit_events: list[tuple[str, str]] = []
_audit_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Runs for every audited event of the process: return at once unless watching.
    if _watched_root is None or not args or not event.startswith(("open", "os.", "shutil.")):
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        text = os.fsdecode(path)
        if text.startswith(str(_watched_root)):
            _audit_events.append((event, text))


class KernelWatch:
    """inotify: opens and reads of the watched folders and the files in them."""

    IN_ACCESS, IN_OPEN, IN_NONBLOCK, IN_CLOEXEC = 0x1, 0x20, 0o4000, 0o2000000
    EVENT = struct.Struct("iIII")

    def __init__(self, folders: list[Path]) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if not hasattr(libc, "inotify_init1"):
            pytest.skip("inotify is Linux only")
        self._fd = libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        assert self._fd >= 0, os.strerror(ctypes.get_errno())
        for folder in folders:
            watch = libc.inotify_add_watch(
                self._fd, os.fsencode(folder), self.IN_OPEN | self.IN_ACCESS
            )
            assert watch >= 0, os.strerror(ctypes.get_errno())

    def events(self) -> list[str]:
        """The names of what was opened or read since the last call ("." for a folder)."""
        names = []
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset < len(data):
                _, _, _, length = self.EVENT.unpack_from(data, offset)
                start = offset + self.EVENT.size
                names.append(data[start : start + length].rstrip(b"\0").decode() or ".")
                offset = start + length

    def close(self) -> None:
        os.close(self._fd)


class StoreAccess:
    """What touched the store: Python-level events and kernel-level opens."""

    def __init__(self, root: Path, kernel: KernelWatch) -> None:
        self.root = root
        self._kernel = kernel

    @property
    def python(self) -> list[tuple[str, str]]:
        return list(_audit_events)

    def kernel(self) -> list[str]:
        return self._kernel.events()


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A user-secrets store in .NET's layout with one development key: (root, kid, key)."""
    root = tmp_path / "usersecrets"
    folder = root / SECRETS_ID
    folder.mkdir(parents=True)
    kid, key = secrets.token_hex(4), secrets.token_bytes(32)
    entry = {
        "Id": kid,
        "Issuer": DEV_ISSUER,
        "Value": base64.b64encode(key).decode(),
        "Length": 32,
    }
    document = {"Authentication:Schemes:Bearer:SigningKeys": [entry]}
    (folder / "secrets.json").write_text(json.dumps(document))
    return root, kid, key


@pytest.fixture
def access(store: tuple[Path, str, bytes]) -> Iterator[StoreAccess]:
    """Watch the store from here to the end of the test."""
    global _watched_root, _audit_hook_installed
    root = store[0]
    kernel = KernelWatch([root, root / SECRETS_ID])
    if not _audit_hook_installed:
        sys.addaudithook(_audit)  # hooks cannot be removed: install one, once
        _audit_hook_installed = True
    _audit_events.clear()
    _watched_root = root
    try:
        yield StoreAccess(root, kernel)
    finally:
        _watched_root = None
        kernel.close()


# -- the app -----------------------------------------------------------------------------


def guarded_app(root: Path, issuer: str, clock: Clock, *, debug: bool, **config: Any) -> Flask:
    """An app with an Auth0 scheme and one protected view; ``debug`` is set before
    ``init_app`` reads the configuration, as ``flask run --debug`` does."""
    app = Flask(__name__)
    app.debug = debug
    app.config.update(
        AUTHFLOW_AUTH0_ISSUER=issuer,
        AUTHFLOW_AUTH0_AUDIENCE="https://api.example.test",
        AUTHFLOW_REQUIRE_HTTPS_METADATA=False,
        AUTHFLOW_USER_SECRETS_DIR=str(root),
        AUTHFLOW_USER_SECRETS_ID=SECRETS_ID,
    )
    app.config.update({f"AUTHFLOW_{name}": value for name, value in config.items()})

    @app.get("/private")
    @requires_auth
    def private() -> dict[str, Any]:
        return {"scheme": current_token.scheme, "sub": current_token.subject}

    AuthFlow(clock=clock).init_app(app)
    return app


@pytest.fixture
def development_token(store: tuple[Path, str, bytes], clock: Clock) -> str:
    """A token that ``flask user-jwts create`` (or ``dotnet user-jwts``) could have made."""
    _, kid, key = store
    now = int(clock.now)
    claims = {
        "sub": "developer",
        "iss": DEV_ISSUER,
        "aud": [DEV_AUDIENCE],
        "nbf": now,
        "iat": now,
        "exp": now + 3600,
        "scope": "read:messages",
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_guarded_app(store: tuple[Path, str, bytes], issuer: str, clock: Clock) -> AppFactory:
    return lambda **kwargs: guarded_app(store[0], issuer, clock, **kwargs)


def assert_refused_as_foreign(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BAD_ISSUER
    assert response.get_json() == {
        "error": "invalid_token",
        "error_description": "The issuer is invalid",
    }


# -- the guard ---------------------------------------------------------------------------


def test_the_detectors_see_the_store_read_in_development(
    make_guarded_app: AppFactory, development_token: str, access: StoreAccess
) -> None:
    app = make_guarded_app(debug=True, ENV="development")
    response = app.test_client().get("/private", headers=bearer(development_token))
    assert response.status_code == 200
    assert response.get_json() == {"scheme": "UserJwts", "sub": "developer"}
    secrets_file = str(access.root / SECRETS_ID / "secrets.json")
    assert ("open", secrets_file) in access.python
    assert "secrets.json" in access.kernel()


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "no-debug"])
def test_explicit_production_refuses_a_valid_development_token_without_opening_the_store(
    make_guarded_app: AppFactory,
    development_token: str,
    access: StoreAccess,
    debug: bool,
    jwks_server: Any,
) -> None:
    app = make_guarded_app(debug=debug, ENV="production")
    assert app.debug is debug
    assert get_state(app).authenticator.schemes.user_jwts is None
    client = app.test_client()
    for _ in range(3):  # per request too, not only at start-up
        assert_refused_as_foreign(client.get("/private", headers=bearer(development_token)))
    assert access.python == []
    assert access.kernel() == []
    assert jwks_server.hits == []  # refused before any key work, Auth0's included


def test_without_auth0_env_and_debug_the_default_is_production(
    make_guarded_app: AppFactory, development_token: str, access: StoreAccess
) -> None:
    app = make_guarded_app(debug=False)
    assert "AUTHFLOW_ENV" not in app.config
    assert get_state(app).settings.env == "production"
    assert_refused_as_foreign(app.test_client().get("/private", headers=bearer(development_token)))
    assert access.python == []
    assert access.kernel() == []


def test_debug_alone_means_development(
    make_guarded_app: AppFactory, development_token: str
) -> None:
    # The contrast to the two tests above: only app.debug changes, and the token passes.
    app = make_guarded_app(debug=True)
    assert get_state(app).settings.env == "development"
    response = app.test_client().get("/private", headers=bearer(development_token))
    assert response.get_json() == {"scheme": "UserJwts", "sub": "developer"}


@pytest.mark.parametrize(
    "value", ["Production", "prod", "dev", "Development", "staging", "", True]
)
def test_any_other_environment_name_is_refused_at_start_up(
    make_guarded_app: AppFactory, value: Any, access: StoreAccess
) -> None:
    with pytest.raises(ConfigurationError, match="AUTHFLOW_ENV"):
        make_guarded_app(debug=True, ENV=value)
    assert access.python == []
    assert access.kernel() == []


@pytest.mark.parametrize("env", ["production", "development"])
@pytest.mark.parametrize(
    "lookalike",
    [DEV_ISSUER.upper(), DEV_ISSUER + " ", " " + DEV_ISSUER, DEV_ISSUER + "\u0000"],
    ids=["upper-case", "trailing-space", "leading-space", "nul"],
)
def test_development_issuer_lookalikes_never_reach_the_development_scheme(
    make_guarded_app: AppFactory,
    store: tuple[Path, str, bytes],
    clock: Clock,
    access: StoreAccess,
    lookalike: str,
    env: str,
) -> None:
    # Routing matches the issuer exactly: a lookalike goes to the Auth0 scheme, whose
    # first check (asymmetric algorithms only) refuses an HS256 token.
    _, kid, key = store
    claims = {"iss": lookalike, "aud": DEV_AUDIENCE, "exp": int(clock.now) + 3600}
    token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
    app = make_guarded_app(debug=True, ENV=env)
    response = app.test_client().get("/private", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "The signature key was not found"
    assert access.kernel() == []


def test_the_development_key_does_not_sign_for_auth0(
    make_guarded_app: AppFactory,
    store: tuple[Path, str, bytes],
    issuer: str,
    clock: Clock,
) -> None:
    # A development key that leaked cannot mint tokens under the production issuer:
    # the Auth0 scheme accepts asymmetric algorithms only.
    _, kid, key = store
    claims = {"iss": issuer, "aud": "https://api.example.test", "exp": int(clock.now) + 3600}
    token = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})
    for env in ("production", "development"):
        response = (
            make_guarded_app(debug=True, ENV=env)
            .test_client()
            .get("/private", headers=bearer(token))
        )
        assert response.status_code == 401
        assert response.get_json()["error_description"] == "The signature key was not found"
