"""The pytest plugin of Flask-AuthFlow (registered through the ``pytest11`` entry point).

It provides one fixture, ``authflow_tokens``: a :class:`~flask_authflow.testing.TestTokens`
for the ``app`` fixture your suite defines, restored after the test::

    def test_private(client, authflow_tokens):
        token = authflow_tokens.auth0(scopes=["read:messages"])
        assert client.get("/private", headers=authflow_tokens.headers(token)).status_code == 200
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from .testing import TestTokens


@pytest.fixture
def authflow_tokens(app: Flask) -> Iterator[TestTokens]:
    """Tokens the ``app`` fixture's app accepts, with no network and no secrets store."""
    tokens = TestTokens(app)
    yield tokens
    tokens.restore()
