"""Messages: a public, a private and a scoped view."""

from __future__ import annotations

from flask import Blueprint

from flask_authflow import current_token, requires_auth, requires_scope

messages = Blueprint("messages", __name__)


@messages.get("/public")
def public() -> dict[str, str]:
    return {"message": "Hello from a public endpoint. No token needed."}


@messages.get("/private")
@requires_auth
def private() -> dict[str, object]:
    return {
        "message": "Hello from a private endpoint.",
        "sub": current_token.subject,
        "scheme": current_token.scheme,
    }


@messages.get("/private-scoped")
@requires_scope("read:messages")
def private_scoped() -> dict[str, object]:
    return {
        "message": "Hello from a scoped endpoint: you hold read:messages.",
        "scopes": sorted(current_token.scopes),
    }
