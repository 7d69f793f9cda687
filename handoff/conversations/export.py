"""A conversation's full record as JSON and as text a person can read or file."""

from __future__ import annotations

from typing import Any

from handoff.conversations.models import Contact, Conversation, ConversationEvent, Message
from handoff.conversations.views import contact_json, conversation_json, message_json

AUTHOR_LABELS = {"customer": "Customer", "assistant": "Assistant", "agent": "Agent",
                 "system": "System"}


def transcript_record(conversation: Conversation, contact: Contact, messages: list[Message],
                      events: list[ConversationEvent],
                      agent_names: dict[str, str]) -> dict[str, Any]:
    """Everything about one conversation: status, reasons, agents, survey, every message."""
    involved = sorted({e.data["agent_id"] for e in events
                       if e.type == "claimed" and e.data and e.data.get("agent_id")})
    surveys = [e.data for e in events if e.type == "csat_submitted"]
    return {
        "conversation": conversation_json(conversation),
        "contact": contact_json(contact),
        "handoffs": [{"reason": (e.data or {}).get("reason"), "at": e.created_at.isoformat(),
                      "details": e.data} for e in events if e.type == "handed_off"],
        "agents": [{"id": a, "name": agent_names.get(a)} for a in involved],
        "survey": surveys[-1] if surveys else None,
        "messages": [{**message_json(m),
                      "author_name": agent_names.get(m.author_id or "") if m.author_type == "agent" else None}
                     for m in messages],
        "events": [{"type": e.type, "data": e.data, "at": e.created_at.isoformat()}
                   for e in events],
    }


def transcript_text(record: dict[str, Any]) -> str:
    """The same record as plain text, one line per message, times in UTC."""
    conversation = record["conversation"]
    lines = [
        f"Conversation {conversation['id']} ({conversation['channel']}, "
        f"language {conversation['language'] or 'unknown'})",
        f"Status: {conversation['status']}"
        + (f", resolution: {conversation['resolution_code']}" if conversation["resolution_code"] else ""),
    ]
    for handoff in record["handoffs"]:
        lines.append(f"Handed off at {handoff['at']}: {handoff['reason']}")
    if record["agents"]:
        lines.append("Agents: " + ", ".join(a["name"] or a["id"] for a in record["agents"]))
    if record["survey"]:
        survey = record["survey"]
        lines.append(f"Survey: {survey.get('score')}/5"
                     + (f" \u2014 {survey['comment']}" if survey.get("comment") else ""))
    lines.append("")
    for message in record["messages"]:
        who = message["author_name"] or AUTHOR_LABELS.get(message["author"], message["author"])
        note = " [internal note]" if message["private"] else ""
        when = message["created_at"][:19].replace("T", " ")
        lines.append(f"[{when}] {who}{note}: {message['text'] or ''}")
    return "\n".join(lines) + "\n"
