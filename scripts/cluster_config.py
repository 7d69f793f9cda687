"""What `./assistant cluster` derives from its settings: Rasa's tracker and lock store
variables (deploy/endpoints.cluster.yml) and the nginx configuration (deploy/nginx.conf.template).

    python scripts/cluster_config.py rasa-env           # `export ...` lines for the shell
    python scripts/cluster_config.py nginx OUT --listen HOST:PORT --upstream HOST:PORT ...
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


class ClusterConfigError(ValueError):
    """A setting the cluster needs is missing or of the wrong kind; names the variable."""


def rasa_env(env: dict[str, str]) -> dict[str, str]:
    """Rasa's SQL tracker store on DATABASE_URL's server (database `<db>_rasa`) and its lock
    store on SUPPORT_REDIS_URL."""
    database = urlsplit(env.get("DATABASE_URL", ""))
    if database.scheme.split("+")[0] not in ("postgres", "postgresql") or not database.hostname:
        raise ClusterConfigError("DATABASE_URL must be a postgresql://user@host:port/db URL: "
                                 "several instances share one PostgreSQL database")
    db = database.path.lstrip("/") or "postgres"
    redis = urlsplit(env.get("SUPPORT_REDIS_URL", ""))
    if redis.scheme not in ("redis", "rediss") or not redis.hostname:
        raise ClusterConfigError("SUPPORT_REDIS_URL must be a redis://host:port/db URL: the "
                                 "instances share fan-out, locks and presence through it")
    prefix = "".join(ch for ch in env.get("SUPPORT_REDIS_PREFIX", "support") if ch.isalnum())
    return {
        "SUPPORT_TRACKER_HOST": database.hostname,
        "SUPPORT_TRACKER_PORT": str(database.port or 5432),
        "SUPPORT_TRACKER_DB": f"{db}_rasa",
        "SUPPORT_TRACKER_LOGIN_DB": db,
        "SUPPORT_TRACKER_USER": unquote(database.username or ""),
        "SUPPORT_TRACKER_PASSWORD": unquote(database.password or ""),
        "SUPPORT_LOCK_HOST": redis.hostname,
        "SUPPORT_LOCK_PORT": str(redis.port or 6379),
        "SUPPORT_LOCK_DB": redis.path.lstrip("/") or "0",
        "SUPPORT_LOCK_PASSWORD": unquote(redis.password or ""),
        "SUPPORT_LOCK_PREFIX": f"{prefix or 'support'}rasa",
    }


def nginx_conf(listen: str, upstreams: list[str], run_dir: Path, log_dir: Path) -> str:
    """`max_fails=0`: nginx never takes an instance out of the rotation, it tries the next
    one whenever a connection is refused. With `max_fails=1` an instance that came back
    stayed "failed" while its first request was a WebSocket (nginx counts a request as a
    success only when it ends), so once the other instance died too every plain request got
    `502 no live upstreams` for fail_timeout (the cluster browser test caught it). On one
    machine a refused connection costs microseconds; see the template for other hosts."""
    servers = "\n".join(f"        server {u} max_fails=0;" for u in upstreams)
    text = (DEPLOY / "nginx.conf.template").read_text(encoding="utf-8")
    for name, value in (("LISTEN", listen), ("UPSTREAM_SERVERS", servers),
                        ("RUN_DIR", str(run_dir)), ("LOG_DIR", str(log_dir))):
        text = text.replace(f"@{name}@", value)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster_config.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("rasa-env")
    nginx = commands.add_parser("nginx")
    nginx.add_argument("out", type=Path)
    nginx.add_argument("--listen", required=True)
    nginx.add_argument("--upstream", action="append", required=True)
    nginx.add_argument("--run-dir", type=Path, required=True)
    nginx.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "nginx":
        args.out.write_text(nginx_conf(args.listen, args.upstream, args.run_dir, args.log_dir),
                            encoding="utf-8")
        return 0
    try:
        values = rasa_env(dict(os.environ))
    except ClusterConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
