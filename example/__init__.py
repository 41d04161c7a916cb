"""An example API protected by Flask-AuthFlow.

Run it with development tokens::

    python3 -m flask --app example run --debug
    TOKEN=$(python3 -m flask --app example --debug user-jwts create --scope read:messages --output token)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:5000/api/messages/private

With ``AUTHFLOW_AUTH0_DOMAIN`` and ``AUTHFLOW_AUTH0_AUDIENCE`` set in the environment it
also accepts your Auth0 tenant's tokens.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask

from flask_authflow import AuthFlow

from .admin import admin
from .messages import messages

auth = AuthFlow()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app factory ``flask --app example`` and gunicorn use."""
    app = Flask(__name__)
    app.config.update(settings_from_environment())
    app.config.update(config or {})
    auth.init_app(app)
    app.register_blueprint(messages, url_prefix="/api/messages")
    app.register_blueprint(admin, url_prefix="/api/admin")
    return app


def settings_from_environment() -> dict[str, Any]:
    """Every ``AUTHFLOW_*`` environment variable; values that are JSON (numbers,
    ``true``/``false``, lists) are parsed, anything else stays a string."""
    settings: dict[str, Any] = {}
    for name, value in os.environ.items():
        if name.startswith("AUTHFLOW_"):
            try:
                settings[name] = json.loads(value)
            except ValueError:
                settings[name] = value
    return settings
