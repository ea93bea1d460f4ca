"""The catalogue as a file: ``llm_config apply`` (all or nothing, idempotent) and ``export``."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chats.catalogue.config import ConfigInvalid, config_document, config_dump, config_parse
from chats.catalogue.models import CatalogueModel, Deployment, Provider
from chats.catalogue.selectors import catalogue_read
from chats.catalogue.services import catalogue_apply

pytestmark = pytest.mark.django_db

SPEC_FILE = """
providers:
  - {name: main, kind: openai, base_url: "https://llm.example/v1", api_key_env: MAIN_KEY, timeout: 60}
  - {name: spare, kind: openai, base_url: "http://vllm.internal:8000/v1", api_key_env: SPARE_KEY}
models:
  - id: house-large
    name: House large
    prompt_price: 0.5          # credits per 1,000 prompt tokens
    completion_price: 1.5      # credits per 1,000 completion tokens
    max_output_tokens: 4096
    deployments:
      - {provider: main, model: large-2025, priority: 1, weight: 3}
      - {provider: spare, model: large-2025, priority: 2}
"""


def apply(text: str) -> list[str]:
    return catalogue_apply(config=config_parse(text))


def exported() -> str:
    return config_dump(config_document(*catalogue_read()))


def snapshot() -> list:
    return [
        list(Provider.objects.order_by("pk").values()),
        list(CatalogueModel.objects.order_by("pk").values()),
        list(Deployment.objects.order_by("pk").values()),
    ]


def test_the_spec_file_creates_providers_models_and_deployments_then_changes_nothing():
    changes = apply(SPEC_FILE)

    assert changes == [
        "provider main: created",
        "provider spare: created",
        "model house-large: created",
        "model house-large: deployment large-2025 on main added",
        "model house-large: deployment large-2025 on spare added",
    ]
    main = Provider.objects.get(name="main")
    assert (main.kind, main.base_url, main.api_key_env, main.timeout, main.retries) == (
        "openai",
        "https://llm.example/v1",
        "MAIN_KEY",
        60.0,
        2,
    )
    model = CatalogueModel.objects.get(public_id="house-large")
    assert (model.name, model.prompt_price, model.completion_price, model.max_output_tokens) == (
        "House large",
        Decimal("0.5"),
        Decimal("1.5"),
        4096,
    )
    deployments = [(d.provider.name, d.upstream_model, d.priority, d.weight) for d in model.deployments.all()]
    assert deployments == [("main", "large-2025", 1, 3), ("spare", "large-2025", 2, 1)]

    before = snapshot()
    assert apply(SPEC_FILE) == []
    assert snapshot() == before


def test_export_then_apply_round_trips_every_field():
    apply(SPEC_FILE)
    apply(
        """
providers:
  - {name: local, kind: echo, timeout: 2.5, retries: 0, is_active: false}
models:
  - id: tiny
    prompt_price: "0.0123"
    completion_price: 12
    media_part_tokens: 500
    context_window: 8192
    capabilities: {images: false, json_schema: false}
    drop_params: [logprobs, seed]
    is_active: false
    deployments:
      - {priority: 1}
      - {provider: local, model: tiny-q4, priority: 2, weight: 5}
