"""Pick the provider named by ``settings.LLM_PROVIDER``, read on every call."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import LLMProvider
from .echo import EchoProvider
from .openai_provider import OpenAIProvider


def _echo() -> EchoProvider:
    return EchoProvider(delay=settings.ECHO_TOKEN_DELAY_MS / 1000)


PROVIDERS: dict[str, Callable[[], LLMProvider]] = {
    EchoProvider.name: _echo,
    OpenAIProvider.name: OpenAIProvider,
}


def get_provider() -> LLMProvider:
    """The configured provider (cheap: providers are stateless, clients are cached)."""
    name = settings.LLM_PROVIDER
    try:
        make_provider = PROVIDERS[name]
    except KeyError:
        choices = ", ".join(sorted(PROVIDERS))
        raise ImproperlyConfigured(f"LLM_PROVIDER={name!r} is not one of: {choices}.") from None
    return make_provider()
