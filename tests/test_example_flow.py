"""The production flow end to end, offline: stand-in tenant → client credentials → example API.

Everything runs as real HTTP on 127.0.0.1: the stand-in tenant, the example API served
by werkzeug, and the client (as functions and once as a subprocess).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from example import create_app
from example.client import call_api, fetch_access_token
from example.token_server import DEMO_AUDIENCE, DEMO_CLIENT_ID, StandInTenant

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tenant():
    tenant = StandInTenant()
    tenant.start()
    yield tenant
    tenant.stop()


@pytest.fixture
def api_url(tenant, tmp_path):
    app = create_app({
        "AUTHFLOW_AUTH0_ISSUER": tenant.issuer,
        "AUTHFLOW_AUTH0_AUDIENCE": DEMO_AUDIENCE,
        "AUTHFLOW_REQUIRE_HTTPS_METADATA": False,
        "AUTHFLOW_ENV": "production",
        "AUTHFLOW_USER_SECRETS_DIR": str(tmp_path),
    })
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_client_credentials_token_opens_the_scoped_view(tenant, api_url):
    token = fetch_access_token(f"{tenant.issuer}oauth/token", DEMO_CLIENT_ID, tenant.client_secret, DEMO_AUDIENCE)
    private = call_api(f"{api_url}/api/messages/private", token)
    assert private.status_code == 200
    assert private.json()["sub"] == f"{DEMO_CLIENT_ID}@clients"
    assert private.json()["scheme"] == "Auth0"
    assert call_api(f"{api_url}/api/messages/private-scoped", token).status_code == 200
    assert call_api(f"{api_url}/api/admin/", token).status_code == 403


def test_wrong_client_secret_gets_no_token(tenant):
    with pytest.raises(requests.HTTPError) as refused:
        fetch_access_token(f"{tenant.issuer}oauth/token", DEMO_CLIENT_ID, "wrong", DEMO_AUDIENCE)
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error"] == "access_denied"


def test_the_client_script_as_a_subprocess(tenant, api_url):
    result = subprocess.run(
        [
            sys.executable, "-m", "example.client",
            "--token-url", f"{tenant.issuer}oauth/token",
            "--client-id", DEMO_CLIENT_ID,
            "--audience", DEMO_AUDIENCE,
            "--api", f"{api_url}/api/messages/private-scoped",
        ],
        env={"CLIENT_SECRET": tenant.client_secret, "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200 ")
    assert "read:messages" in result.stdout
