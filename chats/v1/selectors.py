"""Reads for ``/v1/``: the model a request names (a category or a catalogue model), and what a key
has spent against its cap."""

from dataclasses import dataclass

from django.db.models import Sum

from chats.catalogue.cache import catalogue_cached
from chats.catalogue.models import CatalogueModel
from chats.catalogue.selectors import Served, first_deployment_sql, served_from_row
from chats.models import Category, UsageRecord
from core.db.rows import columns, fetch_one, instance_from_row, table
from wallets.models import Hold


@dataclass(frozen=True)
class Requested:
    """What a ``/v1/`` request's ``model`` names: a category (its system prompt first, its model's
    prices), or a catalogue model (``category`` None) by its id; and how it is served."""

    category: Category | None
    served: Served


def model_requested(*, name: str) -> Requested | None:
    """What ``name`` names (see :func:`_model_requested`), through the process's cache of the
    catalogue (``chats.catalogue.cache``)."""
    return catalogue_cached(("requested", name), lambda: _model_requested(name))


def _model_requested(name: str) -> Requested | None:
    """The active category whose slug is ``name``, else the active catalogue model whose id it is;
    None if neither. A category comes first: a client that named it before the catalogue existed
    (migration 0011 gave its model the category's slug) keeps its system prompt.

    Raises ``ModelNotDeployed`` for a model with no deployment. Every ``/v1/`` request reads it:
    one plain statement, its rows converted as the ORM converts them, since compiling the
    queryset costs more than running it (docs/benchmarks.md, issue 15's breakdown).
    """
    if "\x00" in name:  # PostgreSQL refuses even to compare a NUL; no id or slug holds one
        return None
    categories, models = Category._meta.concrete_fields, CatalogueModel._meta.concrete_fields
    first = first_deployment_sql("m")
    no_category = ", ".join(["NULL"] * len(categories))
    sql = (
        f"SELECT 0, {columns(categories, 'c')}, {columns(models, 'm')}, {first}"
        f" FROM {table(Category)} c JOIN {table(CatalogueModel)} m ON m.id = c.model_id"
        f" WHERE c.slug = %s AND c.is_active = %s"
        f" UNION ALL SELECT 1, {no_category}, {columns(models, 'm')}, {first}"
        f" FROM {table(CatalogueModel)} m WHERE m.public_id = %s AND m.is_active = %s"
        " ORDER BY 1 LIMIT 1"
    )
    row = fetch_one(sql, [name, True, name, True])
    if row is None:
        return None
    split = 1 + len(categories)
    category = instance_from_row(Category, categories, row[1:split]) if row[0] == 0 else None
    model = instance_from_row(CatalogueModel, models, row[split:-2])
    if category is not None:
        category.model = model
    return Requested(category=category, served=served_from_row(model, row[-2], row[-1]))


def api_key_spent(*, api_key, since, excluding=None) -> int:
    """Credits a key has spent since ``since``: settled requests' costs plus what pending ones hold."""
    records = UsageRecord.objects.filter(api_key=api_key, created_at__gte=since).exclude(pk=excluding)
    settled = records.exclude(status=UsageRecord.Status.PENDING).aggregate(total=Sum("cost"))["total"] or 0
    pending = records.filter(status=UsageRecord.Status.PENDING, hold_id__isnull=False).values("hold_id")
    held = Hold.objects.filter(pk__in=pending, status=Hold.Status.OPEN).aggregate(total=Sum("amount"))[
        "total"
    ]
    return settled + (held or 0)
