"""Categories and catalogue models as tests need them: a category with its prices, which now live
on its catalogue model, deployed once on the default provider (as migration 0011 leaves them)."""

from decimal import Decimal

from chats.catalogue.models import CatalogueModel, Deployment
from chats.models import Category


def catalogue_model_make(
    public_id: str,
    *,
    prompt_price: Decimal | int | str = 1,
    completion_price: Decimal | int | str = 2,
    upstream_model: str = "",
    **fields,
) -> CatalogueModel:
    """A catalogue model with one deployment on the default provider (``upstream_model`` blank:
    ``LLM_MODEL``)."""
    model = CatalogueModel.objects.create(
        public_id=public_id,
        name=fields.pop("name", public_id),
        prompt_price=Decimal(str(prompt_price)),
        completion_price=Decimal(str(completion_price)),
        **fields,
    )
    Deployment.objects.create(model=model, upstream_model=upstream_model)
    return model


def category_make(
    slug: str,
    *,
    prompt_price: Decimal | int | str = 1,
    completion_price: Decimal | int | str = 2,
    upstream_model: str = "",
    model_id: str | None = None,
    **fields,
) -> Category:
    """A category whose catalogue model (id ``model_id``, by default its slug) has these prices."""
    model = catalogue_model_make(
        model_id or slug,
        prompt_price=prompt_price,
        completion_price=completion_price,
        upstream_model=upstream_model,
    )
    fields.setdefault("name", slug.title())
    return Category.objects.create(slug=slug, model=model, **fields)
