"""Reads of the catalogue: the model a reply is priced by and the upstream model it asks for; the
models offered; the deployments to check.

A model is served by its deployments, tried by priority then weight (``chats.llm.routing``);
a deployment with no provider is the default provider the settings describe.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch, QuerySet

from chats.catalogue.cache import catalogue_cached
from chats.catalogue.errors import ModelNotDeployed
from chats.catalogue.models import CatalogueModel, Deployment, Provider
from chats.llm.routing import ProviderSpec, Route, order_by_priority_and_weight
from core.db.rows import columns, fetch_one, instance_from_row, table


@dataclass(frozen=True)
class Served:
    """A catalogue model and the deployments its request may go to, in the order to try them."""

    model: CatalogueModel
    routes: tuple[Route, ...]

    def routes_to_try(self) -> tuple[Route, ...]:
        """The deployments in the order this request tries them: by priority, weighted at random
        within one (drawn per request, while ``routes`` may be shared: ``chats.catalogue.cache``)."""
        return self.routes if len(self.routes) == 1 else tuple(order_by_priority_and_weight(self.routes))


def first_deployment_sql(model_alias: str) -> str:
    """Two scalar subqueries: the upstream model name of ``model_alias``'s first deployment
    (``''`` for ``LLM_MODEL``; NULL when it has none), and how many more deployments or providers
    than one deployment on the default provider it has (0: the usual laptop's and migrated
    model's case, served with no further query)."""
    deployments = f"{table(Deployment)} d WHERE d.{_quoted('model_id')} = {model_alias}.{_quoted('id')}"
    return (
        f"(SELECT d.{_quoted('upstream_model')} FROM {deployments}"
        f" ORDER BY d.{_quoted('priority')}, d.{_quoted('id')} LIMIT 1),"
        f" (SELECT COUNT(*) - 1 + COUNT(d.{_quoted('provider_id')}) FROM {deployments})"
    )


def _quoted(column: str) -> str:
    return connection.ops.quote_name(column)


def served_from_row(model: CatalogueModel, upstream: str | None, more: int) -> Served:
    """The model as served, from the two values :func:`first_deployment_sql` read.

    A model with no deployment cannot be served: refused before anything is reserved. One
    deployment on the default provider needs nothing more; else its deployments are read.
    """
    if upstream is None:
        raise ModelNotDeployed(
            f"The model {model.public_id!r} has no deployment.", details={"model": model.public_id}
        )
    if more == 0:
        name = upstream or settings.LLM_MODEL
        return Served(model=model, routes=(Route(deployment=f"default/{name}", upstream_model=name),))
    routes = routes_for(model)
    if not routes:  # every one on a provider switched off
        raise ModelNotDeployed(
            f"The model {model.public_id!r} has no active deployment.", details={"model": model.public_id}
        )
    return Served(model=model, routes=tuple(routes))


def routes_for(model: CatalogueModel) -> list[Route]:
    """The model's deployments on active providers (or the default one), as routes."""
    routes = []
    deployments = Deployment.objects.filter(model=model).select_related("provider").order_by("priority", "id")
    for deployment in deployments:
        provider = deployment.provider
        if provider is not None and not provider.is_active:
            continue
        name = deployment.upstream_model or settings.LLM_MODEL
        spec = None
        if provider is not None:
            spec = ProviderSpec(
                kind=provider.kind,
                base_url=provider.base_url or None,
                api_key_env=provider.api_key_env,
                timeout=provider.timeout,
                retries=provider.retries,
            )
        routes.append(
            Route(
                deployment=f"{provider.name if provider else 'default'}/{name}",
                upstream_model=name,
                provider=spec,
                priority=deployment.priority,
                weight=deployment.weight,
            )
        )
    return routes


def model_served(*, model_id: int) -> Served:
    """The catalogue model ``model_id`` (a category's) and its deployments.

    Every chat reply reads it, through the process's cache (``chats.catalogue.cache``); when it
    is not there, one plain statement (the model and its first deployment's name), as the reply's
    other hot-path reads are (``core.db.rows``), and a second one for several deployments.
    """
    return catalogue_cached(("served", model_id), lambda: _model_served(model_id))


def _model_served(model_id: int) -> Served:
    fields = CatalogueModel._meta.concrete_fields
    sql = (
        f"SELECT {columns(fields, 'm')}, {first_deployment_sql('m')}"
        f" FROM {table(CatalogueModel)} m WHERE m.id = %s"
    )
    row = fetch_one(sql, [model_id])
    if row is None:  # a category's model is PROTECTed: only a race with its deletion gets here
        raise ModelNotDeployed(details={"model": model_id})
    return served_from_row(instance_from_row(CatalogueModel, fields, row[:-2]), row[-2], row[-1])


def models_active() -> QuerySet[CatalogueModel]:
    """The models offered by their own id (``/v1/models``), by id."""
    return CatalogueModel.objects.filter(is_active=True).order_by("public_id")


def deployments_all() -> QuerySet[Deployment]:
    """Every deployment with its model and provider, by model, then as they are tried."""
    return Deployment.objects.select_related("model", "provider").order_by(
        "model__public_id", "priority", "id"
    )


def catalogue_read() -> tuple[list[Provider], list[CatalogueModel]]:
    """The whole catalogue as ``llm_config export`` writes it: providers by name, models by id,
    each with its deployments as they are tried. Three queries, however many rows."""
    providers = list(Provider.objects.order_by("name"))
    models = list(
        CatalogueModel.objects.order_by("public_id").prefetch_related(
            Prefetch(
                "deployments",
                queryset=Deployment.objects.select_related("provider").order_by("priority", "id"),
            )
        )
    )
    return providers, models
