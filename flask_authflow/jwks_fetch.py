"""Fetching a JWK Set document over HTTP, defensively.

A fetch follows redirects only on the same origin, stops reading past a size cap and
a total deadline, and reports each way of failing as :class:`FetchFailed` with a short
cause for the log. Nothing a token carries ever chooses the URL.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class FetchFailed(Exception):
    """The key set could not be fetched; ``str(exc)`` is a token-free cause."""


def fetch_jwk_set(
    uri: str,
    *,
    timeout: float,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    session: requests.Session | None = None,
) -> Any:
    """GET ``uri`` and return its JSON document.

    :raises FetchFailed: on a connection error, a timeout (per read and in total), a
        redirect to another origin, a status other than 200, a body over ``max_bytes``
        or a body that is not strict JSON.
    """
    deadline = time.monotonic() + timeout
    http = session or requests.Session()
    try:
        response = _get_following_same_origin(http, uri, timeout)
        with response:
            if response.status_code != 200:
                raise FetchFailed(f"HTTP {response.status_code}")
            body = _read_capped(response, max_bytes, deadline)
    except requests.Timeout as exc:
        raise FetchFailed("timed out") from exc
    except requests.RequestException as exc:
        raise FetchFailed(f"request failed ({type(exc).__name__})") from exc
    finally:
        if session is None:
            http.close()
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchFailed("the body is not JSON") from exc


def _get_following_same_origin(http: requests.Session, uri: str, timeout: float) -> requests.Response:
    origin = _origin(uri)
    for _ in range(MAX_REDIRECTS + 1):
        response = http.get(
            uri,
            timeout=timeout,
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
        if _origin(uri) != origin:
            raise FetchFailed("redirected to another host")
    raise FetchFailed("too many redirects")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed("the body is over the size cap")
    chunks = []
    size = 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise FetchFailed("the body is over the size cap")
        if time.monotonic() > deadline:
            raise FetchFailed("timed out")
        chunks.append(chunk)
    return b"".join(chunks)


def _origin(uri: str) -> tuple[str, str, int | None]:
    parts = urlsplit(uri)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
