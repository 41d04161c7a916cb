"""Memory after many distinct valid tokens: does the verified-token cache stay bounded?

run.py starts this in a fresh process (so that the figures are this app's alone);
it also runs alone::

    python benchmarks/memory.py --tokens 200000 --cache-size 4096

One Flask-AuthFlow app (Auth0 scheme, keys from a local JWKS server) answers two
requests for each of ``--tokens`` distinct RS256 tokens, minted on the fly by a small
process pool so that no list of tokens inflates this process. Two, because the cache
admits a token on its second use: each token then takes an entry, the most memory
the cache can come to. The resident set size
(RSS) is read at checkpoints. Then the cache is emptied and refilled under
``tracemalloc`` to learn what one entry costs (with its token's admission mark), and
what a mark costs alone, which gives the bound the cache implies: ``cache size x
(bytes per entry + bytes per mark)``, as the cache also keeps up to one older
generation of ``cache size`` marks.

The run counts as bounded when RSS grows by at most 0.5 MiB over its second half
(100,000 tokens by default): a cache keeping every token would grow by about
280 MiB there, and a leak of more than about 5 bytes per token would show.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from setups import JwksEndpoint, RsaKeys, authflow_app, mint_rs256_range

from flask_authflow.extension import get_state
from flask_authflow.token_cache import TokenCache

CHUNK = 500
#: Chunks minted ahead of use: keeps at most a few thousand token strings alive.
AHEAD = 4
MIB = 1024 * 1024
#: Most RSS growth over the second half of the run that still counts as bounded.
FLAT_LIMIT = MIB // 2


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def distinct_tokens(keys: RsaKeys, issuer: str, start: int, count: int) -> Iterator[str]:
    """``count`` new tokens, signed by two worker processes a few chunks ahead."""
    pem = keys.private_pem
    with ProcessPoolExecutor(max_workers=2) as pool:
        pending: list[Future[list[str]]] = []
        next_start = start
        end = start + count
        while pending or next_start < end:
            while len(pending) < AHEAD and next_start < end:
                size = min(CHUNK, end - next_start)
                pending.append(pool.submit(mint_rs256_range, pem, issuer, next_start, size))
                next_start += size
            yield from pending.pop(0).result()


def present_twice(wsgi: Any, token: str) -> None:
    """Two requests with ``token``: the second caches it."""
    for _ in range(2):
        request(wsgi, token)


def request(wsgi: Any, token: str) -> None:
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    statuses: list[str] = []
    response = wsgi(environ, lambda status, headers, exc_info=None: statuses.append(status))
    for _ in response:
        pass
    response.close()
    if not statuses[0].startswith("200"):
        raise RuntimeError(f"a valid token was refused: {statuses[0]}")


def measure(tokens: int, cache_size: int) -> dict[str, Any]:
    keys = RsaKeys.generate()
    with JwksEndpoint(keys.jwk_set) as endpoint:
        app = authflow_app(issuer=endpoint.issuer, TOKEN_CACHE_SIZE=cache_size)
        wsgi = app.wsgi_app
        cache = get_state(app).authenticator.token_cache
        for token in distinct_tokens(keys, endpoint.issuer, 0, 1):
            request(wsgi, token)  # fetches the keys, fills first-use caches
        gc.collect()
        start_rss = rss_bytes()
        checkpoints = sorted({cache_size, 2 * cache_size, tokens // 4, tokens // 2,
                              3 * tokens // 4, tokens} - {0})
        rss_at: dict[int, int] = {}
        for served, token in enumerate(distinct_tokens(keys, endpoint.issuer, 1, tokens), 1):
            present_twice(wsgi, token)
            if served in checkpoints:
                gc.collect()
                rss_at[served] = rss_bytes()
                print(f"  {served:>7,} tokens: RSS {rss_at[served] / MIB:.1f} MiB",
                      file=sys.stderr)
        cached_after_run = len(cache) if cache is not None else 0

        # What one entry costs: empty the cache, then fill it again under tracemalloc.
        per_entry = per_mark = 0
        if cache is not None:
            cache.clear()
            sample = min(cache_size, 4096)
            refill = list(distinct_tokens(keys, endpoint.issuer, tokens + 1, sample))
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for token in refill:
                present_twice(wsgi, token)
            del token
            gc.collect()
            per_entry = (tracemalloc.get_traced_memory()[0] - before) // sample
            tracemalloc.stop()
            per_mark = bytes_per_mark(cache_size)

    growth = rss_at[tokens] - start_rss
    after_fill = rss_at[tokens] - rss_at[min(2 * cache_size, tokens)] if cache_size else growth
    second_half = rss_at[tokens] - rss_at[tokens // 2]
    bound = (per_entry + per_mark) * cache_size
    return {
        "tokens": tokens,
        "cache_size": cache_size,
        "entries_after_run": cached_after_run,
        "rss_start_mib": round(start_rss / MIB, 2),
        "rss_at_mib": {str(count): round(value / MIB, 2) for count, value in rss_at.items()},
        "rss_growth_mib": round(growth / MIB, 2),
        "rss_growth_after_fill_mib": round(after_fill / MIB, 2),
        "rss_growth_second_half_mib": round(second_half / MIB, 2),
        "bytes_per_entry": per_entry,
        "bytes_per_mark": per_mark,
        "cache_bound_mib": round(bound / MIB, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2),
        # Bounded: once the cache is full, more distinct tokens add nothing. Told only
        # when the run's first half filled the cache twice over.
        "bounded": second_half <= FLAT_LIMIT if cache_size and tokens >= 4 * cache_size else None,
        "method": (
            "each token presented twice (the second use caches it); RSS from /proc/self/statm "
            "after gc.collect(), from the first served token to the last; bytes per entry "
            "(with the token's mark) from tracemalloc while refilling the emptied cache, "
            "bytes per mark from tracemalloc on a fresh cache; bounded when RSS grows by "
            "at most 0.5 MiB over the run's second half"
        ),
    }


def bytes_per_mark(cache_size: int) -> int:
    """What one admission mark costs: a fresh cache's marks for ``cache_size`` tokens
    (whose strings exist beforehand, so only the marks are counted)."""
    cache: TokenCache[None] = TokenCache(cache_size)
    raws = [f"token-{number}" for number in range(cache_size)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for raw in raws:
        cache.admits(raw)
    per_mark = (tracemalloc.get_traced_memory()[0] - before) // cache_size
    tracemalloc.stop()
    return per_mark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--cache-size", type=int, default=4096)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    result = measure(args.tokens, args.cache_size)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
