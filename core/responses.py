"""Every JSON body written one way: compact and UTF-8, as DRF's renderer writes by default."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse as DjangoJsonResponse  # noqa: TID251
from rest_framework.renderers import JSONRenderer

# What DRF's JSONRenderer writes with its default settings (COMPACT_JSON, UNICODE_JSON).
COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


def compact_json(data: Any, *, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> str:
    """``data`` as the API writes JSON: no spaces after separators, UTF-8 rather than ``\\u`` escapes."""
    return json.dumps(data, cls=encoder, **COMPACT)


class JsonResponse(DjangoJsonResponse):
    """Django's ``JsonResponse``, compact and UTF-8 like every DRF answer.

    Django's own writes ``{"id": "…", "status": "stopping"}`` (spaces after ``:`` and ``,``, and
    ``\\u00e9`` for ``é``), so the few bodies built outside DRF (the stop endpoint's 202, the JSON
    reply, /v1/, the error pages) read differently from the rest of the API. The project's lint
    (ruff's TID251) refuses ``django.http.JsonResponse`` everywhere else.
    """

    def __init__(self, data: Any, encoder: type[json.JSONEncoder] = DjangoJSONEncoder, **kwargs: Any) -> None:
        kwargs["json_dumps_params"] = {**COMPACT, **(kwargs.get("json_dumps_params") or {})}
        super().__init__(data, encoder=encoder, **kwargs)


class CompactJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, without the indentation a client may ask for.

    DRF indents when the ``Accept`` header says so (``application/json; indent=4``); here every
    body is compact whoever asks, as the bodies written outside DRF are.
    """

    def get_indent(self, accepted_media_type: str, renderer_context: dict) -> None:
        return None
