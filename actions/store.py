"""The action server's one connection to the store, opened (and the demo store seeded) on first use."""

from __future__ import annotations

import asyncio

from shop.backend import StoreBackend
from shop.config import open_backend

_backend: StoreBackend | None = None
_lock: asyncio.Lock | None = None


async def store() -> StoreBackend:
    """The configured StoreBackend; the demo SQLite store is migrated and seeded if empty."""
    global _backend, _lock
    if _backend is None:
        _lock = _lock or asyncio.Lock()
        async with _lock:
            if _backend is None:
                _backend = await open_backend(prepare=True)
    return _backend


def use_store(backend: StoreBackend | None) -> None:
    """Points the actions at another backend (tests); None reopens the configured one."""
    global _backend, _lock
    _backend, _lock = backend, None
