"""A question asked again is answered again at once, the way the assistant answered it.

Customers ask the same questions in the same words, and quick replies send the same text.
A knowledge-base answer depends on nothing but the question, the channel and language it
came with, and the index: bot/rules/knowledge.yml sends each question intent (and the
classifier's "not sure") straight to action_answer_from_knowledge_base with no condition on
what came before (tests/bot/test_repeatable_rules.py keeps it so), and the action reads only
the question, the language and whether a form is active. So in a conversation with no form
active, a question the assistant answered from the knowledge base within `ttl` seconds, with
the same channel and language and the same index generation, gets that answer from here:
the classifier, the policies, the action server and the search are skipped. Rasa still sees
the turn: its events are stored with it (the `message_understood` event's `replay`), and the
router appends them to Rasa's tracker under the conversation's lock just before Rasa reads
the conversation's next message — not after each repeat, where the customer's next
question would wait on that round trip; a restart in between loses nothing.

Only a turn whose events are exactly the message, action_answer_from_knowledge_base, its
replies and a listen (no slot, no form, no follow-up) and that asks for no handoff is kept.
Kept per instance (several instances each learn their own); SUPPORT_REPEAT_ANSWERS_SECONDS=0
turns it off.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

from handoff.assistant import AssistantTurn

KNOWLEDGE_ACTION = "action_answer_from_knowledge_base"
LISTEN = "action_listen"
# Event types a repeatable turn may hold; anything else (slot, active_loop, followup,
# restart...) changes the tracker's state beyond "one more question answered".
REPEATABLE_EVENTS = {"user", "action", "bot", "user_featurization"}
Stamp = Hashable


def index_stamp(index_dir: Path) -> Callable[[], Stamp]:
    """Identifies the knowledge-index generation serving now, from its pointer file: a
    rebuild replaces the file (knowledge/store.py), which changes inode and mtime."""

    def stamp() -> Stamp:
        try:
            st = os.stat(index_dir / "CURRENT")
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    return stamp


def repeatable(turn: AssistantTurn) -> bool:
    """A knowledge answer that left the tracker as it found it, but for the turn itself."""
    events = turn.events
    if turn.active_loop is not None or len(events) < 3 or turn.repeated:
        return False
    if events[0].get("event") != "user" or any(
            event.get("event") not in REPEATABLE_EVENTS for event in events):
        return False
    actions = [event.get("name") for event in events if event.get("event") == "action"]
    return actions == [KNOWLEDGE_ACTION, LISTEN]


@dataclasses.dataclass(frozen=True)
class _Kept:
    turn: AssistantTurn
    stamp: Stamp
    until: float


class RepeatAnswers:
    """The most recent `size` repeatable answers, each for `ttl` seconds and one index
    generation. Runs on the event loop only (no locking): lookups are dictionary reads."""

    def __init__(self, ttl: float, size: int = 1024,
                 stamp: Callable[[], Stamp] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 stamp_every: float = 1.0) -> None:
        self._ttl = ttl
        self._size = size
        self._stamp = stamp
        self._clock = clock
        self._stamp_every = stamp_every
        self._current: tuple[float, Stamp] | None = None  # (read at, stamp)
        self._kept: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _Kept] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def stamp(self) -> Stamp:
        """The index generation now, read at most once per `stamp_every` seconds."""
        now = self._clock()
        if self._current is None or now - self._current[0] >= self._stamp_every:
            self._current = (now, self._stamp())
        return self._current[1]

    @staticmethod
    def _key(text: str, metadata: Mapping[str, Any]
             ) -> tuple[str, tuple[tuple[str, str], ...]]:
        return text.strip(), tuple(sorted((str(k), str(v)) for k, v in metadata.items()))

    def remember(self, text: str, metadata: Mapping[str, Any], turn: AssistantTurn,
                 stamp: Stamp) -> bool:
        """Keeps `turn` if it is repeatable; `stamp` is the index generation read before
        the assistant was asked (a rebuild in between leaves an entry that never matches)."""
        if not self.enabled or not repeatable(turn):
            return False
        key = self._key(text, metadata)
        self._kept[key] = _Kept(turn, stamp, self._clock() + self._ttl)
        self._kept.move_to_end(key)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return True

    def answer(self, text: str, metadata: Mapping[str, Any]) -> AssistantTurn | None:
        """The kept answer to this question, with its events ready to append to the
        conversation's tracker (new message id, this message's metadata, timestamps now)."""
        if not self.enabled:
            return None
        key = self._key(text, metadata)
        kept = self._kept.get(key)
        if kept is None:
            return None
        if kept.until <= self._clock() or kept.stamp != self.stamp():
            del self._kept[key]
            return None
        self._kept.move_to_end(key)
        now = time.time()
        events = []
        for event in kept.turn.events:
            event = {**event, "timestamp": now}
            if event.get("event") == "user":
                event.update(text=text, metadata=dict(metadata), message_id=uuid.uuid4().hex)
            events.append(event)
        return dataclasses.replace(kept.turn, events=tuple(events), repeated=True)
