"""The ``echo`` provider: the offline reply as OpenAI's chunks, and ``ECHO_TOKEN_DELAY_MS``, which
streams it word by word, spaced, so streaming shows.

Its chunks are read back with the ``openai`` SDK's own stream accumulator, so "OpenAI-shaped" means
what the SDK (and every client built on it) accepts. The delays asserted are lower bounds only (a
slow machine makes gaps longer, never shorter), so the tests cannot flake on a busy CI host.
"""

import base64
import itertools
import json
import struct
import time

import httpx
import pytest
from model_bakery import baker
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel
from rest_framework_simplejwt.tokens import RefreshToken

from chats.llm import (
    EchoProvider,
    LLMStream,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    get_provider,
)
from chats.llm.base import UpstreamRefused, chunk_generated, chunk_text
from chats.models import ChatSession

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}


async def collect(stream: LLMStream) -> list[dict]:
    return [chunk async for chunk in stream]


def texts(chunks: list[dict]) -> list[str]:
    """The content deltas of choice 0, as the chat API stores them."""
    return [text for text in map(chunk_text, chunks) if text]


def accumulated(chunks: list[dict], **tools) -> ChatCompletion:
    """The chunks read back by the openai SDK, as ``client.chat.completions.stream()`` does."""
    state = ChatCompletionStreamState(**tools)
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.get_final_completion()


async def echo(messages: list[dict], max_tokens: int = 100, **options) -> tuple[list[dict], LLMStream]:
    stream = await EchoProvider().stream(messages=messages, model="m", max_tokens=max_tokens, options=options)
    return await collect(stream), stream


# --- text ---------------------------------------------------------------------------------------


