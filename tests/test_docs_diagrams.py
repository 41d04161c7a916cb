"""The documentation's Mermaid diagrams render in a browser that has no network.

The site is served from a real HTTP server on 127.0.0.1 and opened in headless
Chromium, which runs Mermaid (served by the site itself) and dumps the resulting DOM.
The test uses ``docs/_build/html`` when it is newer than every documentation source
(``python3 -m tox -e docs`` makes it); otherwise it builds the site itself.

Chromium is Debian's ``chromium`` package. Without it the browser test is skipped,
unless ``AUTHFLOW_REQUIRE_CHROMIUM`` is set (as CI does): then it fails.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
BUILT_SITE = DOCS / "_build" / "html"
#: Generated at build time; not a source whose change makes a build stale.
VENDOR = DOCS / "_static" / "vendor"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Virtual time Chromium gives the page's scripts before it dumps the DOM.
VIRTUAL_TIME_BUDGET_MS = 10_000
#: Wall-clock bounds, so that a hung browser or build fails the test instead.
BROWSER_TIMEOUT_S = 120
BUILD_TIMEOUT_S = 900

#: The overview's diagrams, in page order: the kind Mermaid reports for each, and a
#: label that only that diagram holds.
EXPECTED_DIAGRAMS = [
    ("sequence", "POST /oauth/token"),
    ("sequence", "flask user-jwts"),
    ("flowchart-v2", "AUTHFLOW_ENV is"),
]


@dataclass
class MermaidBlock:
    """What a ``<pre class="mermaid">`` holds after the page's scripts ran."""

    #: ``aria-roledescription`` of each SVG inside: the kind of diagram Mermaid drew.
    svg_kinds: list[str] = field(default_factory=list)
    #: The ``width`` attribute of those SVGs.
    svg_widths: list[str | None] = field(default_factory=list)
    text: str = ""


class MermaidBlocks(HTMLParser):
    """Collects the Mermaid blocks of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[MermaidBlock] = []
        self._open_pres = 0  # <pre> elements open inside the current block

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._open_pres:
            self._open_pres += tag == "pre"
            kind = attributes.get("aria-roledescription")
            if tag == "svg" and kind:
                self.blocks[-1].svg_kinds.append(kind)
                self.blocks[-1].svg_widths.append(attributes.get("width"))
        elif tag == "pre" and "mermaid" in (attributes.get("class") or "").split():
            self.blocks.append(MermaidBlock())
            self._open_pres = 1

    def handle_endtag(self, tag: str) -> None:
        if self._open_pres and tag == "pre":
            self._open_pres -= 1

    def handle_data(self, data: str) -> None:
        if self._open_pres:
            self.blocks[-1].text += data


def _sources_newest_mtime() -> float:
    newest = 0.0
    for path in DOCS.rglob("*"):
        if not path.is_file():
            continue
        if BUILT_SITE.parent in path.parents or VENDOR in path.parents:
            continue
        newest = max(newest, path.stat().st_mtime)
    return newest


def _is_fresh(site: Path) -> bool:
    page = site / "overview.html"
    return page.is_file() and page.stat().st_mtime >= _sources_newest_mtime()


def _run_build(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} took longer than {BUILD_TIMEOUT_S} s")
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built documentation site: the fresh one in docs/_build/html, or a new build."""
    if _is_fresh(BUILT_SITE):
        return BUILT_SITE
    if importlib.util.find_spec("sphinx") is not None:
        out = tmp_path_factory.mktemp("docs-html")
        command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-b", "html"]
        _run_build([*command, str(DOCS), str(out)], "sphinx-build")
        return out
    tox = shutil.which("tox")
    if tox is None:
        pytest.fail(
            "docs/_build/html is missing or older than docs/, and neither Sphinx nor tox "
            "is available to build it: run `python3 -m tox -e docs` first."
        )
    _run_build([tox, "-e", "docs"], "tox -e docs")
    assert _is_fresh(BUILT_SITE), "tox -e docs did not produce docs/_build/html/overview.html"
    return BUILT_SITE


class _RecordingHandler(SimpleHTTPRequestHandler):
    """Serves the site and records each requested path, without logging to stderr."""

    def __init__(self, *args: object, requested: list[str], **kwargs: object) -> None:
        self._requested = requested
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        self._requested.append(self.path.split("?", 1)[0])
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(site: Path) -> Iterator[tuple[str, list[str]]]:
    """The site's base URL on 127.0.0.1, and the list of paths requested so far."""
    requested: list[str] = []
    handler = partial(_RecordingHandler, directory=str(site), requested=requested)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _chromium() -> str:
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.environ.get("AUTHFLOW_REQUIRE_CHROMIUM"):
        pytest.fail(f"AUTHFLOW_REQUIRE_CHROMIUM is set, but {CHROMIUM} is not installed")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


def _rendered_dom(chromium: str, url: str, profile: Path) -> str:
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        "--dump-dom",
        url,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {BROWSER_TIMEOUT_S} s")
    assert result.returncode == 0, f"Chromium failed:\n{result.stderr[-3000:]}"
    return result.stdout


def test_overview_diagrams_render_as_svg(served: tuple[str, list[str]], tmp_path: Path) -> None:
    chromium = _chromium()
    base_url, requested = served

    dom = _rendered_dom(chromium, f"{base_url}/overview.html", tmp_path / "profile")

    parser = MermaidBlocks()
    parser.feed(dom)
    parser.close()
    blocks = parser.blocks
    assert len(blocks) == len(EXPECTED_DIAGRAMS), (
        f"expected {len(EXPECTED_DIAGRAMS)} Mermaid blocks on the overview, found {len(blocks)}"
    )
    for number, (block, (kind, label)) in enumerate(zip(blocks, EXPECTED_DIAGRAMS), 1):
        # An unrendered block holds only its source text; a failed one, an "error" SVG.
        assert block.svg_kinds == [kind], (
            f"diagram {number} did not become a {kind} SVG (found {block.svg_kinds}): "
            f"{block.text[:300]!r}"
        )
        assert label in block.text, f"diagram {number} lacks the label {label!r}"
        # conf.py's mermaid_init_config reached Mermaid through sphinxcontrib-mermaid's
        # module (without it, Mermaid sizes each diagram to width="100%").
        assert block.svg_widths != ["100%"], f"diagram {number} ignored the site's settings"
    # Mermaid came from this server: the browser had no other place to get it from.
    assert "/_static/mermaid-global.js" in requested, requested
    bundles = [
        path for path in requested if re.fullmatch(r"/_static/vendor/mermaid-.+\.min\.js", path)
    ]
    assert bundles, f"the site's Mermaid bundle was never requested; requests: {requested}"


def test_pages_load_no_script_or_style_from_another_host(site: Path) -> None:
    external = re.compile(
        r"""<script\b[^>]*\bsrc="(?:https?:)?//"""
        r"""|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"[^>]*\brel="stylesheet"""
        r"""|<link\b[^>]*\brel="stylesheet"[^>]*\bhref="(?:https?:)?//"""
        r"""|\bimport\b[^;]*?\bfrom\s*["'](?:https?:)?//"""
    )
    pages = sorted(site.glob("*.html"))
    assert any(page.name == "overview.html" for page in pages), f"no overview.html in {site}"
    offenders = {
        page.name: match.group(0)
        for page in pages
        if (match := external.search(page.read_text(encoding="utf-8")))
    }
    assert offenders == {}
