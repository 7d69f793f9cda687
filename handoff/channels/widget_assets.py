"""Serves the chat widget's script and the demo store page that shows it."""

from __future__ import annotations

from aiohttp import web

from handoff.config import PROJECT_ROOT

WEB = PROJECT_ROOT / "web"
routes = web.RouteTableDef()


@routes.get("/widget.js")
async def widget_script(request: web.Request) -> web.FileResponse:
    # Any store page may load it; it talks only to the server named in its script tag.
    return web.FileResponse(WEB / "widget" / "widget.js", headers={
        "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache",
        "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"})


@routes.get("/demo")
async def demo_store(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB / "demo" / "index.html", headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
        "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                                   "style-src 'self' 'unsafe-inline'; img-src 'self' data:"})
