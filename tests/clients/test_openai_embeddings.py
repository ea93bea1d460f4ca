"""The official ``openai`` SDK on ``/v1/embeddings``: its default asks base64 and hands back floats."""

import base64
import math
import struct

import pytest

from tests.clients.books import Seen, assert_charged_once_each
from tests.clients.shared import MODEL

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = ["The cat sat on the mat.", "Dogs bark at night."]


def test_embeddings_default_base64_come_back_as_floats(sdk, user, general_category):
    raw = sdk.embeddings.with_raw_response.create(model=MODEL, input=TEXTS)
    embeddings = raw.parse()

    assert embeddings.object == "list"
    assert embeddings.model == MODEL
    assert [item.index for item in embeddings.data] == [0, 1]
    vectors = [item.embedding for item in embeddings.data]
    assert all(isinstance(value, float) and math.isfinite(value) for vector in vectors for value in vector)
    assert len(vectors[0]) == len(vectors[1]) > 0
    # On the wire: base64 little-endian float32, as the SDK asked (it sends encoding_format=base64).
    wire = raw.http_response.json()["data"]
    for item, vector in zip(wire, vectors, strict=True):
        assert isinstance(item["embedding"], str)
        packed = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == vector
    usage = embeddings.usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens
    assert_charged_once_each(user, general_category, requests=1, seen=[Seen(usage.prompt_tokens, 0)])


def test_embeddings_as_floats_when_asked(sdk, user, general_category):
    raw = sdk.embeddings.with_raw_response.create(model=MODEL, input=TEXTS[0], encoding_format="float")

    (item,) = raw.http_response.json()["data"]
    assert isinstance(item["embedding"], list) and item["embedding"]
    assert raw.parse().data[0].embedding == item["embedding"]
    usage = raw.parse().usage
    assert_charged_once_each(user, general_category, requests=1, seen=[Seen(usage.prompt_tokens, 0)])
