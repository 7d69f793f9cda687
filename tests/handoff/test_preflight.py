"""Start-up refuses a database, Redis or schema it cannot work with, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from handoff import migrate, preflight
from handoff.config import ConfigError, Settings
from handoff.db import create_engine
from tests.conftest import unused_port
from tests.handoff.test_console import settings_for

ROOT = Path(__file__).resolve().parents[2]


def settings(database_url: str, **overrides: object) -> Settings:
    base = settings_for(database_url, "http://127.0.0.1:1")
    return Settings(**{**base.__dict__, **overrides})


async def test_a_database_that_does_not_answer_names_database_url() -> None:
    url = f"postgresql+asyncpg://support:secret-pw@127.0.0.1:{unused_port()}/support"
    engine = create_engine(url)
    try:
        with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
            await preflight.check(settings(url), engine, None)
        assert "secret-pw" not in str(caught.value)  # the password is never printed
    finally:
        await engine.dispose()


async def test_a_redis_that_does_not_answer_names_support_redis_url(database_url: str) -> None:
    engine = create_engine(database_url)
    redis_url = f"redis://127.0.0.1:{unused_port()}/0"
    redis = Redis.from_url(redis_url)
    try:
        with pytest.raises(ConfigError, match="SUPPORT_REDIS_URL"):
            await preflight.check(settings(database_url, redis_url=redis_url), engine, redis)
    finally:
        await redis.aclose()
        await engine.dispose()


async def test_a_schema_newer_than_the_code_is_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(ConfigError, match="9999_future.*does not know"):
            await preflight.check(settings(database_url), engine, None)
        assert await migrate.current_revision(engine) == "9999_future"  # nothing touched
    finally:
        await engine.dispose()


async def test_a_schema_behind_the_code_is_upgraded_or_refused_as_configured(
    database_url: str
) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine, "0001")
        with pytest.raises(ConfigError, match="SUPPORT_MIGRATE_ON_START.*python -m handoff migrate"):
            await preflight.check(settings(database_url, migrate_on_start=False), engine, None)
        assert await migrate.current_revision(engine) == "0001"
        await preflight.check(settings(database_url), engine, None)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("env", "words"), [
    ({"SUPPORT_REDIS_URL": "redis://127.0.0.1:6379/0"}, "SUPPORT_REDIS_URL.*SQLite"),
    ({"SUPPORT_REDIS_URL": "redis://127.0.0.1:6379/0", "DATABASE_URL": "postgresql://u@h/db"},
     "SUPPORT_LINK_SECRET"),
    ({"SUPPORT_REDIS_URL": "http://127.0.0.1:6379"}, "SUPPORT_REDIS_URL"),
    ({"SUPPORT_RASA_URLS": "http://127.0.0.1:5005,127.0.0.1:5006"}, "SUPPORT_RASA_URLS"),
    ({"SUPPORT_MIGRATE_ON_START": "maybe"}, "SUPPORT_MIGRATE_ON_START"),
])
def test_settings_for_several_instances_are_checked(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({"SUPPORT_RASA_TOKEN": "t", **env})


def test_several_rasa_urls_are_read_in_order() -> None:
    settings = Settings.from_env({"SUPPORT_RASA_TOKEN": "t",
                                  "SUPPORT_RASA_URLS": "http://a:5005/, http://b:5005"})
    assert settings.rasa_urls == ("http://a:5005", "http://b:5005")
    assert settings.rasa_url == "http://a:5005"


def test_the_service_exits_with_the_setting_named_instead_of_half_starting() -> None:
    env = {**os.environ, "SUPPORT_RASA_TOKEN": "t", "SUPPORT_PORT": str(unused_port()),
           "DATABASE_URL": f"postgresql://support@127.0.0.1:{unused_port()}/support"}
    done = subprocess.run([sys.executable, "-m", "handoff"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "configuration error: DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr
