"""What the HTTP edge answers when something below it fails."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web

from handoff.http import error_middleware


def app_raising(error: BaseException) -> web.Application:
    async def handler(_request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    return app


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.CannotConnectNowError("the database system is not yet accepting connections"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ConnectionRefusedError(111, "Connect call failed"),
])
async def test_storage_that_cannot_be_reached_is_a_503_to_send_again(
    aiohttp_client: Any, error: BaseException
) -> None:
    client = await aiohttp_client(app_raising(error))
    response = await client.get("/")
    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert "send the same request again" in (await response.json())["error"]


async def test_a_bug_is_a_500_that_says_nothing_of_the_inside(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_raising(KeyError("secret_column")))
    response = await client.get("/")
    assert response.status == 500
    assert "secret_column" not in await response.text()
