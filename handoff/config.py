"""All of the web service's settings in one place, read from the environment and checked at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from handoff.business_hours import ALWAYS_OPEN, BusinessHours, BusinessHoursError
from handoff.channels.settings import TelegramSettings, WhatsAppSettings
from handoff.handoff_policy import HandoffPolicy
from handoff.reports.sla import ServiceLevels

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    """The web service's configuration. Build with `Settings.from_env()`."""

    database_url: str
    rasa_url: str
    rasa_token: str
    action_server_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    max_message_chars: int = 4000
    rasa_timeout_seconds: float = 30.0
    business_hours: BusinessHours = BusinessHours.parse(ALWAYS_OPEN, "UTC")
    handoff_policy: HandoffPolicy = HandoffPolicy()
    # Origins allowed to open the agent console's WebSocket (besides the service's own).
    console_origins: tuple[str, ...] = ()
    # Websites allowed to open the chat widget's socket (empty: any; the token guards chats).
    widget_origins: tuple[str, ...] = ()
    # Flood limits of the widget: messages per chat window, new chats per client address.
    widget_messages_per_minute: int = 30
    widget_new_chats_per_minute: int = 20
    # Every Rasa server the messages are spread over (SUPPORT_RASA_URLS); empty: rasa_url alone.
    rasa_urls: tuple[str, ...] = ()
    # Bring the schema up to date at start-up; off when `python -m handoff migrate` does it
    # once before several instances start (then a schema behind the code stops start-up).
    migrate_on_start: bool = True
    # How often the instance running the job looks for messages stored but never routed.
    reroute_every_seconds: float = 30.0
    # How long a knowledge answer is given again to the same question without asking Rasa
    # (handoff/repeat_answers.py); 0: always ask. The knowledge index it watches for rebuilds.
    repeat_answers_seconds: float = 300.0
    knowledge_index_dir: Path = PROJECT_ROOT / "var" / "knowledge"
    # Reverse proxies (nginx) whose X-Forwarded-For names the customer's address.
    trusted_proxies: tuple[str, ...] = ()
    # Redis for fan-out and locks across several instances; empty: in-process (one instance).
    redis_url: str = ""
    redis_prefix: str = "support"
    # Messaging apps; None: that channel is off.
    whatsapp: WhatsAppSettings | None = None
    telegram: TelegramSettings | None = None
    # Where handoff events are mirrored (the store's helpdesk); empty: not mirrored.
    webhook_url: str = ""
    webhook_secret: str = ""
    # The first admin, created when no agent exists yet.
    admin_email: str = "admin@localhost"
    admin_password: str = ""  # empty: generate one and write it to admin_password_file
    admin_password_file: Path = PROJECT_ROOT / "var" / "console-admin.txt"
    # Signs invoice download links (shared with the action server); empty: var/link-secret.
    link_secret: str = ""
    # Transcripts older than this many days are purged (handoff/contacts/privacy.py); 0: kept.
    retention_days: int = 0
    # Reports: service-level targets, and the optional 0-10 NPS question (0 days: never asked).
    service_levels: ServiceLevels = ServiceLevels()
    nps_every_days: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads SUPPORT_* variables (and DATABASE_URL); raises ConfigError on the first bad one."""
        env = os.environ if env is None else env
        default_db = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'support.db'}"
        rasa_urls = _http_urls(env, "SUPPORT_RASA_URLS")
        settings = cls(
            database_url=_database_url(env.get("DATABASE_URL", default_db)),
            rasa_url=rasa_urls[0] if rasa_urls else _http_url(
                env, "SUPPORT_RASA_URL", "http://127.0.0.1:5005"),
            rasa_urls=rasa_urls,
            migrate_on_start=_flag(env, "SUPPORT_MIGRATE_ON_START", True),
            reroute_every_seconds=_float(env, "SUPPORT_REROUTE_EVERY_SECONDS", 30.0, 1.0, 3600.0),
            repeat_answers_seconds=_float(env, "SUPPORT_REPEAT_ANSWERS_SECONDS", 300.0, 0.0,
                                          86400.0),
            knowledge_index_dir=Path(env.get("SUPPORT_KB_INDEX") or
                                     PROJECT_ROOT / "var" / "knowledge"),
            rasa_token=env.get("SUPPORT_RASA_TOKEN", ""),
            action_server_url=_http_url(env, "SUPPORT_ACTION_SERVER_URL", "http://127.0.0.1:5055"),
            host=env.get("SUPPORT_HOST", "127.0.0.1"),
            port=_int(env, "SUPPORT_PORT", 8080, 1, 65535),
            max_message_chars=_int(env, "SUPPORT_MAX_MESSAGE_CHARS", 4000, 1, 60000),
            rasa_timeout_seconds=_float(env, "SUPPORT_RASA_TIMEOUT", 30.0, 0.1, 600.0),
            business_hours=_business_hours(env),
            handoff_policy=HandoffPolicy(
                topics=tuple(t.strip() for t in env.get(
                    "SUPPORT_HANDOFF_TOPICS", "complaint,delete_account").split(",") if t.strip()),
                low_confidence_turns=_int(env, "SUPPORT_HANDOFF_LOW_CONFIDENCE_TURNS", 2, 0, 10),
                frustration_threshold=_float(env, "SUPPORT_FRUSTRATION_THRESHOLD", 2.0, 0.5, 100.0),
            ),
            console_origins=_origins(env, "SUPPORT_CONSOLE_ORIGINS"),
            widget_origins=_origins(env, "SUPPORT_WIDGET_ORIGINS"),
            widget_messages_per_minute=_int(env, "SUPPORT_WIDGET_MESSAGES_PER_MINUTE", 30, 1, 10_000),
            widget_new_chats_per_minute=_int(env, "SUPPORT_WIDGET_NEW_CHATS_PER_MINUTE", 20, 1, 10_000),
            redis_url=_redis_url(env),
            trusted_proxies=_addresses(env, "SUPPORT_TRUSTED_PROXIES"),
            redis_prefix=env.get("SUPPORT_REDIS_PREFIX", "support"),
            whatsapp=_whatsapp(env),
            telegram=_telegram(env),
            webhook_url=_http_url(env, "SUPPORT_WEBHOOK_URL", "http://unset") if env.get(
                "SUPPORT_WEBHOOK_URL") else "",
            webhook_secret=env.get("SUPPORT_WEBHOOK_SECRET", ""),
            admin_email=env.get("SUPPORT_ADMIN_EMAIL", "admin@localhost"),
            admin_password=env.get("SUPPORT_ADMIN_PASSWORD", ""),
            link_secret=env.get("SUPPORT_LINK_SECRET", ""),
            retention_days=_int(env, "SUPPORT_RETENTION_DAYS", 0, 0, 36500),
            service_levels=ServiceLevels(
                first_reply_seconds=_int(env, "SUPPORT_SLA_FIRST_REPLY_SECONDS", 120, 1, 7 * 86400),
                resolution_seconds=_int(env, "SUPPORT_SLA_RESOLUTION_SECONDS", 86400, 1, 90 * 86400)),
            nps_every_days=_int(env, "SUPPORT_NPS_EVERY_DAYS", 0, 0, 3650),
        )
        if settings.admin_password and len(settings.admin_password) < 10:
            raise ConfigError("SUPPORT_ADMIN_PASSWORD must be at least 10 characters")
        if settings.webhook_url and len(settings.webhook_secret) < 16:
            raise ConfigError("SUPPORT_WEBHOOK_SECRET (16+ characters) is required with "
                              "SUPPORT_WEBHOOK_URL, so the receiver can verify each event")
        if settings.redis_url and settings.database_url.startswith("sqlite"):
            raise ConfigError("SUPPORT_REDIS_URL is set (several instances) but DATABASE_URL is "
                              "SQLite: instances must share one PostgreSQL database")
        if settings.redis_url and not settings.link_secret:
            raise ConfigError("SUPPORT_LINK_SECRET is not set: with SUPPORT_REDIS_URL (several "
                              "instances) every instance and the action server must share it, "
                              "or an invoice link signed by one is refused by another")
        if not settings.rasa_token:
            raise ConfigError(
                "SUPPORT_RASA_TOKEN is not set: the Rasa server requires an API token "
                "(./assistant up generates one)"
            )
        return settings


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of web origins, e.g. `https://shop.example,https://m.shop.example`."""
    return tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())


