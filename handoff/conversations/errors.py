"""Domain errors of the conversation layer; handoff/app.py maps them to HTTP statuses."""


class ConversationError(Exception):
    """Base for errors a caller can cause; the message is safe to show to that caller."""

    status = 400


class ConversationNotFound(ConversationError):
    status = 404


class NotYourConversation(ConversationError):
    """The token does not open this conversation. Same status as not found: reveals nothing."""

    status = 404


class InvalidMessage(ConversationError):
    status = 422


class ConversationClosed(ConversationError):
    status = 409


class AlreadyClaimed(ConversationError):
    """Another agent was faster, or the conversation is no longer waiting."""

    status = 409


class AtCapacity(ConversationError):
    status = 409


class NotYourAssignment(ConversationError):
    """Only the agent a conversation is assigned to may write to it."""

    status = 403
