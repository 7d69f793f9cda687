"""Fixtures of the web service's tests: the real app on a test database, a scripted Rasa."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from handoff.app import create_app
from handoff.config import Settings
from tests.conftest import RASA_TOKEN

Client = TestClient  # type: ignore[type-arg]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: Any, database_url: str) -> MakeClient:
    async def make(rasa_url: str, **overrides: Any) -> Client:
        settings = Settings(
            database_url=database_url,
            rasa_url=rasa_url,
            rasa_token=RASA_TOKEN,
            action_server_url="http://127.0.0.1:1",
            rasa_timeout_seconds=5,
            admin_password="admin-password-for-tests",
            **overrides,
        )
        return await aiohttp_client(create_app(settings))

    return make
