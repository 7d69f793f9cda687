"""`python -m handoff [serve|migrate|rebuild-reports]`: run the web service, bring its schema
up to date, or recompute the reports' projection from the stored events (after rows were
changed outside the service, e.g. a restore or a hand-made SQL fix)."""

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
from handoff.reports.projection import rebuild


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "rebuild-reports"])
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
    if args.command == "rebuild-reports":
        print(f"reports rebuilt from {asyncio.run(rebuild_reports(settings.database_url))} "
              "conversations")
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


async def rebuild_reports(database_url: str) -> int:
    """Recomputes the reports' projection in one transaction; returns how many conversations."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(rebuild)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
