"""token_validated and authentication_failed: what they carry, and that the token is never in it."""

from __future__ import annotations

import pytest
from support import bearer

from flask_authflow.signals import authentication_failed, token_validated


@pytest.fixture
def received(app):
    events = []

    def on_validated(sender, **extra):
        events.append(("validated", sender, extra))

    def on_failed(sender, **extra):
        events.append(("failed", sender, extra))

    token_validated.connect(on_validated, app)
    authentication_failed.connect(on_failed, app)
    yield events
    token_validated.disconnect(on_validated, app)
    authentication_failed.disconnect(on_failed, app)


def test_validated_token_is_announced_once(app, client, mint, received):
    client.get("/scoped", headers=bearer(mint(scope="read:messages write:messages")))
    assert received == [("validated", app, {"scheme": "Auth0", "subject": "auth0|user-1"})]


def test_invalid_token_is_announced_with_reason_and_no_subject(app, client, mint, clock, received):
    token = mint(exp=int(clock.now) - 3600)
    client.get("/private", headers=bearer(token))
    assert received == [
        ("failed", app, {"scheme": "Auth0", "subject": None, "reason": "The token is expired", "status": 401})
    ]
    assert token not in repr(received)


def test_routing_failure_has_no_scheme(app, client, received):
    client.get("/private", headers=bearer("garbage"))
    assert received == [
        ("failed", app, {"scheme": None, "subject": None, "reason": "The token is malformed", "status": 401})
    ]


def test_missing_scope_is_announced_with_the_subject(app, client, mint, received):
    client.get("/scoped", headers=bearer(mint(scope="read:messages")))
    assert received[-1] == (
        "failed", app, {"scheme": "Auth0", "subject": "auth0|user-1", "reason": "insufficient_scope", "status": 403}
    )


def test_public_views_send_nothing(client, mint, received):
    client.get("/public", headers=bearer(mint()))
    client.get("/public", headers=bearer("garbage"))
    assert received == []


def test_signals_of_another_app_are_not_received(make_app, mint, received):
    other = make_app()
    other.test_client().get("/private", headers=bearer(mint()))
    assert received == []
