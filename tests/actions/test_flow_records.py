"""Each form records its start and its end (completed or abandoned, and why) for the reports."""

from __future__ import annotations

from actions.forms import ActionStopFlow
from actions.orders import ActionSubmitOrderStatusForm, ValidateOrderStatusForm
from shop.sql import SqlStoreBackend
from tests.shop.harness import ANNA, records_of, run, store_backend, tracker

__all__ = ["store_backend"]
FORM = "order_status_form"


def flow_records(messages: list[dict[str, object]]) -> list[tuple[str, dict[str, object]]]:
    return [(kind, data) for kind, data in records_of(messages) if kind.startswith("flow_")]


async def test_the_validation_as_the_form_activates_records_the_start(
        store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ValidateOrderStatusForm(), tracker("where is my order"))
    assert flow_records(messages) == [("flow_started", {"flow": FORM})]
    _, messages = await run(ValidateOrderStatusForm(), tracker(
        "A10001", form=FORM, requested_slot="order_number"))
    assert flow_records(messages) == []  # later answers in the same form start nothing


async def test_a_completed_form_records_its_completion(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(
        order_number="A10001", contact=ANNA, verified_orders={"A10001": "shipped"}))
    assert flow_records(messages) == [("flow_completed", {"flow": FORM})]


async def test_a_failed_form_records_its_abandonment_and_why(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(
        order_number="A10001", failed_tries=3.0))
    assert flow_records(messages) == [
        ("flow_abandoned", {"flow": FORM, "reason": "too_many_wrong_answers"})]


async def test_stopping_a_form_records_its_abandonment() -> None:
    _, messages = await run(ActionStopFlow(), tracker("stop", form="cancel_order_form"))
    assert flow_records(messages) == [
        ("flow_abandoned", {"flow": "cancel_order_form", "reason": "customer_stopped"})]
    _, messages = await run(ActionStopFlow(), tracker("stop"))
    assert flow_records(messages) == []  # no form, nothing abandoned
