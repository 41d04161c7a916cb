"""Signals for auditing and metrics, sent through Flask's blinker namespace.

Receivers get the app as sender and keyword arguments; the token itself is never sent.

``token_validated``
    ``scheme`` (``"Auth0"`` or ``"UserJwts"``) and ``subject`` (the ``sub`` claim), once
    per request whose token a protected view validated.
``authentication_failed``
    ``scheme`` (the scheme that judged the token, or ``None`` when routing failed or
    there was no token), ``subject`` (only for a 403, where the token was valid; else
    ``None``: an unverified ``sub`` is attacker-controlled), ``reason`` (the error
    description, e.g. ``"The token is expired"``, or the error code) and ``status``.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

token_validated = _signals.signal("authflow-token-validated")
authentication_failed = _signals.signal("authflow-authentication-failed")
