"""What `./assistant cluster` derives: Rasa's store settings and an nginx configuration that
nginx itself accepts."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cluster_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cluster_config", ROOT / "scripts" / "cluster_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rasa_stores_follow_the_service_settings() -> None:
    values = cluster_config().rasa_env({
        "DATABASE_URL": "postgresql+asyncpg://shop:p%40ss@db.internal:6543/support",
        "SUPPORT_REDIS_URL": "redis://:secret@cache.internal:6380/2",
        "SUPPORT_REDIS_PREFIX": "shop-1"})
    assert values == {
        "SUPPORT_TRACKER_HOST": "db.internal", "SUPPORT_TRACKER_PORT": "6543",
        "SUPPORT_TRACKER_DB": "support_rasa", "SUPPORT_TRACKER_LOGIN_DB": "support",
        "SUPPORT_TRACKER_USER": "shop", "SUPPORT_TRACKER_PASSWORD": "p@ss",
        "SUPPORT_LOCK_HOST": "cache.internal", "SUPPORT_LOCK_PORT": "6380",
        "SUPPORT_LOCK_DB": "2", "SUPPORT_LOCK_PASSWORD": "secret",
        # Rasa takes only letters and digits as a key prefix
        "SUPPORT_LOCK_PREFIX": "shop1rasa"}


@pytest.mark.parametrize(("env", "setting"), [
    ({"DATABASE_URL": "sqlite:///var/support.db", "SUPPORT_REDIS_URL": "redis://h/0"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgresql://u@h/db"}, "SUPPORT_REDIS_URL"),
])
def test_the_command_names_a_missing_or_wrong_setting(env: dict[str, str], setting: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cluster_config.py"), "rasa-env"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"configuration error: {setting}")
    assert done.stdout == ""


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="nginx is not installed (./assistant cluster installs it)")
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(cluster_config().nginx_conf(
        "127.0.0.1:18080", ["127.0.0.1:18081", "127.0.0.1:18082"], tmp_path, tmp_path))
    text = conf.read_text()
    assert "server 127.0.0.1:18081 max_fails=0;" in text
    assert not re.search(r"@[A-Z_]+@", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    done = subprocess.run([nginx, "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
