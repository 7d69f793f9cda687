"""The in-process fan-out forgets what nobody follows any more (handoff/fanout.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from handoff.fanout import QUEUE_TOPIC, RESYNC, Fanout, conversation_topic


async def test_conversations_an_agent_watched_and_left_are_forgotten() -> None:
    """The console adds a conversation's topic when an agent opens it and removes it when
    they close it: thousands of conversations a day must not each leave an entry behind."""
    fanout = Fanout()
    async with fanout.subscribe(QUEUE_TOPIC) as events:
        for n in range(1000):
            topic = conversation_topic(f"c{n}")
            fanout.add(topic, events)
            fanout.publish(topic, {"type": "message"})
            fanout.remove(topic, events)
        assert fanout.topics() == 1  # only the queue
        fanout.remove(conversation_topic("never-watched"), events)  # harmless
    assert fanout.topics() == 0
    assert events.qsize() == 1000


async def test_a_topic_stays_while_another_screen_still_follows_it() -> None:
    fanout = Fanout()
    other: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    topic = conversation_topic("c1")
    async with fanout.subscribe(topic) as mine:
        fanout.add(topic, other)
        fanout.remove(topic, mine)
        fanout.publish(topic, {"type": "message"})
    assert other.qsize() == 1
    assert fanout.topics() == 1


async def test_a_resync_reaches_every_subscription_once() -> None:
    fanout = Fanout()
    async with fanout.subscribe("queue", "conversation:a") as console, \
            fanout.subscribe("conversation:a") as widget:
        fanout.resync()
        assert [console.get_nowait()["type"], widget.get_nowait()["type"]] == [RESYNC, RESYNC]
        assert console.empty() and widget.empty()
