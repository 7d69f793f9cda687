"""Signed, expiring download links: the action server makes them, the web service checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

LINK_LIFETIME_SECONDS = 24 * 3600


class LinkInvalid(Exception):
    """The token was tampered with, made with another key, or has expired."""


@dataclass(frozen=True)
class InvoiceGrant:
    """What a link lets its holder download: one invoice of one order."""

    order_number: str
    invoice_number: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_invoice_link(secret: bytes, order_number: str, invoice_number: str,
                      now: float | None = None, lifetime: int = LINK_LIFETIME_SECONDS) -> str:
    """A URL-safe token granting the invoice until it expires."""
    expires = int((now if now is not None else time.time()) + lifetime)
    body = _b64(json.dumps({"o": order_number, "i": invoice_number, "e": expires},
                           separators=(",", ":")).encode())
    mac = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_invoice_link(secret: bytes, token: str, now: float | None = None) -> InvoiceGrant:
    """The grant a token carries, or LinkInvalid (never says which check failed)."""
    try:
        body, mac = token.split(".")
        expected = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise LinkInvalid("bad signature")
        data = json.loads(_unb64(body))
        grant = InvoiceGrant(str(data["o"]), str(data["i"]), int(data["e"]))
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise LinkInvalid("malformed token") from exc
    if grant.expires_at < (now if now is not None else time.time()):
        raise LinkInvalid("expired")
    return grant
