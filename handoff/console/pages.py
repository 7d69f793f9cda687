"""Serves the console's page and assets (plain HTML, CSS and JS from web/console)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from handoff.config import PROJECT_ROOT

CONSOLE_DIR = PROJECT_ROOT / "web" / "console"
# No inline script or style: anything a customer types can only ever be text.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

routes = web.RouteTableDef()


def serve_file(path: Path, content_type: str) -> web.FileResponse:
    response = web.FileResponse(path, headers={
        "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
        "Content-Type": content_type})
    return response


@routes.get("/console")
async def console_page(request: web.Request) -> web.FileResponse:
    return serve_file(CONSOLE_DIR / "index.html", "text/html; charset=utf-8")


@routes.get("/console/static/{name}")
async def console_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    path = CONSOLE_DIR / name
    if Path(name).name != name or path.suffix not in types or not path.is_file():
        raise web.HTTPNotFound()
    return serve_file(path, types[path.suffix])


@routes.get("/console/static/vendor/{name}")
async def vendor_asset(request: web.Request) -> web.FileResponse:
    """Third-party scripts bundled with the project (no CDN); see web/console/vendor/README."""
    name = request.match_info["name"]
    path = CONSOLE_DIR / "vendor" / name
    if Path(name).name != name or path.suffix != ".js" or not path.is_file():
        raise web.HTTPNotFound()
    return serve_file(path, "text/javascript; charset=utf-8")
