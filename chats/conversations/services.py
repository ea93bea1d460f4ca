"""Writes for conversations: sessions created, renamed, filed away, annotated and deleted."""

from django.db import IntegrityError
from django.utils import timezone

from chats.conversations.selectors import categories_active
from chats.models import ChatSession
from core.errors import NotFound, ValidationFailed

SESSION_DELETE_ATTEMPTS = 3


def session_create(*, user, category: str, title: str = "") -> ChatSession:
    found = categories_active().filter(slug=category).first()
    if found is None:
        raise ValidationFailed(
            "Unknown category.", details={"category": [f"No active category named {category!r}."]}
        )
    return ChatSession.objects.create(user=user, category=found, title=title)


def session_update(
    *,
    session: ChatSession,
    title: str | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
) -> ChatSession:
    """Rename, pin or archive a session (``None``: leave it as it is).

    A new title is activity: ``updated_at`` moves and the session rises in the list. Pinning
    and archiving file the session away without moving it among the others. One ``UPDATE`` of
    the fields given, so a reply storing its messages meanwhile loses nothing.
    """
    changes = {
        name: value
        for name, value in (("title", title), ("pinned", pinned), ("archived", archived))
        if value is not None
    }
    if "title" in changes:
        changes["updated_at"] = timezone.now()
    if not ChatSession.objects.filter(pk=session.pk).update(**changes):
        raise NotFound("Session not found.")
    for name, value in changes.items():
        setattr(session, name, value)
    return session


def session_set_notes(*, session: ChatSession, notes: str) -> ChatSession:
    session.notes = notes
    session.save(update_fields=["notes", "updated_at"])
    return session


def session_delete(*, session: ChatSession) -> None:
    """Messages go with the session (``on_delete=CASCADE``).

    A reply still streaming settles its hold by id, so deleting the session
    mid-stream cannot strand the reserved credit. Django gathers the messages
    before deleting the session: a reply that began meanwhile adds messages
    the delete did not see, and the foreign key refuses the delete at commit;
    then gather again.
    """
    for attempt in range(1, SESSION_DELETE_ATTEMPTS + 1):
        try:
            session.delete()
            return
        except IntegrityError:
            if attempt == SESSION_DELETE_ATTEMPTS:
                raise
