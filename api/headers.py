"""Security headers on every response; a Content-Security-Policy on the dashboards' pages.

The pages load their scripts and styles from files of their own origin only (no inline
script, no CDN: plotly.js is served from the installed package), fetch data from the same
origin, and may not be framed. The interactive API docs (/docs, /redoc) are FastAPI's own
pages, which load Swagger UI from a CDN with an inline script: they get the other headers,
not the policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

PAGES_PREFIX = "/dashboards"
# Scripts: files of this origin only (no inline script, no eval). Styles: this origin's
# files, and the style attributes plotly.js sets on the elements it draws (inline styles
# change how a page looks, never what it runs). Images: plotly's own data: and blob: URLs
# (the modebar's "download as PNG").
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Page URLs carry patient ids: never send them to another origin.
    "Referrer-Policy": "no-referrer",
}


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        if request.url.path.startswith(PAGES_PREFIX):
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
