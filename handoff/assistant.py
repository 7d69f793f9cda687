"""The web service's client for the Rasa servers: sends a customer's message, returns the replies.

With several Rasa servers (SUPPORT_RASA_URLS, sharing one SQL tracker store) each
conversation has a home server picked from its id, which spreads conversations evenly and
keeps one conversation on one server while it is up. A server whose port refuses the
connection is skipped for `down_seconds` and the message goes to the next one: a refused
connection means the message never reached it, so it cannot be processed twice. Any other
failure (timeout, 5xx) may have happened mid-processing and is not retried elsewhere. The
router's per-conversation lock already keeps two messages of one conversation from being
in flight at once, whichever server they go to.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

CHANNEL_PATH = "/webhooks/support/webhook"
logger = logging.getLogger(__name__)


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
    # The tracker's events from this message on, and the form left active (None: none).
    events: tuple[dict[str, Any], ...] = ()
    active_loop: str | None = None
    # Answered from handoff/repeat_answers.py: Rasa has not seen it yet.
    repeated: bool = False


class AssistantClient:
    """Talks to Rasa on loopback through the token-protected channel (bot/channel.py)."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str | Sequence[str], token: str,
        timeout: float, down_seconds: float = 10.0,
    ) -> None:
        self._http = http
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("at least one Rasa URL is needed")
        self._servers = [url.rstrip("/") for url in urls]
        self._down_until: dict[str, float] = {}
        self._down_seconds = down_seconds
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def servers_for(self, key: str) -> list[str]:
        """The servers to try for a conversation: its home first, those marked down last."""
        start = zlib.crc32(key.encode()) % len(self._servers)
        ordered = self._servers[start:] + self._servers[:start]
        now = time.monotonic()
        up = [server for server in ordered if self._down_until.get(server, 0.0) <= now]
        return up + [server for server in ordered if server not in up]

    async def _request(self, key: str, method: str, path: str,
                       **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body) from the first server that takes the connection."""
        refused: list[str] = []
        for server in self.servers_for(key):
            try:
                async with self._http.request(method, server + path, timeout=self._timeout,
                                              **kwargs) as response:
                    self._down_until.pop(server, None)
                    if not 200 <= response.status < 300:
                        return response.status, None
                    return response.status, await response.json()
            except aiohttp.ClientConnectorError as exc:
                logger.warning("Rasa server %s refused the connection (%r); trying the next",
                               server, exc)
                self._down_until[server] = time.monotonic() + self._down_seconds
                refused.append(server)
        raise aiohttp.ClientConnectionError(f"no Rasa server took the connection: {refused}")

    async def send(
        self, sender_id: str, text: str, metadata: dict[str, Any] | None = None,
        message_id: str | None = None, resumed: bool = False,
    ) -> AssistantTurn:
        """The assistant's replies to one message and the intent it read (bot/channel.py).
        `message_id` is kept in Rasa's tracker; with `resumed`, a message Rasa already has
        is answered from its tracker instead of being read again."""
        payload: dict[str, Any] = {"sender": sender_id, "message": text,
                                   "metadata": metadata or {}}
        if message_id is not None:
            payload |= {"message_id": message_id, "resumed": resumed}
        try:
            status, body = await self._request(
                sender_id, "POST", CHANNEL_PATH, json=payload,
                headers={"Authorization": f"Bearer {self._token}"})
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise AssistantUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if status != 200:
            raise AssistantUnavailable(f"Rasa answered HTTP {status}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise AssistantUnavailable("Rasa answered something other than the channel's reply")
        raw_intent = body.get("intent")
        intent: dict[str, Any] = raw_intent if isinstance(raw_intent, dict) else {}
        raw_top = intent.get("top")
        top: dict[str, Any] = raw_top if isinstance(raw_top, dict) else {}
        confidence = intent.get("confidence")
        raw_turn = body.get("turn")
        turn: dict[str, Any] = raw_turn if isinstance(raw_turn, dict) else {}
        raw_events = turn.get("events")
        events: list[Any] = raw_events if isinstance(raw_events, list) else []
        return AssistantTurn(
            replies=[reply for reply in body["messages"] if isinstance(reply, dict)],
            intent=intent.get("name") if isinstance(intent.get("name"), str) else None,
            confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            top_intent=top.get("name") if isinstance(top.get("name"), str) else None,
            events=tuple(event for event in events if isinstance(event, dict)),
            active_loop=_active_loop(turn),
        )

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Calls Rasa's HTTP API (needs --enable-api) with the same token."""
        params = {**kwargs.pop("params", {}), "token": self._token}
        # a conversation's calls go to its home server, like its messages
        parts = path.split("/")
        key = parts[2] if len(parts) > 2 and parts[1] == "conversations" else path
        status, body = await self._request(key, method, path, params=params, **kwargs)
        if not 200 <= status < 300:
            raise AssistantUnavailable(f"Rasa's API answered HTTP {status} to {method} {path}")
        return body


UNKNOWN_LOOP = "unknown"


def _active_loop(turn: dict[str, Any]) -> str | None:
    """The form Rasa left active; a reply that does not say counts as one (nothing is
    repeated on a guess, handoff/repeat_answers.py)."""
    loop = turn.get("active_loop", UNKNOWN_LOOP)
    return loop if loop is None or isinstance(loop, str) else UNKNOWN_LOOP
