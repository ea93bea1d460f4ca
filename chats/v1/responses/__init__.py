"""OpenAI's Responses API (``POST /v1/responses``), served statelessly over an upstream's chat completions.

Parley stores no responses, so the Responses API is a translation: :func:`responses_request`
turns a request into a chat-completions request, and :class:`ResponsesTranslator` turns the
upstream's ``chat.completion.chunk`` objects into Responses stream events and the final
``Response`` object, in the shapes the official SDKs parse and accumulate.

What needs stored state (``previous_response_id``, ``conversation``, ``item_reference`` items,
stored ``prompt`` templates, ``background`` runs) and what needs OpenAI's hosted tools is refused
with a 400 naming the parameter, so a program learns at once that it must send the whole
conversation itself. Parameters that only steer OpenAI's storage or hosted features
(``store``, ``include``, ``truncation``…) are dropped: ignoring them changes no answer.
Parameters Responses does not know are forwarded to the upstream as sent, as ``/v1/chat/completions``
forwards them.
"""

from chats.v1.responses.request import ResponsesRequest, responses_request
from chats.v1.responses.translator import ResponsesTranslator, sse_event

__all__ = ["ResponsesRequest", "ResponsesTranslator", "responses_request", "sse_event"]
