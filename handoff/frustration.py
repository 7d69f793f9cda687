"""Notices a customer losing patience, in the languages the store's customers write.

A score per message from plain signals — shouting, insults, "this is useless" in English,
Hebrew, Arabic, Russian and Ukrainian, runs of !!! — summed over the last few messages.
Deliberately simple and explainable: an agent can see why a conversation was escalated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_INSULTS = re.compile(
    r"\b(idiot|stupid|moron|dumb|shit|crap|fuck\w*|wtf|bullshit)\b"
    r"|идиот|дебил|тупо|тупой|хрен|блин|чёрт|черт|дурн|тупий|ідіот"
    r"|מטומטם|אידיוט|דביל|חרא"
    r"|غبي|تافه|حمار|زفت",
    re.IGNORECASE,
)
_FED_UP = re.compile(
    r"useless|waste of (my )?time|not helpful|doesn'?t help|does not help|ridiculous"
    r"|terrible|awful|worst|fed up|sick of|joke of a|pathetic|unacceptable"
    r"|бесполезн|не помога|достал|ужасн|отвратительн|безобраз"
    r"|марн|не допомага|жахлив|набридл|обурлив"
    r"|לא עוזר|חסר תועלת|מעצבן|נמאס|זוועה|גרוע"
    r"|غير مفيد|لا يفيد|سيء|مزعج|زهقت|مهزلة",
    re.IGNORECASE,
)
_BANGS = re.compile(r"[!?]{3,}")


def message_score(text: str) -> float:
    """0 for a calm message; 2 or more for an insult, shouting or an outburst."""
    score = 0.0
    if _INSULTS.search(text):
        score += 2
    if _FED_UP.search(text):
        score += 1.5
    letters = [c for c in text if c.isalpha() and c.lower() != c.upper()]
    if len(letters) >= 10 and sum(c.isupper() for c in letters) / len(letters) >= 0.7:
        score += 1.5  # SHOUTING, in scripts that have capitals
    if _BANGS.search(text):
        score += 0.5
    return score


def is_frustrated(recent_texts: Sequence[str], threshold: float, window: int = 3) -> bool:
    """True when the last `window` customer messages together reach `threshold`."""
    return sum(message_score(text) for text in recent_texts[-window:]) >= threshold
