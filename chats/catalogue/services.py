"""Writes to the catalogue: a file of providers and models applied in one transaction.

Staff otherwise edit the catalogue in the admin (``chats.catalogue.admin``), whose forms run the
same model validation as :func:`catalogue_apply`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from chats.catalogue.config import CatalogueConfig, ConfigInvalid, DeploymentSpec, ModelSpec, ProviderSpec
from chats.catalogue.models import CatalogueModel, Deployment, Provider


def catalogue_apply(*, config: CatalogueConfig) -> list[str]:
    """Create or update the providers and models ``config`` names, each model's deployments made
    exactly its list; what changed, one line each (none: the catalogue already matched).

    All or nothing: the first invalid entry (a field the models refuse, an unknown provider)
    raises ``ConfigInvalid`` naming it, and the transaction rolls every earlier change back.
    Rows are locked as they are read, so two applies at once run one after the other.
    """
    changes: list[str] = []
    with transaction.atomic(durable=True):
        providers = {provider.name: provider for provider in Provider.objects.select_for_update()}
        for spec in config.providers:
            providers[spec.values["name"]] = _provider_upsert(
                spec, providers.get(spec.values["name"]), changes
            )
        for spec in config.models:
            model = (
                CatalogueModel.objects.select_for_update().filter(public_id=spec.values["public_id"]).first()
            )
            model = _model_upsert(spec, model, changes)
            _deployments_sync(spec, model, providers, changes)
    return changes


def _provider_upsert(spec: ProviderSpec, provider: Provider | None, changes: list[str]) -> Provider:
    return _upsert(Provider, provider, spec.values, f"provider {spec.values['name']}", spec.where, changes)


def _model_upsert(spec: ModelSpec, model: CatalogueModel | None, changes: list[str]) -> CatalogueModel:
    return _upsert(
        CatalogueModel, model, spec.values, f"model {spec.values['public_id']}", spec.where, changes
    )


def _upsert(model_class, instance, values: dict[str, Any], label: str, where: str, changes: list[str]):
    """``instance`` (or a new one) with ``values``, validated as the admin validates it, saved if it
    changed; the change recorded in ``changes``."""
    created = instance is None
    instance = instance or model_class()
    before = {key: getattr(instance, key) for key in values}
    for key, value in values.items():
        setattr(instance, key, value)
    _validated(instance, where)
    after = {key: getattr(instance, key) for key in values}  # as cleaned: 0.5 and 0.5000 are one price
    changed = [key for key in values if before[key] != after[key]]
    if created:
        instance.save()
        changes.append(f"{label}: created")
    elif changed:
        instance.save(update_fields=changed)
        changes.append(f"{label}: {', '.join(changed)} changed")
    return instance


def _validated(instance, where: str) -> None:
    try:
        instance.full_clean()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'' if name == '__all__' else f'{name}: '}{' '.join(messages)}"
            for name, messages in exc.message_dict.items()
        )
        raise ConfigInvalid(f"{where}: {problems}") from None


def _deployments_sync(
    spec: ModelSpec, model: CatalogueModel, providers: dict[str, Provider], changes: list[str]
) -> None:
    """The model's deployments made exactly ``spec.deployments``: matched by provider and upstream
    model name, updated in place, the others created or deleted."""
    current = {(d.provider_id, d.upstream_model): d for d in model.deployments.select_for_update()}
    label = f"model {model.public_id}"
    for index, wanted in enumerate(spec.deployments):
        where = f"{spec.where}: deployments[{index}]"
        provider = _provider_named(wanted, providers, where)
        key = (provider.pk if provider else None, wanted.upstream_model)
        deployment = current.pop(key, None)
        shown = f"{wanted.upstream_model or 'LLM_MODEL'} on {wanted.provider or 'the default provider'}"
        if deployment is None:
            deployment = Deployment(model=model, provider=provider, upstream_model=wanted.upstream_model)
            deployment.priority, deployment.weight = wanted.priority, wanted.weight
            _validated(deployment, where)
            deployment.save()
            changes.append(f"{label}: deployment {shown} added")
        elif (deployment.priority, deployment.weight) != (wanted.priority, wanted.weight):
            deployment.priority, deployment.weight = wanted.priority, wanted.weight
            _validated(deployment, where)
            deployment.save(update_fields=["priority", "weight"])
            changes.append(f"{label}: deployment {shown} changed")
    for deployment in current.values():
        provider = deployment.provider or "the default provider"
        changes.append(
            f"{label}: deployment {deployment.upstream_model or 'LLM_MODEL'} on {provider} removed"
        )
        deployment.delete()


def _provider_named(wanted: DeploymentSpec, providers: dict[str, Provider], where: str) -> Provider | None:
    if wanted.provider is None:
        return None
    try:
        return providers[wanted.provider]
    except KeyError:
        raise ConfigInvalid(
            f"{where}: unknown provider {wanted.provider!r} (neither in the file nor in the catalogue)."
        ) from None
