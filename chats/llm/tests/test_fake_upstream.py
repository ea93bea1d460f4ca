"""The fake OpenAI upstream itself (``tests/fakes/openai_upstream.py``), which the provider tests use."""

import socket
import subprocess
import sys

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI


async def test_fake_answers_non_streaming_requests_with_a_completion(fake_openai):
    fake_openai.configure(reply="whole reply", prompt_tokens=7, completion_tokens=2)
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="k", max_retries=0)
    try:
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=5
        )
        models = await client.models.list()
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="m", input="x")
    finally:
        await client.close()

    assert completion.choices[0].message.content == "whole reply"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 2)
    assert [model.id for model in models.data] == ["fake-model"]


def test_fake_starts_and_stops_on_its_own_port():
    with FakeOpenAI() as fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert fake.base_url.endswith("/v1")
        with socket.create_connection(("127.0.0.1", fake.port)) as conn:
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}")
            assert conn.recv(100).startswith(b"HTTP/1.1 400")
        assert fake.wait_until_sync(lambda: len(fake.requests) == 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()


def test_fake_is_configurable_over_http_from_its_own_process():
    """How a benchmark runs it: a separate process, scenario set through /fake/ endpoints."""
    command = [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", "0", "--chunks", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            base_url = process.stdout.readline().split()[-1]
            root = base_url.removesuffix("/v1")
            with httpx.Client(base_url=root, timeout=5) as http:
                assert http.get("/fake/stats").json()["requests"] == 0
                body = {"model": "m", "messages": [], "stream": True}
                streamed = http.post("/v1/chat/completions", json=body).text
                assert streamed.count('"content":" t') == 3
                assert streamed.endswith("data: [DONE]\n\n")

                scenario = http.post("/fake/scenario", json={"reply": "changed", "chunk_delay": 0.001})
                assert scenario.json()["reply"] == "changed"
                assert http.post("/fake/scenario", json={"nonsense": 1}).status_code == 400
                completion = http.post("/v1/chat/completions", json={**body, "stream": False}).json()
                assert completion["choices"][0]["message"]["content"] == "changed"
                assert http.get("/fake/stats").json()["completed"] == 2
                assert http.post("/fake/reset").json()["requests"] == 0
                assert http.get("/fake/nothing").status_code == 404
        finally:
            process.terminate()
            process.wait(timeout=10)