def _required(env: Mapping[str, str], names: tuple[str, ...], why: str) -> dict[str, str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise ConfigError(f"{why} also needs {', '.join(missing)}")
    return {name: env[name] for name in names}


def _whatsapp(env: Mapping[str, str]) -> WhatsAppSettings | None:
    """WhatsApp is on when SUPPORT_WHATSAPP_PHONE_NUMBER_ID is set; then all its secrets must be."""
    if not env.get("SUPPORT_WHATSAPP_PHONE_NUMBER_ID"):
        return None
    names = ("SUPPORT_WHATSAPP_VERIFY_TOKEN", "SUPPORT_WHATSAPP_APP_SECRET",
             "SUPPORT_WHATSAPP_ACCESS_TOKEN")
    values = _required(env, names, "SUPPORT_WHATSAPP_PHONE_NUMBER_ID")
    return WhatsAppSettings(
        verify_token=values[names[0]], app_secret=values[names[1]], access_token=values[names[2]],
        phone_number_id=env["SUPPORT_WHATSAPP_PHONE_NUMBER_ID"],
        api_url=_http_url(env, "SUPPORT_WHATSAPP_API_URL", "https://graph.facebook.com/v21.0"),
        template=env.get("SUPPORT_WHATSAPP_TEMPLATE") or None)


def _telegram(env: Mapping[str, str]) -> TelegramSettings | None:
    """Telegram is on when SUPPORT_TELEGRAM_BOT_TOKEN is set; it needs the webhook secret too."""
    if not env.get("SUPPORT_TELEGRAM_BOT_TOKEN"):
        return None
    secret = _required(env, ("SUPPORT_TELEGRAM_SECRET",), "SUPPORT_TELEGRAM_BOT_TOKEN")
    return TelegramSettings(bot_token=env["SUPPORT_TELEGRAM_BOT_TOKEN"],
                            secret_token=secret["SUPPORT_TELEGRAM_SECRET"],
                            api_url=_http_url(env, "SUPPORT_TELEGRAM_API_URL", "https://api.telegram.org"))


def _business_hours(env: Mapping[str, str]) -> BusinessHours:
    try:
        return BusinessHours.parse(
            env.get("SUPPORT_BUSINESS_HOURS", ALWAYS_OPEN), env.get("SUPPORT_TIMEZONE", "UTC")
        )
    except BusinessHoursError as exc:
        raise ConfigError(f"SUPPORT_BUSINESS_HOURS/SUPPORT_TIMEZONE: {exc}") from None


def _database_url(url: str) -> str:
    """Accepts sqlite and postgresql URLs and picks the async driver the service uses."""
    scheme = url.split(":", 1)[0]
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite:" + url.split(":", 1)[1]
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return "postgresql+asyncpg:" + url.split(":", 1)[1]
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///path or "
        "postgresql://user@host:port/db"
    )


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not an http(s) URL")
    return value


def _http_urls(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of http(s) URLs, each checked like a single one."""
    items = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    return tuple(_http_url({name: item}, name, "") for item in items)


def _addresses(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses, each checked."""
    items = tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address") from None
    return items


def _redis_url(env: Mapping[str, str]) -> str:
    value = env.get("SUPPORT_REDIS_URL", "").strip()
    if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"SUPPORT_REDIS_URL={value!r} is not a redis://, rediss:// or unix:// URL")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a yes/no value (1/0, true/false)")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value
