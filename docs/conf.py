"""Sphinx configuration for the Flask-AuthFlow documentation.

Build with ``python3 -m tox -e docs``. The Mermaid diagrams are drawn in the reader's
browser by Mermaid's JavaScript bundle, which this build serves from the site itself
(``_static/vendor/``) so that the pages need no network. The bundle is not kept in the
repository: on the first build it is taken from the npm registry with ``npm pack``,
checked against the pinned hash below, and cached in ``docs/_static/vendor/``
(git-ignored).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ConfigError

from flask_authflow import __version__

# -- Project -----------------------------------------------------------------------

project = "Flask-AuthFlow"
author = "the Flask-AuthFlow developers"
copyright = "the Flask-AuthFlow developers"
release = __version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinxcontrib.mermaid",
    "pallets_sphinx_themes",
]
exclude_patterns = ["_build"]
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True

# -- HTML --------------------------------------------------------------------------

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_title = f"Flask-AuthFlow {version}"
html_static_path = ["_static"]
# The theme's default sidebars add an ad slot; these are the local ones only.
html_sidebars = {
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
# The theme's version banner asks PyPI for the newest release from the reader's
# browser; the site must work without any network.
version_banner = False

# -- Mermaid, served from the site -------------------------------------------------

#: The Mermaid release whose browser bundle the site serves, and the npm registry's
#: integrity value (SHA-512) of its package tarball.
MERMAID_VERSION = "11.12.1"
MERMAID_INTEGRITY = "sha512-UlIZrRariB11TY1RtTgUWp65tphtBv4CSq7vyS2ZZ2TgoMjs2nloq+wFqxiwcxlhHUvs7DPGgMjs2aeQxz5h9g=="
MERMAID_BUNDLE = f"vendor/mermaid-{MERMAID_VERSION}.min.js"

DOCS_DIR = Path(__file__).resolve().parent
VENDOR_DIR = DOCS_DIR / "_static" / "vendor"

# sphinxcontrib-mermaid imports Mermaid as an ES module. Its "local" option points at
# a small module of ours that hands over the bundle loaded by a classic <script> tag
# (see add_mermaid_bundle); the default would load Mermaid from a CDN.
mermaid_use_local = "mermaid-global.js"
mermaid_version = MERMAID_VERSION
# Draw each diagram at its natural size (shrunk only to fit the column) instead of
# stretching it to the column's width and a fixed height; see _static/diagrams.css.
mermaid_init_config = {
    "startOnLoad": False,
    "flowchart": {"useMaxWidth": False},
    "sequence": {"useMaxWidth": False},
}
html_css_files = ["diagrams.css"]


def vendor_mermaid(app: Sphinx) -> None:
    """Make sure ``_static/vendor`` holds the pinned Mermaid bundle."""
    target = VENDOR_DIR / Path(MERMAID_BUNDLE).name
    if target.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(
            "npm is needed once to fetch Mermaid's browser bundle "
            f"(mermaid@{MERMAID_VERSION}) into docs/_static/vendor/; install Node.js and npm."
        )
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        try:
            subprocess.run(
                [npm, "pack", f"mermaid@{MERMAID_VERSION}", "--silent"],
                cwd=work,
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", "") or ""
            raise ConfigError(
                f"npm pack mermaid@{MERMAID_VERSION} failed: {exc}\n{output}"
            ) from exc
        tarball = Path(work) / f"mermaid-{MERMAID_VERSION}.tgz"
        digest = hashlib.sha512(tarball.read_bytes()).digest()
        integrity = "sha512-" + base64.b64encode(digest).decode("ascii")
        if integrity != MERMAID_INTEGRITY:
            raise ConfigError(
                f"mermaid-{MERMAID_VERSION}.tgz does not match the pinned integrity "
                f"value: got {integrity}."
            )
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/dist/mermaid.min.js")
            if member is None:
                raise ConfigError(f"mermaid-{MERMAID_VERSION}.tgz has no dist/mermaid.min.js.")
            bundle = member.read()
    # Written under a temporary name and renamed, so an interrupted build never
    # leaves a truncated bundle that a later build would take as complete.
    partial = target.with_suffix(".partial")
    partial.write_bytes(bundle)
    os.replace(partial, target)
    for stale in VENDOR_DIR.glob("mermaid-*.min.js"):
        if stale != target:
            stale.unlink()


def add_mermaid_bundle(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Load the Mermaid bundle wherever sphinxcontrib-mermaid adds its script: on the
    pages that hold a diagram, and on generated pages (search, index), which have no
    doctree to look into."""
    from sphinxcontrib.mermaid import mermaid

    if doctree is None or doctree.next_node(mermaid) is not None:
        app.add_js_file(MERMAID_BUNDLE)


def setup(app: Sphinx) -> None:
    app.connect("builder-inited", vendor_mermaid)
    app.connect("html-page-context", add_mermaid_bundle)
