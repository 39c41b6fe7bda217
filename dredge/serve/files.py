"""The dashboard pages and their static files, from ``dredge/serve/static/``.

Page routes (``/``, ``/overview``, ``/dependencies``, ``/cost``, ``/ops``) answer with
``<page>.html`` (``/``: ``index.html``, else the overview): the page's ``<main>``, served inside
``shell.html`` (the head, scripts and top bar every page shares); ``/static/<path>`` with the
file under the folder, never outside it. ``/static/vendor/plotly.min.js`` is the copy inside the
pinned ``plotly`` package (found with importlib, without importing plotly): no CDN, no file
copied into the repository.
"""

from __future__ import annotations

import importlib.util
import mimetypes
from pathlib import Path

STATIC = Path(__file__).with_name("static")
PAGES = {"overview": "Overview", "dependencies": "Dependencies", "cost": "Cost",
         "ops": "Operations"}  # route -> title
SHELL = "shell.html"
PLOTLY_ROUTE = "vendor/plotly.min.js"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".json": "application/json", ".ico": "image/x-icon"}


def plotly_js() -> Path | None:
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def load(path: Path, root: Path = STATIC) -> bytes:
    """What a GET of ``path`` (from :func:`resolve`) answers: a page's ``<main>`` inside the
    shared shell, any other file as it is."""
    data = path.read_bytes()
    if path.parent != root.resolve() or path.stem not in PAGES:
        return data
    shell = (root / SHELL).read_bytes()
    return (shell.replace(b"{{title}}", PAGES[path.stem].encode())
            .replace(b"{{page}}", path.stem.encode()).replace(b"{{main}}", data))


def content_type(path: Path) -> str:
    return TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def resolve(route: str, root: Path = STATIC) -> Path | None:
    """The file a GET of ``route`` (a path without the query) serves, or None (404)."""
    if route == "/":
        index = root / "index.html"
        return index if index.is_file() else _file(root, "overview.html")
    name = route.strip("/")
    if name in PAGES:
        return _file(root, f"{name}.html")
    if route.startswith("/static/"):
        rel = route[len("/static/"):]
        if rel == PLOTLY_ROUTE:
            return plotly_js()
        return _file(root, rel)
    return None


def _file(root: Path, rel: str) -> Path | None:
    if not rel or "\\" in rel or "\0" in rel:
        return None
    path = (root / rel).resolve()
    base = root.resolve()
    if base not in path.parents or not path.is_file():
        return None
    return path
