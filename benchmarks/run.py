"""Flask-AuthFlow's benchmark: per-request cost at the WSGI level against the libraries
users would pick instead, memory after many distinct tokens, and requests per second
under gunicorn.

Run from the repository root::

    python benchmarks/run.py            # everything, about four minutes
    python benchmarks/run.py --quick    # fewer rounds and tokens, a smoke test

The WSGI-level figures come from one process and one run: every setup is a Flask app
called through ``app.wsgi_app`` with a prepared environ, ``--iterations`` requests per
round, ``--rounds`` rounds with the setups interleaved (many short rounds, so that
bursts of other work on the machine land in few of them), and the median of the
rounds' per-request means. Ratios are to the unprotected view of the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any

import http_level
from joserfc.jwk import OctKey, RSAKey
from setups import (
    AUDIENCE,
    DEV_AUDIENCE,
    DEV_ISSUER,
    DevelopmentStore,
    JwksEndpoint,
    RsaKeys,
    authflow_app,
    authlib_app,
    development_store,
    flask_jwt_extended_app,
    hs256_verifier,
    mint_many,
    mint_rs256,
    pyjwt_app,
    rs256_verifier,
    signature_floor_app,
    unprotected_app,
)
from werkzeug.test import EnvironBuilder

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"

WsgiApp = Callable[..., Iterable[bytes]]


# -- the targets of issue 5 -------------------------------------------------------------

#: Largest accepted ratio to the unprotected view, per Flask-AuthFlow setup.
RATIO_TARGETS = {
    "authflow-repeated": 1.15,
    "authflow-new": 1.7,
    "authflow-dev": 1.3,
    "authflow-dev-new": 1.3,
}
#: Each Flask-AuthFlow setup against the competitors verifying the same token.
SAME_TOKEN_COMPETITORS = {
    "authflow-repeated": ("flask-jwt-extended", "authlib"),
    "authflow-new": ("flask-jwt-extended", "authlib"),
    "authflow-dev": ("flask-jwt-extended-hs256", "authlib-hs256"),
    "authflow-dev-new": ("flask-jwt-extended-hs256", "authlib-hs256"),
}
#: "At least 2x cheaper", comparing the cost each adds above the unprotected view.
EXTRA_COST_FACTOR = 2.0
#: For the new-token setups: the setup that does nothing but their signature check,
#: the least any verifier must add on this machine.
FLOORS = {"authflow-new": "floor-rs256", "authflow-dev-new": "floor-hs256"}


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Setup:
    name: str
    label: str
    wsgi: WsgiApp
    #: ``environs(n)``: the environ of each of the next ``n`` requests.
    environs: Callable[[int], list[dict[str, Any]]]


@dataclass
class Measurement:
    name: str
    label: str
    median_us: float
    min_us: float
    max_us: float
    rounds_us: list[float]
    ratio: float = 0.0
    extra_us: float = 0.0
    #: The same from each setup's fastest round: steadier on a machine shared with
    #: other work, since interference only ever adds time.
    best_ratio: float = 0.0
    #: The median, over rounds, of this setup's time over the unprotected view's in
    #: the same round: a paired estimate, so drift in machine speed cancels out.
    paired_ratio: float = 0.0


def environ_for(token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return EnvironBuilder(path="/", method="GET", headers=headers).get_environ()


def repeated(token: str | None) -> Callable[[int], list[dict[str, Any]]]:
    environ = environ_for(token)
    return lambda n: [environ] * n


def each_new(tokens: Sequence[str]) -> Callable[[int], list[dict[str, Any]]]:
    """Hands out every token once; asking for more than were minted is a bug."""
    template = environ_for(None)
    position = 0

    def take(n: int) -> list[dict[str, Any]]:
        nonlocal position
        batch = tokens[position : position + n]
        if len(batch) != n:
            raise RuntimeError("the benchmark minted too few tokens")
        position += n
        return [dict(template, HTTP_AUTHORIZATION=f"Bearer {token}") for token in batch]

    return take


def time_requests(wsgi: WsgiApp, environs: list[dict[str, Any]]) -> float:
    """Mean microseconds per request; every response must be a 200."""
    failures = 0

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        nonlocal failures
        if not status.startswith("200"):
            failures += 1

    gc.collect()
    start = time.perf_counter_ns()
    for environ in environs:
        response = wsgi(environ.copy(), start_response)
        for _ in response:
            pass
        response.close()  # type: ignore[attr-defined]
    elapsed = time.perf_counter_ns() - start
    if failures:
        raise RuntimeError(f"{failures} of {len(environs)} requests failed")
    return elapsed / len(environs) / 1000


def measure(setups: list[Setup], rounds: int, iterations: int) -> list[Measurement]:
    for setup in setups:  # warm-up: imports, first-use caches, the key fetch
        time_requests(setup.wsgi, setup.environs(min(200, iterations)))
    per_round: dict[str, list[float]] = {setup.name: [] for setup in setups}
    for number in range(rounds):
        # Interleaved, in a rotating order, so drift in machine speed hits all alike.
        shift = number % len(setups)
        for setup in setups[shift:] + setups[:shift]:
            per_round[setup.name].append(time_requests(setup.wsgi, setup.environs(iterations)))
        print(f"  round {number + 1}/{rounds} done", file=sys.stderr)
    results = [
        Measurement(
            name=setup.name,
            label=setup.label,
            median_us=median(per_round[setup.name]),
            min_us=min(per_round[setup.name]),
            max_us=max(per_round[setup.name]),
            rounds_us=[round(value, 2) for value in per_round[setup.name]],
        )
        for setup in setups
    ]
    base, best_base = results[0].median_us, results[0].min_us
    base_rounds = per_round[results[0].name]
    for result in results:
        result.ratio = result.median_us / base
        result.extra_us = result.median_us - base
        result.best_ratio = result.min_us / best_base
        result.paired_ratio = median(
            ours / theirs for ours, theirs in zip(per_round[result.name], base_rounds)
        )
    return results


# -- the setups -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """The tokens the setups send: one of each kind, and fresh ones for the 'new' setups."""

    rs256: str
    hs256: str
    new_rs256: Sequence[str]
    new_hs256: Sequence[str]

    @classmethod
    def mint(cls, keys: RsaKeys, issuer: str, dev: DevelopmentStore, new: int) -> Tokens:
        print(f"  minting {new} RS256 and {new} HS256 tokens", file=sys.stderr)
        dev_key = dev.key()
        return cls(
            rs256=mint_rs256(keys.private, issuer, 0),
            hs256=dev.mint(0, dev_key),
            new_rs256=mint_many(keys, issuer, new),
            new_hs256=[dev.mint(serial, dev_key) for serial in range(1, new + 1)],
        )


def setup_factories(
    keys: RsaKeys, issuer: str, dev: DevelopmentStore, tokens: Tokens
) -> dict[str, Callable[[], Setup]]:
    """Every setup by name, built only when called (instructions.py builds just one)."""
    dev_secret = dev.key().value
    token, dev_token = tokens.rs256, tokens.hs256
    table: dict[str, tuple[str, Callable[[], Any], Callable[[int], list[dict[str, Any]]]]] = {
        "unprotected": ("unprotected Flask view", unprotected_app, repeated(None)),
        "floor-rs256": (
            "floor: the RS256 signature check alone in the view (cryptography, no claims)",
            lambda: signature_floor_app(rs256_verifier(keys.private.public_key())),
            repeated(token),
        ),
        "pyjwt": (
            "jwt.decode in the view (RS256)",
            lambda: pyjwt_app(keys.private.public_key(), "RS256", issuer, AUDIENCE),
            repeated(token),
        ),
        "flask-jwt-extended": (
            "flask-jwt-extended (RS256 public key)",
            lambda: flask_jwt_extended_app(keys.public_pem.decode(), "RS256", issuer, AUDIENCE),
            repeated(token),
        ),
        "authlib": (
            "Authlib ResourceProtector + JWTBearerTokenValidator (RS256)",
            lambda: authlib_app(RSAKey.import_key(keys.public_pem), issuer, AUDIENCE),
            repeated(token),
        ),
        "authflow-new": (
            "Flask-AuthFlow, new RS256 token every request",
            lambda: authflow_app(issuer=issuer),
            each_new(tokens.new_rs256),
        ),
        "authflow-repeated": (
            "Flask-AuthFlow, repeated RS256 token",
            lambda: authflow_app(issuer=issuer),
            repeated(token),
        ),
        "authflow-nocache": (
            "Flask-AuthFlow, repeated RS256 token, cache off",
            lambda: authflow_app(issuer=issuer, TOKEN_CACHE_SIZE=0),
            repeated(token),
        ),
        "floor-hs256": (
            "floor: the HS256 signature check alone in the view (hmac, no claims)",
            lambda: signature_floor_app(hs256_verifier(dev_secret)),
            repeated(dev_token),
        ),
        "pyjwt-hs256": (
            "jwt.decode in the view (development HS256 token)",
            lambda: pyjwt_app(dev_secret, "HS256", DEV_ISSUER, DEV_AUDIENCE),
            repeated(dev_token),
        ),
        "flask-jwt-extended-hs256": (
            "flask-jwt-extended (development HS256 token)",
            lambda: flask_jwt_extended_app(dev_secret, "HS256", DEV_ISSUER, DEV_AUDIENCE),
            repeated(dev_token),
        ),
        "authlib-hs256": (
            "Authlib ResourceProtector (development HS256 token)",
            lambda: authlib_app(OctKey.import_key(dev_secret), DEV_ISSUER, DEV_AUDIENCE),
            repeated(dev_token),
        ),
        "authflow-dev": (
            "Flask-AuthFlow, development HS256 token, repeated",
            lambda: authflow_app(dev_store=dev),
            repeated(dev_token),
        ),
        "authflow-dev-new": (
            "Flask-AuthFlow, new development HS256 token every request",
            lambda: authflow_app(dev_store=dev),
            each_new(tokens.new_hs256),
        ),
    }

    def factory(name: str) -> Callable[[], Setup]:
        label, make_app, environs = table[name]
        return lambda: Setup(name, label, make_app().wsgi_app, environs)

    return {name: factory(name) for name in table}


# -- verdicts, machine, output ----------------------------------------------------------------


def verdicts(results: list[Measurement]) -> list[dict[str, Any]]:
    by_name = {result.name: result for result in results}
    checks: list[dict[str, Any]] = []
    for name, limit in RATIO_TARGETS.items():
        ratio = by_name[name].ratio
        checks.append({
            "target": f"{name} <= {limit}x the unprotected view",
            "measured": f"{ratio:.3f}x",
            "met": ratio <= limit,
        })
    for name, competitors in SAME_TOKEN_COMPETITORS.items():
        ours = by_name[name].extra_us
        for competitor in competitors:
            theirs = by_name[competitor].extra_us
            factor = theirs / ours if ours > 0 else float("inf")
            checks.append({
                "target": f"{name} adds >= {EXTRA_COST_FACTOR:g}x less than {competitor}",
                "measured": f"{ours:.1f} us vs {theirs:.1f} us extra: {factor:.1f}x less",
                "met": factor >= EXTRA_COST_FACTOR,
            })
    return checks


def floors(results: list[Measurement]) -> list[dict[str, Any]]:
    """How far each new-token setup is above the bare signature check of its token."""
    by_name = {result.name: result for result in results}
    return [
        {
            "setup": name,
            "floor": floor,
            "floor_ratio": round(by_name[floor].ratio, 3),
            "setup_ratio": round(by_name[name].ratio, 3),
            "above_floor_us": round(by_name[name].median_us - by_name[floor].median_us, 1),
            "signature_share_of_extra": round(by_name[floor].extra_us / by_name[name].extra_us, 3)
            if by_name[name].extra_us > 0 else None,
        }
        for name, floor in FLOORS.items()
    ]


def print_floors(rows: list[dict[str, Any]]) -> None:
    print()
    for row in rows:
        print(
            f"  {row['setup']}: {row['setup_ratio']:.2f}x; its signature check alone "
            f"({row['floor']}) is {row['floor_ratio']:.2f}x, so no verifier of a new token "
            f"can be cheaper here; {row['above_floor_us']:.1f} us above that floor"
        )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = [
        "flask", "werkzeug", "pyjwt", "cryptography", "flask-jwt-extended", "authlib",
        "joserfc", "gunicorn", "flask-caching",
    ]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = subprocess.run(
        ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
        "flask_authflow_commit": commit or None,
    }


def print_table(results: list[Measurement]) -> None:
    print(
        f"\n{'setup':<26} {'median us':>10} {'min..max us':>16} {'ratio':>7} {'extra us':>9}"
        f" {'best-round ratio':>17} {'paired ratio':>13}"
    )
    for result in results:
        spread = f"{result.min_us:.1f}..{result.max_us:.1f}"
        print(
            f"{result.name:<26} {result.median_us:>10.1f} {spread:>16} "
            f"{result.ratio:>6.2f}x {result.extra_us:>9.1f} {result.best_ratio:>16.2f}x"
            f" {result.paired_ratio:>12.2f}x"
        )


def print_checks(checks: list[dict[str, Any]]) -> None:
    print()
    for check in checks:
        print(f"  [{'met' if check['met'] else 'MISSED':>6}] {check['target']}: {check['measured']}")


def run_memory(tokens: int, cache_size: int) -> dict[str, Any]:
    """memory.py in a fresh process, so that the figures are that app's alone."""
    completed = subprocess.run(
        [sys.executable, str(HERE / "memory.py"), "--tokens", str(tokens),
         "--cache-size", str(cache_size), "--json"],
        capture_output=True, text=True, check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def memory_report(tokens: int, cache_size: int) -> dict[str, Any]:
    """The run with the cache, and a shorter one without it: what the process grows by
    anyway (allocator, pool buffers), so that the cache's own share can be told apart."""
    with_cache = run_memory(tokens, cache_size)
    without = run_memory(min(tokens, 50_000), 0)
    attributed = with_cache["rss_growth_mib"] - without["rss_growth_mib"]
    return {
        "with_cache": with_cache,
        "without_cache": without,
        "cache_attributed_growth_mib": round(attributed, 2),
        "overhead_over_entry_bytes": round(attributed / with_cache["cache_bound_mib"] - 1, 3)
        if with_cache["cache_bound_mib"] else None,
        "bounded": with_cache["bounded"],
    }


def print_memory(memory: dict[str, Any]) -> None:
    cached, without = memory["with_cache"], memory["without_cache"]
    print(
        f"\nMemory, {cached['tokens']:,} distinct valid RS256 tokens through one app "
        f"(AUTHFLOW_TOKEN_CACHE_SIZE={cached['cache_size']}):\n"
        f"  RSS grew {cached['rss_growth_mib']:.1f} MiB in all; "
        f"{cached['rss_growth_after_fill_mib']:+.2f} MiB of it after the cache was full, "
        f"{cached['rss_growth_second_half_mib']:+.2f} MiB over the second half of the run "
        f"({ {True: 'bounded', False: 'NOT bounded', None: 'too few tokens to tell'}[memory['bounded']] })\n"
        f"  the cache bound: {cached['cache_size']} x ({cached['bytes_per_entry']:,} bytes per "
        f"entry + {cached['bytes_per_mark']:,} per older mark) (tracemalloc) = "
        f"{cached['cache_bound_mib']:.1f} MiB\n"
        f"  without a cache the same app grew {without['rss_growth_mib']:.1f} MiB over "
        f"{without['tokens']:,} tokens; so the cache accounts for "
        f"{memory['cache_attributed_growth_mib']:.1f} MiB of RSS "
        f"({memory['overhead_over_entry_bytes']:+.0%} over its entries' own bytes: allocator)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=600, help="requests per round")
    parser.add_argument("--memory-tokens", type=int, default=200_000)
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 x 200, 20k tokens, 3 s")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.iterations, args.memory_tokens, args.http_seconds = 5, 200, 20_000, 3.0

    report: dict[str, Any] = {
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "settings": {"rounds": args.rounds, "iterations": args.iterations},
        "extra_cost_definition": (
            "extra_us = a setup's median per-request time minus the unprotected view's; "
            f"'{EXTRA_COST_FACTOR:g}x cheaper' compares extra_us"
        ),
    }
    print(f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
          f"Python {report['machine']['python']}; load {report['load_average_before'][0]:.2f}")

    keys = RsaKeys.generate()
    with JwksEndpoint(keys.jwk_set) as endpoint, development_store() as dev:
        print("WSGI level:", file=sys.stderr)
        tokens = Tokens.mint(keys, endpoint.issuer, dev, args.rounds * args.iterations + 200)
        setups = [make() for make in setup_factories(keys, endpoint.issuer, dev, tokens).values()]
        results = measure(setups, args.rounds, args.iterations)
        report["jwks_requests"] = endpoint.requests
        report["wsgi"] = [asdict(result) for result in results]
        report["targets"] = verdicts(results)
        report["floors"] = floors(results)
        print_table(results)
        print_checks(report["targets"])
        print_floors(report["floors"])

        if not args.no_memory:
            print("\nMemory:", file=sys.stderr)
            report["memory"] = memory_report(args.memory_tokens, 4096)
            print_memory(report["memory"])
        if not args.no_http:
            print("\nHTTP level:", file=sys.stderr)
            report["http"] = http_level.run(keys, endpoint, seconds=args.http_seconds)
            http_level.print_results(report["http"])

    report["load_average_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
