"""requires_auth / requires_scope / requires_role, current_token, blueprints, async views."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask
from support import bearer

from flask_authflow import AuthFlow, current_token, requires_auth, requires_role, requires_scope
from flask_authflow.extension import get_state
from flask_authflow.token import Token


def test_bare_and_called_requires_auth_both_protect(make_app, mint):
    app = make_app()

    @app.get("/called")
    @requires_auth()
    def called():
        return {"sub": current_token.subject}

    client = app.test_client()
    assert client.get("/called").status_code == 401
    assert client.get("/called", headers=bearer(mint())).get_json() == {"sub": "auth0|user-1"}


def test_current_token_fields(make_app, mint):
    app = make_app(ROLE_CLAIMS=["https://example.test/roles"])

    @app.get("/whoami")
    @requires_auth
    def whoami():
        return {
            "claims_sub": current_token.claims["sub"],
            "subject": current_token.subject,
            "scheme": current_token.scheme,
            "scopes": sorted(current_token.scopes),
            "roles": sorted(current_token.roles),
            "raw_matches": current_token.raw == token,
        }

    token = mint(
        scope="read:a write:b",
        permissions=["read:c"],
        role="single",
        roles=["r1", "r2"],
        **{"https://example.test/roles": ["namespaced"]},
    )
    body = app.test_client().get("/whoami", headers=bearer(token)).get_json()
    assert body == {
        "claims_sub": "auth0|user-1",
        "subject": "auth0|user-1",
        "scheme": "Auth0",
        "scopes": ["read:a", "read:c", "write:b"],
        "roles": ["namespaced", "r1", "r2", "single"],
        "raw_matches": True,
    }


def test_every_token_attribute_reads_the_same_through_current_token(make_app, mint):
    app = make_app()
    public = [name for name in dir(Token) if not name.startswith("_")]
    assert {"raw", "scheme", "claims", "scopes", "roles", "subject", "issuer", "expires_at"} <= set(public)

    @app.get("/attributes")
    @requires_auth
    def attributes():
        token = current_token._get_current_object()  # type: ignore[attr-defined]
        return {name: getattr(current_token, name) == getattr(token, name) for name in public}

    body = app.test_client().get("/attributes", headers=bearer(mint())).get_json()
    assert body == dict.fromkeys(public, True)


def test_current_token_attributes_refuse_outside_a_protected_view(make_app):
    app = make_app()
    with app.test_request_context():
        for name in ("subject", "claims", "issuer", "expires_at"):
            with pytest.raises(RuntimeError, match="only available inside a protected view"):
                getattr(current_token, name)


def test_claims_are_read_only(make_app, mint):
    app = make_app()

    @app.get("/mutate")
    @requires_auth
    def mutate():
        with pytest.raises(TypeError):
            current_token.claims["sub"] = "root"  # type: ignore[index]
        return {"sub": current_token.subject}

    assert app.test_client().get("/mutate", headers=bearer(mint())).get_json() == {"sub": "auth0|user-1"}


@pytest.mark.parametrize(
    "claims, status",
    [
        ({"scope": "read:messages write:messages"}, 200),
        ({"scope": ["read:messages", "write:messages"]}, 200),
        ({"scope": "read:messages", "permissions": ["write:messages"]}, 200),
        ({"permissions": ["read:messages", "write:messages"]}, 200),
        ({"scope": "read:messages"}, 403),
        ({"scope": "read:messages:write:messages"}, 403),
        ({}, 403),
    ],
)
def test_every_listed_scope_is_required(client, mint, claims, status):
    assert client.get("/scoped", headers=bearer(mint(**claims))).status_code == status


@pytest.mark.parametrize(
    "claims, status",
    [
        ({"role": "admin"}, 200),
        ({"roles": ["viewer", "ops"]}, 200),
        ({"role": "admin ops"}, 403),  # a role string is one role, not a list
        ({"roles": "viewer"}, 403),
        ({}, 403),
    ],
)
def test_any_listed_role_is_enough(client, mint, claims, status):
    assert client.get("/roles", headers=bearer(mint(**claims))).status_code == status


def test_role_claims_setting_adds_namespaced_roles(make_app, mint):
    client = make_app(ROLE_CLAIMS=["https://example.test/roles"]).test_client()
    token = mint(**{"https://example.test/roles": ["admin"]})
    assert client.get("/roles", headers=bearer(token)).status_code == 200


def test_scope_check_needs_a_valid_token_first(client):
    assert client.get("/scoped").status_code == 401


@pytest.mark.parametrize("decorator", [requires_scope, requires_role])
def test_no_argument_raises_type_error_when_decorating(decorator):
    with pytest.raises(TypeError):
        @decorator()
        def view():
            return "x"


@pytest.mark.parametrize("decorator", [requires_scope, requires_role])
def test_bare_use_raises_type_error(decorator):
    with pytest.raises(TypeError):
        @decorator
        def view():
            return "x"


def test_async_view(make_app, mint):
    pytest.importorskip("asgiref")
    app = make_app()

    @app.get("/async")
    @requires_scope("read:messages")
    async def async_view():
        return {"sub": current_token.subject}

    client = app.test_client()
    assert client.get("/async").status_code == 401
    response = client.get("/async", headers=bearer(mint(scope="read:messages")))
    assert response.get_json() == {"sub": "auth0|user-1"}


def test_blueprint_registered_after_init_app_is_protected(make_app, mint):
    app = make_app()
    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.get("/")
    @requires_role("admin")
    def index():
        return {"admin": current_token.subject}

    app.register_blueprint(admin)
    client = app.test_client()
    assert client.get("/admin/", headers=bearer(mint(roles=["viewer"]))).status_code == 403
    assert client.get("/admin/", headers=bearer(mint(roles=["admin"]))).status_code == 200


def test_current_token_outside_a_protected_view_raises(make_app, mint):
    with pytest.raises(RuntimeError, match="only available inside a protected view"):
        current_token.subject  # no app context at all
    app = make_app()
    with app.test_request_context("/"):
        with pytest.raises(RuntimeError, match="only available inside a protected view"):
            current_token.subject
    seen: list[str] = []

    @app.get("/peek")
    def peek():
        try:
            seen.append(current_token.subject)
        except RuntimeError as error:
            seen.append(str(error))
        return {}

    client = app.test_client()
    token = mint()
    for _ in range(2):  # the second use caches it
        assert client.get("/private", headers=bearer(token)).status_code == 200
    assert token in get_state(app).authenticator.token_cache  # type: ignore[operator]
    client.get("/peek", headers=bearer(token))
    assert seen == ["current_token is only available inside a protected view."]


def test_token_is_validated_once_per_request(make_app, mint):
    app = make_app()
    calls = []

    @app.get("/twice")
    @requires_auth
    @requires_scope("read:messages")
    def twice():
        calls.append(current_token.subject)
        return {"ok": True}

    state = app.extensions["authflow"]
    original = state.authenticator.authenticate
    counted = []
    state.authenticator.authenticate = lambda routed: counted.append(1) or original(routed)
    response = app.test_client().get("/twice", headers=bearer(mint(scope="read:messages")))
    assert response.status_code == 200
    assert len(counted) == 1


def test_two_apps_share_one_extension(issuer, clock, mint, tmp_path):
    from conftest import add_views  # noqa: PLC0415 - the views the fixture app has

    auth = AuthFlow(clock=clock)
    apps = []
    for audience in ("https://one.example.test", "https://two.example.test"):
        app = Flask(__name__)
        app.config.update(
            AUTHFLOW_AUTH0_ISSUER=issuer,
            AUTHFLOW_AUTH0_AUDIENCE=audience,
            AUTHFLOW_REQUIRE_HTTPS_METADATA=False,
        )
        add_views(app)
        auth.init_app(app)
        apps.append(app)
    one, two = (app.test_client() for app in apps)
    token_for_one = mint(aud="https://one.example.test")
    assert one.get("/private", headers=bearer(token_for_one)).status_code == 200
    response = two.get("/private", headers=bearer(token_for_one))
    assert response.status_code == 401
    assert "The audience is invalid" in response.headers["WWW-Authenticate"]
    assert apps[0].extensions["authflow"] is not apps[1].extensions["authflow"]
