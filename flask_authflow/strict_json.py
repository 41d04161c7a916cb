"""One strict JSON reader for everything Flask-AuthFlow parses: tokens, JWK Sets and
the user-secrets files.

Strict means RFC 8259 only: no ``NaN`` or ``Infinity``, and no object with two members
of one name (different readers would see different values). Errors are ``ValueError``
(``json.JSONDecodeError`` for syntax); deep nesting raises ``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


# Built once: ``json.loads`` with options builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_members)
#: The decoder's scanner (C code): it reads one value at an index and nothing around it.
_SCAN_VALUE = _DECODER.scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """Parse ``text`` as strict JSON."""
    # Compact JSON (what tokens carry) is one value filling the whole text: the
    # scanner alone reads it, without the decoder's Python-level wrappers. Anything
    # else (white space around the value, errors) takes the decoder's full path.
    try:
        value, end = _SCAN_VALUE(text, 0)
    except StopIteration:
        end = -1
    if end == len(text):
        return value
    return _DECODER.decode(text)
