"""A tiny blocking HTTP client for end-to-end tests (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Response:
    status: int
    body: Any


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 120) -> Response:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return Response(status, json.loads(raw) if raw else None)
    except ValueError:
        return Response(status, raw.decode(errors="replace"))