"""
    )
    text = exported()
    before = snapshot()

    assert "prompt_price: 0.0123" in text and "completion_price: 12\n" in text
    assert "- {provider: main, model: large-2025, priority: 1, weight: 3}" in text
    assert "- {name: local, kind: echo, timeout: 2.5, retries: 0, is_active: false}" in text
    assert apply(text) == []
    assert snapshot() == before
    # The general category's model (migration 0011): on the default provider, LLM_MODEL.
    assert "- id: general\n  name: General\n  prompt_price: 1\n  completion_price: 2\n" in text


def test_a_second_apply_updates_fields_and_makes_deployments_exactly_the_list():
    apply(SPEC_FILE)
    changed = SPEC_FILE.replace("prompt_price: 0.5", "prompt_price: 0.75").replace(
        "      - {provider: spare, model: large-2025, priority: 2}\n",
        "      - {model: large-2024, priority: 0}\n",
    )

    changes = apply(changed.replace("priority: 1, weight: 3", "priority: 1, weight: 4"))

    assert changes == [
        "model house-large: prompt_price changed",
        "model house-large: deployment large-2025 on main changed",
        "model house-large: deployment large-2024 on the default provider added",
        "model house-large: deployment large-2025 on spare removed",
    ]
    model = CatalogueModel.objects.get(public_id="house-large")
    assert model.prompt_price == Decimal("0.75")
    tried = [(d.provider_id and d.provider.name, d.upstream_model, d.weight) for d in model.deployments.all()]
    assert tried == [(None, "large-2024", 1), ("main", "large-2025", 4)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, colour: red}]",
            "models[0] (x): unknown field `colour`",
        ),
        ("models: [{id: x, completion_price: 1}]", "models[0] (x): `prompt_price` is required"),
        (
            "models: [{id: x, prompt_price: 0.12345, completion_price: 1}]",
            "models[0] (x): prompt_price: Ensure",
        ),
        ("models: [{id: x, prompt_price: -1, completion_price: 1}]", "models[0] (x): Constraint"),
        ("models: [{id: x, prompt_price: cheap, completion_price: 1}]", "`prompt_price` must be a number"),
        ("models: [{id: 'has space', prompt_price: 1, completion_price: 1}]", "public_id: Letters, digits"),
        ("models: [{prompt_price: 1, completion_price: 1}]", "models[0]: `id` is required"),
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, deployments: [{provider: nowhere}]}]",
            "models[0] (x): deployments[0]: unknown provider 'nowhere'",
        ),
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, deployments: [{weight: 0}]}]",
            "models[0] (x): deployments[0]: Constraint",
        ),
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, deployments: [{model: a}, {model: a}]}]",
            "Duplicate models[0] (x): deployment 'the default provider/a'",
        ),
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, is_active: 'yes'}]",
            "must be true or false",
        ),
        ("models: [{id: x, prompt_price: 1, completion_price: 1, max_output_tokens: 1.5}]", "a whole number"),
        ("models: [{id: x, prompt_price: 1, completion_price: 1, drop_params: logprobs}]", "a list of names"),
        (
            "models: [{id: x, prompt_price: 1, completion_price: 1, capabilities: [tools]}]",
            "expected a mapping",
        ),
        ("providers: [{name: p, kind: grpc}]", "providers[0] (p): kind: Value 'grpc' is not a valid choice"),
        ("providers: [{name: p, base_url: 'ftp://x'}]", "providers[0] (p): base_url: Enter an http://"),
        ("providers: [{name: p, api_key_env: 'sk-live-123'}]", "api_key_env: Enter an environment variable"),
        ("providers: [{name: p, timeout: 0}]", "providers[0] (p): Constraint"),
        ("providers: [{name: p, timeout: soon}]", "`timeout` must be a number"),
        ("providers: [{name: p}, {name: p}]", "Duplicate provider name 'p'"),
        ("providers: {name: p}", "`providers` must be a list"),
        ("- just a list", "must be a mapping"),
        ("models: [oops", "Not valid YAML"),
        ("tenants: []", "the file: unknown field `tenants`"),
    ],
)
def test_a_bad_entry_is_named_and_nothing_is_changed(text, message):
    apply(SPEC_FILE)
    before = snapshot()
    good_first = "providers:\n  - {name: fresh}\n" if not text.startswith("providers") else ""

    with pytest.raises(ConfigInvalid) as raised:
        apply(good_first + text if text.startswith("models") else text)

    assert message in raised.value.message
    assert snapshot() == before
    assert not Provider.objects.filter(name="fresh").exists()


def test_an_empty_file_changes_nothing():
    assert apply("") == []


def test_the_command_applies_exports_and_refuses_a_bad_file_whole(tmp_path):
    good, bad = tmp_path / "catalogue.yaml", tmp_path / "bad.yaml"
    good.write_text(SPEC_FILE)
    bad.write_text(
        SPEC_FILE.replace("provider: spare", "provider: spear").replace("name: main", "name: first")
    )
    out = StringIO()

    call_command("llm_config", "apply", str(good), stdout=out)
    call_command("llm_config", "apply", str(good), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[-2] == f"Applied {good}: 5 change(s)."
    assert lines[-1] == f"No changes: the catalogue already matches {good}."

    before = snapshot()
    with pytest.raises(CommandError) as raised:
        call_command("llm_config", "apply", str(bad), stdout=StringIO())
    assert str(raised.value) == (
        f"{bad}: models[0] (house-large): deployments[1]: unknown provider 'spear' (neither in the file"
        " nor in the catalogue). Nothing was changed."
    )
    assert snapshot() == before
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("llm_config", "apply", str(tmp_path / "missing.yaml"))

    out = StringIO()
    call_command("llm_config", "export", stdout=out)
    assert out.getvalue() == exported()
    assert out.getvalue().startswith("providers:\n- {name: main, kind: openai, base_url: ")
