"""Which store the assistant talks to, from the environment: the demo database or a shop's API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from handoff.config import ConfigError, PROJECT_ROOT, _database_url, _http_url
from shop import migrate
from shop.backend import StoreBackend
from shop.seed import seed_if_empty
from shop.sql import SqlStoreBackend

DEFAULT_DATABASE = PROJECT_ROOT / "var" / "shop.db"


def shop_database_url(env: Mapping[str, str] | None = None) -> str:
    """SUPPORT_SHOP_DATABASE_URL (sqlite or postgresql), default sqlite var/shop.db."""
    env = os.environ if env is None else env
    raw = env.get("SUPPORT_SHOP_DATABASE_URL", f"sqlite:///{DEFAULT_DATABASE}")
    try:
        return _database_url(raw)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("DATABASE_URL", "SUPPORT_SHOP_DATABASE_URL")) from None


async def open_backend(env: Mapping[str, str] | None = None, *, prepare: bool = False) -> StoreBackend:
    """The configured backend. SUPPORT_SHOP_API_URL picks a shop's HTTP/JSON API (with
    SUPPORT_SHOP_API_TOKEN); otherwise the SQL store, migrated and seeded when `prepare`."""
    env = os.environ if env is None else env
    if env.get("SUPPORT_SHOP_API_URL"):
        from shop.http import HttpStoreBackend

        return HttpStoreBackend(_http_url(env, "SUPPORT_SHOP_API_URL", ""),
                                env.get("SUPPORT_SHOP_API_TOKEN", ""))
    backend = SqlStoreBackend.from_url(shop_database_url(env))
    if prepare:
        await migrate.upgrade(backend.engine)
        await seed_if_empty(backend.engine)
    return backend


def link_secret(env: Mapping[str, str] | None = None, root: Path = PROJECT_ROOT) -> bytes:
    """The key that signs download links: SUPPORT_LINK_SECRET, or one kept in var/link-secret
    so the action server and the web service of one machine agree without configuration."""
    env = os.environ if env is None else env
    if env.get("SUPPORT_LINK_SECRET"):
        return env["SUPPORT_LINK_SECRET"].encode()
    path = root / "var" / "link-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="ascii") as new:
            new.write(os.urandom(32).hex())
        path.chmod(0o600)
    except FileExistsError:
        pass
    return path.read_text(encoding="ascii").strip().encode()