async def test_echo_replies_with_the_last_user_message_in_word_chunks():
    messages = [
        *PROMPT,
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How  are you?"},
    ]

    chunks, stream = await echo(messages)

    assert texts(chunks) == ["Echo:", " How", "  are", " you?"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert {chunk["model"] for chunk in chunks} == {"m"}
    assert accumulated(chunks).choices[0].message.content == "Echo: How  are you?"
    assert stream.usage == Usage(
        prompt_tokens=estimate_prompt_tokens(messages),
        completion_tokens=estimate_tokens("Echo: How  are you?"),
        estimated=False,
    )
    assert stream.finish_reason == "stop"


async def test_echo_reads_the_text_parts_of_a_multimodal_message():
    content = [
        {"type": "text", "text": "What is"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this?"},
    ]

    chunks, _ = await echo([{"role": "user", "content": content}])

    reply = "".join(texts(chunks))
    assert reply.startswith("Echo: What is\n")
    assert reply.endswith("\nthis?")
    assert "image" not in reply


async def test_echo_is_deterministic():
    async def once() -> tuple[list[list[dict]], Usage | None]:
        chunks, stream = await echo(PROMPT, tools=[WEATHER], tool_choice="required")
        return [chunk["choices"] for chunk in chunks], stream.usage

    assert await once() == await once()


async def test_echo_caps_the_reply_at_max_tokens():
    chunks, stream = await echo([{"role": "user", "content": "word " * 100}], max_tokens=5)

    assert "".join(texts(chunks)) == ("Echo: " + "word " * 100)[:20]
    assert stream.usage.completion_tokens == 5
    assert stream.finish_reason == chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_echo_with_no_user_message_and_a_delay():
    stream = await EchoProvider(delay=0.001).stream(
        messages=[{"role": "system", "content": "x"}], model="m", max_tokens=10
    )

    assert texts(await collect(stream)) == ["Echo."]


async def test_echo_aclose_ends_the_stream_without_usage():
    stream = await EchoProvider().stream(messages=PROMPT, model="m", max_tokens=10)
    assert (await anext(stream))["choices"][0]["delta"]["role"] == "assistant"

    await stream.aclose()

    assert await collect(stream) == []
    assert stream.usage is None


# --- tools, formats, choices ---------------------------------------------------------------------


async def test_a_tool_named_in_the_question_is_called_with_arguments_streamed_in_pieces():
    messages = [{"role": "user", "content": "Use get_weather for Paris"}]

    chunks, stream = await echo(messages, tools=[WEATHER])

    first_call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert first_call["function"] == {"name": "get_weather", "arguments": ""}
    assert first_call["id"].startswith("call_")
    pieces = [
        chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for chunk in chunks[2:-1]
    ]
    assert len(pieces) > 1
    message = accumulated(chunks).choices[0].message
    assert message.content is None
    (call,) = message.tool_calls
    assert (call.id, call.function.name) == (first_call["id"], "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Use", "unit": "celsius"}
    assert stream.finish_reason == "tool_calls"
    assert stream.usage.prompt_tokens == estimate_prompt_tokens(messages) + estimate_tokens(
        json.dumps([WEATHER])
    )
    assert stream.usage.completion_tokens == estimate_tokens("get_weather" + call.function.arguments)


async def test_a_tool_result_is_answered_in_text_that_carries_it():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "get_weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]

    chunks, stream = await echo(messages, tools=[WEATHER], tool_choice="auto")

    assert "".join(texts(chunks)) == "Echo: Sunny, 21 C"
    assert stream.finish_reason == "stop"


async def test_a_tool_call_cut_by_max_tokens_finishes_with_length():
    chunks, stream = await echo(
        [{"role": "user", "content": "x"}], max_tokens=4, tools=[WEATHER], tool_choice="required"
    )

    # (the SDK's accumulator refuses a cut reply: LengthFinishReasonError)
    generated = "".join(map(chunk_generated, chunks))
    assert generated == 'get_weather{"cit'  # 16 bytes: 4 tokens
    assert estimate_tokens(generated) == stream.usage.completion_tokens == 4
    assert stream.finish_reason == "length"


class Answer(BaseModel):
    city: str
    degrees: int


async def test_a_json_schema_response_format_is_answered_with_matching_json():
    schema = {"name": "Answer", "schema": Answer.model_json_schema(), "strict": True}

    chunks, _ = await echo(
        [{"role": "user", "content": "Paris is at 21 degrees"}],
        response_format={"type": "json_schema", "json_schema": schema},
    )

    assert Answer.model_validate_json("".join(texts(chunks))) == Answer(city="Paris", degrees=21)


async def test_n_choices_each_with_logprobs():
    chunks, stream = await echo(
        [{"role": "user", "content": "two words"}], n=2, logprobs=True, top_logprobs=3
    )

    completion = accumulated(chunks)
    assert [choice.message.content for choice in completion.choices] == ["Echo: two words"] * 2
    assert [choice.finish_reason for choice in completion.choices] == ["stop", "stop"]
    tokens = completion.choices[1].logprobs.content
    assert [token.token for token in tokens] == ["Echo:", " two", " words"]
    assert all(len(token.top_logprobs) == 3 and -0.1 <= token.logprob <= 0 for token in tokens)
    assert stream.usage.completion_tokens == 2 * estimate_tokens("Echo: two words")


async def test_more_choices_than_openai_allows_are_refused_with_a_400_naming_the_parameter():
    with pytest.raises(UpstreamRefused) as refused:
        await echo(PROMPT, n=1000)

    assert refused.value.upstream_status == 400
    assert refused.value.error["param"] == "n"


# --- embeddings ---------------------------------------------------------------------------------


async def test_embeddings_are_unit_vectors_the_same_in_float_and_base64():
    provider = EchoProvider()

    floats = await provider.embeddings(
        model="e", options={"input": ["cat", "dog"], "encoding_format": "float"}
    )
    packed = await provider.embeddings(
        model="e", options={"input": ["cat", "dog"], "encoding_format": "base64"}
    )

    vectors = [item["embedding"] for item in floats["data"]]
    assert [len(vector) for vector in vectors] == [8, 8]
    assert vectors[0] != vectors[1]
    assert all(abs(sum(x * x for x in vector) - 1) < 1e-5 for vector in vectors)
    decoded = [list(struct.unpack("<8f", base64.b64decode(item["embedding"]))) for item in packed["data"]]
    assert decoded == vectors
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert floats["model"] == "e"


async def test_embeddings_refuse_what_openai_refuses_with_a_400_naming_the_parameter():
    with pytest.raises(UpstreamRefused) as refused:
        await EchoProvider().embeddings(model="e", options={"input": ""})

    assert refused.value.upstream_status == 400
    assert refused.value.error["param"] == "input"


# --- ECHO_TOKEN_DELAY_MS ---------------------------------------------------------------


DELAY_MS = 40


WORDS = "one two three four"  # the reply "Echo: one two three four" is five content chunks


async def test_no_delay_sends_the_reply_at_once(settings):
    settings.ECHO_TOKEN_DELAY_MS = 0
    provider = get_provider()

    assert isinstance(provider, EchoProvider)
    assert provider.delay == 0


async def test_factory_passes_the_setting_to_the_echo_provider(settings):
    settings.ECHO_TOKEN_DELAY_MS = DELAY_MS
    messages = [{"role": "user", "content": WORDS}]
    stream = await get_provider().stream(messages=messages, model="m", max_tokens=100)

    arrivals = []
    async for chunk in stream:
        if chunk_text(chunk):
            arrivals.append(time.monotonic())

    assert len(arrivals) == 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= DELAY_MS / 1000 * 0.9, gaps


@pytest.mark.django_db(transaction=True)
def test_deltas_reach_the_client_spaced_by_the_delay(live_asgi_url, settings, user, general_category):
    """End to end under uvicorn: each delta is flushed to the socket as it is made, not buffered."""
    settings.ECHO_TOKEN_DELAY_MS = DELAY_MS
    session = baker.make(ChatSession, user=user, category=general_category)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}

    arrivals, deltas = [], []
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": WORDS},
            headers=headers,
        ) as response,
    ):
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "delta":
                deltas.append(json.loads(line.removeprefix("data: "))["content"])
                arrivals.append(time.monotonic())

    assert "".join(deltas) == f"Echo: {WORDS}"
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 4 * DELAY_MS / 1000 * 0.9
