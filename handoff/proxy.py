"""The customer's address behind a reverse proxy (nginx in deploy/), for per-address limits.

Behind nginx every request comes from the proxy's address, so the widget's limit on new
chats per client address would count all customers as one. Only when the direct peer is a
configured proxy (SUPPORT_TRUSTED_PROXIES) is `X-Forwarded-For` believed: the address is the
right-most entry that is not itself a trusted proxy. Anyone else sending the header is
ignored, so a client cannot choose the address it is limited by.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_address(remote: str | None, forwarded_for: str | None,
                   trusted: frozenset[str]) -> str | None:
    """The first address, from the right, that is not a trusted proxy."""
    if remote not in trusted or not forwarded_for:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else remote


def forwarded_middleware(trusted: tuple[str, ...]) -> Middleware:
    proxies = frozenset(trusted)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        address = client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
        if address is not None and address != request.remote:
            request = request.clone(remote=address)
        return await handler(request)

    return middleware
