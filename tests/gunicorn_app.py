"""The example API as tests/test_gunicorn.py runs it under gunicorn, each response
naming the worker process that answered it (``X-Worker-Pid``)."""

from __future__ import annotations

import os

from flask import Flask, Response

from example import create_app as create_example_app


def create_app() -> Flask:
    app = create_example_app()

    @app.after_request
    def name_the_worker(response: Response) -> Response:
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return app
