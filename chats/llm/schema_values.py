"""A value that satisfies a JSON schema: what the offline model answers when a client asks for
structured output or offers a tool (pydantic and the SDKs' schemas: ``$ref``/``$defs``, ``anyOf``,
nullable types, enums, formats, bounds)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

_WORD = re.compile(r"[^\W\d_]+")
_INTEGER = re.compile(r"-?\d+")
#: Nested ``$ref`` expansions past which a value is cut off (``null``): a schema that requires
#: itself has no finite value.
_MAX_DEPTH = 32
#: A valid example of each string ``format`` a client's schema is likely to carry (pydantic's too).
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T12:00:00Z",
    "time": "12:00:00",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "uuid4": "123e4567-e89b-42d3-a456-426614174000",
}


def value_for(schema: Any, *, text: str = "") -> Any:
    """A value valid against the JSON schema ``schema`` (``$ref`` resolved against it), strings
    and integers taken from ``text`` in turn so the answer echoes what was asked."""
    return _Generator(schema, text).value(schema)


class _Generator:
    """Values for one schema document: ``$ref`` resolves against its root, and strings and integers
    come from the text in turn.

    A recursive schema (a ``$ref`` met again inside itself) is expanded minimally below that point:
    no optional properties, no more array items than required, ``null`` where allowed. So the value
    stays small, where expanding every branch would grow it exponentially.
    """

    def __init__(self, root: Any, text: str) -> None:
        self._root = root
        words = _WORD.findall(text)
        self._words = itertools.cycle(words) if words else None
        self._integers = (int(number) for number in _INTEGER.findall(text))
        self._expanding: list[str] = []

    def value(self, schema: Any, *, minimal: bool = False, name: str = "") -> Any:
        if len(self._expanding) > _MAX_DEPTH:
            return None
        if not isinstance(schema, Mapping):  # the schema `true` (anything) or a malformed one
            return self._string({}, name)
        if isinstance(schema.get("$ref"), str):
            return self._referenced(schema, minimal=minimal, name=name)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return self._all_of(schema["allOf"], minimal=minimal, name=name)
        for keyword in ("anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list) and schema[keyword]:
                option = _nullable_choice(schema[keyword], minimal)
                return self.value(option, minimal=minimal, name=name)
        return self._typed(schema, _type_of(schema, minimal), minimal=minimal, name=name)

    def _referenced(self, schema: Mapping[str, Any], *, minimal: bool, name: str) -> Any:
        ref = schema["$ref"]
        target = _resolve(self._root, ref)
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        merged = {**target, **siblings} if isinstance(target, Mapping) else siblings
        recursive = ref in self._expanding
        self._expanding.append(ref)
        try:
            return self.value(merged, minimal=minimal or recursive, name=name)
        finally:
            self._expanding.pop()

    def _all_of(self, schemas: list[Any], *, minimal: bool, name: str) -> Any:
        values = [self.value(schema, minimal=minimal, name=name) for schema in schemas]
        if all(isinstance(value, dict) for value in values):
            return {key: item for value in values for key, item in value.items()}
        return values[0]

    def _typed(self, schema: Mapping[str, Any], kind: str, *, minimal: bool, name: str) -> Any:
        if kind == "object":
            return self._object(schema, minimal=minimal)
        if kind == "array":
            return self._array(schema, minimal=minimal, name=name)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: Mapping[str, Any], *, minimal: bool) -> dict[str, Any]:
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        required = [name for name in schema.get("required") or () if isinstance(name, str)]
        names = required if minimal else [*properties, *(name for name in required if name not in properties)]
        return {name: self.value(properties.get(name, {}), minimal=minimal, name=name) for name in names}

    def _array(self, schema: Mapping[str, Any], *, minimal: bool, name: str) -> list[Any]:
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        count = max(schema.get("minItems", 0), 0 if minimal else 1, len(prefix))
        count = min(count, schema.get("maxItems", count))
        items = [self.value(item, minimal=minimal, name=name) for item in prefix[:count]]
        extra = schema.get("items", {})
        if extra is not False:
            items += [self.value(extra, minimal=minimal, name=name) for _ in range(count - len(items))]
        return items

    def _number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        value: int | float = next(self._integers, 1)
        if not _fits(schema, value):
            value = _in_range(schema, integer=integer)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0 and value % step:
            rounded_up = math.ceil(value / step) * step
            value = rounded_up if _fits(schema, rounded_up) else math.floor(value / step) * step
        return value

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        value = _FORMATS.get(schema.get("format", ""))
        if value is None:
            value = next(self._words) if self._words is not None else name or "text"
        shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
        if len(value) < shortest:  # (never empty: a format's example, a word, a name or "text")
            value = value * math.ceil(shortest / len(value))
        return value[:longest] if isinstance(longest, int) else value


def _fits(schema: Mapping[str, Any], value: float) -> bool:
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
    )


def _in_range(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    """A number within the schema's bounds: the middle of a closed range, else next to its one bound."""
    low, high = schema.get("minimum"), schema.get("maximum")
    above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if integer:  # as the whole numbers allowed: from the first to the last
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
        above = None if above is None else math.floor(above) + 1
        below = None if below is None else math.ceil(below) - 1
    floor = max((bound for bound in (low, above) if bound is not None), default=None)
    ceiling = min((bound for bound in (high, below) if bound is not None), default=None)
    if floor is not None and ceiling is not None:
        middle = (floor + ceiling) / 2
        return math.floor(middle) if integer else middle
    if floor is not None:
        return floor if integer else floor + 1
    return ceiling if integer else ceiling - 1


def _type_of(schema: Mapping[str, Any], minimal: bool) -> str:
    """The one type to generate: a nullable type list gives its non-null type (``null`` when minimal)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str)]
        if minimal and "null" in kinds:
            return "null"
        return next((k for k in kinds if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _nullable_choice(options: list[Any], minimal: bool) -> Any:
    """``anyOf``/``oneOf``: the first option, or ``null`` (if offered) once expanding minimally."""
    if minimal:
        nulls = [option for option in options if isinstance(option, Mapping) and option.get("type") == "null"]
        if nulls:
            return nulls[0]
    return options[0]


def _resolve(root: Any, ref: str) -> Any:
    """A local ``$ref`` (``#/$defs/Name``, ``#/definitions/Name``…) in ``root``; ``{}`` if not found."""
    if not ref.startswith("#"):
        return {}
    target = root
    for part in ref[1:].split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return {}
    return target
