"""Reads for chats, with the annotations that keep query counts flat."""

from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet

from chats.models import Category, ChatSession, Message
from core.errors import NotFound


def categories_active() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True)


def sessions_for_user(*, user) -> QuerySet[ChatSession]:
    return (
        ChatSession.objects.filter(user=user)
        .select_related("category")
        .annotate(message_count=Count("messages"))
    )


def session_get(*, user, session_id) -> ChatSession:
    """The caller's session; another user's is "not found", never "forbidden"."""
    try:
        session = sessions_for_user(user=user).filter(pk=session_id).first()
    except ValidationError:  # not a UUID (the router's lookup takes any segment): no such session
        session = None
    if session is None:
        raise NotFound("Session not found.")
    return session


def session_messages(*, session: ChatSession) -> QuerySet[Message]:
    return Message.objects.filter(session=session)


def prompt_history(*, session: ChatSession, budget_tokens: int, estimate) -> list[Message]:
    """The most recent earlier messages whose estimated size fits ``budget_tokens``, oldest first.

    Failed and still-streaming replies are not context: the model never said them.
    """
    recent = (
        Message.objects.filter(session=session)
        .exclude(status__in=[Message.Status.FAILED, Message.Status.PENDING])
        .exclude(content="")
        .order_by("-created_at")
        .only("role", "content", "created_at")
    )
    chosen: list[Message] = []
    used = 0
    for message in recent.iterator(chunk_size=100):
        used += estimate(message.content)
        if used > budget_tokens:
            break
        chosen.append(message)
    chosen.reverse()
    return chosen
