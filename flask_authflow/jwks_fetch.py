"""Fetching a JWK Set document over HTTP, defensively.

A fetch follows redirects only on the same origin, stops reading past a size cap and
a total deadline, and reports each way of failing as :class:`FetchFailed` with a short
cause for the log. Nothing a token carries ever chooses the URL.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from . import strict_json

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class FetchFailed(Exception):
    """The key set could not be fetched; ``str(exc)`` is a token-free cause."""


def fetch_jwk_set(uri: str, *, timeout: float) -> Any:
    """GET ``uri`` and return its JSON document.

    ``timeout`` bounds each network operation and, checked between them, the whole
    fetch including redirects; a fetch lasts at most about twice ``timeout``.

    :raises FetchFailed: on a connection error, a timeout, a redirect to another
        origin, a status other than 200, a body over :data:`MAX_DOCUMENT_BYTES` or a
        body that is not strict JSON.
    """
    deadline = time.monotonic() + timeout
    http = requests.Session()
    try:
        response = _get_following_same_origin(http, uri, deadline)
        with response:
            if response.status_code != 200:
                raise FetchFailed(f"HTTP {response.status_code}")
            body = _read_capped(response, MAX_DOCUMENT_BYTES, deadline)
            content_type = response.headers.get("Content-Type", "")
    except requests.Timeout as exc:
        raise FetchFailed("timed out") from exc
    except requests.ConnectionError as exc:
        raise FetchFailed(f"could not connect ({_network_cause(exc)})") from exc
    except requests.RequestException as exc:
        raise FetchFailed(f"request failed ({type(exc).__name__})") from exc
    except ValueError as exc:  # requests parses a redirect's Location even when not following it
        raise FetchFailed("an invalid URL or redirect Location") from exc
    finally:
        http.close()
    try:
        return strict_json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        shown = content_type.split(";")[0].strip()[:60] or "none"
        raise FetchFailed(f"the body is not JSON (Content-Type: {shown})") from exc


def _get_following_same_origin(
    http: requests.Session, uri: str, deadline: float
) -> requests.Response:
    origin = _origin(uri)
    for _ in range(MAX_REDIRECTS + 1):
        response = http.get(
            uri,
            timeout=_remaining(deadline),
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/json"},
        )
        if response.status_code not in _REDIRECT_CODES:
            return response
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise FetchFailed(f"HTTP {response.status_code} without Location")
        uri = urljoin(uri, location)
        target = _origin(uri)
        if target != origin:
            raise FetchFailed(f"redirected to another host ({target[1] or 'none'})")
    raise FetchFailed("too many redirects")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    too_big = f"the body is over the size cap of {max_bytes} bytes"
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(too_big)
    chunks = []
    size = 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise FetchFailed(too_big)
        _remaining(deadline)
        chunks.append(chunk)
    return b"".join(chunks)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("timed out")
    return left


def _origin(uri: str) -> tuple[str, str, int | None]:
    parts = urlsplit(uri)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _network_cause(exc: BaseException) -> str:
    """The operating system's words for a connection failure (e.g. "Connection
    refused"), found in the chain of exceptions requests and urllib3 build."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.errno, int) and current.errno:
            return os.strerror(current.errno)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return type(exc).__name__

