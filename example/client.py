"""A machine-to-machine client: the client-credentials flow, then a call to the API.

Against a real tenant::

    python3 -m example.client --token-url https://YOUR_TENANT.auth0.com/oauth/token \\
        --client-id ... --client-secret ... --audience https://your-api-identifier \\
        --api http://127.0.0.1:5000/api/messages/private-scoped

The secret can also come from the ``CLIENT_SECRET`` environment variable, which keeps
it out of your shell history.
"""

from __future__ import annotations

import argparse
import os
import sys

import requests

TIMEOUT = 10


def fetch_access_token(token_url: str, client_id: str, client_secret: str, audience: str) -> str:
    """``POST /oauth/token`` with the client-credentials grant; the access token."""
    response = requests.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "audience": audience,
        },
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def call_api(url: str, access_token: str) -> requests.Response:
    """``GET url`` with the token as a bearer credential."""
    return requests.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", default=os.environ.get("CLIENT_SECRET"))
    parser.add_argument("--audience", required=True)
    parser.add_argument("--api", required=True)
    args = parser.parse_args(argv)
    if not args.client_secret:
        parser.error("give --client-secret or set CLIENT_SECRET")
    token = fetch_access_token(args.token_url, args.client_id, args.client_secret, args.audience)
    response = call_api(args.api, token)
    print(response.status_code, response.text.strip())
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
