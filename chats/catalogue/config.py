"""The catalogue as a file (``manage.py llm_config``): YAML read into checked specs, and written back.

The format (docs/api.md and ``../shared/SPEC.md``, "Providers and models")::

    providers:
      - {name: main, kind: openai, base_url: "https://llm.example/v1", api_key_env: MAIN_KEY, timeout: 60}
    models:
      - id: house-large
        name: House large
        prompt_price: 0.5          # credits per 1,000 prompt tokens
        completion_price: 1.5      # credits per 1,000 completion tokens
        max_output_tokens: 4096
        deployments:
          - {provider: main, model: large-2025, priority: 1, weight: 3}

An entry describes its object whole: a field left out takes its default (so a file says everything
that differs from the defaults, as ``export`` writes it). A deployment with no ``provider`` is on
the default provider (the settings), with no ``model`` asks for ``LLM_MODEL``. A model's
``deployments`` are all of its deployments. Providers and models the file does not name are left
as they are. A mistake is reported naming its entry (``models[1] (house-large): …``) before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from chats.catalogue.models import CatalogueModel, Deployment, Provider
from core.errors import ValidationFailed


class ConfigInvalid(ValidationFailed):
    """A catalogue file that cannot be applied; the message names the entry at fault."""

    code = "config_invalid"


#: The capabilities' names in the file, and their fields.
CAPABILITIES = {"tools": "supports_tools", "images": "supports_images", "json_schema": "supports_json_schema"}

_PROVIDER_DEFAULTS = {
    "kind": Provider.Kind.OPENAI.value,
    "base_url": "",
    "api_key_env": "",
    "timeout": 60.0,
    "retries": 2,
    "is_active": True,
}
_MODEL_DEFAULTS = {
    "media_part_tokens": None,
    "max_output_tokens": None,
    "context_window": None,
    "drop_params": [],
    "is_active": True,
    **dict.fromkeys(CAPABILITIES.values(), True),
}
_DEPLOYMENT_DEFAULTS = {"priority": 1, "weight": 1}


@dataclass
class DeploymentSpec:
    provider: str | None
    upstream_model: str
    priority: int
    weight: int


@dataclass
class ModelSpec:
    #: The model's fields as the file sets them (defaults filled in), ``public_id`` included.
    values: dict[str, Any]
    deployments: list[DeploymentSpec]
    where: str


@dataclass
class ProviderSpec:
    values: dict[str, Any]
    where: str


@dataclass
class CatalogueConfig:
    providers: list[ProviderSpec] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------------


def config_parse(text: str) -> CatalogueConfig:
    """``text`` (YAML) as specs, every entry's shape and types checked; raises ``ConfigInvalid``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigInvalid(f"Not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigInvalid("The file must be a mapping with `providers` and `models`.")
    _only(document, {"providers", "models"}, "the file")
    providers = [
        _provider(entry, f"providers[{i}]")
        for i, entry in enumerate(_list(document, "providers", "the file"))
    ]
    models = [_model(entry, f"models[{i}]") for i, entry in enumerate(_list(document, "models", "the file"))]
    _unique([spec.values["name"] for spec in providers], "provider name")
    _unique([spec.values["public_id"] for spec in models], "model id")
    return CatalogueConfig(providers=providers, models=models)


def _provider(entry: Any, where: str) -> ProviderSpec:
    entry = _mapping(entry, where)
    where = f"{where} ({entry.get('name')})" if isinstance(entry.get("name"), str) else where
    _only(entry, {"name", *_PROVIDER_DEFAULTS}, where)
    values = {
        "name": _string(entry, "name", where, required=True),
        "kind": _string(entry, "kind", where, default=_PROVIDER_DEFAULTS["kind"]),
        "base_url": _string(entry, "base_url", where, default=""),
        "api_key_env": _string(entry, "api_key_env", where, default=""),
        "timeout": _number(entry, "timeout", where, default=_PROVIDER_DEFAULTS["timeout"]),
        "retries": _integer(entry, "retries", where, default=_PROVIDER_DEFAULTS["retries"]),
        "is_active": _boolean(entry, "is_active", where, default=True),
    }
    return ProviderSpec(values=values, where=where)


def _model(entry: Any, where: str) -> ModelSpec:
    entry = _mapping(entry, where)
    where = f"{where} ({entry.get('id')})" if isinstance(entry.get("id"), str) else where
    fields = {"id", "name", "prompt_price", "completion_price", "capabilities", "deployments"}
    _only(entry, fields | set(_MODEL_DEFAULTS) - set(CAPABILITIES.values()), where)
    public_id = _string(entry, "id", where, required=True)
    values: dict[str, Any] = {
        "public_id": public_id,
        "name": _string(entry, "name", where, default=public_id),
        "prompt_price": _decimal(entry, "prompt_price", where),
        "completion_price": _decimal(entry, "completion_price", where),
        "media_part_tokens": _integer(entry, "media_part_tokens", where, default=None),
        "max_output_tokens": _integer(entry, "max_output_tokens", where, default=None),
        "context_window": _integer(entry, "context_window", where, default=None),
        "drop_params": _strings(entry, "drop_params", where),
        "is_active": _boolean(entry, "is_active", where, default=True),
    }
    capabilities = _mapping(entry.get("capabilities", {}), f"{where}: capabilities")
    _only(capabilities, set(CAPABILITIES), f"{where}: capabilities")
    for name, field_name in CAPABILITIES.items():
        values[field_name] = _boolean(capabilities, name, f"{where}: capabilities", default=True)
    deployments = [
        _deployment(item, f"{where}: deployments[{i}]")
        for i, item in enumerate(_list(entry, "deployments", where))
    ]
    _unique(
        [f"{d.provider or 'the default provider'}/{d.upstream_model or 'LLM_MODEL'}" for d in deployments],
        f"{where}: deployment",
    )
    return ModelSpec(values=values, deployments=deployments, where=where)


