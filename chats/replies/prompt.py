"""What a reply is asked: the system prompt and the branch it continues, read back only as far as
the budget."""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connection

from chats.llm import (
    BYTES_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    ChatMessage,
    estimate_message_tokens,
    estimate_prompt_tokens,
)
from chats.models import Category, ChatSession, Message
from core.db.rows import table


def with_system_prompt(category: Category, messages: list[ChatMessage]) -> list[ChatMessage]:
    """The category's system prompt first, when it has one: for a chat reply and a ``/v1/`` request."""
    if not category.system_prompt:
        return messages
    return [ChatMessage(role="system", content=category.system_prompt), *messages]


def max_tokens_capped(asked: int | None) -> int:
    """What a reply may produce: what its client asked for, never more than ``LLM_MAX_TOKENS``
    (which is also the hold's bound, so the most it can cost)."""
    return min(asked or settings.LLM_MAX_TOKENS, settings.LLM_MAX_TOKENS)


def prompt_build(
    session: ChatSession, content: str, *, leaf_id: UUID | None = None, continues: bool = True
) -> tuple[list[ChatMessage], UUID | None]:
    """The system prompt, the branch ending at ``leaf_id`` (the newest leaf by default; no history
    unless ``continues``) as far back as fits, then ``content``; and that branch's last message."""
    system = with_system_prompt(session.category, [])
    budget = settings.LLM_CONTEXT_TOKENS - estimate_prompt_tokens([*system, ChatMessage("user", content)])
    branch = (
        prompt_branch(session=session, leaf_id=leaf_id, budget_tokens=max(budget, 0))
        if continues
        else PromptBranch(leaf_id=None, history=[])
    )
    return [*system, *branch.history, ChatMessage("user", content)], branch.leaf_id


@dataclass(frozen=True)
class PromptBranch:
    """What a new message continues: the branch's last message, and the most recent of its messages
    that fit the prompt, oldest first."""

    leaf_id: UUID | None
    history: list[ChatMessage]


def prompt_branch(*, session: ChatSession, budget_tokens: int, leaf_id: UUID | None = None) -> PromptBranch:
    """The branch ending at ``leaf_id`` (by default the newest leaf), read from its end back only as
    far as ``budget_tokens`` goes: one statement, however long the session.

    A message costs ``estimate_message_tokens`` of the budget. Failed and
    still-streaming replies, and empty messages, are not context (the model
    never said them): they cost nothing and are left out, and the walk goes on
    through them. A ``leaf_id`` that is not in the session gives an empty branch.
    """
    rows = _branch_from_leaf(session_id=session.pk, leaf_id=leaf_id, budget_tokens=budget_tokens)
    chosen: list[ChatMessage] = []
    used = 0
    for _, role, status, content in rows:
        if status in NOT_CONTEXT or not content:
            continue
        message = ChatMessage(role=role, content=content)
        used += estimate_message_tokens(message)
        if used > budget_tokens:
            break
        chosen.append(message)
    leaf = Message._meta.pk.to_python(rows[0][0]) if rows else None
    return PromptBranch(leaf_id=leaf, history=chosen[::-1])


NOT_CONTEXT = (Message.Status.FAILED, Message.Status.PENDING)


# A bound on the walk up a branch: no conversation is that long, and a corrupt parent chain must
# still end the recursion.
BRANCH_DEPTH_MAX = 100_000


def _branch_from_leaf(*, session_id, leaf_id: UUID | None, budget_tokens: int) -> list[tuple]:
    """``(id, role, status, content)`` from the leaf up, while the messages so far fit the budget
    (and the first that does not), by a recursive query; the cost is ``estimate_message_tokens`` in
    SQL, with the bytes of the text as each database counts them."""
    messages = table(Message)
    text_bytes = (
        "octet_length(m.content)" if connection.vendor == "postgresql" else "length(CAST(m.content AS BLOB))"
    )
    cost = (
        f"CASE WHEN m.status IN (%s, %s) OR m.content = '' THEN 0"
        f" ELSE {MESSAGE_OVERHEAD_TOKENS} + ({text_bytes} + {BYTES_PER_TOKEN - 1}) / {BYTES_PER_TOKEN} END"
    )
    session_pk = ChatSession._meta.pk.get_db_prep_value(session_id, connection)
    if leaf_id is None:  # the newest message that nothing answers or continues
        leaf, leaf_params = (
            (
                f"(SELECT l.id FROM {messages} l WHERE l.session_id = %s"
                f" AND NOT EXISTS (SELECT 1 FROM {messages} c WHERE c.parent_id = l.id)"
                " ORDER BY l.created_at DESC, l.id DESC LIMIT 1)"
            ),
            [session_pk],
        )
    else:
        leaf, leaf_params = "%s", [Message._meta.pk.get_db_prep_value(leaf_id, connection)]
    sql = (
        f"WITH RECURSIVE branch (id, parent_id, role, status, content, used, depth) AS ("
        f" SELECT m.id, m.parent_id, m.role, m.status, m.content, {cost}, 0"
        f" FROM {messages} m WHERE m.session_id = %s AND m.id = {leaf}"
        f" UNION ALL"
        f" SELECT m.id, m.parent_id, m.role, m.status, m.content, b.used + {cost}, b.depth + 1"
        f" FROM {messages} m JOIN branch b ON m.id = b.parent_id"
        f" WHERE b.used <= %s AND b.depth < %s"
        f") SELECT id, role, status, content FROM branch ORDER BY depth"
    )
    params = [*NOT_CONTEXT, session_pk, *leaf_params, *NOT_CONTEXT, budget_tokens, BRANCH_DEPTH_MAX]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
