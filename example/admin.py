"""Administration: views guarded by roles."""

from __future__ import annotations

from flask import Blueprint

from flask_authflow import current_token, requires_role

admin = Blueprint("admin", __name__)


@admin.get("/")
@requires_role("admin", "ops")
def index() -> dict[str, object]:
    return {"message": "Hello, operator.", "roles": sorted(current_token.roles)}
