"""What every provider shares: the token estimate, and :class:`LLMUnavailable`."""

import pytest

from chats.llm import (
    ChatMessage,
    LLMUnavailable,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    estimate_usage,
)

PROMPT = [
    ChatMessage(role="system", content="Be brief."),
    ChatMessage(role="user", content="Say hello"),
]


def test_a_reply_that_produced_nothing_is_estimated_at_nothing():
    assert estimate_usage(PROMPT, "") == Usage(prompt_tokens=0, completion_tokens=0, estimated=True)


# --- the token estimate -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é", 1), ("日本語", 3), ("x" * 4000, 1000)],
)
def test_estimate_tokens_is_utf8_bytes_over_four_rounded_up(text, tokens):
    assert estimate_tokens(text) == tokens


def test_estimate_prompt_tokens_adds_per_message_overhead_and_reply_priming():
    assert estimate_prompt_tokens([]) == 3
    assert estimate_prompt_tokens(PROMPT) == 3 + (4 + 3) + (4 + 3)


def test_llm_unavailable_is_a_502_domain_error_by_default():
    error = LLMUnavailable()

    assert (error.code, error.status_code, error.details) == ("llm_unavailable", 502, {})
    assert error.message
