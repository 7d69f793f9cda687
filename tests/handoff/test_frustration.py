from __future__ import annotations

import pytest

from handoff.frustration import is_frustrated, message_score


@pytest.mark.parametrize(
    "text",
    [
        "this bot is useless you idiot",
        "WHERE IS MY ORDER I HAVE BEEN WAITING FOR WEEKS!!!",
        "какой же ты тупой бот, бесполезно",
        "ти марний, це жахливо!!!",
        "אתה לא עוזר בכלל, מטומטם",
        "أنت غبي وغير مفيد",
    ],
)
def test_outbursts_in_every_language_reach_the_threshold(text: str) -> None:
    assert is_frustrated([text], threshold=2.0)


@pytest.mark.parametrize(
    "text",
    [
        "where is my order?",
        "I ordered an iPhone case from the USA",  # capitals, but not shouting
        "DHL",
        "thanks!",
        "где мой заказ?",
        "איפה ההזמנה שלי?",
    ],
)
def test_calm_messages_score_nothing(text: str) -> None:
    assert message_score(text) == 0


def test_impatience_adds_up_over_recent_messages() -> None:
    history = ["this is not helpful", "still not helpful!!!"]
    assert not is_frustrated(history[:1], threshold=2.0)
    assert is_frustrated(history, threshold=2.0)
    assert not is_frustrated(["not helpful", "ok", "ok", "ok"], threshold=2.0)
