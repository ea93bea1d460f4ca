"""The catalogue's domain errors; :mod:`core.exceptions` renders them."""

from core.errors import DomainError


class ModelNotDeployed(DomainError):
    """A model with no deployment: nothing can serve it, so nothing is reserved or charged."""

    code = "llm_unavailable"
    status_code = 503
    default_message = "The model has no deployment."
