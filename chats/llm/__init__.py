"""LLM providers: a streaming interface, the ``openai`` and ``echo`` providers, a factory.

Typical use::

    provider = get_provider()
    stream = await provider.stream(messages=prompt, model=model, max_tokens=n)  # may raise LLMUnavailable
    try:
        async for chunk in stream:  # may raise LLMUnavailable mid-reply
            text = chunk_text(chunk)
            ...
    finally:
        await stream.aclose()  # also (above all) when the client went away
    usage = stream.usage or estimate_usage(prompt, "".join(texts))
"""

from .base import (
    BYTES_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    ChatMessage,
    Chunk,
    LLMProvider,
    LLMStream,
    LLMUnavailable,
    UpstreamRefused,
    Usage,
    WireMessage,
    chunk_generated,
    chunk_text,
    estimate_message_tokens,
    estimate_prompt_tokens,
    estimate_tokens,
    estimate_usage,
)
from .echo import EchoProvider
from .factory import get_provider
from .openai_provider import OpenAIProvider, aclose_clients

__all__ = [
    "BYTES_PER_TOKEN",
    "MESSAGE_OVERHEAD_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "ChatMessage",
    "Chunk",
    "EchoProvider",
    "LLMProvider",
    "LLMStream",
    "LLMUnavailable",
    "OpenAIProvider",
    "UpstreamRefused",
    "Usage",
    "WireMessage",
    "aclose_clients",
    "chunk_generated",
    "chunk_text",
    "estimate_message_tokens",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "estimate_usage",
    "get_provider",
]
