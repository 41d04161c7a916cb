"""A small HTTP load generator, used by http_level.py when wrk is not installed.

Keeps ``--connections`` keep-alive connections busy for ``--seconds`` (and at most
``--max-requests`` requests), then prints what it did as JSON::

    python benchmarks/loadgen.py http://127.0.0.1:8000/ --seconds 5 --header "Authorization: Bearer x"
    python benchmarks/loadgen.py http://127.0.0.1:8000/ --tokens-file tokens.txt

Python's own client costs far more per request than wrk, so its figures are lower
and say less; they are comparable only among themselves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from itertools import count
from urllib.parse import urlsplit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--tokens-file", help="a bearer token per request, taken in turn")
    args = parser.parse_args(argv)

    target = urlsplit(args.url)
    if target.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("only loopback targets are allowed")
    headers = dict(item.split(": ", 1) for item in args.header)
    tokens: list[str] = []
    if args.tokens_file:
        with open(args.tokens_file) as file:
            tokens = file.read().split()
    tickets = count()
    deadline = time.monotonic() + args.seconds
    done = [0] * args.connections
    failed = [0] * args.connections

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        while time.monotonic() < deadline:
            ticket = next(tickets)
            if ticket >= args.max_requests:
                break
            request_headers = dict(headers)
            if tokens:
                request_headers["Authorization"] = f"Bearer {tokens[ticket % len(tokens)]}"
            try:
                connection.request("GET", target.path or "/", headers=request_headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failed[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                continue
            if response.status == 200:
                done[slot] += 1
            else:
                failed[slot] += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    print(json.dumps({
        "requests": sum(done),
        "errors": sum(failed),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(sum(done) / elapsed, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
