"""Authenticator: one request's bearer token from header to validated :class:`Token`.

Framework-free: the Flask layer hands it the ``Authorization`` header value and turns
what it raises into responses. Routing and validation are split because routing runs
for every request (its problems are only recorded) while validation runs only when a
protected view asks.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .errors import AuthError, MissingToken, UnexpectedFailure
from .parsing import UnverifiedToken, bearer_token, parse_token
from .routing import Schemes, route_by_issuer
from .token import Token
from .validation import Scheme, validate

logger = logging.getLogger("flask_authflow")


@dataclass(frozen=True)
class RoutedToken:
    """The routing step's outcome: a token and its scheme, or the error to answer with."""

    token: UnverifiedToken | None = None
    scheme: Scheme | None = None
    error: AuthError | None = None


class Authenticator:
    """Routes and validates bearer tokens for one app's schemes."""

    def __init__(
        self,
        schemes: Schemes,
        *,
        clock: Callable[[], float] = time.time,
        token_cache_size: int = 0,
    ) -> None:
        self.schemes = schemes
        self._clock = clock
        self.token_cache_size = token_cache_size

    def route(self, authorization: str | None) -> RoutedToken | None:
        """Parse the header and pick the scheme; ``None`` when there is no header."""
        if authorization is None:
            return None
        try:
            token = parse_token(bearer_token(authorization))
            return RoutedToken(token=token, scheme=route_by_issuer(token, self.schemes))
        except AuthError as error:
            return RoutedToken(error=error)
        except Exception:  # noqa: BLE001 - the one guard that turns surprises into a 401
            return RoutedToken(error=_unexpected("routing"))

    def authenticate(self, routed: RoutedToken | None) -> Token:
        """Validate a routed token, raising the :class:`AuthError` to answer with."""
        if routed is None:
            raise MissingToken()
        if routed.error is not None:
            raise routed.error
        assert routed.token is not None and routed.scheme is not None
        try:
            return validate(routed.token, routed.scheme, self._clock())
        except AuthError:
            raise
        except Exception:  # noqa: BLE001 - the one guard that turns surprises into a 401
            # ``from None``: the original message might quote token data.
            raise _unexpected("validation") from None


def _unexpected(stage: str) -> UnexpectedFailure:
    # Log the exception's type and stack only: its message might quote the token.
    exc_type, _, tb = sys.exc_info()
    name = exc_type.__name__ if exc_type is not None else "unknown"
    stack = "".join(traceback.format_tb(tb))
    logger.error("Flask-AuthFlow: unexpected %s during token %s\n%s", name, stage, stack)
    return UnexpectedFailure()
