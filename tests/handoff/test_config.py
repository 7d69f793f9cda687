from __future__ import annotations

import pytest

from handoff.config import ConfigError, Settings

BASE = {"SUPPORT_RASA_TOKEN": "t"}


def test_defaults_are_sqlite_and_loopback() -> None:
    settings = Settings.from_env(BASE)
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.host == "127.0.0.1"
    assert settings.rasa_url == "http://127.0.0.1:5005"


def test_postgres_url_gets_the_async_driver() -> None:
    settings = Settings.from_env({**BASE, "DATABASE_URL": "postgresql://u@h:5432/db"})
    assert settings.database_url == "postgresql+asyncpg://u@h:5432/db"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "SUPPORT_RASA_TOKEN"),
        ({**BASE, "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({**BASE, "SUPPORT_PORT": "eighty"}, "SUPPORT_PORT"),
        ({**BASE, "SUPPORT_PORT": "70000"}, "outside"),
        ({**BASE, "SUPPORT_RASA_URL": "localhost:5005"}, "SUPPORT_RASA_URL"),
        ({**BASE, "SUPPORT_RASA_TIMEOUT": "soon"}, "SUPPORT_RASA_TIMEOUT"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)
