"""Requests per second under gunicorn on loopback, unprotected against protected.

One gunicorn worker (gthread, 4 threads) serves :mod:`gunicorn_app` on 127.0.0.1; a
second process, wrk (or :mod:`loadgen` without it), loads it for a fixed number of
seconds with 8 keep-alive connections. Three scenarios, interleaved over a few rounds:
the unprotected view, the protected view with one repeated token, and the protected
view with a different token on every request (more distinct tokens than the token
cache holds, taken in turn, so every one is a cache miss).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from statistics import median
from typing import Any

from setups import JwksEndpoint, RsaKeys, mint_many, mint_rs256

HERE = Path(__file__).resolve().parent
CONNECTIONS = 8
#: More than twice the default token cache size, so that rotating never hits it.
ROTATING_TOKENS = 10_000
SCENARIOS = ("unprotected", "protected, repeated token", "protected, new token every request")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer {url} within {seconds} s")


def load(url: str, seconds: float, header: str | None, tokens_file: str | None) -> dict[str, Any]:
    """One bounded load from a second process: wrk when installed, else loadgen.py."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s", url]
        if header is not None:
            command[1:1] = ["-H", header]
        if tokens_file is not None:
            command[1:1] = ["-s", str(HERE / "rotate_tokens.lua")]
            command += ["--", tokens_file]
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=seconds + 30
        ).stdout
        rate = re.search(r"Requests/sec:\s*([\d.]+)", output)
        total = re.search(r"(\d+) requests in", output)
        bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
        errors = re.search(r"Socket errors:.*", output)
        if rate is None or total is None:
            raise RuntimeError(f"could not read wrk's output:\n{output}")
        return {
            "tool": "wrk",
            "requests_per_second": float(rate.group(1)),
            "requests": int(total.group(1)),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else None,
        }
    command = [sys.executable, str(HERE / "loadgen.py"), url, "--seconds", f"{seconds:g}",
               "--connections", str(CONNECTIONS)]
    if header is not None:
        command += ["--header", header]
    if tokens_file is not None:
        command += ["--tokens-file", tokens_file]
    result = json.loads(subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout)
    return {
        "tool": "loadgen.py",
        "requests_per_second": result["requests_per_second"],
        "requests": result["requests"],
        "non_2xx": result["errors"],
        "socket_errors": None,
    }


def run(keys: RsaKeys, endpoint: JwksEndpoint, *, seconds: float, rounds: int = 3) -> dict[str, Any]:
    token = mint_rs256(keys.private, endpoint.issuer, 0)
    rotating = mint_many(keys, endpoint.issuer, ROTATING_TOKENS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = dict(os.environ, AUTHFLOW_BENCH_ISSUER=endpoint.issuer)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as tokens_file:
        tokens_file.write("\n".join(rotating) + "\n")
        tokens_file.flush()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--chdir", str(HERE), "--workers", "1",
             "--worker-class", "gthread", "--threads", "4", "--bind", f"127.0.0.1:{port}",
             "--log-level", "warning", "gunicorn_app:app"],
            env=environment,
        )
        try:
            wait_until_up(f"{base}/public")
            request = urllib.request.Request(f"{base}/", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:  # fetches the keys
                if response.status != 200:
                    raise RuntimeError("the protected view refused the benchmark token")
            plans = {
                SCENARIOS[0]: (f"{base}/public", None, None),
                SCENARIOS[1]: (f"{base}/", f"Authorization: Bearer {token}", None),
                SCENARIOS[2]: (f"{base}/", None, tokens_file.name),
            }
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
            for number in range(rounds):
                for name, (url, header, tokens) in plans.items():
                    runs[name].append(load(url, seconds, header, tokens))
                print(f"  round {number + 1}/{rounds} done", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=30)

    unprotected = median(run["requests_per_second"] for run in runs[SCENARIOS[0]])
    scenarios = []
    for name in SCENARIOS:
        rates = [run["requests_per_second"] for run in runs[name]]
        scenarios.append({
            "scenario": name,
            "requests_per_second": median(rates),
            "rounds": rates,
            "relative_to_unprotected": round(median(rates) / unprotected, 3),
            "non_2xx": sum(run["non_2xx"] for run in runs[name]),
        })
    return {
        "server": "gunicorn, 1 worker, gthread with 4 threads, 127.0.0.1",
        "load": f"{runs[SCENARIOS[0]][0]['tool']}, 1 thread, {CONNECTIONS} keep-alive connections, "
                f"{seconds:g} s per run, {rounds} rounds interleaved, median",
        "scenarios": scenarios,
    }


def print_results(http: dict[str, Any]) -> None:
    print(f"\nHTTP level ({http['server']}; {http['load']}):")
    for scenario in http["scenarios"]:
        print(
            f"  {scenario['scenario']:<36} {scenario['requests_per_second']:>9.0f} req/s "
            f"({scenario['relative_to_unprotected']:.2f} of unprotected; "
            f"non-2xx: {scenario['non_2xx']})"
        )
