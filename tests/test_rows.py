"""core.db.rows: plain statements that store and load rows as the ORM does (SQLite and PostgreSQL).

Here rather than in core/tests: it stores the apps' models, which core may not import."""

from decimal import Decimal

import pytest
from django.db import connection

from chats.catalogue.models import CatalogueModel
from chats.models import ChatSession, Message
from core.db.rows import insert, instance_from_row
from tests.helpers.orm import fields_of
from wallets.models import Hold, Wallet

pytestmark = pytest.mark.django_db


def test_inserted_rows_read_back_as_saved_in_one_statement(user, general_category, django_assert_num_queries):
    session = ChatSession.objects.create(user=user, category=general_category)
    question = Message(session=session, role="user", content="Été, 漢字 🙂")
    reply = Message(session=session, parent=question, role="assistant", status="pending")

    with django_assert_num_queries(1):
        insert([question, reply])

    assert not question._state.adding
    for made in (question, reply):
        assert fields_of(Message.objects.get(pk=made.pk)) == fields_of(made)
    assert question.created_at <= reply.created_at
    hold = Hold(wallet=Wallet.objects.get(user=user), amount=5, description="d")
    insert([hold])
    stored = Hold.objects.get(pk=hold.pk)
    assert (stored.status, stored.charged, stored.closed_at) == ("open", 0, None)  # the defaults


def test_insert_wants_primary_keys_set_before(user):
    from wallets.models import LedgerEntry

    with pytest.raises(ValueError, match="primary keys"):
        insert([LedgerEntry(wallet=Wallet.objects.get(user=user), kind="topup", amount=1, balance_after=1)])


def test_a_row_becomes_the_instance_the_orm_builds():
    model = CatalogueModel.objects.create(
        public_id="rows",
        name="Rows",
        prompt_price=Decimal("0.0101"),
        completion_price=Decimal("2"),
        drop_params=["logprobs"],
        is_active=False,
    )
    fields = CatalogueModel._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {CatalogueModel._meta.db_table} WHERE id = %s", [model.pk])
        loaded = instance_from_row(CatalogueModel, fields, cursor.fetchone())

    assert fields_of(loaded) == fields_of(CatalogueModel.objects.get(pk=model.pk))
    assert loaded.drop_params == ["logprobs"]
    assert loaded.is_active is False
    assert loaded.prompt_price == Decimal("0.0101")
    assert not loaded._state.adding
