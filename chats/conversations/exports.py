"""Conversations as documents to download: one session as JSON or Markdown, or a whole account.

The JSON of a session is
:class:`~chats.conversations.serializers.SessionExportSerializer`'s shape (the session's
representation plus ``messages``, oldest first), written here piece by piece with the same two
serializers the API answers with. An account's export (:func:`account_json`) is a generator: it
reads sessions and messages with ``.iterator()`` (server-side cursors on PostgreSQL) and yields
the document in pieces of about ``PIECE_CHARS``, so its memory does not grow with the account
(``bench/export_memory.py`` measures it).
"""

import json
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework import serializers
from rest_framework.utils.encoders import JSONEncoder

from chats.conversations.selectors import (
    messages_for_export,
    messages_for_session,
    path_to_leaf,
    sessions_for_export,
)
from chats.conversations.serializers import MessageSerializer, SessionSerializer
from chats.models import ChatSession, Message

ROWS_PER_FETCH = 500


PIECE_CHARS = 64 * 1024


def _dumps(data) -> str:
    """As the API's ``JSONRenderer`` writes JSON (compact, UTF-8, DRF's encoder)."""
    return json.dumps(data, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))


def session_filename(session: ChatSession, export_format: str) -> str:
    return f"parley-session-{session.id}.{'md' if export_format == 'markdown' else 'json'}"


def account_filename() -> str:
    return f"parley-export-{timezone.now():%Y-%m-%d}.json"


def session_json(*, session: ChatSession) -> str:
    messages = messages_for_export(sessions=ChatSession.objects.filter(pk=session.pk))
    return "".join(_session_documents([session], messages))


def account_json(*, user) -> Iterator[str]:
    """``{"exported_at", "sessions": [...]}``, every session of ``user`` oldest first, in pieces."""
    return _joined(_account_document(user=user))


def _account_document(*, user) -> Iterator[str]:
    sessions = sessions_for_export(user=user)
    messages = messages_for_export(sessions=sessions)
    exported_at = serializers.DateTimeField().to_representation(timezone.now())
    yield f'{{"exported_at":{_dumps(exported_at)},"sessions":['
    yield from _session_documents(
        sessions.iterator(chunk_size=ROWS_PER_FETCH), messages.iterator(chunk_size=ROWS_PER_FETCH)
    )
    yield "]}"


def _joined(pieces: Iterable[str]) -> Iterator[str]:
    """Small pieces gathered into ones of about ``PIECE_CHARS``: fewer writes to the socket."""
    gathered: list[str] = []
    size = 0
    for piece in pieces:
        gathered.append(piece)
        size += len(piece)
        if size >= PIECE_CHARS:
            yield "".join(gathered)
            gathered, size = [], 0
    if gathered:
        yield "".join(gathered)


def _session_documents(sessions: Iterable[ChatSession], messages: Iterable[Message]) -> Iterator[str]:
    """Each session with its messages, comma-separated; ``messages`` in ``sessions``' order.

    The two result sets are walked side by side. They are two statements, so a session created
    between them can have messages here and no place in ``sessions``: skipped, as it is newer
    than the export.
    """
    session_fields, message_fields = SessionSerializer(), MessageSerializer()
    messages = iter(messages)
    pending = next(messages, None)
    for index, session in enumerate(sessions):
        head = _dumps(session_fields.to_representation(session))
        yield f'{"," if index else ""}{head[:-1]},"messages":['
        key = (session.created_at, session.id)
        while pending is not None and pending.session_id != session.id and _session_key(pending) < key:
            pending = next(messages, None)
        first = True
        while pending is not None and pending.session_id == session.id:
            yield ("" if first else ",") + _dumps(message_fields.to_representation(pending))
            first = False
            pending = next(messages, None)
        yield "]}"


def _session_key(message: Message) -> tuple:
    return (message.session_created_at, message.session_id)


def session_markdown(*, session: ChatSession, leaf_id=None) -> str:
    """A transcript to read: the title, what the session is, its notes, then one branch's messages.

    The branch is the one the history shows (:func:`~chats.conversations.selectors.branch_path`):
    the newest, or the one ending at ``leaf_id``. A message that has siblings (a regenerated
    reply, an edited question) says which of them it is; the JSON export holds every message.
    Two queries: the session, then its messages.
    """
    messages = list(messages_for_session(session=session).order_by("created_at", "id"))
    path = path_to_leaf(((m.pk, m.parent_id, m.created_at) for m in messages), leaf_id=leaf_id)
    siblings: dict = {}
    for message in messages:
        siblings.setdefault(message.parent_id, []).append(message.pk)
    lines = [f"# {session.title or 'Untitled conversation'}", ""]
    facts = [
        f"Category: {session.category.name} (`{session.category.slug}`)",
        f"Started: {_when(session.created_at)}",
        f"Last activity: {_when(session.updated_at)}",
    ]
    facts += [flag for flag, on in (("Pinned", session.pinned), ("Archived", session.archived)) if on]
    if len(path) < len(messages):
        which = "the newest" if leaf_id is None else "the one asked for"
        facts.append(f"Branch: {which}, {len(path)} of {len(messages)} messages (the JSON export has all)")
    lines += [f"- {fact}" for fact in facts]
    if session.notes:
        lines += ["", "## Notes", "", session.notes]
    lines += ["", "## Conversation"]
    by_id = {message.pk: message for message in messages}
    for message in (by_id[pk] for pk in path):
        who = "You" if message.role == Message.Role.USER else "Assistant"
        status = "" if message.status == Message.Status.COMPLETE else f" ({message.status})"
        versions = _versions(message, siblings[message.parent_id])
        heading = f"### {who}, {_when(message.created_at)}{status}{versions}"
        lines += ["", heading, "", message.content or "*(empty)*"]
    return "\n".join(lines) + "\n"


def _versions(message: Message, siblings: list) -> str:
    """Which of its siblings ``message`` is, oldest first: nothing when it has none."""
    if len(siblings) == 1:
        return ""
    which = f"{siblings.index(message.pk) + 1} of {len(siblings)}"
    return f" ({which} replies)" if message.role == Message.Role.ASSISTANT else f" (edited: {which} versions)"


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


async def in_a_thread(pieces: Iterator[str]) -> AsyncIterator[str]:
    """``pieces`` for an ASGI server, each one read in Django's thread for this request.

    Handed a plain iterator, Django's ASGI handler reads it to the end into a list before it
    sends a byte (with a warning): the whole export in memory. Its database reads must stay in
    one thread (the connection and its cursors belong to it): ``thread_sensitive``.
    """
    pull = sync_to_async(next, thread_sensitive=True)
    try:
        while (piece := await pull(pieces, None)) is not None:
            yield piece
    finally:
        await sync_to_async(pieces.close, thread_sensitive=True)()
