"""The exception tree of Flask-AuthFlow and how each error renders over HTTP.

Each error knows its status code, its ``WWW-Authenticate`` value and its JSON body,
so the Flask layer only has to turn it into a response. The descriptions are the
fixed strings of the error contract; none of them ever contains token data.
"""

from __future__ import annotations

import math
from typing import Any


class AuthError(Exception):
    """Base of every authentication and authorization failure."""

    status_code = 401
    error = "invalid_token"
    description: str | None = None

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            self.description = description
        super().__init__(self.description or self.error)

    @property
    def reason(self) -> str:
        """A short, token-free label for logs and signals."""
        return self.description or self.error

    def www_authenticate(self) -> str | None:
        """The ``WWW-Authenticate`` header value, or ``None`` when there is none."""
        value = f'Bearer error="{self.error}"'
        if self.description:
            value += f', error_description="{self.description}"'
        return value

    def body(self) -> dict[str, Any]:
        """The JSON body: ``error`` and, when there is one, ``error_description``."""
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body

    def headers(self) -> dict[str, str]:
        header = self.www_authenticate()
        return {"WWW-Authenticate": header} if header else {}


class InvalidToken(AuthError):
    """401: the request carries no usable token."""


class MissingToken(InvalidToken):
    """No ``Authorization`` header on a protected view."""


class MalformedToken(InvalidToken):
    description = "The token is malformed"


class ExpiredToken(InvalidToken):
    description = "The token is expired"


class TokenNotYetValid(InvalidToken):
    description = "The token is not valid yet"


class MissingExpiration(InvalidToken):
    description = "The token has no expiration"


class SigningKeyNotFound(InvalidToken):
    description = "The signature key was not found"


class InvalidSignature(InvalidToken):
    description = "The signature is invalid"


class InvalidAudience(InvalidToken):
    description = "The audience is invalid"


class InvalidIssuer(InvalidToken):
    description = "The issuer is invalid"


class UnexpectedFailure(InvalidToken):
    """Validation failed in a way nobody planned for; logged, answered without details."""

    @property
    def reason(self) -> str:
        return "unexpected error"


class Forbidden(AuthError):
    """403: the token is valid but does not grant what the view needs."""

    status_code = 403
    error = "forbidden"

    def www_authenticate(self) -> str | None:
        return None


class InsufficientScope(Forbidden):
    """A scope the view requires is missing."""

    error = "insufficient_scope"


class MissingRole(Forbidden):
    """None of the roles the view accepts is present (``error`` stays ``"forbidden"``)."""


class KeysUnavailable(AuthError):
    """503: signing keys cannot be fetched and none are cached."""

    status_code = 503
    error = "temporarily_unavailable"

    def __init__(self, retry_after: float) -> None:
        super().__init__()
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def reason(self) -> str:
        return "signing keys unavailable"

    def www_authenticate(self) -> str | None:
        return None

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
