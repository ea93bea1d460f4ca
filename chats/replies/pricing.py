"""What a reply costs, in whole credits.

``cost = ceil((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000)``
with prices in credits per 1,000 tokens, the catalogue model's (a chat reply's is its category's
model, a ``/v1/`` request's the model it named). Decimal arithmetic, so that a price of 0.1 is
exactly a tenth and never rounds a charge the wrong way.
"""

from decimal import ROUND_CEILING, Decimal

from django.conf import settings

from chats.catalogue.models import CatalogueModel

_THOUSAND = Decimal(1000)


def reply_cost(*, model: CatalogueModel, prompt_tokens: int, completion_tokens: int) -> int:
    raw = (
        prompt_tokens * Decimal(model.prompt_price) + completion_tokens * Decimal(model.completion_price)
    ) / _THOUSAND
    return int(raw.to_integral_value(rounding=ROUND_CEILING))


def completion_tokens_affordable(
    *, model: CatalogueModel, prompt_tokens: int, credits: int, choices: int = 1
) -> int:
    """The most completion tokens per choice that ``credits`` pay for after the prompt (0 if not
    even the prompt); ``cost <= credits`` exactly as :func:`reply_cost` rounds."""
    room = Decimal(max(credits, 0)) * _THOUSAND - prompt_tokens * Decimal(model.prompt_price)
    if room < 0:
        return 0
    per_token = choices * Decimal(model.completion_price)
    if per_token == 0:
        return settings.LLM_MAX_TOKENS
    return int(room // per_token)


def prompt_tokens_upper_bound(prompt_bytes: int, message_count: int) -> int:
    """The most tokens a prompt of this size can be, for any byte-level BPE tokenizer.

    Such a tokenizer never makes a token shorter than one byte, so the UTF-8
    length bounds the count; each message adds a few framing tokens.
    """
    return prompt_bytes + 8 * message_count + 8
