"""How conversations and messages look on the wire (customer API, console, events)."""

from __future__ import annotations

from typing import Any

from handoff.conversations.models import Contact, Conversation, Message


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "type": message.message_type,
        "author": message.author_type,
        "author_id": message.author_id,
        "text": message.text,
        "payload": message.payload,
        "private": message.private,
        "source_id": message.source_id,
        "created_at": message.created_at.isoformat(),
    }


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "status": conversation.status,
        "channel": conversation.channel,
        "language": conversation.language,
        "handoff_reason": conversation.handoff_reason,
        "waiting_since": conversation.waiting_since.isoformat() if conversation.waiting_since else None,
        "assignee_id": conversation.assignee_id,
        "priority": conversation.priority,
        "required_skills": list(conversation.required_skills or []),
        "resolution_code": conversation.resolution_code,
        "created_at": conversation.created_at.isoformat(),
    }


def contact_json(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "name": contact.name, "email": contact.email,
            "phone": contact.phone}
