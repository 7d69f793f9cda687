"""Behind nginx the widget's per-address limit counts each customer, not the proxy; a client
talking to the service directly cannot pick its address with a header."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.app import create_app
from handoff.config import ConfigError, Settings
from handoff.proxy import client_address
from tests.conftest import FakeRasa
from tests.handoff.test_console import settings_for

PROXY = frozenset({"127.0.0.1"})


@pytest.mark.parametrize(("remote", "header", "expected"), [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
    ("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the proxy appended the last
    ("127.0.0.1", "203.0.113.7, 127.0.0.1", "203.0.113.7"),  # two trusted hops
    ("127.0.0.1", None, "127.0.0.1"),
    ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # not from the proxy: the header is ignored
])
def test_the_address_is_the_last_hop_before_the_proxies(
    remote: str, header: str | None, expected: str
) -> None:
    assert client_address(remote, header, PROXY) == expected


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ConfigError, match="SUPPORT_TRUSTED_PROXIES"):
        Settings.from_env({"SUPPORT_RASA_TOKEN": "t", "SUPPORT_TRUSTED_PROXIES": "nginx.local"})
    settings = Settings.from_env({"SUPPORT_RASA_TOKEN": "t",
                                  "SUPPORT_TRUSTED_PROXIES": "127.0.0.1, ::1"})
    assert settings.trusted_proxies == ("127.0.0.1", "::1")


async def _new_chat(client: Any, address: str) -> dict[str, Any]:
    socket = await client.ws_connect("/widget/ws", headers={"X-Forwarded-For": address})
    await socket.send_json({"type": "hello"})
    while (frame := await socket.receive_json(timeout=10))["type"] not in ("welcome", "error"):
        pass
    await socket.close()
    return dict(frame)


@pytest.mark.parametrize("trusted", [True, False])
async def test_new_chat_limit_counts_the_forwarded_address_only_from_a_trusted_proxy(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa, trusted: bool
) -> None:
    base = settings_for(database_url, fake_rasa.url)
    client = await aiohttp_client(create_app(Settings(**{
        **base.__dict__, "widget_new_chats_per_minute": 1,
        "trusted_proxies": ("127.0.0.1",) if trusted else ()})))
    assert (await _new_chat(client, "203.0.113.7"))["type"] == "welcome"
    # another customer behind the same proxy
    other = await _new_chat(client, "203.0.113.8")
    assert other["type"] == ("welcome" if trusted else "error")
    # the first customer again: over the limit either way
    again = await _new_chat(client, "203.0.113.7")
    assert again["type"] == "error" and "too many new chats" in again["error"]
