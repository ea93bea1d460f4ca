"""Reads for conversations, each a fixed number of queries however many rows there are."""

from collections.abc import Iterable

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce

from chats.models import Category, ChatSession, Message
from core.db.rows import columns, fetch_one, instance_from_row, table
from core.errors import NotFound, ValidationFailed

# Full-text search without stemming or stop words: conversations are in any language, and a
# word that ``english`` would drop ("it", "will") can be the one a user remembers.
SEARCH_CONFIG = "simple"


def categories_active() -> QuerySet[Category]:
    """With each one's catalogue model, which sets its prices."""
    return Category.objects.filter(is_active=True).select_related("model")


def sessions_for_user(*, user) -> QuerySet[ChatSession]:
    return ChatSession.objects.filter(user=user).select_related("category")


def category_get(*, slug: str) -> Category:
    """Any category, active or not: sessions outlive a category's withdrawal."""
    found = Category.objects.filter(slug=slug).first()
    if found is None:
        raise ValidationFailed("Unknown category.", details={"category": [f"No category named {slug!r}."]})
    return found


def session_search_vector() -> SearchVector:
    """A session's own words. Migration 0006's GIN index ``chats_session_search`` is on this expression."""
    return SearchVector("title", "notes", config=SEARCH_CONFIG)


def message_search_vector() -> SearchVector:
    """A message's words. Migration 0006's GIN index ``chats_message_search`` is on this expression."""
    return SearchVector("content", config=SEARCH_CONFIG)


def session_rows_for_user(
    *, user, archived: bool | None = False, category: Category | None = None, q: str = ""
) -> QuerySet[dict]:
    """The list: ``sessions_for_user`` as ``values()`` rows (``SessionRowSerializer``), ordered.

    A page of the list is read-only JSON: plain rows spare it a model instance
    and a category instance per row, which were most of its time.

    ``archived``: ``False`` the sessions in use, ``True`` the archived ones, ``None`` both.
    Pinned sessions come first, then the most recent activity; ``id`` breaks ties, so the
    ordering is total and the cursor pagination (``chats.conversations.pagination``) can page on it.
    ``q`` searches titles, notes and message text (:func:`_search`); on PostgreSQL the
    matches are ordered by relevance (``rank``) after ``pinned``.
    """
    sessions = ChatSession.objects.filter(user=user)
    if archived is not None:
        sessions = sessions.filter(archived=archived)
    if category is not None:
        sessions = sessions.filter(category=category)
    rows = sessions.values(
        "id",
        "title",
        "notes",
        "pinned",
        "archived",
        "message_count",
        "created_at",
        "updated_at",
        "last_message_at",
    ).annotate(category_slug=F("category__slug"))
    if not q:
        return rows.order_by("-pinned", "-updated_at", "id")
    if connection.vendor == "postgresql":
        return _search_ranked(rows, user=user, q=q).order_by("-pinned", "-rank", "-updated_at", "id")
    return _search_like(rows, q=q).order_by("-pinned", "-updated_at", "id")


def _search_ranked(rows: QuerySet[dict], *, user, q: str) -> QuerySet[dict]:
    """PostgreSQL: sessions whose title and notes, or any of whose messages, match ``q``.

    ``q`` is read by ``websearch_to_tsquery`` (quoted phrases, ``or``, ``-word``), which
    takes any text without a syntax error. Both sides are GIN-indexed (migration 0006); the
    rank is the session's own plus its best message's, one query for the page.
    """
    query = SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
    messages = (
        Message.objects.filter(session__user=user)
        .alias(document=message_search_vector())
        .filter(document=query)
    )
    best_message = (
        messages.filter(session=OuterRef("pk"))
        .annotate(rank=SearchRank(F("document"), query))
        .order_by("-rank")
        .values("rank")[:1]
    )
    own = ChatSession.objects.filter(user=user).alias(document=session_search_vector()).filter(document=query)
    return (
        rows.filter(Q(pk__in=own.values("pk")) | Q(pk__in=messages.values("session_id")))
        .alias(document=session_search_vector())
        # In double precision: ``ts_rank`` is a ``real``, which the driver reads back as a decimal
        # that is not the same number, and the cursor's position must compare equal to its row.
        .annotate(
            rank=Cast(SearchRank(F("document"), query), FloatField())
            + Coalesce(Cast(Subquery(best_message), FloatField()), Value(0.0))
        )
    )


