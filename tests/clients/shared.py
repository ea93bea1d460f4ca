"""What the client tests share: a tool with an output no model could guess, a structured output."""

from __future__ import annotations

import base64
import struct
import zlib

from pydantic import BaseModel

from tests.clients.books import Seen

MODEL = "general"

#: In the tool's output only: an answer that contains it was written after reading that output.
MARKER = "WX-7731"

#: The user's question names the offered tool: a model that plays along calls it.
ASK_WEATHER = "What is the weather in Paris right now? Use the get_weather tool."

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city's name."}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_DESCRIPTION = "The current weather in a city."

#: ``tools=[...]`` for Chat Completions.
CHAT_WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": WEATHER_DESCRIPTION,
        "parameters": WEATHER_PARAMETERS,
        "strict": True,
    },
}

#: ``tools=[...]`` for the Responses API (flat).
RESPONSES_WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": WEATHER_DESCRIPTION,
    "parameters": WEATHER_PARAMETERS,
    "strict": True,
}


def get_weather(city: str) -> str:
    return f"{city}: 21 degrees and sunny (weather report {MARKER})"


class City(BaseModel):
    """A structured output every client asks for."""

    name: str
    country: str
    population: int


ASK_CITY = "Describe the city of Paris: its name, its country and its population."


def seen_chat(usage) -> Seen:
    """The usage a Chat Completions answer told the client."""
    assert usage is not None, "the answer carried no usage"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return Seen(usage.prompt_tokens, usage.completion_tokens)


def seen_responses(usage) -> Seen:
    """The usage a Responses API answer told the client."""
    assert usage is not None, "the response carried no usage"
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    return Seen(usage.input_tokens, usage.output_tokens)


def png_data_url(width: int = 2, height: int = 2) -> str:
    """A real (tiny, red) PNG as a ``data:`` URL, for an ``image_url`` part."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()
