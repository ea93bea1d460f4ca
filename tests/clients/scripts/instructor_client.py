"""instructor in its own virtualenv: ``python instructor_client.py BASE_URL API_KEY``.

Its default mode (tools: the response model offered as a function the model is told to call)
against Parley. Prints one JSON object: what instructor returned, the usage the completion
reported, and the versions that ran. Imports nothing of the project: its pins are not ours.
"""

import json
import sys

import instructor
import openai
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str
    population: int


def main(base_url: str, api_key: str) -> None:
    client = instructor.from_openai(openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0))
    city, completion = client.chat.completions.create_with_completion(
        model="general",
        response_model=City,
        messages=[
            {"role": "user", "content": "Describe the city of Paris: its name, country and population."}
        ],
        max_retries=0,  # one attempt: a re-ask would be a second request (and a second charge)
    )
    print(
        json.dumps(
            {
                "type": type(city).__name__,
                "output": city.model_dump(),
                "mode": client.mode.value,
                "tool_calls": [call.function.name for call in completion.choices[0].message.tool_calls or []],
                "usage": {
                    "prompt_tokens": completion.usage.prompt_tokens,
                    "completion_tokens": completion.usage.completion_tokens,
                },
                "versions": {"instructor": instructor.__version__, "openai": openai.__version__},
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
