"""The chats app's domain errors; :mod:`core.exceptions` renders them."""

from core.errors import NotFound, ValidationFailed


class ModelNotFound(NotFound):
    """A ``/v1/`` request named a model that is no active category."""

    code = "model_not_found"
    default_message = "The model does not exist."


class InvalidParameter(ValidationFailed):
    """A ``/v1/`` request parameter with a wrong value; ``param`` names it, as OpenAI's errors do."""

    def __init__(self, message: str, *, param: str | None) -> None:
        super().__init__(message, details={"param": param})


class UnsupportedParameter(InvalidParameter):
    """A ``/v1/`` request parameter Parley does not support (tools, ``n`` > 1, images…): never dropped."""

    code = "unsupported_parameter"
