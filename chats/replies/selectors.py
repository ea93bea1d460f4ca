"""Reads of a reply already asked for."""

from chats.conversations.selectors import session_get
from chats.models import Message
from core.errors import NotFound


def reply_get(*, user, session_id, message_id) -> Message:
    """An assistant reply of the caller's session; anything else is "not found"."""
    session = session_get(user=user, session_id=session_id)
    replies = Message.objects.filter(session=session, role=Message.Role.ASSISTANT).select_related("parent")
    reply = replies.filter(pk=message_id).first()
    if reply is None:
        raise NotFound("Reply not found.")
    reply.session = session
    return reply
