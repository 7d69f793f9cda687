"""Guesses a customer's language from the script of their message."""

from __future__ import annotations

import re

SUPPORTED = ("en", "he", "ar", "ru", "uk")

_HEBREW = re.compile(r"[\u0590-\u05ff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_UKRAINIAN_ONLY = re.compile(r"[іїєґІЇЄҐ]")
_RUSSIAN_ONLY = re.compile(r"[ыэъёЫЭЪЁ]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str | None:
    """'he', 'ar', 'ru', 'uk' or 'en' by the dominant script; None when there are no letters."""
    counts = {
        "he": len(_HEBREW.findall(text)),
        "ar": len(_ARABIC.findall(text)),
        "cyrillic": len(_CYRILLIC.findall(text)),
        "en": len(_LATIN.findall(text)),
    }
    script, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        return None
    if script != "cyrillic":
        return script
    ukrainian, russian = len(_UKRAINIAN_ONLY.findall(text)), len(_RUSSIAN_ONLY.findall(text))
    return "uk" if ukrainian > russian else "ru"


def customer_language(text: str, hint: str | None) -> str:
    """The language the message is written in; the channel's hint only settles ru/uk or no letters."""
    base = (hint or "").split("-")[0].split("_")[0].lower()
    hint_ok = base if base in SUPPORTED else None
    detected = detect_language(text)
    if detected in ("ru", "uk") and hint_ok in ("ru", "uk"):
        return hint_ok
    return detected or hint_ok or "en"
