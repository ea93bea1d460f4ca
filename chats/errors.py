"""The chats app's domain errors; :mod:`core.exceptions` renders them."""

from core.errors import Conflict, DomainError, NotFound, ValidationFailed


class ModelNotFound(NotFound):
    """A ``/v1/`` request named a model that is no active category."""

    code = "model_not_found"
    default_message = "The model does not exist."


class ModelNotAllowed(DomainError):
    """The API key is limited to other models (its ``models``)."""

    code = "model_not_allowed"
    status_code = 403
    default_message = "This API key may not use this model."


class InvalidParameter(ValidationFailed):
    """A ``/v1/`` request parameter with a wrong value; ``param`` names it, as OpenAI's errors do."""

    def __init__(self, message: str, *, param: str | None) -> None:
        super().__init__(message, details={"param": param})


class UnsupportedParameter(InvalidParameter):
    """A ``/v1/`` request parameter Parley does not support (tools, ``n`` > 1, images…): never dropped."""

    code = "unsupported_parameter"


class TooManyReplies(DomainError):
    """The user already runs ``MAX_CONCURRENT_REPLIES`` replies: nothing was stored or reserved."""

    code = "too_many_replies"
    status_code = 429
    default_message = "Too many replies are running at once; wait for one to end."
    retry_after_seconds = 1


class ShuttingDown(DomainError):
    """This worker is stopping and takes no new replies; another worker (or a retry) will."""

    code = "shutting_down"
    status_code = 503
    default_message = "The server is restarting; try again in a moment."


class ReplyEnded(Conflict):
    default_message = "This reply has already ended."


class ReplyPending(Conflict):
    """Regenerating a reply that is still streaming: let it end (or stop it) first."""

    default_message = "This reply is still being written."


class ReplyFailed(DomainError):
    """What a resumed reader learns of a reply that failed and whose events have expired."""

    code = "llm_unavailable"
    status_code = 502
    default_message = "The language model could not produce this reply."


class ReplyUnavailable(DomainError):
    """A reply still pending whose worker is gone: the stale sweep will close it."""

    code = "reply_unavailable"
    status_code = 503
    default_message = "This reply's worker is gone; the reply will be closed shortly."


class ReplyNotRunning(Conflict):
    """A stop for a pending reply that no worker runs (its worker died; without Redis, another's)."""

    code = "reply_unavailable"
    default_message = "No worker runs this reply any more; it will be closed shortly."
