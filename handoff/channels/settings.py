"""Settings of the messaging-app channels (kept apart so configuration imports no channel code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WhatsAppSettings:
    verify_token: str
    app_secret: str
    access_token: str
    phone_number_id: str
    api_url: str = "https://graph.facebook.com/v21.0"
    # "name:language" of an approved template sent when the 24-hour window has closed
    template: str | None = None


@dataclass(frozen=True)
class TelegramSettings:
    bot_token: str
    secret_token: str
    api_url: str = "https://api.telegram.org"
