"""`python -m shop [migrate|seed]`: bring the shop schema up to date, or fill the demo store."""

from __future__ import annotations

import argparse
import asyncio
import sys

from handoff.config import ConfigError
from shop import migrate
from shop.config import shop_database_url
from shop.seed import seed_if_empty
from shop.sql import SqlStoreBackend


async def _run(command: str, database_url: str) -> str:
    backend = SqlStoreBackend.from_url(database_url)
    try:
        await migrate.upgrade(backend.engine)
        if command == "migrate":
            return "shop schema is up to date"
        added = await seed_if_empty(backend.engine)
        return f"added {added} demo orders" if added else "the shop already has orders; left as is"
    finally:
        await backend.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop", description=__doc__)
    parser.add_argument("command", choices=["migrate", "seed"])
    args = parser.parse_args(argv)
    try:
        url = shop_database_url()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    print(asyncio.run(_run(args.command, url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