def _deployment(entry: Any, where: str) -> DeploymentSpec:
    entry = _mapping(entry, where)
    _only(entry, {"provider", "model", *_DEPLOYMENT_DEFAULTS}, where)
    return DeploymentSpec(
        provider=_string(entry, "provider", where, default=None) or None,
        upstream_model=_string(entry, "model", where, default=""),
        priority=_integer(entry, "priority", where, default=1),
        weight=_integer(entry, "weight", where, default=1),
    )


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigInvalid(f"{where}: expected a mapping (key: value), got {_shown(value)}.")
    return value


def _list(entry: dict, key: str, where: str) -> list:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigInvalid(f"{where}: `{key}` must be a list, got {_shown(value)}.")
    return value


def _only(entry: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise ConfigInvalid(f"{where}: unknown field `{unknown[0]}` (known: {', '.join(sorted(allowed))}).")


def _unique(names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigInvalid(f"Duplicate {what} {name!r}: each may appear once.")
        seen.add(name)


_MISSING = object()


def _string(entry: dict, key: str, where: str, *, default: Any = _MISSING, required: bool = False) -> Any:
    value = entry.get(key, _MISSING)
    if value is _MISSING or (value is None and not required):
        if required:
            raise ConfigInvalid(f"{where}: `{key}` is required.")
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigInvalid(f"{where}: `{key}` must be a string, got {_shown(value)}.")
    text = str(value)  # ``model: 7`` or ``id: 3.5`` mean the string
    if required and not text:
        raise ConfigInvalid(f"{where}: `{key}` must not be empty.")
    return text


def _decimal(entry: dict, key: str, where: str) -> Decimal:
    value = entry.get(key)
    if value is None:
        raise ConfigInvalid(f"{where}: `{key}` is required (credits per 1,000 tokens).")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigInvalid(f"{where}: `{key}` must be a number, got {_shown(value)}.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigInvalid(f"{where}: `{key}` must be a number, got {_shown(value)}.") from None
    if not number.is_finite():
        raise ConfigInvalid(f"{where}: `{key}` must be a finite number, got {_shown(value)}.")
    return number


def _number(entry: dict, key: str, where: str, *, default: float) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigInvalid(f"{where}: `{key}` must be a number, got {_shown(value)}.")
    return float(value)


def _integer(entry: dict, key: str, where: str, *, default: int | None) -> int | None:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigInvalid(f"{where}: `{key}` must be a whole number, got {_shown(value)}.")
    return value


def _boolean(entry: dict, key: str, where: str, *, default: bool) -> bool:
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigInvalid(f"{where}: `{key}` must be true or false, got {_shown(value)}.")
    return value


def _strings(entry: dict, key: str, where: str) -> list[str]:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigInvalid(f"{where}: `{key}` must be a list of names, got {_shown(value)}.")
    return list(value)


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 60 else f"{type(value).__name__} {repr(value)[:57]}..."


# --- writing --------------------------------------------------------------------------------


def config_document(providers: list[Provider], models: list[CatalogueModel]) -> dict[str, Any]:
    """The catalogue as the file's mapping: each field only where it differs from its default
    (a model's name where it is not its id), so that ``apply`` of it changes nothing."""
    return {
        "providers": [_provider_entry(provider) for provider in providers],
        "models": [_model_entry(model) for model in models],
    }


def _provider_entry(provider: Provider) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": provider.name, "kind": provider.kind}
    for key, default in _PROVIDER_DEFAULTS.items():
        value = getattr(provider, key)
        if key != "kind" and value != default:
            entry[key] = _plain_number(value) if key == "timeout" else value
    return entry


def _model_entry(model: CatalogueModel) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": model.public_id}
    if model.name != model.public_id:
        entry["name"] = model.name
    entry["prompt_price"] = Decimal(model.prompt_price)
    entry["completion_price"] = Decimal(model.completion_price)
    for key in ("media_part_tokens", "max_output_tokens", "context_window"):
        if getattr(model, key) is not None:
            entry[key] = getattr(model, key)
    capabilities = {name: False for name, key in CAPABILITIES.items() if not getattr(model, key)}
    if capabilities:
        entry["capabilities"] = capabilities
    if model.drop_params:
        entry["drop_params"] = list(model.drop_params)
    if not model.is_active:
        entry["is_active"] = False
    entry["deployments"] = [_deployment_entry(deployment) for deployment in model.deployments.all()]
    return entry


def _deployment_entry(deployment: Deployment) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if deployment.provider_id is not None:
        entry["provider"] = deployment.provider.name
    if deployment.upstream_model:
        entry["model"] = deployment.upstream_model
    entry["priority"] = deployment.priority
    if deployment.weight != 1:
        entry["weight"] = deployment.weight
    return entry


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class _Dumper(yaml.SafeDumper):
    """Decimals written as YAML numbers, exactly (``0.0123``, ``2``), never through a float."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value.normalize(), "f")
    if "." not in text:
        return dumper.represent_int(int(text))
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(Decimal, _represent_decimal)


def config_dump(document: dict[str, Any]) -> str:
    """The file's text: a flow mapping (one line) per provider and deployment, as in the spec."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True, width=10_000
    )