def _search_like(rows: QuerySet[dict], *, q: str) -> QuerySet[dict]:
    """SQLite: a case-insensitive substring match (``LIKE``, which folds ASCII letters only)."""
    in_messages = Message.objects.filter(session=OuterRef("pk"), content__icontains=q)
    return rows.filter(Q(title__icontains=q) | Q(notes__icontains=q) | Exists(in_messages))


def session_get(*, user, session_id) -> ChatSession:
    """The caller's session and its category; another user's is "not found", never "forbidden".

    Its ``user`` is the caller, known without another query (a settlement
    reads it). Every message and every session route reads it: one plain
    statement, its rows converted as the ORM converts them, since compiling
    the equivalent queryset costs several times the statement itself.
    """
    try:
        pk = ChatSession._meta.pk.to_python(session_id)
    except ValidationError:  # not a UUID (the router's lookup takes any segment): no such session
        raise NotFound("Session not found.") from None
    session = _session_with_category(session_id=pk, user_id=user.pk)
    if session is None:
        raise NotFound("Session not found.")
    session.user = user
    return session


def _session_with_category(*, session_id, user_id) -> ChatSession | None:
    sessions, categories = (model._meta.concrete_fields for model in (ChatSession, Category))
    sql = (
        f"SELECT {columns(sessions, 's')}, {columns(categories, 'c')} FROM {table(ChatSession)} s"
        f" JOIN {table(Category)} c ON c.id = s.category_id WHERE s.id = %s AND s.user_id = %s"
    )
    row = fetch_one(sql, [ChatSession._meta.pk.get_db_prep_value(session_id, connection), user_id])
    if row is None:
        return None
    session = instance_from_row(ChatSession, sessions, row[: len(sessions)])
    session.category = instance_from_row(Category, categories, row[len(sessions) :])
    return session


def messages_for_session(*, session: ChatSession) -> QuerySet[Message]:
    return Message.objects.filter(session=session)


def branch_path(*, session: ChatSession, leaf_id=None) -> list:
    """The ids from the root to ``leaf_id`` (by default the newest leaf: the current branch), in order.

    One query for the session's ``(id, parent_id)`` pairs, walked here: a branch is a few
    hundred messages at most, and the walk keeps every caller's query count flat. ``leaf_id``
    that is not a message of the session is "not found". An empty session has an empty path.
    """
    rows = Message.objects.filter(session=session).values_list("pk", "parent_id", "created_at")
    return path_to_leaf(rows, leaf_id=leaf_id)


def path_to_leaf(rows: Iterable[tuple], *, leaf_id=None) -> list:
    """:func:`branch_path` of a session's ``(id, parent_id, created_at)`` rows, read by the caller."""
    parents, created = {}, {}
    for pk, parent_id, created_at in rows:
        parents[pk], created[pk] = parent_id, created_at
    if leaf_id is None:
        leaves = parents.keys() - set(parents.values())
        if not leaves:
            return []
        leaf_id = max(leaves, key=lambda pk: (created[pk], str(pk)))
    elif leaf_id not in parents:
        raise NotFound("Message not found.")
    path = []
    while leaf_id is not None and leaf_id not in path:
        path.append(leaf_id)
        leaf_id = parents.get(leaf_id)
    return path[::-1]


def branch_messages(*, session: ChatSession, leaf_id=None) -> QuerySet[Message]:
    """The messages of one branch (:func:`branch_path`): the history the client reads."""
    return Message.objects.filter(session=session, pk__in=branch_path(session=session, leaf_id=leaf_id))


def sessions_for_export(*, user) -> QuerySet[ChatSession]:
    """Every session of ``user``, oldest first, in the order of :func:`messages_for_export`."""
    return sessions_for_user(user=user).order_by("created_at", "id")


def messages_for_export(*, sessions: QuerySet[ChatSession]) -> QuerySet[Message]:
    """The messages of ``sessions``, grouped by session in ``sessions_for_export``'s order, oldest first.

    One query for all of them, so an export reads two result sets side by side
    (``chats.conversations.exports``) rather than one query per session.
    """
    return (
        Message.objects.filter(session__in=sessions.values("pk"))
        .annotate(session_created_at=F("session__created_at"))
        .order_by("session__created_at", "session_id", "created_at", "id")
    )
