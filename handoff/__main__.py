"""`python -m handoff [serve|migrate]`: run the web service or bring its schema up to date."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from handoff import migrate
from handoff.app import create_app
from handoff.config import ConfigError, Settings
from handoff.db import create_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        asyncio.run(_migrate(settings.database_url))
        return 0
    try:
        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None,
                    loop=event_loop())
    except ConfigError as exc:  # a start-up check (handoff/preflight.py) refused to serve
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (requirements/app.lock): the web service's own CPU per
    turn is mostly socket and callback work, which uvloop does in C
    (bench/results/load-notes.md has the before/after)."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows, where uvloop does not exist
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _migrate(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
