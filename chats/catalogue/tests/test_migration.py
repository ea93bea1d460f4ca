"""Migration 0011: each category becomes a catalogue model with its prices, deployed on the default
provider under its model name; and back. From the previous migration state, with rows in it."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chats.catalogue.models import CatalogueModel
from chats.models import Category, UsageRecord

BEFORE = ("chats", "0010_usage_records_for_chat_replies")
AFTER = ("chats", "0011_catalogue")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def leaves():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_each_category_becomes_a_model_with_its_prices_and_one_default_deployment():
    others = [node for node in leaves() if node[0] != "chats"]
    old = migrate([BEFORE, *others])
    OldCategory, OldRecord, OldUser = (
        old.get_model(*name.split(".")) for name in ("chats.Category", "chats.UsageRecord", "accounts.User")
    )
    OldCategory.objects.all().delete()
    rows = {
        # slug: (model name, prompt price, completion price, active)
        "general": ("", "1", "2", True),
        "coding": ("gpt-4o", "0.0123", "12.5", True),
        "writing": ("llama3", "1", "1", True),  # two categories share llama3: neither takes the id
        "poetry": ("llama3", "3", "4", False),
        "vision": ("meta-llama/Llama-3.2-11B-Vision", "2", "2", True),  # "/" is no valid id
        "taken": ("coding", "5", "5", True),  # another category's slug
    }
    made = {
        slug: OldCategory.objects.create(
            slug=slug, name=slug.title(), model=name, prompt_price=Decimal(prompt),
            completion_price=Decimal(completion), is_active=active,
        )
        for slug, (name, prompt, completion, active) in rows.items()
    }  # fmt: skip
    alice = OldUser.objects.create(login_id="alice", login_key="alice", password="")
    record = OldRecord.objects.create(user=alice, category=made["coding"], status="complete", cost=3)
    lost = OldRecord.objects.create(user=alice, category=None, status="complete", cost=1)
    try:
        migrate([AFTER, *others])
        migrate(leaves())  # and on to the newest state, as a deploy does

        ids = {c.slug: c.model.public_id for c in Category.objects.select_related("model")}
        assert ids == {
            "general": "general",
            "coding": "gpt-4o",
            "writing": "writing",
            "poetry": "poetry",
            "vision": "vision",
            "taken": "taken",
        }
        coding = CatalogueModel.objects.get(public_id="gpt-4o")
        assert (coding.name, coding.prompt_price, coding.completion_price, coding.is_active) == (
            "gpt-4o",
            Decimal("0.0123"),
            Decimal("12.5"),
            True,
        )
        poetry = CatalogueModel.objects.get(public_id="poetry")
        assert (poetry.name, poetry.prompt_price, poetry.is_active) == ("Poetry", Decimal("3"), False)
        deployments = {
            model.public_id: [
                (d.provider_id, d.upstream_model, d.priority, d.weight) for d in model.deployments.all()
            ]
            for model in CatalogueModel.objects.all()
        }
        assert deployments == {
            "general": [(None, "", 1, 1)],
            "gpt-4o": [(None, "gpt-4o", 1, 1)],
            "writing": [(None, "llama3", 1, 1)],
            "poetry": [(None, "llama3", 1, 1)],
            "vision": [(None, "meta-llama/Llama-3.2-11B-Vision", 1, 1)],
            "taken": [(None, "coding", 1, 1)],
        }
        assert UsageRecord.objects.get(pk=record.pk).model_id == coding.pk
        assert UsageRecord.objects.get(pk=lost.pk).model_id is None

        back = migrate([BEFORE, *others])
        Restored = back.get_model("chats", "Category")
        restored = {
            c.slug: (c.model, str(c.prompt_price.normalize()), c.is_active) for c in Restored.objects.all()
        }
        assert restored == {
            "general": ("", "1", True),
            "coding": ("gpt-4o", "0.0123", True),
            "writing": ("llama3", "1", True),
            "poetry": ("llama3", "3", False),
            "vision": ("meta-llama/Llama-3.2-11B-Vision", "2", True),
            "taken": ("coding", "5", True),
        }
    finally:
        migrate(leaves())  # the rows go with the transactional test's flush
