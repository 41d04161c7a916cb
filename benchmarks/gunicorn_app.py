"""The app gunicorn serves for the HTTP-level comparison (started by http_level.py).

``/public`` is the unprotected view and ``/`` the protected one. The Auth0 issuer, and
so the JWKS server the keys come from, is passed in ``AUTHFLOW_BENCH_ISSUER``.
"""

from __future__ import annotations

import os

from setups import authflow_app

app = authflow_app(issuer=os.environ["AUTHFLOW_BENCH_ISSUER"])
