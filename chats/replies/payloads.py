"""What a client reads of a reply: the ``start``, ``delta``, ``done`` and ``error`` events' data,
and the JSON answer, built here alone whether the reply is running or long stored."""

from typing import Any

from chats.conversations.serializers import MessageSerializer
from chats.errors import ReplyFailed, ReplyUnavailable
from chats.llm import Usage
from chats.models import Message
from chats.replies.outcomes import Delta, Failed, Finished, ReplyOutcome
from chats.replies.services import ReplyPlan, ReplyResult
from core.exceptions import UNEXPECTED_ERROR, error_body


def start_data(plan: ReplyPlan) -> dict[str, Any]:
    return {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message_id": plan.assistant_message_id,
    }


def _done_data(message: Message, *, usage: Usage, cost: int, balance: int) -> dict[str, Any]:
    return {
        "message": MessageSerializer(message).data,
        "finish_reason": message.finish_reason,
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        "cost": cost,
        "balance": balance,
    }


def done_data(reply: ReplyResult) -> dict[str, Any]:
    return _done_data(reply.message, usage=reply.usage, cost=reply.cost, balance=reply.balance)


def error_data(failed: Failed) -> dict[str, Any]:
    error = failed.error
    return error_body(error.code, error.message, {**error.details, **done_data(failed.reply)})


def unexpected_error_data() -> dict[str, Any]:
    """The last event of a reply whose task failed unforeseen (the detail goes to the log)."""
    return error_body(*UNEXPECTED_ERROR)


def event(outcome: ReplyOutcome) -> tuple[str, dict[str, Any]]:
    """The event a running reply's outcome is written to its log as."""
    match outcome:
        case Delta(content):
            return "delta", {"content": content}
        case Finished(reply=reply):
            return "done", done_data(reply)
        case Failed():
            return "error", error_data(outcome)


def stored_event(reply: Message, *, balance: int) -> tuple[str, dict[str, Any]]:
    """A reply whose events are gone, from the database: ``done``, or ``error`` if it failed
    (or was never settled)."""
    usage = Usage(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
    data = _done_data(reply, usage=usage, cost=reply.cost, balance=balance)
    error = {Message.Status.FAILED: ReplyFailed, Message.Status.PENDING: ReplyUnavailable}.get(reply.status)
    if error is None:
        return "done", data
    return "error", error_body(error.code, error.default_message, data)


def reply_json(plan: ReplyPlan, reply: ReplyResult) -> dict[str, Any]:
    """The JSON answer (``Accept: application/json``) to a new message whose reply finished."""
    done = done_data(reply)
    return {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message": done.pop("message"),
        **done,
    }
