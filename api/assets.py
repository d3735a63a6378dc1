"""The dashboards' static pages and plotly.js, served for speed on a slow phone.

plotly.js (4.8 MB, 1.4 MB gzipped) is the one large file. It is served as one bundle with its
zh-CN locale, under a name carrying a hash of its bytes (`plotly-<hash>.min.js`), gzipped
once on first request, with a year-long immutable cache: a browser downloads it once per
release. Only pages that draw reference it; the sign-in page loads no plotting library. The
HTML shells are served with the bundle's current name written in, and are revalidated on
every visit (they are small; a new release must reach the browser at once).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import plotly
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
LOCALES = (STATIC_DIR / "plotly-locale-zh-cn.js",)
# What the HTML shells name; replaced by the hashed path when a shell is served.
PLOTLY_PLACEHOLDER = "/dashboards/assets/plotly.min.js"
ASSETS = "/dashboards/assets"
# A year: the longest lifetime caches honour; the hashed name changes with the bytes.
IMMUTABLE = "public, max-age=31536000, immutable"
# Shells and small scripts: kept, but asked about again on every visit.
REVALIDATE = "no-cache"
# Level 9 costs a fifth of a second once and saves a little more on every download.
GZIP_LEVEL = 9


@dataclass
class Bundle:
    path: str  # e.g. /dashboards/assets/plotly-3f2a9c1b7d4e.min.js
    body: bytes

    @cached_property
    def gzipped(self) -> bytes:
        """Compressed on first request (a fifth of a second), not at every app start."""
        return gzip.compress(self.body, GZIP_LEVEL, mtime=0)


def plotly_bundle() -> Bundle:
    body = PLOTLY_JS.read_bytes() + b"\n" + b"\n".join(p.read_bytes() for p in LOCALES)
    digest = hashlib.sha256(body).hexdigest()[:12]
    return Bundle(f"{ASSETS}/plotly-{digest}.min.js", body)


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def install(app: FastAPI) -> None:
    """The bundle's route and one route per HTML shell (before the static mount, which
    serves the small scripts and the stylesheet)."""
    bundle = plotly_bundle()
    shells = {
        path.name: path.read_text(encoding="utf-8").replace(PLOTLY_PLACEHOLDER, bundle.path)
        for path in STATIC_DIR.glob("*.html")
    }

    async def serve_bundle(request: Request) -> Response:
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        if _accepts_gzip(request):
            headers["Content-Encoding"] = "gzip"
            return Response(bundle.gzipped, media_type="text/javascript", headers=headers)
        return Response(bundle.body, media_type="text/javascript", headers=headers)

    def shell(name: str) -> object:
        async def serve(request: Request) -> Response:
            return Response(
                shells[name], media_type="text/html", headers={"Cache-Control": REVALIDATE}
            )

        return serve

    app.add_route(bundle.path, serve_bundle, include_in_schema=False)
    app.add_route("/dashboards/", shell("index.html"), include_in_schema=False)  # type: ignore[arg-type]
    for name in shells:
        app.add_route(f"/dashboards/{name}", shell(name), include_in_schema=False)  # type: ignore[arg-type]
