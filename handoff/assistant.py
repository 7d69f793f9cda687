"""The web service's client for the Rasa server: sends a customer's message, returns the replies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

CHANNEL_PATH = "/webhooks/support/webhook"


class AssistantUnavailable(Exception):
    """The Rasa server (or the action server behind it) could not answer."""

    def __init__(self, detail: str, reason: str = "assistant_unavailable") -> None:
        super().__init__(detail)
        self.reason = reason  # recorded as the handoff reason


@dataclass(frozen=True)
class AssistantTurn:
    """Rasa's replies to one message and how it understood the message."""

    replies: list[dict[str, Any]]
    intent: str | None = None
    confidence: float | None = None
    top_intent: str | None = None


class AssistantClient:
    """Talks to Rasa on loopback through the token-protected channel (bot/channel.py)."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: str, timeout: float
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(
        self, sender_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> AssistantTurn:
        """The assistant's replies to one message and the intent it read (bot/channel.py)."""
        try:
            async with self._http.post(
                self._base_url + CHANNEL_PATH,
                json={"sender": sender_id, "message": text, "metadata": metadata or {}},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise AssistantUnavailable(f"Rasa answered HTTP {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise AssistantUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise AssistantUnavailable("Rasa answered something other than the channel's reply")
        raw_intent = body.get("intent")
        intent: dict[str, Any] = raw_intent if isinstance(raw_intent, dict) else {}
        raw_top = intent.get("top")
        top: dict[str, Any] = raw_top if isinstance(raw_top, dict) else {}
        confidence = intent.get("confidence")
        return AssistantTurn(
            replies=[reply for reply in body["messages"] if isinstance(reply, dict)],
            intent=intent.get("name") if isinstance(intent.get("name"), str) else None,
            confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            top_intent=top.get("name") if isinstance(top.get("name"), str) else None,
        )

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Calls Rasa's HTTP API (needs --enable-api) with the same token."""
        params = {**kwargs.pop("params", {}), "token": self._token}
        async with self._http.request(
            method, self._base_url + path, params=params, timeout=self._timeout, **kwargs
        ) as response:
            response.raise_for_status()
            return await response.json()
