"""A bare app with only the ``flask user-jwts`` group, for the CLI tests.

Run as ``python -m flask --app user_jwts_app user-jwts ...`` by the subprocess test;
the store's root then comes from the ``AUTHFLOW_USER_SECRETS_DIR`` environment variable.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_authflow.cli import user_jwts_cli


def create_app(**config: Any) -> Flask:
    """The app; keyword arguments are ``AUTHFLOW_*`` overrides without the prefix."""
    app = Flask(__name__)
    app.config["AUTHFLOW_ENV"] = "development"
    app.config.update({f"AUTHFLOW_{name}": value for name, value in config.items()})
    app.cli.add_command(user_jwts_cli)
    return app
