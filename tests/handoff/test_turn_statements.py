"""How many SQL statements one assistant turn costs the web service.

Each statement is a thread hop (SQLite) or a network round trip (PostgreSQL) plus ORM work,
and the web service's CPU per turn follows their number (bench/results/load-notes.md). The
budget is what the turn needs today; a change that adds a statement to every turn fails here
and has to say why it is worth it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from handoff.appkeys import ENGINE
from tests.handoff.test_console import app_client  # noqa: F401  (fixture)
from tests.handoff.test_widget_channel import Client, hello, until

# One widget message answered by the assistant, in a conversation already under way:
# store it (look for a resend, read and touch the conversation in one UPDATE, insert it: 3),
# read the recent turns for the handoff policy (2), store the understood event, the reply
# and "routed" together (3), and push the reply from the database (1): 9, down from 12
# once the conversation read at store time was reused and "routed" became an UPDATE by key.
# The reports' projection (handoff/reports/projection.py) adds one read of the conversation's
# topics to see whether the intent is new, and here a mark for the catch-up (the intent is
# new: 2). Its "first customer message" and "first assistant reply" conditional UPDATEs run
# only until this process has seen the conversation's committed: the one this turn needed
# before is gone (13 → 12; a turn whose intent is not new saves both). 12 → 11 once the
# conversation was read by the UPDATE that touches it (RETURNING).
TURN_BUDGET = 10
# Opening a chat: its contact, then the conversation and the reports' mark, then its two
# participants (one statement on PostgreSQL) and "created" event: three flushes, as the rows
# refer to each other; the mark is made once a transaction. Nothing is read back: the new
# chat has no history and no place in the queue (9 → 6; a store's widget opens many chats).
OPEN_BUDGET = 6


@contextmanager
def counting(app_client: Client) -> Iterator[list[str]]:  # noqa: F811
    """The statements the web service runs inside the block (transaction control aside)."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip() == "SELECT 1":
            return  # the background jobs' lock holder checking its connection (handoff/jobs.py):
            # on PostgreSQL it ticks on its own, and on a slow machine a tick fell in the window
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements.append(" ".join(statement.split())[:90])

    engine = app_client.app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_opening_a_chat_stays_within_its_statement_budget(
    app_client: Client,  # noqa: F811
) -> None:
    with counting(app_client) as statements:
        socket, welcome = await hello(app_client)
    assert welcome["token"] and welcome["status"] == "bot"
    assert len(statements) <= OPEN_BUDGET, "\n".join(statements)
    await socket.close()


async def test_an_assistant_turn_stays_within_its_statement_budget(
    app_client: Client,  # noqa: F811
) -> None:
    socket, _ = await hello(app_client)
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    await until(socket, "ack")
    await until(socket, "message", author="assistant")  # the first turn settles completely

    with counting(app_client) as statements:
        await socket.send_json({"type": "message", "text": "and again", "client_message_id": "c2"})
        ack = await until(socket, "ack")
        reply = await until(socket, "message", author="assistant")
    assert ack["reply_ids"] == [reply["message"]["id"]]
    assert len(statements) <= TURN_BUDGET, "\n".join(statements)
    await socket.close()
