"""Instructions per request, counted by valgrind's callgrind: stable where timing is not.

    python benchmarks/instructions.py                      # the Flask-AuthFlow setups
    python benchmarks/instructions.py unprotected authlib  # any setups of run.py

Each setup runs twice in a fresh process under callgrind, for 100 and for 500
requests after a warm-up; the difference of the two totals over 400 is the cost of
one request. Tokens are minted beforehand (signing is not counted), hashing is seeded
and garbage collection is off during the loop. Runs of the same code agree to within
1 % for most setups, but the two with one repeated RS256 token (``authflow-repeated``,
``authflow-nocache``) land on one of a few levels about 28k instructions per request
apart (350k, 379k or 407k for a cache hit), depending on the run's key and tokens;
the cause is not found. Compare those two only within one run, or over several. Ratios are to the unprotected view. Instructions are not time (RSA's
vector code does more per instruction than the interpreter), but a change that saves
instructions on the request path saves time.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from http_level import free_port
from run import Tokens, setup_factories
from setups import DevelopmentStore, JwksEndpoint, RsaKeys

HERE = Path(__file__).resolve().parent
COUNTS = (100, 500)
DEFAULT_SETUPS = (
    "unprotected", "authflow-repeated", "authflow-new", "authflow-nocache",
    "authflow-dev", "authflow-dev-new",
)


def child(folder: Path, name: str, count: int) -> None:
    """Build one setup from the prepared folder and serve ``count`` requests."""
    plan = json.loads((folder / "plan.json").read_text())
    private = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), None)
    keys = RsaKeys(private)  # type: ignore[arg-type]
    tokens = Tokens(**plan["tokens"])
    dev = DevelopmentStore(Path(plan["dev_root"]))
    with JwksEndpoint(keys.jwk_set, port=plan["port"]) as endpoint:
        setup = setup_factories(keys, endpoint.issuer, dev, tokens)[name]()
        environs = setup.environs(50 + count)

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            if not status.startswith("200"):
                raise RuntimeError(f"{name}: {status}")

        gc.disable()
        for environ in environs:
            response = setup.wsgi(environ.copy(), start_response)
            for _ in response:
                pass
            response.close()  # type: ignore[attr-defined]


def count_instructions(folder: Path, name: str, count: int) -> int:
    completed = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(Path(__file__)), "--child", str(folder), name, str(count)],
        capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    found = re.search(r"Collected : (\d+)", completed.stderr)
    if found is None:
        raise RuntimeError(f"callgrind said:\n{completed.stderr[-2000:]}")
    return int(found.group(1))


def main(names: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    names = names or list(DEFAULT_SETUPS)
    if "unprotected" not in names:
        names.insert(0, "unprotected")
    with tempfile.TemporaryDirectory(prefix="authflow-instructions-") as temp:
        folder = Path(temp)
        keys = RsaKeys.generate()
        (folder / "key.pem").write_bytes(keys.private_pem)
        port = free_port()
        dev = DevelopmentStore(folder / "usersecrets")
        tokens = Tokens.mint(keys, f"http://127.0.0.1:{port}/", dev, 50 + max(COUNTS))
        (folder / "plan.json").write_text(json.dumps(
            {"port": port, "dev_root": str(dev.root), "tokens": tokens.__dict__}
        ))
        per_request = {}
        for name in names:
            low, high = (count_instructions(folder, name, count) for count in COUNTS)
            per_request[name] = (high - low) // (COUNTS[1] - COUNTS[0])
            print(f"  {name}: {per_request[name]:,}", file=sys.stderr)
    base = per_request["unprotected"]
    print(f"\n{'setup':<26} {'instructions':>13} {'ratio':>7}")
    for name, value in per_request.items():
        print(f"{name:<26} {value:>13,} {value / base:>6.2f}x")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main(sys.argv[1:]))
