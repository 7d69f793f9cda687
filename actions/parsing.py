"""Reads the values customers type (order numbers, contacts, amounts, dates, yes/no) as plain functions.

Each function takes the customer's raw text and returns the value or None; none raises on
any input (SQL, emoji, right-to-left text, a 10,000-digit number), so every caller can turn
None into a specific re-prompt.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from handoff.conversations.redaction import _CANDIDATE as CARD_CANDIDATE, luhn_valid

MAX_INPUT = 1000  # longer slot values are refused before any parsing
MAX_AMOUNT_CENTS = 10_000_000 * 100

# Bidi controls can make text display differently from what it is; never keep them.
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ORDER = re.compile(r"(?<![A-Za-z0-9])#?\s*([A-Za-z])\s*[-_]?\s*(\d{5})(?!\d)")
_EMAIL = re.compile(r"(?<![\w.+-])([A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d\s().-]{5,22}\d)(?![\w])")
_NUMBER = re.compile(r"(?<![\d.,])\d{1,3}(?:([.,\s'])\d{3})(?:\1\d{3})*(?:[.,]\d{1,2})?(?![\d])|(?<![\d.,])\d{1,12}(?:[.,]\d{1,2})?(?![\d.,]*\d)")
_CODE = re.compile(
    r"(;\s*(drop|delete|insert|update|select|alter|truncate)\b|\bunion\s+(all\s+)?select\b"
    r"|--|/\*|\*/|<\s*script|\b(or|and)\s+['\"]?\d+['\"]?\s*=\s*['\"]?\d+|\bselect\b.+\bfrom\b"
    r"|\bdrop\s+table\b|\$\{|\{\{)",
    re.IGNORECASE,
)
_CVV = re.compile(r"\b(cvv2?|cvc2?|csc|security code|card code|код безпеки|код безопасности"
                  r"|קוד אבטחה|רמז אבטחה|رمز الأمان)\b", re.IGNORECASE)

CURRENCY_MARKERS: dict[str, str] = {
    "₪": "ILS", "ils": "ILS", "nis": "ILS", "shekel": "ILS", "shekels": "ILS", "ש\"ח": "ILS",
    "שח": "ILS", "שקל": "ILS", "שקלים": "ILS", "$": "USD", "usd": "USD", "dollar": "USD",
    "dollars": "USD", "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "евро": "EUR",
    "£": "GBP", "gbp": "GBP", "₽": "RUB", "rub": "RUB", "руб": "RUB", "рублей": "RUB",
    "₴": "UAH", "uah": "UAH", "грн": "UAH", "гривень": "UAH", "aed": "AED", "درهم": "AED",
}
_CURRENCY = re.compile(
    "|".join(sorted((re.escape(m) for m in CURRENCY_MARKERS), key=len, reverse=True)), re.IGNORECASE
)

YES = {"yes", "y", "yeah", "yep", "sure", "ok", "okay", "confirm", "correct", "please do", "do it",
       "כן", "בטח", "נכון", "نعم", "أجل", "ايوه", "да", "так", "ага", "si", "sí", "ja", "oui"}
NO = {"no", "n", "nope", "nah", "don't", "dont", "do not", "cancel that", "לא", "لا", "нет",
      "ні", "не", "nein", "non"}

PAYMENT_METHODS: list[tuple[str, re.Pattern[str]]] = [
    ("paypal", re.compile(r"pay\s*pal|פייפאל|باي ?بال|пейпал", re.I)),
    ("apple_pay", re.compile(r"apple\s*pay|אפל ?פיי", re.I)),
    ("google_pay", re.compile(r"google\s*pay|g\s*pay|גוגל ?פיי", re.I)),
    ("bank_transfer", re.compile(r"bank|wire|transfer|iban|העברה|بنك|تحويل|переказ|перевод|банк", re.I)),
    ("cash_on_delivery", re.compile(r"cash|cod\b|מזומן|نقد|наличн|готівк", re.I)),
    ("card", re.compile(r"card|visa|master\s*card|amex|american express|credit|debit|כרטיס|ויזה"
                        r"|بطاقة|فيزا|карт|•••• \d{4}", re.I)),
]

RELATIVE_DAYS: dict[str, int] = {
    "today": 0, "yesterday": 1, "day before yesterday": 2, "the day before yesterday": 2,
    "היום": 0, "אתמול": 1, "שלשום": 2, "اليوم": 0, "أمس": 1, "امس": 1, "البارحة": 1,
    "сегодня": 0, "вчера": 1, "позавчера": 2, "сьогодні": 0, "вчора": 1, "позавчора": 2,
}


@dataclass(frozen=True)
class Money:
    """An amount in minor units (cents) and, when the customer said it, its currency."""

    cents: int
    currency: str | None

    def __str__(self) -> str:
        units = f"{self.cents // 100}.{self.cents % 100:02d}"
        return f"{units} {self.currency}" if self.currency else units


def clean(text: object) -> str:
    """The text with bidi controls removed and whitespace collapsed ('' for non-text)."""
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFKC", _BIDI.sub("", text))
    return " ".join(text.split())


def too_long(text: str) -> bool:
    return len(text) > MAX_INPUT


def parse_order_number(text: object) -> str | None:
    """'#a 10234', 'A-10234', 'order a10234 pls' -> 'A10234' (one letter and five digits)."""
    value = clean(text)
    if too_long(value):
        return None
    match = _ORDER.search(value)
    return f"{match.group(1).upper()}{match.group(2)}" if match else None


def parse_email(text: object) -> str | None:
    """The first email address in the text, lower-cased."""
    value = clean(text)
    if too_long(value):
        return None
    match = _EMAIL.search(value)
    return match.group(1).lower() if match and len(match.group(1)) <= 254 else None


def parse_phone(text: object) -> str | None:
    """'+972 54-123-4567', '(415) 555 0101' -> digits with a leading + if typed; 7-15 digits."""
    value = clean(text)
    if too_long(value) or "••••" in value:
        return None
    for match in _PHONE.finditer(value):
        digits = re.sub(r"\D", "", match.group(1))
        if 7 <= len(digits) <= 15 and not (len(digits) >= 13 and luhn_valid(digits)):
            return ("+" if match.group(1).startswith("+") else "") + digits
    return None


def parse_contact(text: object) -> str | None:
    """An email, else a phone number: what the customer gave us when ordering."""
    return parse_email(text) or parse_phone(text)


def _to_decimal(number: str) -> Decimal | None:
    """'1.234,56' / '1,234.56' / "1'234" / '12,5' -> Decimal; the last separator followed by
    one or two digits is the decimal mark, any other is a thousands separator."""
    number = number.replace(" ", "").replace("'", "")
    decimal_mark = re.search(r"[.,](\d{1,2})$", number)
    if decimal_mark:
        whole = re.sub(r"[.,]", "", number[: decimal_mark.start()])
        number = f"{whole}.{decimal_mark.group(1)}"
    else:
        number = re.sub(r"[.,]", "", number)
    try:
        return Decimal(number)
    except InvalidOperation:
        return None


def parse_amount(text: object) -> Money | None:
    """'1.234,56 €', '₪120', '$ 12', '12.50 usd', '120 שקל' -> Money; None if no amount or absurd."""
    value = clean(text)
    if too_long(value) or re.search(r"\d{13,}", value):
        return None
    numbers = list(_NUMBER.finditer(value))
    if not numbers:
        return None
    currency_match = _CURRENCY.search(value)
    chosen = numbers[0]
    if currency_match:  # the number nearest the currency sign is the amount
        chosen = min(numbers, key=lambda m: min(abs(m.start() - currency_match.end()),
                                                abs(currency_match.start() - m.end())))
    amount = _to_decimal(chosen.group())
    if re.search(r"[-−]\s*\S?\s*$", value[: chosen.start()]):
        return None  # "-5", "- $5", "$-5": a negative amount is no amount paid
    if amount is None or amount <= 0:
        return None
    cents = int((amount * 100).to_integral_value())
    if cents > MAX_AMOUNT_CENTS:
        return None
    currency = CURRENCY_MARKERS[currency_match.group().lower()] if currency_match else None
    return Money(cents, currency)


def parse_date(text: object, today: date | None = None) -> date | None:
    """'yesterday', 'вчера', 'אתמול', '3 May', '2026-05-03', '03/05/2026' -> a date (past preferred)."""
    value = clean(text).lower().strip(" .!?")
    if not value or len(value) > 60:
        return None
    today = today or datetime.now(timezone.utc).date()
    for phrase, days in sorted(RELATIVE_DAYS.items(), key=lambda item: -len(item[0])):
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", value):
            return today - timedelta(days=days)
    import dateparser  # slow to import; only when a date is really asked for

    try:
        parsed = dateparser.parse(
            value, languages=["en", "he", "ar", "ru", "uk"],
            settings={"PREFER_DATES_FROM": "past", "DATE_ORDER": "DMY",
                      "RELATIVE_BASE": datetime.combine(today, time(12))},
        )
    except Exception:  # dateparser raises assorted errors on odd input; all mean "no date"
        return None
    return parsed.date() if parsed else None


def parse_yes_no(text: object) -> bool | None:
    """True for yes, False for no (several languages), None when the answer is neither."""
    value = clean(text).lower().strip(" .!?,")
    if value in YES or any(value.startswith(word + " ") for word in YES if len(word) > 1):
        return True
    if value in NO or any(value.startswith(word + " ") for word in NO if len(word) > 1):
        return False
    return None


def parse_payment_method(text: object) -> str | None:
    """card, paypal, apple_pay, google_pay, bank_transfer or cash_on_delivery."""
    value = clean(text)
    if too_long(value):
        return None
    return next((name for name, pattern in PAYMENT_METHODS if pattern.search(value)), None)


def looks_like_code(text: str) -> bool:
    """SQL, script or template syntax: never a real address or description."""
    return bool(_CODE.search(text))


def free_text(text: object, *, min_chars: int, max_chars: int) -> str | None:
    """A description or address: letters required, code-like text and extremes refused."""
    value = clean(text)
    if not (min_chars <= len(value) <= max_chars) or looks_like_code(value):
        return None
    letters = sum(1 for char in value if char.isalpha())
    return value if letters >= min(3, min_chars) else None


def mentions_card_data(text: object) -> bool:
    """A card number (masked '•••• 1234' by the web service, or raw) or a CVV in the text."""
    value = clean(text)
    if "••••" in value or "****" in value:
        return True
    if any(luhn_valid(re.sub(r"\D", "", m.group())) for m in CARD_CANDIDATE.finditer(value[:MAX_INPUT])):
        return True
    return bool(_CVV.search(value)) and bool(re.search(r"(?<!\d)\d{3,4}(?!\d)", value))
